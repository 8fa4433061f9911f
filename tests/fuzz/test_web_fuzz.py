"""Hostile requests to the status page over real HTTP (the app served by a real server thread):
query strings and path segments of every page and its JSON twin, and the action forms (with a
valid CSRF token, so the fuzz reaches the actions). Never a 500, a hang or a traceback; JSON
twins answer JSON; a form changes only the jobs it names; ``next`` never leads off the site."""

from __future__ import annotations

import re
import shutil
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from werkzeug.serving import make_server

from litequeue_web import WebSettings, create_app
from tests.fuzz.conftest import Seeded
from tests.fuzz.hostile import ARG, DATE, DURATION, TEXT, job_id_like
from tests.support.pg_cluster import free_port

GET_PAGES = ["/", "/jobs", "/running", "/consumers", "/batches", "/stats", "/periodic", "/jobs/retry-failed",
             "/api/overview", "/api/jobs", "/api/running", "/api/consumers", "/api/batches", "/api/stats",
             "/api/periodic", "/metrics", "/readyz"]
WITH_SEGMENT = ["/jobs/{}", "/api/jobs/{}", "/queue/{}", "/api/queue/{}", "/batches/{}", "/api/batches/{}"]
QUERY_KEYS = ["status", "queue", "task", "q", "after", "tag", "retried", "since", "by", "page", "limit", "x"]


class Served:
    def __init__(self, base: str, db: Path, seeded: Seeded) -> None:
        self.base = base
        self.db = db
        self.seeded = seeded
        self.client = httpx.Client(base_url=base, timeout=20, follow_redirects=False)

    def jobs(self) -> dict[str, tuple[object, ...]]:
        import sqlite3

        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True) as conn:
            rows = conn.execute("SELECT id, status, queue, task, priority, attempts, finished_at FROM lq_job")
            return {row[0]: tuple(row[1:]) for row in rows}

    def token(self) -> str:
        page = self.client.get("/jobs")
        found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert found, page.text[:500]
        return found.group(1)


@pytest.fixture(scope="module")
def served(seeded: Seeded, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    db = tmp_path_factory.mktemp("web") / "lq.db"
    shutil.copy(seeded.db, db)  # the forms write: never to the shared seeded ledger
    app = create_app(WebSettings(db=str(db)))
    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Served(f"http://127.0.0.1:{server.server_port}", db, seeded)
    finally:
        server.shutdown()
        thread.join(10)


def check_response(resp: httpx.Response, what: str) -> None:
    assert resp.status_code < 500 or resp.status_code == 503 and "database" in resp.text, \
        f"{what}: {resp.status_code}\n{resp.text[:2000]}"
    # (a failed job's own traceback is data the pages show: only an error must not carry one)
    assert resp.status_code < 400 or "Traceback" not in resp.text, f"{what}: {resp.text[:2000]}"
    if urllib.parse.urlsplit(str(resp.request.url)).path.startswith("/api/"):
        assert resp.headers.get("content-type", "").startswith("application/json"), (what, resp.headers)
        resp.json()


QUERY = st.dictionaries(st.sampled_from(QUERY_KEYS), st.one_of(ARG, DURATION, DATE), max_size=5)


@settings(max_examples=150)
@given(page=st.sampled_from(GET_PAGES), query=QUERY)
@example(page="/api/jobs", query={"after": "9" * 40})  # found: a 500 (the seq overflowed SQLite's integer)
@example(page="/api/stats", query={"since": "9" * 40 + "d", "by": "\u2028"})
@example(page="/jobs", query={"status": "\x00", "q": "%", "page": "-1"})
def test_any_query_string_is_answered_without_an_error(served: Served, page: str, query: dict[str, str]):
    before = served.jobs()
    resp = served.client.get(page, params=query)
    check_response(resp, f"GET {page} {query!r}")
    assert served.jobs() == before


@settings(max_examples=100)
@given(template=st.sampled_from(WITH_SEGMENT), segment=st.one_of(TEXT, st.sampled_from(["..", "%2e%2e", "%00"])),
       query=QUERY)
@example(template="/api/jobs/{}", segment="\x00", query={})
@example(template="/api/queue/{}", segment="a" * 5000, query={})
@example(template="/api/jobs/{}", segment="", query={})  # found: a 404 under /api/ answered HTML
def test_any_path_segment_is_answered_without_an_error(served: Served, template: str, segment: str,
                                                       query: dict[str, str]):
    path = template.format(urllib.parse.quote(segment, safe=""))
    resp = served.client.get(path, params=query)
    check_response(resp, f"GET {path} {query!r}")


ACTIONS = ["/jobs/{}/retry", "/jobs/{}/cancel", "/jobs/{}/discard", "/batches/{}/retry-failed",
           "/consumers/{}/quiet", "/consumers/{}/stop", "/consumers/{}/{}"]
NAMED = ["/queues/pause", "/queues/resume", "/queues/purge", "/breakers/reset", "/periodic/pause",
         "/periodic/resume", "/periodic/run", "/jobs/bulk", "/jobs/retry-failed"]


@settings(max_examples=120)
@given(data=st.data())
@example(data=None)
def test_forms_change_only_what_they_name_and_never_redirect_off_site(served: Served, data):
    real = list(served.seeded.ids.values())
    if data is None:  # an explicit example: the open-redirect shapes
        form = {"next": "//evil.example/x", "queue": "\x1e"}
        url = "/queues/pause"
    elif data.draw(st.booleans(), label="path action"):
        template = data.draw(st.sampled_from(ACTIONS), label="action")
        ids = [urllib.parse.quote(data.draw(job_id_like(real), label="id"), safe="") for _ in range(2)]
        url = template.format(*ids[:template.count("{}")])
        form = {"next": data.draw(st.one_of(ARG, st.sampled_from(["//evil.example", "/\\evil", "https://x"])),
                                  label="next")}
    else:
        url = data.draw(st.sampled_from(NAMED), label="form")
        form = data.draw(st.dictionaries(st.sampled_from(["queue", "task", "name", "action", "ids", "next", "status",
                                                          "q", "tag", "all"]), ARG, max_size=5), label="fields")
        form.pop("all", None)  # "all matching the filter" changes jobs by design: not this property
        for field in ("queue", "name", "task", "q", "tag", "ids"):
            assume(form.get(field, "") not in (*real, "mail", "default", "hello", "boom"))
    before = served.jobs()
    resp = served.client.post(url, data={**form, "csrf_token": served.token()}, headers={"Origin": served.base})
    check_response(resp, f"POST {url} {form!r}")
    location = resp.headers.get("location", "")
    if location:
        target = urllib.parse.urljoin(served.base + url, location)
        assert target.startswith(served.base + "/"), f"POST {url} {form!r} redirected off the site: {location}"
    if url not in ("/jobs/retry-failed",):  # retry-failed retries every failed job: asked for
        assert served.jobs() == before, f"POST {url} {form!r} changed jobs it did not name"
