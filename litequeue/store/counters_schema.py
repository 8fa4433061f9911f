"""Migration 11: the counters the acks write (:mod:`litequeue.jobs.counters`), on SQLite and
PostgreSQL: ``lq_activity`` (jobs finished per minute; SQLite had it since migration 10)
gains a ``shard``, and ``lq_histogram`` holds the run, wait and CPU time histograms and the
largest peak memory of ``/metrics``. Both are filled from the ledger once, here."""

from __future__ import annotations

import peewee as pw

from litequeue.base.histogram import bucket_sql
from litequeue.base.states import AttemptOutcome
from litequeue.base.states import JobStatus as S
from litequeue.store import dialect


def _tables(db: pw.Database) -> tuple[str, str]:
    sqlite = dialect.is_sqlite(db)
    big, real, rowid = ("INTEGER", "REAL", " WITHOUT ROWID") if sqlite else ("BIGINT", "DOUBLE PRECISION", "")
    activity = (f"CREATE TABLE lq_activity (minute {big} NOT NULL, queue VARCHAR(255) NOT NULL, "
                "task VARCHAR(255) NOT NULL, outcome VARCHAR(16) NOT NULL, shard INTEGER NOT NULL DEFAULT 0, "
                f"n {big} NOT NULL, PRIMARY KEY (minute, queue, task, outcome, shard)){rowid}")
    histogram = ("CREATE TABLE IF NOT EXISTS lq_histogram (queue VARCHAR(255) NOT NULL, task VARCHAR(255) NOT NULL, "
                 "kind VARCHAR(32) NOT NULL, bucket INTEGER NOT NULL, shard INTEGER NOT NULL DEFAULT 0, "
                 f"n {big} NOT NULL, total {real} NOT NULL, PRIMARY KEY (queue, task, kind, bucket, shard)){rowid}")
    return activity, histogram


def _clamp(expr: str) -> str:
    return f"CASE WHEN {expr} < 0 THEN 0 ELSE {expr} END"


def _histogram_fill(db: pw.Database) -> tuple[str, ...]:
    """The histograms of the jobs and attempts the ledger keeps, as ``/metrics`` computed them."""
    due = "CASE WHEN eta IS NOT NULL AND eta > enqueued_at THEN eta ELSE enqueued_at END"
    timed = (f"SELECT queue, task, 'duration' AS kind, {_clamp('finished_at - started_at')} AS v FROM lq_job "
             f"WHERE status IN ('{S.SUCCEEDED}', '{S.FAILED}') AND finished_at IS NOT NULL AND started_at IS NOT NULL "
             f"UNION ALL SELECT queue, task, 'wait', {_clamp(f'started_at - ({due})')} FROM lq_job "
             f"WHERE attempts = 1 AND started_at IS NOT NULL AND status != '{S.RUNNING}' "
             "UNION ALL SELECT j.queue, j.task, 'cpu', a.cpu_seconds FROM lq_attempt a "
             "JOIN lq_job j ON j.id = a.job_id WHERE a.cpu_seconds IS NOT NULL")
    return (
        "INSERT INTO lq_histogram (queue, task, kind, bucket, shard, n, total) "
        f"SELECT queue, task, kind, b, 0, COUNT(*), SUM(v) FROM (SELECT queue, task, kind, {bucket_sql('v')} AS b, v "
        f"FROM ({timed}) t) h GROUP BY queue, task, kind, b",
        "INSERT INTO lq_histogram (queue, task, kind, bucket, shard, n, total) "
        "SELECT j.queue, j.task, 'peak:' || a.rss_scope, 0, 0, COUNT(*), MAX(a.peak_rss_bytes) FROM lq_attempt a "
        "JOIN lq_job j ON j.id = a.job_id WHERE a.peak_rss_bytes IS NOT NULL AND a.rss_scope IS NOT NULL "
        "GROUP BY j.queue, j.task, a.rss_scope",
    )


def _activity_fill(db: pw.Database) -> tuple[str, ...]:
    """The per-minute counts of the jobs and attempts the ledger keeps (as migration 10 did on SQLite)."""
    minute = dialect.floor_int(db, "{t}finished_at / 60") + " * 60"
    into = "INSERT INTO lq_activity (minute, queue, task, outcome, shard, n) "
    return (
        into + f"SELECT {minute.format(t='')} AS m, queue, task, status, 0, COUNT(*) FROM lq_job "
        f"WHERE finished_at IS NOT NULL AND status IN ('{S.SUCCEEDED}', '{S.FAILED}') GROUP BY m, queue, task, status",
        into + f"SELECT {minute.format(t='a.')} AS m, j.queue, j.task, '{S.RETRYING}', 0, COUNT(*) FROM lq_attempt a "
        f"JOIN lq_job j ON j.id = a.job_id WHERE a.outcome = '{AttemptOutcome.RETRYING}' AND a.finished_at IS NOT NULL "
        "GROUP BY m, j.queue, j.task",
    )


def counters(db: pw.Database) -> None:
    """Migration 11."""
    activity, histogram = _tables(db)
    kept = "lq_activity" in db.get_tables()  # SQLite, since migration 10: its counts carry over
    if kept:
        dialect.sql(db, "ALTER TABLE lq_activity RENAME TO lq_activity_v10")
    dialect.sql(db, activity)
    if kept:
        dialect.sql(db, "INSERT INTO lq_activity (minute, queue, task, outcome, shard, n) "
                        "SELECT minute, queue, task, outcome, 0, n FROM lq_activity_v10")
        dialect.sql(db, "DROP TABLE lq_activity_v10")
    else:
        for statement in _activity_fill(db):
            dialect.sql(db, statement)
    dialect.sql(db, histogram)
    for statement in _histogram_fill(db):
        dialect.sql(db, statement)
