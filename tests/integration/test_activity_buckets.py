"""The overview's per-minute activity: a job that finished 45 s into a minute counts in that
minute on both databases (PostgreSQL's CAST rounds where SQLite's truncates)."""

from __future__ import annotations

from litequeue.base.states import AttemptOutcome, JobStatus
from litequeue.base.values import Finished
from litequeue.ledger import queries


def test_a_job_counts_in_the_minute_it_finished(make_app):
    app = make_app()

    @app.task()
    def work():
        return 1

    work()
    minute = 1_800_000_000 - 1_800_000_000 % 60  # a whole minute
    # Acked as a consumer acks it, as if it finished 45 s into that minute (on SQLite the ack
    # counts it in lq_activity; on PostgreSQL the overview reads finished_at).
    claims = app.storage.claim("test-holder", None, 1)
    app.storage.ack("test-holder", [Finished(claims[0], "work", JobStatus.SUCCEEDED, AttemptOutcome.SUCCEEDED,
                                             minute + 44.0, minute + 45.0)])
    buckets = queries.recent_activity(app.storage.database, minutes=3, now=minute + 90.0)
    assert [b["succeeded"] for b in buckets] == [0, 1, 0]
