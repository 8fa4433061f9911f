"""What a Huey user tries first works on a LiteQueue: immediate mode, ``dequeue()`` +
``execute()``, ``read_schedule()``, ``flush()``, and Huey's own ``huey_consumer`` command;
on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import huey.exceptions
import pytest
from huey.exceptions import TaskException

from litequeue import LiteQueue
from tests.conftest import Project, job_row, running_consumer, wait_for, wait_job


def ledger_ids(app: LiteQueue, storage: Any = None) -> list[str]:
    storage = storage or app.storage
    return [r[0] for r in storage.sql("SELECT id FROM lq_job ORDER BY id").fetchall()]


# -- immediate mode ---------------------------------------------------------------------------

def test_immediate_mode_needs_no_database(tmp_path: Path) -> None:
    db = tmp_path / "never.db"
    app = LiteQueue("imm", db=db, immediate=True)

    @app.task()
    def add(a: int, b: int) -> int:
        return a + b

    @app.task(retries=1)
    def fails() -> None:
        raise ValueError("nope")

    assert add(2, 3)() == 5
    assert add.s(1, 1).then(add, 10)  # a pipeline runs inline too
    assert [r() for r in app.enqueue(add.s(1, 1).then(add, 10))] == [2, 12]
    with pytest.raises(TaskException, match="nope"):
        fails()()
    assert [r() for r in add.map([(1, 2), (3, 4)])] == [3, 7]
    assert not db.exists() and not Path(f"{db}.lq").exists()


def test_immediate_mode_on_an_app_with_a_ledger(make_app: Callable[..., LiteQueue]) -> None:
    app = make_app()

    @app.task()
    def add(a: int, b: int) -> int:
        return a + b

    queued = add(1, 1)
    ledger_storage = app.storage
    app.immediate = True
    assert add(2, 3)() == 5  # ran inline, in memory: the ledger is not touched
    assert ledger_ids(app, ledger_storage) == [queued.id]
    app.immediate = False
    later = add(4, 4)
    assert ledger_ids(app) == sorted([queued.id, later.id])
    with running_consumer(app, workers=1):
        assert later.get(blocking=True, timeout=10) == 8
        wait_job(app, queued.id, "succeeded")


# -- dequeue() + execute() ----------------------------------------------------------------------

def test_dequeue_claims_and_execute_acks_like_a_consumer(make_app: Callable[..., LiteQueue]) -> None:
    app = make_app()

    @app.task()
    def add(a: int, b: int) -> int:
        return a + b

    @app.task(retries=1, retry_delay=60)
    def flaky() -> None:
        raise RuntimeError("down")

    r = add(2, 3)
    task = app.dequeue()
    assert task.id == r.id and len(app) == 0
    job = job_row(app, r.id)
    assert job["status"] == "running" and job["attempts"] == 1
    assert app.storage.sql("SELECT claimed_by FROM lq_ready WHERE job_id = ?", (r.id,)).fetchone()[0]
    assert app.execute(task) == 5
    job = job_row(app, r.id)
    assert (job["status"], job["result"], r.get()) == ("succeeded", 5, 5)
    assert [a["outcome"] for a in job["attempt_list"]] == ["succeeded"]
    assert app.storage.sql("SELECT COUNT(*) FROM lq_ready").fetchone()[0] == 0

    f = flaky()
    app.execute(app.dequeue())
    job = job_row(app, f.id)
    assert job["status"] == "retrying" and "RuntimeError: down" in job["error"]
    assert [t.id for t in app.scheduled()] == [f.id]

    assert app.dequeue() is None


def test_a_task_that_enqueues_and_waits_for_a_subtask_does_not_deadlock(
        make_app: Callable[..., LiteQueue]) -> None:
    """Huey writes what a task's own code enqueues at once; litequeue used to hold it until
    the task's ack, so a task waiting on its subtask's result waited forever."""
    app = make_app()

    @app.task()
    def inner(n: int) -> int:
        return n * 10

    @app.task()
    def outer(n: int) -> int:
        return inner(n).get(blocking=True, timeout=5) + 1

    with running_consumer(app, workers=2):
        r = outer(4)
        assert r.get(blocking=True, timeout=15) == 41
    child = [j for j in ledger_ids(app) if j != r.id]
    assert job_row(app, child[0])["parent_id"] == r.id


def test_read_schedule_hands_due_jobs_out_under_a_claim(make_app: Callable[..., LiteQueue]) -> None:
    app = make_app()

    @app.task()
    def add(a: int, b: int) -> int:
        return a + b

    r = add.schedule((1, 2), delay=60)
    assert app.execute(app.dequeue()) is None  # not due: Huey puts it on the schedule
    job = job_row(app, r.id)
    assert (job["status"], job["attempts"], job["attempt_list"]) == ("scheduled", 0, [])
    assert [t.id for t in app.scheduled()] == [r.id] and len(app) == 0
    soon = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(seconds=61)
    assert app.read_schedule(soon - dt.timedelta(seconds=30)) == []
    due = app.read_schedule(soon)
    assert [t.id for t in due] == [r.id]
    assert app.scheduled_count() == 0 and len(app) == 0  # handed to this process, claimed
    app.enqueue(due[0])  # Huey's scheduler does this: the claim goes back to the queue
    assert len(app) == 1 and app.storage.sql("SELECT COUNT(*) FROM lq_ready").fetchone()[0] == 1
    assert app.execute(app.dequeue(), soon) == 3
    assert job_row(app, r.id)["status"] == "succeeded"


def test_flush_cancels_the_flushed_jobs_in_the_ledger(make_app: Callable[..., LiteQueue]) -> None:
    app = make_app()

    @app.task()
    def add(a: int, b: int) -> int:
        return a + b

    a, b = add(1, 1), add.schedule((2, 2), delay=60)
    app.execute(app.dequeue())
    app.execute(app.dequeue())  # b goes on the schedule
    c = add(3, 3)
    app.flush()
    assert (len(app), app.scheduled_count(), app.result_count()) == (0, 0, 0)
    assert [job_row(app, j.id)["status"] for j in (a, b, c)] == ["succeeded", "cancelled", "cancelled"]


def test_enqueue_many_and_map_write_all_jobs_in_one_transaction(make_app: Callable[..., LiteQueue]) -> None:
    app = make_app()
    commits: list[int] = []

    @app.task()
    def add(a: int, b: int) -> int:
        return a + b

    write_jobs = app.storage.write_jobs

    def counting(jobs: Any, now: Any = None) -> None:
        commits.append(len(jobs))
        write_jobs(jobs, now)

    app.storage.write_jobs = counting  # type: ignore[method-assign]
    results = add.map([(i, i) for i in range(25)])
    app.enqueue_many([add.s(i, 1) for i in range(25)], chunk=10)
    assert commits == [25, 25]  # each call all or nothing: one transaction (chunk is ignored)
    assert len(app) == 50 and len(ledger_ids(app)) == 50
    with running_consumer(app, workers=2):
        assert results.get(blocking=True, timeout=20) == [2 * i for i in range(25)]


# -- a process that dies holding a dequeued job --------------------------------------------------

TASKS = """
import os
from litequeue import LiteQueue
app = LiteQueue("compat")

