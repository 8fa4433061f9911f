"""The job state machine (the writer files of litequeue/jobs/) driven directly: claim, ack, release,
recover, cancel, retry and the outcome classifier, on a real SQLite file and a real
PostgreSQL database. Fast: no consumer, no threads."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from huey import signals as S

from litequeue.base.errors import JobNotFoundError, LiteQueueError
from litequeue.base.states import AttemptOutcome, JobStatus
from litequeue.base.values import Finished, Unit
from litequeue.engine.storage import open_store
from litequeue.jobs import actions
from litequeue.ledger import queries
from litequeue.runtime.worker import classify
from tests.conftest import job_row


@pytest.fixture
def app(make_app):
    app = make_app()

    @app.task()
    def work(n):
        return n

    @app.task()
    def step(n):
        return n

    app.work, app.step = work, step
    return app


def finished(claim, status=JobStatus.SUCCEEDED, unit=None, error=None):
    outcome = {JobStatus.SUCCEEDED: AttemptOutcome.SUCCEEDED, JobStatus.FAILED: AttemptOutcome.FAILED,
               JobStatus.RETRYING: AttemptOutcome.RETRYING}[status]
    now = time.time()
    return Finished(claim, "work", status, outcome, now, now, error=error, unit=unit)


def ready_rows(app):
    return app.storage.sql("SELECT job_id, claimed_by FROM lq_ready").fetchall()


def test_claim_marks_running_with_an_attempt(app):
    ids = [app.work(i).id for i in range(3)]
    claims = app.storage.claim("A", None, 2)
    assert [c.job_id for c in claims] == ids[:2]  # FIFO within a priority
    assert all(c.attempt == 1 for c in claims)
    job = job_row(app, ids[0])
    assert job["status"] == "running" and job["worker"] == "A"
    assert job["attempt_list"][0]["outcome"] == "running"
    assert job_row(app, ids[2])["status"] == "queued"
    assert sorted(r[1] or "-" for r in ready_rows(app)) == ["-", "A", "A"]


def test_claim_serves_queues_in_order_and_skips_paused(make_app):
    app = make_app()

    @app.task(queue="low")
    def low():
        pass

    @app.task(queue="high")
    def high():
        pass

    lo, hi = low().id, high().id
    assert [c.job_id for c in app.storage.claim("A", ["high", "low"], 1)] == [hi]
    assert app.storage.claim("A", ["low"], 5, paused={"low"}) == []
    assert [c.job_id for c in app.storage.claim("A", ["low"], 5)] == [lo]


def test_ack_writes_outcome_and_removes_the_claim(app):
    job_id = app.work(1).id
    (claim,) = app.storage.claim("A", None, 1)
    acked = app.storage.ack("A", [finished(claim)])
    assert len(acked) == 1
    assert ready_rows(app) == []
    job = job_row(app, job_id)
    assert job["status"] == "succeeded" and job["finished_at"]
    assert job["attempt_list"][0]["outcome"] == "succeeded"


def test_ack_is_fenced_after_recovery(app):
    """Bug 2: a claim recovered (its holder presumed dead), run and finished elsewhere must
    not get the stale holder's outcome, nor its follow-up rows twice."""
    job_id = app.work(1).id
    (stale,) = app.storage.claim("A", None, 1)
    assert app.storage.recover("A", reason="interrupted: presumed dead") == (1, 0)
    (fresh,) = app.storage.claim("B", None, 1)
    assert fresh.row_id == stale.row_id and fresh.attempt == 2
    follow_up = Unit(job_id)
    follow_up.jobs.extend(app.new_jobs(app.step.s(99)))
    assert len(app.storage.ack("B", [finished(fresh, unit=follow_up)])) == 1
    again = Unit(job_id)
    again.jobs.extend(app.new_jobs(app.step.s(99)))
    acked = app.storage.ack("A", [finished(stale, JobStatus.FAILED, unit=again, error="stale")])
    assert acked == []
    job = job_row(app, job_id)
    assert job["status"] == "succeeded" and job["error"] is None
    assert [a["outcome"] for a in job["attempt_list"]] == ["interrupted", "succeeded"]
    assert len(ready_rows(app)) == 1  # B's follow-up only


def test_ack_of_a_claim_held_by_another_is_dropped(app):
    app.work(1)
    (stale,) = app.storage.claim("A", None, 1)
    app.storage.recover("A")
    (fresh,) = app.storage.claim("B", None, 1)
    assert app.storage.ack("A", [finished(stale)]) == []
    assert ready_rows(app) == [(fresh.job_id, "B")]
    assert job_row(app, fresh.job_id)["status"] == "running"


def test_release_hands_claims_back(app):
    job_id = app.work(1).id
    app.storage.claim("A", None, 1)
    assert app.storage.release("A") == 1
    job = job_row(app, job_id)
    assert job["status"] == "queued" and job["crashes"] == 0
    assert job["attempt_list"][0]["outcome"] == "interrupted"
    assert ready_rows(app) == [(job_id, None)]


def test_recover_fails_at_the_crash_cap(make_app):
    app = make_app(crash_cap=2)

    @app.task()
    def fragile():
        pass

    job_id = fragile().id
    app.storage.claim("A", None, 1)
    assert app.storage.recover("A") == (1, 0)
    app.storage.claim("B", None, 1)
    assert app.storage.recover("B") == (0, 1)
    job = job_row(app, job_id)
    assert job["status"] == "failed" and job["crashes"] == 2
    assert "worker died" in job["error"]
    assert ready_rows(app) == []


