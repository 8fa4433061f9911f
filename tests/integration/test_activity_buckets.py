"""The overview's per-minute activity: a job that finished 45 s into a minute counts in that
minute on both databases (PostgreSQL's CAST rounds where SQLite's truncates)."""

from __future__ import annotations

from litequeue.ledger import queries


def test_a_job_counts_in_the_minute_it_finished(make_app):
    app = make_app()

    @app.task()
    def work():
        return 1

    job = work()
    minute = 1_800_000_000 - 1_800_000_000 % 60  # a whole minute, in the past
    app.storage.sql("UPDATE lq_job SET status = 'succeeded', finished_at = ? WHERE id = ?",
                    (minute + 45.0, job.id))
    buckets = queries.recent_activity(app.storage.database, minutes=3, now=minute + 90.0)
    assert [b["succeeded"] for b in buckets] == [0, 1, 0]
