"""Everything Huey offers keeps working through LiteQueue, on a real SQLite file with a
real consumer (run in a thread of the test process)."""

from __future__ import annotations

import datetime as dt
import threading
import time
from pathlib import Path

import pytest
from huey.api import chord, group
from huey.exceptions import TaskException

from litequeue import current_job
from tests.conftest import job_row, running_consumer, wait_for, wait_job


def test_results_and_ledger(make_app):
    app = make_app()

    @app.task()
    def add(a, b):
        return a + b

    r = add(2, 3)
    assert job_row(app, r.id)["status"] == "queued"
    with running_consumer(app, workers=2):
        assert r.get(blocking=True, timeout=10) == 5
        job = wait_job(app, r.id, "succeeded")
    assert job["args"] == [2, 3]
    assert job["result"] == 5
    assert job["attempts"] == 1
    assert job["attempt_list"][0]["outcome"] == "succeeded"
    assert job["started_at"] and job["finished_at"]


def test_delay_and_eta(make_app):
    app = make_app()

    @app.task()
    def stamp():
        return time.time()

    t0 = time.time()
    delayed = stamp.schedule(delay=1.0)
    when = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)
    eta = stamp.schedule(eta=when)
    due = when.replace(microsecond=0).timestamp()  # Huey keeps whole seconds for an ETA
    assert job_row(app, delayed.id)["status"] == "scheduled"
    with running_consumer(app, workers=2):
        ran_delayed = delayed.get(blocking=True, timeout=10)
        ran_eta = eta.get(blocking=True, timeout=10)
    assert ran_delayed - t0 >= 0.95
    assert ran_eta >= due


def test_retries_with_delay_and_backoff(make_app):
    app = make_app()
    runs: list[float] = []

    @app.task(retries=2, retry_delay=0.3, retry_backoff=2)
    def flaky():
        runs.append(time.time())
        if len(runs) < 3:
            raise RuntimeError(f"attempt {len(runs)} fails")
        return "ok"

    r = flaky()
    with running_consumer(app, workers=1):
        job = wait_job(app, r.id, "succeeded")
    assert len(runs) == 3
    assert runs[1] - runs[0] >= 0.28
    assert runs[2] - runs[1] >= 0.58  # delay doubled by the back-off
    assert [a["outcome"] for a in job["attempt_list"]] == ["retrying", "retrying", "succeeded"]
    assert job["attempts"] == 3


def test_failure_keeps_traceback(make_app):
    app = make_app()

    @app.task()
    def boom():
        raise ValueError("bad input 42")

    r = boom()
    with running_consumer(app):
        job = wait_job(app, r.id, "failed")
        with pytest.raises(TaskException):
            r.get(blocking=True, timeout=5)
    assert job["error"] == "ValueError: bad input 42"
    assert "Traceback" in job["traceback"] and "bad input 42" in job["traceback"]


def test_priorities_within_a_queue(make_app):
    app = make_app()
    order: list[int] = []

    @app.task()
    def record(n):
        order.append(n)

    for n, prio in [(1, 0), (2, 5), (3, 0), (4, 10), (5, 5)]:
        app.enqueue(record.s(n, priority=prio))
    with running_consumer(app, workers=1):
        wait_for(lambda: len(order) == 5, what="5 jobs")
    assert order == [4, 2, 5, 1, 3]


def test_strict_queue_order(make_app):
    app = make_app()
    order: list[str] = []

    @app.task(queue="ocr", priority=100)
    def ocr(n):
        order.append(f"ocr{n}")

    @app.task(queue="high")
    def high(n):
        order.append(f"high{n}")

    @app.task(queue="other")
    def other(n):
        order.append(f"other{n}")

    for i in range(3):
        ocr(i)
    for i in range(3):
        high(i)
    other(0)
    with running_consumer(app, workers=1, queues=["high", "ocr"]):
        wait_for(lambda: len(order) == 6, what="6 jobs")
    assert order == ["high0", "high1", "high2", "ocr0", "ocr1", "ocr2"]
    assert job_row(app, app.storage.sql(
        "SELECT id FROM lq_job WHERE task = 'other'").fetchone()[0])["status"] == "queued"


def test_expiry(make_app):
    app = make_app()

    @app.task(expires=0.2)
    def late():
        return "ran"

    r = late()
    time.sleep(0.3)  # let the job expire before any consumer exists
    with running_consumer(app):
        job = wait_job(app, r.id, "expired")
    assert job["error"] == "expired before it ran"


