"""What is happening now and lately, for the status page: the running jobs, each queue's
last hour (throughput, wait percentiles), processed totals, failed jobs already retried, and
list totals that stay cheap on a big ledger."""

from __future__ import annotations

import time
from typing import Any

import peewee as pw

from litequeue.base.states import FINAL_STATUSES, JobStatus
from litequeue.ledger.queries._common import JOB_FIELDS, dict_rows, job_dict
from litequeue.ledger.queries.activity import finished_since
from litequeue.store.dialect import sql, unindexed
from litequeue.store.job_indexes import RUNNING_SQL

#: A filtered count stops here ("more than 10,000"): a count never reads the whole ledger.
COUNT_CAP = 10_000


def running_jobs(db: pw.Database, limit: int = 500) -> list[dict[str, Any]]:
    """Jobs running now, longest-running first (started at, worker, progress)."""
    rows = dict_rows(sql(db, f"SELECT {', '.join(JOB_FIELDS)} FROM lq_job WHERE {RUNNING_SQL} "
                             "ORDER BY started_at LIMIT ?", [limit]))
    now = time.time()
    out = []
    for row in rows:
        job = job_dict(row)
        job["running_s"] = round(max(0.0, now - row["started_at"]), 1) if row["started_at"] else None
        out.append(job)
    return out


def retried_failed(db: pw.Database) -> dict[str, int]:
    """Per queue, failed jobs that were retried since (they no longer need anyone): read
    from the retries (the partial index on retried_from), not from every failed job."""
    # The unindexed (+) terms keep SQLite's planner on the retries' index, not a status scan.
    return dict(sql(db, "SELECT queue, COUNT(*) FROM lq_job WHERE id IN (SELECT retried_from FROM lq_job "
                        f"WHERE retried_from IS NOT NULL) AND {unindexed(db, 'status')} = ? "
                        f"GROUP BY {unindexed(db, 'queue')}", [JobStatus.FAILED.value]).fetchall())


def processed(db: pw.Database, since: float) -> dict[str, int]:
    """Jobs finished (succeeded or failed): all time (the counters kept by the ledger,
    pruned jobs included) and since ``since``."""
    total = {o: int(c) for o, c in sql(db, "SELECT outcome, SUM(count) FROM lq_finished GROUP BY outcome")}
    recent = finished_since(db, since)
    ok, failed = JobStatus.SUCCEEDED.value, JobStatus.FAILED.value
    return {"all_time": total.get(ok, 0) + total.get(failed, 0), "all_time_failed": total.get(failed, 0),
            "since": recent.get(ok, 0) + recent.get(failed, 0), "since_failed": recent.get(failed, 0)}


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    k = (len(values) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(values) - 1)
    return round(values[lo] + (values[hi] - values[lo]) * (k - lo), 3)


def queue_hour(db: pw.Database, queue: str, now: float | None = None) -> dict[str, Any]:
    """One queue's last hour: jobs finished (per minute rate too), failed, and the wait
    (due to start) p50/p95 of the jobs that started in it."""
    now = time.time() if now is None else now
    since = now - 3600
    done = dict(sql(db, "SELECT status, COUNT(*) FROM lq_job WHERE finished_at >= ? AND "
                        f"{unindexed(db, 'queue')} = ? GROUP BY {unindexed(db, 'status')}", [since, queue]).fetchall())
    waits = [max(0.0, r[0]) for r in sql(
        db, "SELECT started_at - COALESCE(eta, enqueued_at) FROM lq_job WHERE finished_at >= ? AND "
            f"{unindexed(db, 'queue')} = ? AND started_at IS NOT NULL LIMIT 20000", [since, queue]).fetchall()]
    finished = sum(done.get(s, 0) for s in (JobStatus.SUCCEEDED.value, JobStatus.FAILED.value))
    return {"finished": finished, "succeeded": done.get(JobStatus.SUCCEEDED.value, 0),
            "failed": done.get(JobStatus.FAILED.value, 0), "per_minute": round(finished / 60, 1),
            "wait_p50_s": _percentile(waits, 0.5), "wait_p95_s": _percentile(waits, 0.95)}


def oldest_job(db: pw.Database, queue: str) -> dict[str, Any] | None:
    """The oldest job of ``queue`` still waiting for a worker (queued or retrying)."""
    rows = dict_rows(sql(db, f"SELECT {', '.join(JOB_FIELDS)} FROM lq_job WHERE id = (SELECT job_id FROM lq_ready "
                             "WHERE queue = ? AND claimed_by IS NULL ORDER BY enqueued_at LIMIT 1)", [queue]))
    return job_dict(rows[0]) if rows else None


def count_capped(db: pw.Database, where: list[str], params: list[Any], cap: int = COUNT_CAP) -> tuple[int, bool]:
    """(count, capped): how many jobs match, reading at most ``cap + 1`` of them."""
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    n = int(sql(db, f"SELECT COUNT(*) FROM (SELECT 1 FROM lq_job{clause} LIMIT ?) t", [*params, cap + 1]).fetchone()[0])
    return (cap, True) if n > cap else (n, False)


def counted(db: pw.Database, status: str | None, queue: str | None) -> int | None:
    """The exact count for a status and/or queue filter from the counts the job-state functions
    keep (no rows read); None where there are none (PostgreSQL)."""
    if "lq_job_count" not in db.get_tables():
        return None
    where, params = [], []
    for column, value in (("status", status), ("queue", queue)):
        if value:
            where.append(f"{column} = ?")
            params.append(value)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    return int(sql(db, f"SELECT COALESCE(SUM(n), 0) FROM lq_job_count{clause}", params).fetchone()[0])


def counted_by_queue(db: pw.Database, status: str) -> list[tuple[str, int]]:
    """(queue, jobs in ``status``) per queue: SQLite's kept counts, else a grouped count."""
    if "lq_job_count" in db.get_tables():
        return sql(db, "SELECT queue, n FROM lq_job_count WHERE status = ? AND n > 0", [status]).fetchall()
    return sql(db, "SELECT queue, COUNT(*) FROM lq_job WHERE status = ? GROUP BY queue", [status]).fetchall()


def final_ids(db: pw.Database, job_ids: list[str]) -> list[str]:
    """Those of ``job_ids`` that have ended (what a retry takes), in the order given."""
    if not job_ids:
        return []
    final = [s.value for s in FINAL_STATUSES]
    found = {r[0] for r in sql(db, f"SELECT id FROM lq_job WHERE id IN ({', '.join('?' * len(job_ids))}) "
                                   f"AND status IN ({', '.join('?' * len(final))})", [*job_ids, *final]).fetchall()}
    return [i for i in job_ids if i in found]
