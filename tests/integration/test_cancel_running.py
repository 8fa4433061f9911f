"""Cancelling a running job, whatever it does: cooperative first, then enforced after a grace
period, for thread workers, process workers and async tasks; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from litequeue import current_job
from litequeue.jobs import actions
from litequeue.store import dialect
from tests.conftest import job_row, running_consumer, wait_for, wait_job

GRACE = 1.0


def seconds_to_cancel(app: Any, job_id: str) -> float:
    """From the cancel request (its event) to the job's end, from the ledger's timestamps."""
    (row,) = dialect.sql(app.storage.database, "SELECT j.finished_at - e.at FROM lq_job j JOIN lq_event e "
                         "ON e.job_id = j.id AND e.action = 'cancel' WHERE j.id = ?", [job_id]).fetchall()
    return float(row[0])


def declare(app: Any) -> dict[str, Any]:
    @app.task(retries=2)
    def checks() -> None:
        while True:
            current_job().raise_if_cancelled()
            time.sleep(0.02)

    @app.task(retries=2)
    def never_checks() -> None:
        while True:  # never looks at current_job(), and sleeps where Python cannot interrupt it
            time.sleep(60)

    @app.task(retries=2)
    async def async_never_checks() -> None:
        while True:
            await asyncio.sleep(0.05)

    @app.task()
    def after() -> str:
        return "ran"

    return {"checks": checks, "never_checks": never_checks, "async": async_never_checks, "after": after}


@pytest.mark.parametrize("kind,worker_type,victim", [
    ("thread job that checks", "thread", "checks"),
    ("thread job that never checks", "thread", "never_checks"),
    ("process job that never checks", "process", "never_checks"),
    ("async job that never checks", "thread", "async"),
    ("async job on -k asyncio", "asyncio", "async"),
])
def test_cancel_running_job(make_app, kind: str, worker_type: str, victim: str) -> None:
    app = make_app()
    tasks = declare(app)
    with running_consumer(app, workers=1, worker_type=worker_type, cancel_grace=GRACE,
                          health_check_interval=0.2) as consumer:
        # Enqueue once the workers are forked: a fork while this thread is inside a write
        # would leave the child's copy of the write guard held (a test-harness race only).
        wait_for(lambda: consumer.cancel_watcher is not None, 10, what="the consumer to start")
        handle = tasks[victim]()
        wait_job(app, handle.id, "running")
        time.sleep(0.2)  # well inside its body
        assert actions.cancel_jobs(app.storage, [handle.id], actor="tester")[handle.id] == \
            "cancel requested (running)"
        job = wait_job(app, handle.id, "cancelled", timeout=15)
        # Never failed, never retried: one attempt, which says who cancelled it.
        assert job["attempts"] == 1 and job["traceback"] in (None, "")
        (attempt,) = job["attempt_list"]
        assert attempt["outcome"] == "cancelled" and attempt["error"].startswith("cancelled by tester")
        took = seconds_to_cancel(app, handle.id)
        assert took < GRACE + 1.0, f"{kind}: ended {took:.2f}s after the cancel request"
        if victim == "checks":
            assert "grace" not in attempt["error"], attempt["error"]  # it stopped by itself
        else:
            assert "grace" in attempt["error"], attempt["error"]
        # The consumer keeps working at full strength: the next job runs on it.
        nxt = tasks["after"]()
        done = wait_job(app, nxt.id, "succeeded", timeout=15)
        assert done["attempt_list"][0]["worker"].startswith(consumer.consumer_id)
        if worker_type == "process":
            assert all(proc.is_alive() for _, proc in consumer.worker_threads)
    time.sleep(0.3)
    assert job_row(app, handle.id)["status"] == "cancelled"  # and stays so


def test_task_grace_and_result_handle(make_app) -> None:
    app = make_app()

    @app.task(cancel_grace=0.3)
    def stubborn() -> None:
        while True:
            time.sleep(0.02)

    with running_consumer(app, workers=1, cancel_grace=30):
        handle = stubborn()
        wait_job(app, handle.id, "running")
        # The task's own grace (0.3 s) wins over the consumer's (30 s).
        assert handle.cancel(wait=10) == "cancelled"
        job = job_row(app, handle.id)
        assert job["error"].startswith("cancelled by result.cancel() (")
        assert "0.3s grace" in job["error"]
        assert handle.cancel() == "already cancelled"


def test_cancelled_flag_is_cooperative(make_app) -> None:
    """``current_job().cancelled`` turns true; a task that returns on it ends succeeded."""
    app = make_app()

    @app.task()
    def polite() -> str:
        while not current_job().cancelled:
            time.sleep(0.02)
        return f"stopped, asked by {current_job().cancelled_by}"

    with running_consumer(app, workers=1, cancel_grace=30):
        handle = polite()
        wait_job(app, handle.id, "running")
        actions.cancel_jobs(app.storage, [handle.id], actor="tester")
        assert handle.get(blocking=True, timeout=10) == "stopped, asked by tester"


def test_async_tasks_in_the_thread_consumer(make_app, caplog) -> None:
    """Results, retries, timeouts, progress and the ledger as for sync tasks; a task that
    blocks the loop is named in the log."""
    app = make_app()
    tries: list[int] = []

    @app.task()
    async def add(a: int, b: int) -> int:
        await asyncio.sleep(0.01)
        current_job().progress(1, 1, "added")
        return a + b

    @app.task(retries=1, retry_delay=0)
    async def flaky() -> str:
        tries.append(1)
        if len(tries) == 1:
            raise ValueError("first try fails")
        return "second try"

    @app.task(timeout=0.5)
    async def slow() -> None:
        await asyncio.sleep(30)

    @app.task()
    async def blocks_loop() -> None:
        time.sleep(1.6)  # blocks the event loop: every other async job waits

    @app.task()
    def plain() -> str:
        return "sync too"

    with running_consumer(app, workers=4):
        r_add, r_flaky, r_slow, r_plain = add(2, 3), flaky(), slow(), plain()
        assert r_add.get(blocking=True, timeout=10) == 5
        assert r_plain.get(blocking=True, timeout=10) == "sync too"
        assert r_flaky.get(blocking=True, timeout=10) == "second try"
        job = wait_job(app, r_slow.id, "failed", timeout=10)
        assert job["error"] == "timed out after 0.5s"
        added = job_row(app, r_add.id)
        assert added["status"] == "succeeded" and added["progress_message"] == "added"
        blocker = blocks_loop()
        wait_job(app, blocker.id, "succeeded", timeout=10)
        wait_for(lambda: any("blocked the event loop" in r.getMessage() and blocker.id in r.getMessage()
                             for r in caplog.records), 5, what="the watchdog's log line")


def test_200_async_jobs_run_at_once(make_app) -> None:
    """-k asyncio -w 200: 200 jobs that each await asyncio.sleep(1) run side by side. Judged
    by how many were running at the same instant (from the ledger's start and finish times),
    not by the wall time, which a loaded machine stretches: one at a time would overlap 1."""
    app = make_app()

    @app.task()
    async def nap(i: int) -> int:
        await asyncio.sleep(1)
        return i

    with running_consumer(app, workers=200, worker_type="asyncio"):
        nap.map(range(200))
        wait_for(lambda: dialect.sql(app.storage.database, "SELECT COUNT(*) FROM lq_job WHERE status = "
                                     "'succeeded'").fetchone()[0] == 200, 60, what="200 jobs succeeded")
    spans = dialect.sql(app.storage.database, "SELECT started_at, finished_at FROM lq_job").fetchall()
    edges = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    running = most = 0
    for _, step in edges:
        running += step
        most = max(most, running)
    assert most >= 100, f"at most {most} of the 200 async jobs ran at the same time"


def test_async_task_that_checks_ends_cancelled(make_app) -> None:
    app = make_app()

    @app.task(retries=2)
    async def checks_async() -> None:
        while True:
            current_job().raise_if_cancelled()
            await asyncio.sleep(0.02)

    with running_consumer(app, workers=2, worker_type="asyncio", cancel_grace=30):
        handle = checks_async()
        wait_job(app, handle.id, "running")
        assert handle.cancel(wait=10) == "cancelled"
        job = job_row(app, handle.id)
        assert job["attempts"] == 1 and job["error"].startswith("cancelled by result.cancel() (")
        assert "grace" not in job["error"]
