"""``litequeue serve-web`` as a real process behind waitress, over real HTTP."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request

from tests.conftest import Project
from tests.web.conftest import TASKS, start_web


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


def test_serve_web_prints_its_url_and_serves_the_ledger(project: Project) -> None:
    project.write("tasks.py", TASKS)
    project.cli("enqueue", "ok", "--args", "[7]", "--app", "tasks")
    url = start_web(project, "tasks")
    assert url.startswith("http://127.0.0.1:")
    status, headers, body = fetch(url + "livez")
    assert (status, body) == (200, "ok\n")
    assert headers["Server"] == "litequeue"  # waitress, not Flask's development server
    status, _, body = fetch(url + "api/overview")
    assert status == 200 and json.loads(body)["queues"]["default"]["queued"] == 1
    status, _, body = fetch(url + "api/periodic")
    assert {t["task"] for t in json.loads(body)["tasks"]} == {"tasks.tick", "tasks.nightly"}
    assert fetch(url + "readyz")[0] == 200


def test_serve_web_with_a_password_file(project: Project) -> None:
    project.write("tasks.py", TASKS)
    project.cli("enqueue", "ok", "--args", "[7]", "--app", "tasks")
    (project.root / "pw").write_text("hunter2\n")
    url = start_web(project, "--password-file", str(project.root / "pw"), "--read-only")
    assert fetch(url)[0] == 401
    auth = {"Authorization": "Basic " + base64.b64encode(b"me:hunter2").decode()}
    status, _, body = fetch(url, auth)
    assert status == 200 and "read-only" in body and 'method="post"' not in body


def test_serve_web_before_the_database_exists(project: Project) -> None:
    url = start_web(project)
    status, _, body = fetch(url + "readyz")
    assert status == 503 and "no litequeue database" in body
    assert fetch(url + "livez")[0] == 200
