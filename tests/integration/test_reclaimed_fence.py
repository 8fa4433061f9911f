"""The fenced ack tells a claim from a later claim of the same job by the same holder.

A consumer presumed dead (its session lock went with a terminated backend, its lease ran out)
keeps running for up to a heartbeat before it notices; meanwhile its dispatcher may claim the
same job again, under the same holder. The first run's ack must not pass for the second
claim's (it would end the job from the interrupted attempt and strand the second attempt)."""

from __future__ import annotations

import time
from typing import Any

from litequeue.base.states import AttemptOutcome, JobStatus
from litequeue.base.values import Finished
from tests.conftest import job_row


def finished(claim: Any) -> Finished:
    now = time.time()
    return Finished(claim, "work", JobStatus.SUCCEEDED, AttemptOutcome.SUCCEEDED, now, now)


def test_a_stale_ack_is_fenced_when_the_same_holder_claimed_the_job_again(make_app) -> None:
    app = make_app()

    @app.task()
    def work() -> None:
        return None

    job_id = work().id
    (first,) = app.storage.claim("host-a:1:aa", None, 1)
    assert app.storage.recover("host-a:1:aa", reason="interrupted: presumed dead") == (1, 0)
    (second,) = app.storage.claim("host-a:1:aa", None, 1)  # before it noticed
    assert (second.job_id, second.row_id, second.attempt) == (job_id, first.row_id, 2)
    assert app.storage.ack("host-a:1:aa", [finished(first)]) == []  # the stale run: dropped
    job = job_row(app, job_id)
    assert job["status"] == "running"
    assert [a["outcome"] for a in job["attempt_list"]] == ["interrupted", "running"]
    assert len(app.storage.ack("host-a:1:aa", [finished(second)])) == 1
    job = job_row(app, job_id)
    assert job["status"] == "succeeded"
    assert [a["outcome"] for a in job["attempt_list"]] == ["interrupted", "succeeded"]
