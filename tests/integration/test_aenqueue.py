"""Async producers: ``await task.aenqueue(...)`` and ``await app.aenqueue_many(...)`` write
the same rows as their synchronous twins, and a database that makes the write wait never
stops the event loop."""

from __future__ import annotations

import asyncio
import sqlite3
import threading

import pytest

from tests.conftest import running_consumer, wait_job


@pytest.fixture
def app(make_app):
    app = make_app("async", busy_timeout=30)

    @app.task(tags=["mail"])
    def send(to, subject="hi"):
        return f"{to}: {subject}"

    app.send = send
    return app


def test_aenqueue_and_aenqueue_many_write_jobs_that_run(app):
    async def produce():
        one = await app.send.aenqueue("ada@example.com", subject="welcome")
        many = await app.aenqueue_many([app.send.s(f"user{n}@example.com") for n in range(5)])
        with app.batch("newsletter") as batch:
            member = await app.send.aenqueue("grace@example.com")
        return one, many, member, batch

    one, many, member, batch = asyncio.run(produce())
    assert len(many) == 5
    with running_consumer(app, workers=2):
        assert wait_job(app, one.id, "succeeded")["tags"] == ["mail"]
        assert one.get(blocking=True, timeout=20) == "ada@example.com: welcome"
        for job_id in many:
            wait_job(app, job_id, "succeeded")
        wait_job(app, member.id, "succeeded")
    batch_of = app.storage.sql("SELECT batch_id FROM lq_job WHERE id = ?", (member.id,)).fetchone()[0]
    assert batch_of == batch.id


@pytest.mark.parametrize("make_app", ["sqlite"], indirect=True)
def test_the_event_loop_keeps_serving_while_a_locked_database_makes_the_enqueue_wait(app):
    app.storage  # noqa: B018 - the schema first
    locker = sqlite3.connect(app.db_target, isolation_level=None, check_same_thread=False)
    locker.execute("BEGIN IMMEDIATE")  # another writer holds the file's write lock
    released = threading.Event()

    async def main():
        enqueue = asyncio.create_task(app.send.aenqueue("late@example.com"))
        ticks = 0
        while ticks < 50:  # the loop serves other work while the enqueue waits for the lock
            await asyncio.sleep(0.01)
            ticks += 1
            assert not enqueue.done(), "the enqueue finished while another writer held the lock"
        locker.execute("COMMIT")
        released.set()
        result = await enqueue
        return ticks, result

    ticks, result = asyncio.run(main())
    assert ticks == 50 and released.is_set()
    assert app.storage.sql("SELECT status FROM lq_job WHERE id = ?", (result.id,)).fetchone()[0] == "queued"
    locker.close()
