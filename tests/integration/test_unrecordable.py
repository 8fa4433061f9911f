"""Bug 4: an outcome the database refuses must not wedge the consumer.

Before: ``retrying()`` retried the same ack-and-claim round for ever, so one job whose
error text PostgreSQL refuses (a NUL byte) or no driver can encode (a lone surrogate)
stopped the consumer making any progress. Now that job ends ``failed`` with the reason
and every other job goes on."""

from __future__ import annotations

import logging

import pytest

from tests.conftest import running_consumer, wait_job


@pytest.fixture(autouse=True)
def _quiet_huey(caplog: pytest.LogCaptureFixture) -> None:
    # Huey logs the task's exception, lone surrogate and all; a test report (and pytest-xdist's
    # wire format) must stay encodable.
    caplog.set_level(logging.CRITICAL, logger="huey")


def test_an_unrecordable_outcome_fails_that_job_and_the_consumer_goes_on(make_app):
    app = make_app()

    @app.task()
    def nasty():
        raise ValueError("bad \x00 byte and a lone \ud800 surrogate")

    @app.task()
    def fine(n):
        return n * 2

    bad = nasty()
    before = [fine(i) for i in range(5)]
    with running_consumer(app, workers=2):
        job = wait_job(app, bad.id, "failed", timeout=15)
        after = [fine(i) for i in range(5, 10)]
        for r in before + after:
            wait_job(app, r.id, "succeeded", timeout=15)
    assert job["error"].startswith("its outcome could not be recorded (")
    assert "the job's own error: ValueError: bad" in job["error"]
    assert job["attempt_list"][-1]["outcome"] == "failed"
    assert [r.get() for r in after] == [10, 12, 14, 16, 18]


def test_process_workers_too(make_app):
    app = make_app()

    @app.task()
    def nasty():
        raise ValueError("bad \x00 byte and a lone \ud800 surrogate")

    @app.task()
    def fine():
        return "ok"

    bad, good = nasty(), fine()
    with running_consumer(app, workers=1, worker_type="process"):
        wait_job(app, bad.id, "failed", timeout=20)
        wait_job(app, good.id, "succeeded", timeout=20)
