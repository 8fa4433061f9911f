"""Live refreshes share their reads (web/shared_reads.py), over real HTTP with a real
``litequeue serve-web``: pages polling the same JSON get one read per interval, a page load
or a plain API read always reads the ledger, and an action is seen at once."""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar

from tests.conftest import Project
from tests.web.conftest import TASKS, start_web

LIVE = {"X-Litequeue-Live": "1", "Accept": "application/json"}


def _get(opener: urllib.request.OpenerDirector, url: str, headers: dict[str, str] | None = None) -> str:
    with opener.open(urllib.request.Request(url, headers=headers or {}), timeout=30) as r:
        assert r.status == 200
        return r.read().decode()


def _queued(body: str) -> int:
    return json.loads(body)["queues"]["default"]["queued"]


def test_live_refreshes_share_one_read_and_everything_else_reads_the_ledger(project: Project) -> None:
    project.write("tasks.py", TASKS)
    project.cli("enqueue", "ok", "--args", "[1]", "--app", "tasks")
    url = start_web(project, "tasks", "--refresh", "30")  # shared bodies live 1 s (a third of 30 s, at most 1)
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
    first = time.monotonic()
    assert _queued(_get(browser, url + "api/overview", LIVE)) == 1
    project.cli("enqueue", "ok", "--args", "[2]", "--app", "tasks")
    # Many pages refreshing at once within the interval: one body, the one read before.
    bodies: list[str] = []
    pool = [threading.Thread(target=lambda: bodies.append(_get(browser, url + "api/overview", LIVE)))
            for _ in range(20)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    if time.monotonic() - first < 0.9:  # a very slow machine may already be past the interval
        assert [_queued(b) for b in bodies] == [1] * 20
    # A script reading the API, and a page load, read the ledger itself.
    assert _queued(_get(browser, url + "api/overview")) == 2
    assert "2" in re.sub(r"\s+", " ", _get(browser, url))
    # Past the interval the live refresh reads again.
    time.sleep(max(0.0, 1.05 - (time.monotonic() - first)))
    assert _queued(_get(browser, url + "api/overview", LIVE)) == 2


def test_an_action_is_seen_by_the_next_live_refresh(project: Project) -> None:
    project.write("tasks.py", TASKS)
    project.cli("enqueue", "ok", "--args", "[1]", "--app", "tasks")
    url = start_web(project, "tasks", "--refresh", "30")
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
    assert json.loads(_get(browser, url + "api/overview", LIVE))["queues"]["default"]["paused"] is False
    html = _get(browser, url)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html) or re.search(
        r'<meta name="csrf-token" content="([^"]+)"', html)
    assert token
    form = urllib.parse.urlencode({"csrf_token": token.group(1), "queue": "default"}).encode()
    request = urllib.request.Request(url + "queues/pause", data=form, method="POST",
                                     headers={"Origin": url.rstrip("/")})
    with browser.open(request, timeout=30) as r:
        assert r.status == 200
    assert json.loads(_get(browser, url + "api/overview", LIVE))["queues"]["default"]["paused"] is True


def test_a_failed_read_is_not_shared(project: Project) -> None:
    """A refresh of a job that does not exist answers 404 each time, never a shared body."""
    project.write("tasks.py", TASKS)
    project.cli("enqueue", "ok", "--args", "[1]", "--app", "tasks")
    url = start_web(project, "tasks")
    for _ in range(3):
        try:
            urllib.request.urlopen(urllib.request.Request(url + "api/jobs/nope", headers=LIVE), timeout=30)
        except urllib.error.HTTPError as exc:
            assert exc.code == 404
        else:
            raise AssertionError("a missing job answered 200")
