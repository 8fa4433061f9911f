"""Issue 13, circuit breakers: after N failures within the window a task's queued jobs are
held (still ``queued``, no attempt, no retry used); after the cool-down one trial job goes
through; its success closes the breaker, its failure opens it again; ``breakers reset``
closes it by hand. Every change of state is an event. SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from typing import Any

from litequeue import Breaker, control
from litequeue.ledger import queries
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


def test_failed_trial_reopens_and_reset_closes_by_hand(make_app):
    app = make_app()
    upstream_ok = threading.Event()

    @app.task(breaker=Breaker(failures=2, window="1m", cooldown=1.5))
    def fetch(n):
        if not upstream_ok.is_set():
            raise ConnectionError("upstream down")

    rs = [fetch(i) for i in range(6)]
    with running_consumer(app, workers=1):
        wait_for(lambda: [e[0] for e in _events(app)][-2:] == ["breaker-half-open", "breaker-open"], 20,
                 what="a failed trial to open the breaker again")
        assert _breaker(app, "fetch")["state"] == "open"
        failed = sum(queries.get_job(app.storage.database, r.id)["status"] == "failed" for r in rs)
        assert failed == 3  # two that opened it, one trial
        upstream_ok.set()
        assert control.reset_breaker(app.storage, "fetch", actor="test") == [(app.name, "open")]
        wait_for(lambda: sum(queries.get_job(app.storage.database, r.id)["status"] == "succeeded"
                             for r in rs) == 3, 20, what="the held jobs to run after the reset")
    assert _breaker(app, "fetch")["state"] == "closed"
    assert _events(app)[-1][0] == "breaker-reset"
