"""Consumers and what they hold: the consumer list, the consumers registered as alive, their
claims and advisory locks, and the cancel requests for the jobs they run."""

from __future__ import annotations

import time
from typing import Any

import peewee as pw

from litequeue.ledger.queries._common import dict_rows, iso
from litequeue.store.dialect import is_sqlite, sql


def consumers(db: pw.Database, alive_only: bool = False) -> list[dict[str, Any]]:
    query = ("SELECT id, hostname, pid, queues, concurrency, worker_type, started_at, heartbeat_at, "
             "stopped_at, status, jobs_done, requested, obeyed FROM lq_consumer")
    if alive_only:
        query += " WHERE status IN ('running', 'stopping')"
    rows = dict_rows(sql(db, query + " ORDER BY started_at DESC LIMIT 200"))
    now = time.time()
    for row in rows:
        row["queues"] = row["queues"].split(",") if row["queues"] else []
        row["heartbeat_age_s"] = round(now - row["heartbeat_at"], 1)
        for key in ("started_at", "heartbeat_at", "stopped_at"):
            row[key] = iso(row[key])
    return rows


def consumer_request(db: pw.Database, consumer_id: str) -> tuple[str | None, str | None]:
    """(requested, obeyed) of one consumer: what someone asked it to do (``quiet`` or
    ``stop``) and what it did; one primary-key read, with each heartbeat."""
    row = sql(db, "SELECT requested, obeyed FROM lq_consumer WHERE id = ?", [consumer_id]).fetchone()
    return (row[0], row[1]) if row else (None, None)


def registered_consumers(db: pw.Database) -> list[tuple[Any, ...]]:
    """(id, hostname, boot_id, pid, lock_path, heartbeat_at, queues, lease) of every consumer
    registered as running or stopping (alive or not: see ``liveness.judge``)."""
    return sql(db, "SELECT id, hostname, boot_id, pid, lock_path, heartbeat_at, queues, lease FROM lq_consumer "
                   "WHERE status IN ('running', 'stopping')").fetchall()


def advisory_locks_held(db: pw.Database) -> set[int] | None:
    """Keys of the session advisory locks (single 64-bit key form) held in this database
    now, by any session on any host; None on SQLite, which has none."""
    if is_sqlite(db):
        return None
    return {r[0] for r in sql(
        db, "SELECT (classid::bigint << 32) | objid::bigint FROM pg_locks WHERE locktype = 'advisory' "
            "AND objsubid = 1 AND granted AND database = (SELECT oid FROM pg_database "
            "WHERE datname = current_database())").fetchall()}


def claims_by_holder(db: pw.Database) -> list[tuple[str, str, int]]:
    """(holder, queue, count) of every claim held now."""
    return sql(db, "SELECT claimed_by, queue, COUNT(*) FROM lq_ready WHERE claimed_by IS NOT NULL "
                   "GROUP BY claimed_by, queue").fetchall()


def cancel_requests(db: pw.Database, app: str, holder: str, holder_like: str) -> list[tuple[Any, ...]]:
    """(job id, holder, task, who asked) for each job of ``app`` that ``holder`` (a
    consumer) or its worker processes (``holder_like``) hold and someone asked to cancel:
    one query for all of a consumer's running jobs (the cancel watcher's)."""
    return list(sql(db, "SELECT r.job_id, r.claimed_by, j.task, kv.value FROM lq_ready r "
                        "JOIN lq_kv kv ON kv.queue = r.app AND kv.key = 'cancel:' || r.job_id "
                        "JOIN lq_job j ON j.id = r.job_id "
                        "WHERE r.app = ? AND (r.claimed_by = ? OR r.claimed_by LIKE ?)",
                    [app, holder, holder_like]).fetchall())
