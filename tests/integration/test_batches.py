"""Batches on SQLite and PostgreSQL with a real consumer (in a thread of the test process):
fan-in once, results in order, sealing, nesting, failures, cancels, and what a running
job adds to batches riding on its ack."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from litequeue import current_job
from litequeue.base.errors import BatchClosedError, ConfigurationError
from litequeue.jobs import actions
from litequeue.ledger import queries
from tests.conftest import job_row, running_consumer, wait_for

pytestmark = pytest.mark.timeout(120)


def batch_view(app: Any, batch_id: str) -> dict[str, Any]:
    view = queries.get_batch(app.storage.database, batch_id)
    assert view is not None, f"no batch {batch_id}"
    return view


def wait_batch(app: Any, batch_id: str, states: tuple[str, ...] = ("succeeded", "failed"),
               timeout: float = 30) -> dict[str, Any]:
    try:
        return wait_for(lambda: (v := batch_view(app, batch_id))["state"] in states and v, timeout,
                        what=f"batch {batch_id} to be {'/'.join(states)}")
    except AssertionError:
        raise AssertionError(f"batch is {batch_view(app, batch_id)}") from None


def jobs_of(app: Any, task: str) -> list[dict[str, Any]]:
    return queries.list_jobs(app.storage.database, task=task, limit=1000)


def test_members_then_on_complete_once_with_results_in_order(make_app):
    app = make_app()
    calls: list[tuple[str, list[Any]]] = []
    lock = threading.Lock()

    @app.task()
    def square(n):
        return n * n

    @app.task()
    def total(batch_id, label):
        results = app.batch_results(batch_id)
        with lock:
            calls.append((label, results))
        return sum(results)

    with app.batch("squares", on_complete=total.s("sum")) as b:
        square(0)  # enqueued inside the block: a member
        b.add(square.s(1), square.s(2))
        square.map(range(3, 10), batch=b)
        app.enqueue(square.s(10), batch=b)
    assert batch_view(app, b.id)["total"] == 11 and batch_view(app, b.id)["state"] == "running"
    with running_consumer(app, workers=4):
        view = wait_batch(app, b.id)
    assert calls == [("sum", [n * n for n in range(11)])]
    assert view["state"] == "succeeded"
    assert (view["total"], view["succeeded"], view["failed"], view["percent"]) == (11, 11, 0, 100.0)
    assert view["on_complete"] == {"id": b.on_complete_id, "status": "succeeded"}
    assert job_row(app, b.on_complete_id)["args"] == [b.id, "sum"]
    assert len(jobs_of(app, "total")) == 1
    # a job enqueued after the block is not a member
    square(11)
    assert batch_view(app, b.id)["total"] == 11


def test_nothing_fires_before_the_block_ends(make_app):
    app = make_app()

    @app.task()
    def noop(n):
        return n

    @app.task()
    def done(batch_id):
        return batch_id

    with running_consumer(app, workers=2):
        with app.batch("slow producer", on_complete=done) as b:
            noop(1)
            wait_for(lambda: batch_view(app, b.id)["succeeded"] == 1, what="the first member to finish")
            assert batch_view(app, b.id)["state"] == "open"
            assert jobs_of(app, "done") == []  # every member finished, but more may come
            noop(2)
        view = wait_batch(app, b.id)
    assert view["total"] == 2 and view["state"] == "succeeded"
    assert len(jobs_of(app, "done")) == 1


def test_an_empty_batch_completes_when_sealed(make_app):
    app = make_app()

    @app.task()
    def done(batch_id):
        return "empty"

    with app.batch("nothing", on_complete=done) as b:
        pass
    assert batch_view(app, b.id)["state"] == "completing"
    with running_consumer(app, workers=1):
        assert wait_batch(app, b.id)["state"] == "succeeded"


def test_failed_and_cancelled_members_fire_on_failure_once(make_app):
    app = make_app()

    @app.task()
    def maybe(n):
        if n % 5 == 0:
            raise ValueError(f"bad {n}")
        return n

    @app.task()
    def done(batch_id):
        return app.batch_results(batch_id)

    @app.task()
    def report(batch_id):
        return [m["status"] for m in queries.batch_members(app.storage.database, batch_id)]

    with app.batch("some fail", on_complete=done, on_failure=report) as b:
        (first,) = b.add(maybe.s(1))
        maybe.map(range(2, 13))
    assert actions.cancel_jobs(app.storage, [first.id], actor="test") == {first.id: "cancelled"}
    with running_consumer(app, workers=3):
        view = wait_batch(app, b.id)
        wait_for(lambda: job_row(app, b.on_failure_id)["status"] == "succeeded", what="on_failure to run")
    assert view["state"] == "failed"
    assert (view["total"], view["succeeded"], view["failed"]) == (12, 9, 3)  # 5, 10 failed; 1 cancelled
    assert len(jobs_of(app, "report")) == 1 and len(jobs_of(app, "done")) == 1
    results = job_row(app, b.on_complete_id)["result"]
    assert results == [None, 2, 3, 4, None, 6, 7, 8, 9, None, 11, 12]
    assert job_row(app, b.on_failure_id)["result"].count("succeeded") == 9


def test_no_on_failure_when_everything_succeeded(make_app):
    app = make_app()

    @app.task()
    def ok(n):
        return n

    @app.task()
    def report(batch_id):
        return "should not run"

    with app.batch("all good", on_failure=report) as b:
        ok.map(range(5))
    with running_consumer(app, workers=2):
        view = wait_batch(app, b.id)
    assert view["state"] == "succeeded" and view["on_failure"]["status"] is None
    assert jobs_of(app, "report") == []


def test_a_running_member_adds_to_its_own_batch_with_its_ack(make_app):
    app = make_app()
    attempts: list[int] = []

    @app.task()
    def page(n):
        return f"page {n}"

    @app.task(retries=1, retry_delay=0)
    def crawl(pages):
        job = current_job()
        for n in range(pages):
            job.batch.add(page.s(n))
        # not written yet: it rides on this job's ack
        assert queries.get_batch(app.storage.database, job.batch.id)["total"] == 1
        attempts.append(job.attempt)
        if job.attempt == 1:
            raise RuntimeError("first attempt fails after adding its pages")
        return pages

    @app.task()
    def assemble(batch_id):
        return app.batch_results(batch_id)

    with app.batch("crawl", on_complete=assemble) as b:
        crawl(4)
    with running_consumer(app, workers=2):
        view = wait_batch(app, b.id)
    assert attempts == [1, 2]
    # the failed attempt's pages were dropped with it: each page once
    assert (view["total"], view["succeeded"]) == (5, 5)
    assert len(jobs_of(app, "page")) == 4
    assert job_row(app, b.on_complete_id)["result"] == [4, "page 0", "page 1", "page 2", "page 3"]


def test_nested_batches_the_parent_waits_for_the_childs_on_complete(make_app):
    app = make_app()

    @app.task()
    def leaf(name):
        return name

    @app.task()
    def child_done(batch_id):
        return "child " + ",".join(app.batch_results(batch_id))

    @app.task()
    def spawn(name):
        # a batch opened by a job of another batch is a member of it
        with app.batch(f"spawned by {name}", on_complete=child_done):
            leaf(f"{name}.1")
            leaf(f"{name}.2")
        return name

    @app.task()
    def parent_done(batch_id):
        return app.batch_results(batch_id)

    with app.batch("parent", on_complete=parent_done) as parent:
        leaf("p.1")
        with app.batch("inner", on_complete=child_done) as inner:  # opened inside the parent's block
            leaf("i.1")
        spawn("s")
    assert inner.status()["parent_id"] == parent.id
    with running_consumer(app, workers=3):
        view = wait_batch(app, parent.id)
    assert view["state"] == "succeeded"
    children = view["children"]
    assert len(children) == 2 and inner.id in children
    spawned = batch_view(app, next(c for c in children if c != inner.id))
    assert spawned["parent_id"] == parent.id and spawned["total"] == 2
    # parent: leaf, inner (a slot), spawn, spawned (a slot)
    assert (view["total"], view["succeeded"]) == (4, 4)
    # the parent's on_complete was enqueued after both children's on_complete jobs finished
    parent_cb = job_row(app, parent.on_complete_id)
    for child in children:
        cb = job_row(app, batch_view(app, child)["on_complete"]["id"])
        assert cb["status"] == "succeeded" and cb["finished_at"] <= parent_cb["enqueued_at"]
    assert job_row(app, inner.on_complete_id)["result"] == "child i.1"
    assert parent_cb["result"] == ["p.1", "s"]
    assert len(jobs_of(app, "child_done")) == 2 and len(jobs_of(app, "parent_done")) == 1


def test_a_failed_child_fails_its_slot_in_the_parent(make_app):
    app = make_app()

    @app.task()
    def boom():
        raise ValueError("no")

    @app.task()
    def report(batch_id):
        return batch_id

    with app.batch("parent", on_failure=report) as parent:
        with app.batch("child (no callbacks)") as child:
            boom()
    with running_consumer(app, workers=2):
        view = wait_batch(app, parent.id)
        wait_for(lambda: job_row(app, parent.on_failure_id)["status"] == "succeeded", what="report")
    assert batch_view(app, child.id)["state"] == "failed"
    assert (view["total"], view["succeeded"], view["failed"], view["state"]) == (1, 0, 1, "failed")


def test_adding_to_a_finished_batch_is_refused(make_app):
    app = make_app()

    @app.task()
    def noop():
        return 1

    with app.batch("short") as b:
        noop()
    with running_consumer(app, workers=1):
        wait_batch(app, b.id)
    with pytest.raises(BatchClosedError, match="has finished"):
        b.add(noop.s())
    assert batch_view(app, b.id)["total"] == 1
    assert len(jobs_of(app, "noop")) == 1  # the refused job was not written either
    with pytest.raises(ConfigurationError, match="on_complete must be a task"):
        app.batch("bad", on_complete="not a task")
