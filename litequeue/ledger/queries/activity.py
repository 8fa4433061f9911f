"""What happened over time: finished counters, jobs finished per minute and since a moment,
long-running jobs, the event log, periodic runs, inbox file counts and stored schedules."""

from __future__ import annotations

import json
import time
from typing import Any

import peewee as pw

from litequeue.base.states import JobStatus
from litequeue.ledger.queries._common import dict_rows, iso
from litequeue.store.dialect import floor_int, sql, unindexed
from litequeue.store.job_indexes import RUNNING_SQL


def finished_counters(db: pw.Database) -> list[dict[str, Any]]:
    return dict_rows(sql(db, "SELECT queue, task, outcome, count, duration_sum FROM lq_finished "
                         "ORDER BY queue, task, outcome"))


def has_activity(db: pw.Database) -> bool:
    """Does ``db`` keep per-minute activity counts (``lq_activity``: SQLite since migration
    10, PostgreSQL since 11)?"""
    return "lq_activity" in db.get_tables()


#: The per-minute counts of jobs that succeeded and failed from ``start`` (a minute), by minute.
_ACTIVITY_SQL = ("SELECT minute, outcome, SUM(n) FROM lq_activity WHERE minute >= ? "
                 f"AND outcome IN ('{JobStatus.SUCCEEDED}', '{JobStatus.FAILED}') GROUP BY minute, outcome")


