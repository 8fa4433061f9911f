"""Issue 13, circuit breakers: after N failures within the window a task's queued jobs are
held (still ``queued``, no attempt, no retry used); after the cool-down one trial job goes
through; its success closes the breaker, its failure opens it again; ``breakers reset``
closes it by hand. Every change of state is an event. SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from typing import Any

from litequeue import Breaker
from litequeue.ledger import queries
from litequeue_web import WebSettings, create_app
from tests.conftest import running_consumer, wait_for


def _breaker(app: Any, task: str) -> dict[str, Any]:
    rows = [b for b in queries.breakers(app.storage.database) if b["task"] == task]
    assert rows, f"no breaker row for {task}"
    return rows[0]


def _state(app: Any, task: str) -> str | None:
    rows = [b for b in queries.breakers(app.storage.database) if b["task"] == task]
    return rows[0]["state"] if rows else None  # None until the consumer published it


def _events(app: Any) -> list[tuple[str, str | None]]:
    rows = queries.recent_events(app.storage.database, limit=100)
    return [(e["action"], e["job_id"]) for e in reversed(rows) if e["action"].startswith("breaker-")]


def _jobs(app: Any, ids: list[str]) -> list[dict[str, Any]]:
    return [queries.get_job(app.storage.database, i) for i in ids]  # type: ignore[misc]


def test_breaker_opens_holds_lets_one_trial_through_and_closes(make_app):
    app = make_app()
    upstream_ok = threading.Event()
    calls: list[str] = []

    @app.task(retries=3, retry_delay=0.2, breaker=Breaker(failures=5, window="1m", cooldown=1.5))
    def call(n):
        calls.append(n)
        if not upstream_ok.is_set():
            raise ConnectionError("upstream down")

    rs = [call(i) for i in range(12)]
    ids = [r.id for r in rs]
    with running_consumer(app, workers=1):
        wait_for(lambda: _state(app, "call") == "open", 20, what="the breaker to open")
        opened = time.time()
        ran = len(calls)
        # Held: nothing else of the task runs while it is open (one claimed ahead may finish).
        time.sleep(0.8)
        assert len(calls) <= 6 and len(calls) == ran, calls
        jobs = _jobs(app, ids)
        held = [j for j in jobs if j["attempts"] == 0]
        assert len(held) >= 6
        assert all(j["status"] == "queued" for j in held)
        assert "held by the breaker of call" in held[0]["held"]
        # The failed ones are waiting for their retry: one attempt each, nothing failed for good.
        assert not [j for j in jobs if j["status"] == "failed"]
        assert all(j["attempts"] <= 1 for j in jobs)
        b = _breaker(app, "call")
        assert b["held"] >= 6 and b["trial_due"] is not None
        upstream_ok.set()
        for r in rs:
            wait_for(lambda r=r: queries.get_job(app.storage.database, r.id)["status"] == "succeeded", 30,
                     what=f"job {r.id} to succeed")
    trial_started = [e for e in _events(app) if e[0] == "breaker-half-open"]
    assert [e[0] for e in _events(app)] == ["breaker-open", "breaker-half-open", "breaker-closed"]
    # The trial went through only after the cool-down, and it is the job that closed it.
    trial_job = trial_started[0][1]
    assert _events(app)[2][1] == trial_job
    trial = queries.get_job(app.storage.database, trial_job)
    assert trial is not None
    assert _breaker(app, "call")["state"] == "closed"
    assert time.time() - opened >= 1.5
    # No job used more than the one failed attempt it had before the breaker opened.
    assert max(j["attempts"] for j in _jobs(app, ids)) <= 2


def _cli(app: Any, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, LITEQUEUE_DB=app.db_target)
    return subprocess.run([sys.executable, "-m", "litequeue", *args], env=env, capture_output=True,
                          text=True, timeout=60)


def test_failed_trial_reopens_and_reset_closes_by_hand(make_app):
    app = make_app()
    upstream_ok = threading.Event()
    look = threading.Event()
    calls: list[int] = []

    @app.task(breaker=Breaker(failures=2, window="1m", cooldown=1.0))
    def fetch(n):
        calls.append(n)
        if len(calls) == 4:
            look.wait(60)  # the second trial holds on while the test looks
        if not upstream_ok.is_set():
            raise ConnectionError("upstream down")

    rs = [fetch(i) for i in range(6)]
    db = app.storage.database
    with running_consumer(app, workers=1):
        # Two failures open it; after the cool-down the first trial fails: open again.
        wait_for(lambda: [e[0] for e in _events(app)][:3] == ["breaker-open", "breaker-half-open", "breaker-open"],
                 20, what="a failed trial to open the breaker again")
        wait_for(lambda: len(calls) == 4, 20, what="the second trial")
        failed = [r.id for r in rs if queries.get_job(db, r.id)["status"] == "failed"]
        assert len(failed) == 3  # two that opened it, one trial
        trial = _breaker(app, "fetch")["trial_job"]
        assert _breaker(app, "fetch")["state"] == "half-open" and trial not in failed
        # What the command line and the page show of it.
        shown = json.loads(_cli(app, "breakers", "--json").stdout)["breakers"]
        assert [(b["task"], b["state"], b["held"], b["trial_job"]) for b in shown] == [
            ("fetch", "half-open", 2, trial)]
        text = _cli(app, "breakers").stdout
        assert text.startswith("fetch") and f"half-open  trial job {trial} running; 2 job(s) held" in text
        status = _cli(app, "status").stdout
        assert "breakers:" in status and "fetch" in status
        client = create_app(WebSettings(db=app.db_target)).test_client()
        assert client.get("/api/overview").get_json()["breakers"][0]["state"] == "half-open"
        assert 'id="limits"' in client.get("/").get_data(as_text=True)
        held = next(r.id for r in rs if queries.get_job(db, r.id)["status"] == "queued")
        assert "held by the breaker of fetch" in client.get(f"/jobs/{held}").get_data(as_text=True)
        assert "held by the breaker of fetch" in _cli(app, "jobs", "show", held).stdout
        # The upstream is back: close it by hand, before any trial could.
        upstream_ok.set()
        reset = _cli(app, "breakers", "reset", "fetch")
        assert reset.stdout == "fetch: closed (was half-open)\n"
        unknown = _cli(app, "breakers", "reset", "nope")
        assert unknown.returncode == 1 and unknown.stderr == "Error: no breaker for task 'nope'; breakers: fetch\n"
        look.set()
        wait_for(lambda: sum(queries.get_job(db, r.id)["status"] == "succeeded" for r in rs) == 3, 20,
                 what="the held jobs and the trial to run after the reset")
    assert _breaker(app, "fetch")["state"] == "closed"
    assert [e[0] for e in _events(app)] == ["breaker-open", "breaker-half-open", "breaker-open",
                                           "breaker-half-open", "breaker-reset"]