def test_cancel_waiting_pipeline_step_sticks(app):
    """Bug 6: cancelling a waiting step used to change the ledger only; the parent's ack
    then queued it and it ran anyway."""
    parent = app.work.s(1).then(app.step, 2).then(app.step, 3)
    results = app.enqueue(parent)
    first, second, third = (r.id for r in results)
    assert job_row(app, second)["status"] == "waiting"
    out = actions.cancel_jobs(app.storage, [second])
    assert out[second].startswith("cancelled")
    assert job_row(app, third)["status"] == "cancelled"  # the step after it can never run
    (claim,) = app.storage.claim("A", None, 1)
    unit = Unit(first)
    unit.jobs.extend(app.new_jobs(app.step.s(2)))  # what Huey enqueues when the parent succeeds
    unit.jobs[0].id = second
    app.storage.ack("A", [finished(claim, unit=unit)])
    assert ready_rows(app) == []
    assert job_row(app, second)["status"] == "cancelled"


def test_cancel_states(app):
    queued = app.work(1).id
    scheduled = app.work.schedule((2,), delay=60).id
    assert actions.cancel_jobs(app.storage, [queued, scheduled]) == {queued: "cancelled", scheduled: "cancelled"}
    assert app.storage.sql("SELECT COUNT(*) FROM lq_schedule").fetchone()[0] == 0
    running = app.work(3).id
    app.storage.claim("A", None, 1)
    assert actions.cancel_jobs(app.storage, [running])[running] == "cancel requested (running)"
    assert app.is_cancel_requested(running)
    assert actions.cancel_jobs(app.storage, [queued])[queued] == "already cancelled"
    with pytest.raises(JobNotFoundError):
        actions.cancel_jobs(app.storage, ["nope"])


def fail_one(app):
    job_id = app.work(1).id
    (claim,) = app.storage.claim("A", None, 1)
    app.storage.ack("A", [finished(claim, JobStatus.FAILED, error="boom")])
    return job_id


def test_retry_makes_one_job(app):
    job_id = fail_one(app)
    first = actions.retry_jobs(app.storage, [job_id])[job_id]
    assert first != job_id
    assert actions.retry_jobs(app.storage, [job_id]) == {job_id: first}  # retried once
    new = job_row(app, first)
    assert new["status"] == "queued" and new["retried_from"] == job_id
    assert job_row(app, job_id)["retried_as"] == first
    assert first.split("-")[2].startswith("7")  # time-ordered ids for retried jobs too
    assert job_id not in queries.failed_job_ids(app.storage.database)  # --all-failed skips it


def test_concurrent_retries_of_one_job_make_one_job(app, make_app):
    """Bug 7: the status was checked outside the write transaction."""
    job_id = fail_one(app)
    target = str(app.db_target)

    def retry(_):
        store = open_store(target)
        try:
            return actions.retry_jobs(store, [job_id])[job_id]
        finally:
            store.database.close()

    with ThreadPoolExecutor(10) as pool:
        new_ids = set(pool.map(retry, range(10)))
    assert len(new_ids) == 1
    count = app.storage.sql("SELECT COUNT(*) FROM lq_job WHERE retried_from = ?", (job_id,)).fetchone()[0]
    assert count == 1


def test_retry_refuses_unfinished_jobs_and_writes_nothing(app):
    done = fail_one(app)
    queued = app.work(2).id
    with pytest.raises(LiteQueueError, match="only finished jobs"):
        actions.retry_jobs(app.storage, [done, queued])
    assert job_row(app, done)["retried_as"] is None


def test_classifier():
    from litequeue.base.values import Claim

    claim = Claim(1, "j", "default", 0, b"", 3)

    class Task:
        timeout = 5

    def outcome(*signals, exc=None):
        unit = Unit("j")
        unit.signals.update(signals)
        unit.exception = exc
        unit.value = 42
        return classify(claim, Task(), unit, time.time())

    ok = outcome(S.SIGNAL_EXECUTING, S.SIGNAL_COMPLETE)
    assert (ok.status, ok.result) == (JobStatus.SUCCEEDED, "42")
    err = outcome(S.SIGNAL_EXECUTING, S.SIGNAL_ERROR, exc=ValueError("bad"))
    assert (err.status, err.error) == (JobStatus.FAILED, "ValueError: bad")
    assert "ValueError: bad" in err.traceback
    assert outcome(S.SIGNAL_EXECUTING, S.SIGNAL_ERROR, S.SIGNAL_RETRYING).status == JobStatus.RETRYING
    timed = outcome(S.SIGNAL_EXECUTING, S.SIGNAL_ERROR, S.SIGNAL_TIMEOUT)
    assert (timed.outcome, timed.error) == (AttemptOutcome.TIMEOUT, "timed out after 5s")
    assert outcome(S.SIGNAL_REVOKED).status == JobStatus.CANCELLED
    assert outcome(S.SIGNAL_EXPIRED).status == JobStatus.EXPIRED
    assert outcome(S.SIGNAL_INTERRUPTED) is None
    assert outcome().status == JobStatus.SCHEDULED  # not due yet: Huey put it back