def test_revoke(make_app):
    app = make_app()

    @app.task()
    def nope():
        return "ran"

    r = nope()
    r.revoke()
    with running_consumer(app):
        wait_job(app, r.id, "cancelled")


def test_pipeline_then(make_app):
    app = make_app()

    @app.task()
    def add(a, b):
        return a + b

    pipe = add.s(1, 2).then(add, 10).then(add, 100)
    results = app.enqueue(pipe)
    ids = [r.id for r in results]
    assert [job_row(app, i)["status"] for i in ids] == ["queued", "waiting", "waiting"]
    with running_consumer(app, workers=2):
        assert results.get(blocking=True, timeout=10) == [3, 13, 113]
        wait_job(app, ids[2], "succeeded")
    assert job_row(app, ids[1])["parent_id"] == ids[0]
    assert job_row(app, ids[2])["parent_id"] == ids[1]
    assert job_row(app, ids[0])["children"] == [ids[1]]


def test_group_and_chord(make_app):
    app = make_app()

    @app.task()
    def square(n):
        return n * n

    @app.task()
    def total(values):
        return sum(values)

    grp = app.enqueue(group([square.s(i) for i in range(5)]))
    ch = app.enqueue(chord([square.s(i) for i in range(4)], total.s()))
    with running_consumer(app, workers=4):
        assert grp.get(blocking=True, timeout=10) == [0, 1, 4, 9, 16]
        assert ch.get(blocking=True, timeout=10) == 14


def test_lock(make_app, tmp_path: Path):
    app = make_app()
    active = []
    peak = []
    guard = threading.Lock()

    @app.task(retries=20, retry_delay=0.05)
    @app.lock_task("one-at-a-time")
    def exclusive(n):
        with guard:
            active.append(n)
            peak.append(len(active))
        time.sleep(0.05)
        with guard:
            active.remove(n)

    rs = [exclusive(i) for i in range(4)]
    with running_consumer(app, workers=4):
        for r in rs:
            wait_job(app, r.id, "succeeded")
    assert max(peak) == 1


def test_rate_limit(make_app):
    app = make_app()
    calls: list[float] = []

    @app.task(retries=5, retry_delay=0.2)
    def limited(n):
        with app.rate_limit("api", 2, 1):
            calls.append(time.time())

    rs = [limited(i) for i in range(4)]
    with running_consumer(app, workers=2):
        for r in rs:
            wait_job(app, r.id, "succeeded")
    assert len(calls) == 4


def test_current_job_and_progress(make_app):
    app = make_app()
    seen = {}

    @app.task()
    def work(n):
        job = current_job()
        seen.update(id=job.id, attempt=job.attempt, queue=job.queue)
        for i in range(1, n + 1):
            job.progress(i, n, f"step {i}")

    r = work(3)
    with running_consumer(app):
        job = wait_job(app, r.id, "succeeded")
    assert seen == {"id": r.id, "attempt": 1, "queue": "default"}
    assert job["progress"]["done"] == 3 and job["progress"]["percent"] == 100.0
    assert job["progress_message"] == "step 3"


def test_thread_timeout_is_enforced(make_app):
    app = make_app()

    @app.task(timeout=0.3, retries=1)
    def spin():
        end = time.time() + 5
        while time.time() < end:
            pass

    r = spin()
    t0 = time.time()
    with running_consumer(app, workers=1):
        job = wait_job(app, r.id, "failed", timeout=10)
    assert time.time() - t0 < 4
    assert job["error"] == "timed out after 0.3s"
    assert [a["outcome"] for a in job["attempt_list"]] == ["timeout", "timeout"]


def test_map_writes_in_one_go(make_app):
    app = make_app()

    @app.task()
    def double(n):
        return 2 * n

    results = double.map(range(200))
    assert app.storage.sql("SELECT COUNT(*) FROM lq_ready").fetchone()[0] == 200
    with running_consumer(app, workers=8):
        assert results.get(blocking=True, timeout=20) == [2 * n for n in range(200)]


def test_job_enqueued_by_a_job_is_linked_to_it(make_app):
    app = make_app()

    @app.task()
    def child(n):
        return n

    @app.task()
    def parent():
        return child(7).id

    r = parent()
    with running_consumer(app, workers=2):
        child_id = r.get(blocking=True, timeout=10)
        wait_job(app, child_id, "succeeded")
    assert job_row(app, child_id)["parent_id"] == r.id
