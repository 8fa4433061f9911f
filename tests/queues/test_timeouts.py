"""Issue 11, bug 5: a thread timeout that fires while a task is inside a database write
(``current_job().progress()``) waits until the write has committed or rolled back."""

from __future__ import annotations

import signal
import sqlite3
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import Project, wait_for

TASKS = """
from litequeue import LiteQueue, current_job

app = LiteQueue("tmo")

@app.task(timeout=0.05)
def reporter(i):
    job = current_job()
    n = 0
    while True:
        n += 1
        job.progress(n, n)  # done == total: every report is written at once

@app.task()
def ok(n):
    return n
"""
JOBS = 200


@pytest.fixture(params=["sqlite", "postgres"])
def query(request: pytest.FixtureRequest, project: Project) -> Callable[[str], list[tuple[Any, ...]]]:
    """Read the project's database (SQLite file or a fresh PostgreSQL database)."""
    if request.param == "sqlite":
        return lambda sql: project.query(sql)
    import psycopg2

    url = request.getfixturevalue("pg_url")
    project.extra_env["LITEQUEUE_DB"] = url

    def pg(sql: str) -> list[tuple[Any, ...]]:
        conn = psycopg2.connect(url)
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
                return cur.fetchall()
        finally:
            conn.close()

    return pg


def test_timeouts_landing_in_progress_writes_leave_no_transaction_open(
        project: Project, query: Callable[[str], list[tuple[Any, ...]]]) -> None:
    project.write("tasks.py", TASKS)
    project.python(f"import tasks; tasks.reporter.map(range({JOBS}))")
    consumer = project.start_consumer("tasks", "-w", "4", "--shutdown-timeout", "5")

    def statuses() -> dict[str, int]:
        try:
            return dict(query("SELECT status, COUNT(*) FROM lq_job GROUP BY status"))
        except (sqlite3.OperationalError, Exception):  # noqa: BLE001 - read again on the next poll
            return {}

    try:
        wait_for(lambda: statuses().get("failed", 0) == JOBS, 90, what=f"{JOBS} jobs failed")
    except AssertionError as exc:
        log = (project.root / "consumer-0.log").read_text()[-3000:]
        raise AssertionError(f"{exc}; statuses: {statuses()}; consumer alive: {consumer.poll() is None}; "
                             f"log tail:\n{log}") from None
    errors = query("SELECT error, COUNT(*) FROM lq_job WHERE status = 'failed' GROUP BY error")
    assert errors == [("timed out after 0.05s", JOBS)]
    outcomes = query("SELECT outcome, COUNT(*) FROM lq_attempt GROUP BY outcome")
    assert outcomes == [("timeout", JOBS)]
    assert query("SELECT COUNT(*) FROM lq_ready") == [(0,)]
    # The consumer keeps working: a normal job enqueued after them succeeds.
    job_id = project.python("import tasks; print(tasks.ok(7).id)").stdout.strip()
    wait_for(lambda: query(f"SELECT status FROM lq_job WHERE id = '{job_id}'") == [("succeeded",)], 30,
             what="the normal job to succeed")
    assert consumer.poll() is None
    consumer.send_signal(signal.SIGTERM)
    assert consumer.wait(30) == 0
    assert statuses() == {"failed": JOBS, "succeeded": 1}