def recent_activity(db: pw.Database, minutes: int = 60, now: float | None = None) -> list[dict[str, Any]]:
    """Jobs finished per minute over the last ``minutes``: succeeded and failed counts (from
    the per-minute counts the acks write: a few rows whatever the volume)."""
    now = time.time() if now is None else now
    start = (int(now) // 60 - minutes + 1) * 60
    buckets = {start + 60 * i: {"minute": iso(start + 60 * i), "succeeded": 0, "failed": 0}
               for i in range(minutes)}
    query = _ACTIVITY_SQL if has_activity(db) else (
        f"SELECT {floor_int(db, 'finished_at / 60')} * 60 AS m, status, COUNT(*) FROM lq_job "
        f"WHERE finished_at >= ? AND {unindexed(db, 'status')} IN "
        f"('{JobStatus.SUCCEEDED}', '{JobStatus.FAILED}') GROUP BY m, status")
    for minute, status, n in sql(db, query, [start]).fetchall():
        b = buckets.get(int(minute))
        if b is not None:
            b[status] = n
    return list(buckets.values())


def finished_since(db: pw.Database, since: float) -> dict[str, int]:
    """Jobs that succeeded and failed since ``since``, by status. The whole minutes come
    from the per-minute counts, and only the part of a minute before the first of them from
    the jobs."""
    query = ("SELECT status, COUNT(*) FROM lq_job WHERE finished_at >= ?{} AND "
             f"{unindexed(db, 'status')} IN (?, ?) GROUP BY status")
    statuses = [JobStatus.SUCCEEDED.value, JobStatus.FAILED.value]
    if not has_activity(db):
        return dict(sql(db, query.format(""), [since, *statuses]).fetchall())
    whole = -(-since // 60) * 60  # the first minute that starts at or after since
    out: dict[str, int] = dict(sql(db, query.format(" AND finished_at < ?"), [since, whole, *statuses]).fetchall())
    for _, status, n in sql(db, _ACTIVITY_SQL, [int(whole)]).fetchall():
        out[status] = out.get(status, 0) + int(n)
    return out


def running_since(db: pw.Database, before: float, limit: int) -> list[tuple[str, str, str, float]]:
    """(id, task, queue, started_at) of jobs running since before ``before``, oldest first."""
    return sql(db, f"SELECT id, task, queue, started_at FROM lq_job WHERE {RUNNING_SQL} AND started_at < ? "
                   "ORDER BY started_at LIMIT ?", [before, limit]).fetchall()


def recent_events(db: pw.Database, limit: int = 20, job_id: str | None = None) -> list[dict[str, Any]]:
    """The newest actions people and tools took (retry, cancel, pause, ...), newest first."""
    where, params = ("WHERE job_id = ? ", [job_id]) if job_id else ("", [])
    rows = dict_rows(sql(db, "SELECT id, at, action, job_id, queue, detail, actor FROM lq_event "
                         f"{where}ORDER BY id DESC LIMIT ?", [*params, limit]))
    for r in rows:
        r["at"] = iso(r["at"])
    return rows


def periodic_runs(db: pw.Database, limit: int = 100) -> list[dict[str, Any]]:
    """The newest periodic runs with the status of the job each one enqueued."""
    rows = dict_rows(sql(db, "SELECT r.task, r.slot, r.job_id, r.created_at, j.status, j.finished_at, j.error "
                         "FROM lq_periodic_run r LEFT JOIN lq_job j ON j.id = r.job_id "
                         "ORDER BY r.id DESC LIMIT ?", [limit]))
    for r in rows:
        r["created_at"], r["finished_at"] = iso(r["created_at"]), iso(r["finished_at"])
    return rows


def periodic_last_runs(db: pw.Database) -> dict[str, dict[str, Any]]:
    """Per periodic task (qualified name): its last run, the job's status and how many runs
    the ledger holds."""
    rows = dict_rows(sql(db, "SELECT r.task, r.slot, r.job_id, r.created_at, j.status, last.runs "
                         "FROM lq_periodic_run r JOIN (SELECT task, MAX(id) AS id, COUNT(*) AS runs "
                         "FROM lq_periodic_run GROUP BY task) last ON last.id = r.id "
                         "LEFT JOIN lq_job j ON j.id = r.job_id ORDER BY r.task"))
    for r in rows:
        r["created_at"] = iso(r["created_at"])
    return {r["task"]: r for r in rows}


def inbox_counts(db: pw.Database) -> list[dict[str, Any]]:
    """Files taken from each inbox, counted by state (empty before the inbox is used)."""
    return dict_rows(sql(db, "SELECT inbox, state, COUNT(*) AS count FROM lq_inbox_file "
                         "GROUP BY inbox, state ORDER BY inbox, state"))


def schedules(db: pw.Database, app: str | None = None, enabled_only: bool = False) -> list[dict[str, Any]]:
    """Schedules kept in the database (``litequeue schedules add``), by name: every column,
    ``args``/``kwargs`` decoded, ``enabled`` a bool, times as epoch seconds."""
    where, params = [], []
    if app is not None:
        where.append("app = ?")
        params.append(app)
    if enabled_only:
        where.append("enabled = 1")
    clause = f"WHERE {' AND '.join(where)} " if where else ""
    rows = dict_rows(sql(db, "SELECT name, app, task, cron, timezone, args, kwargs, queue, priority, enabled, "
                         f"created_at, updated_at FROM lq_periodic_schedule {clause}ORDER BY name", params))
    for r in rows:
        r["args"], r["kwargs"], r["enabled"] = json.loads(r["args"]), json.loads(r["kwargs"]), bool(r["enabled"])
    return rows


# -- litequeue top: jobs in and out of each queue ---------------------------------------------

#: :func:`queue_throughput` reads at most this many jobs for each of its figures.
THROUGHPUT_SAMPLE = 10_000


def queue_throughput(db: pw.Database, window: float = 60.0, now: float | None = None) -> dict[str, dict[str, Any]]:
    """Per queue: jobs enqueued (``in``) and jobs finished, whatever their outcome (``out``),
    in the last ``window`` seconds.

    Each figure reads at most :data:`THROUGHPUT_SAMPLE` jobs, so its time grows neither with
    the ledger nor with the rate: ``in`` reads the newest jobs by ``seq`` (jobs are numbered
    as they are enqueued), ``out`` the partial index on ``finished_at``. When the window
    holds more jobs than that, the figure is the rate of those read scaled to the window (at
    least their count), and ``rate_estimated`` names it."""
    now = time.time() if now is None else now
    since = now - window
    out: dict[str, dict[str, Any]] = {}

    def add(key: str, rows: list[tuple[str, int, float]], sampled: bool) -> None:
        oldest = min((r[2] for r in rows), default=now)
        scale = window / max(1.0, now - oldest) if sampled else 1.0
        for queue, n, _ in rows:
            e = out.setdefault(queue, {"in": 0, "out": 0, "rate_estimated": []})
            e[key] = max(int(n), round(int(n) * scale))
            if sampled:
                e["rate_estimated"].append(key)

    newest = sql(db, "SELECT MAX(seq) FROM lq_job").fetchone()[0]
    if newest is not None:
        floor = newest - THROUGHPUT_SAMPLE
        # The newest jobs by number, counted by when they were enqueued (not stopped at the
        # first older one: a host whose clock is behind would hide the rest). The LIMIT
        # keeps the subquery apart: one range of the primary key, never the (queue, seq)
        # index that GROUP BY alone would pick (a full scan).
        rows = sql(db, "SELECT queue, COUNT(*), MIN(enqueued_at) FROM (SELECT queue, enqueued_at FROM lq_job "
                       "WHERE seq > ? AND enqueued_at >= ? LIMIT ?) n GROUP BY queue",
                   [floor, since, THROUGHPUT_SAMPLE]).fetchall()
        # The job just before that range enqueued in the window too: the window holds more.
        edge = sql(db, "SELECT enqueued_at FROM lq_job WHERE seq <= ? ORDER BY seq DESC LIMIT 1",
                   [floor]).fetchone()
        sampled = bool(rows) and edge is not None and edge[0] >= since
        add("in", rows, bool(sampled))
    rows = sql(db, "SELECT queue, COUNT(*), MIN(finished_at) FROM (SELECT queue, finished_at FROM lq_job "
                   "WHERE finished_at >= ? ORDER BY finished_at DESC LIMIT ?) f GROUP BY queue",
               [since, THROUGHPUT_SAMPLE]).fetchall()
    add("out", rows, sum(r[1] for r in rows) >= THROUGHPUT_SAMPLE)
    return dict(sorted(out.items()))