@app.task()
def add(a, b):
    return a + b
"""


@pytest.fixture(params=["sqlite", "postgres"])
def compat_project(request: pytest.FixtureRequest, project: Project) -> Project:
    if request.param == "postgres":
        project.extra_env["LITEQUEUE_DB"] = request.getfixturevalue("pg_url")
    project.write("tasks.py", TASKS)
    return project


def ledger(project: Project, status: str) -> list[dict[str, Any]]:
    return json.loads(project.cli("jobs", "list", "--status", status, "--json").stdout)


def test_a_job_dequeued_by_a_process_that_dies_is_recovered(compat_project: Project) -> None:
    project = compat_project
    project.python("import tasks; tasks.add(20, 22)")
    proc = project.python("import os, tasks\nt = tasks.app.dequeue()\nprint(t.id, flush=True)\nos._exit(9)",
                          check=False)
    assert proc.returncode == 9
    job_id = proc.stdout.split()[0]
    assert [j["id"] for j in ledger(project, "running")] == [job_id]
    project.start_consumer("tasks", "-w", "1")
    wait_for(lambda: ledger(project, "succeeded"), 30, what="the dead process's job to run")
    job = json.loads(project.cli("jobs", "show", job_id, "--json").stdout)
    assert [a["outcome"] for a in job["attempt_list"]] == ["interrupted", "succeeded"]


# -- Huey's own consumer command ----------------------------------------------------------------

def test_huey_consumer_runs_the_litequeue_consumer(compat_project: Project) -> None:
    project = compat_project
    project.python("import tasks; tasks.add(1, 2)")
    huey_consumer = Path(sys.executable).with_name("huey_consumer")
    out = open(project.root / "huey_consumer.log", "w")  # noqa: SIM115
    proc = subprocess.Popen([str(huey_consumer), "tasks.app", "-w", "2"], cwd=project.root, env=project.env,
                            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    project.procs.append(proc)  # type: ignore[arg-type]
    try:
        wait_for(lambda: ledger(project, "succeeded"), 30, what="huey_consumer to run the job")
        (job,) = ledger(project, "succeeded")
        assert job["result"] == 3
        consumers = json.loads(project.cli("status", "--json").stdout)["consumers"]
        assert [c["concurrency"] for c in consumers] == [2]
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(30) == 0, (project.root / "huey_consumer.log").read_text()
    assert "Traceback" not in (project.root / "huey_consumer.log").read_text()


def test_a_task_lock_with_a_ttl_lapses(make_app: Callable[..., LiteQueue]) -> None:
    app = make_app()
    lock = app.lock_task("report", ttl=0.3)
    lock.acquire()
    assert app.is_locked("report")
    with pytest.raises(huey.exceptions.TaskLockedException):
        lock.acquire()
    wait_for(lambda: not app.is_locked("report"), 5, what="the lock to lapse")
    assert lock.acquire() and app.is_locked("report")
    lock.release()
    assert not app.is_locked("report") and app.storage.result_store_size() == 0
