"""Batches: the batch a job belongs to, a batch's members, and each batch's progress and state."""

from __future__ import annotations

import time
from typing import Any

import peewee as pw

from litequeue.base.states import NOT_STARTED_VALUES, JobStatus
from litequeue.ledger.queries._common import dict_rows, iso
from litequeue.store.dialect import sql

_BATCH_FIELDS = ("id", "name", "parent_id", "total", "succeeded", "failed", "sealed", "on_complete_id",
                 "on_failure_id", "created_at", "sealed_at", "finished_at", "completed_at", "failure_fired_at")


def batch_of_job(db: pw.Database, job_id: str) -> tuple[str, str] | None:
    """(id, name) of the batch job ``job_id`` is a member of."""
    row = sql(db, "SELECT b.id, b.name FROM lq_job j JOIN lq_batch b ON b.id = j.batch_id WHERE j.id = ?",
              [job_id]).fetchone()
    return (row[0], row[1]) if row else None


def batch_members(db: pw.Database, batch_id: str, limit: int | None = None, *, status: str | None = None,
                  offset: int = 0) -> list[dict[str, Any]]:
    """A batch's member jobs in enqueue order (only those in ``status``, if given, from
    ``offset``): id, task, status, error, times."""
    extra, params = (" AND status = ?", [status]) if status else ("", [])
    page = "" if limit is None else f" LIMIT {int(limit)} OFFSET {int(offset)}"
    rows = dict_rows(sql(db, "SELECT id, task, queue, status, error, started_at, finished_at, seq FROM lq_job "
                         f"WHERE batch_id = ?{extra} ORDER BY seq{page}", [batch_id, *params]))
    for r in rows:
        r["started_at"], r["finished_at"] = iso(r["started_at"]), iso(r["finished_at"])
    return rows


def batch_member_count(db: pw.Database, batch_id: str, status: str | None = None) -> int:
    extra, params = (" AND status = ?", [status]) if status else ("", [])
    return int(sql(db, f"SELECT COUNT(*) FROM lq_job WHERE batch_id = ?{extra}", [batch_id, *params]).fetchone()[0])


def batch_failed_ids(db: pw.Database, batch_id: str) -> list[str]:
    """A batch's failed members not retried yet (what "Retry failed members" retries)."""
    return [r[0] for r in sql(db, "SELECT id FROM lq_job WHERE batch_id = ? AND status = ? AND retried_as IS NULL "
                                  "ORDER BY seq", [batch_id, JobStatus.FAILED.value]).fetchall()]


def list_batches(db: pw.Database, limit: int = 50, now: float | None = None) -> list[dict[str, Any]]:
    """The newest batches with their progress (see :func:`batch_view`)."""
    rows = dict_rows(sql(db, f"SELECT {', '.join(_BATCH_FIELDS)} FROM lq_batch ORDER BY created_at DESC, id DESC "
                         "LIMIT ?", [limit]))
    return _batch_views(db, rows, now)


def get_batch(db: pw.Database, batch_id: str, now: float | None = None) -> dict[str, Any] | None:
    """One batch's progress, its callbacks and its child batches; None if there is none."""
    rows = dict_rows(sql(db, f"SELECT {', '.join(_BATCH_FIELDS)} FROM lq_batch WHERE id = ?", [batch_id]))
    if not rows:
        return None
    view = _batch_views(db, rows, now)[0]
    view["children"] = [r[0] for r in sql(db, "SELECT id FROM lq_batch WHERE parent_id = ? ORDER BY created_at, id",
                                          [batch_id]).fetchall()]
    return view


def _batch_views(db: pw.Database, rows: list[dict[str, Any]], now: float | None) -> list[dict[str, Any]]:
    """Counters from the batch rows (moved by each member's final ack); running and queued
    counts and the first start from the members' ledger rows; percent and an ETA from the
    rate so far."""
    if not rows:
        return []
    now = time.time() if now is None else now
    ids = [r["id"] for r in rows]
    marks = ", ".join("?" * len(ids))
    counts: dict[str, dict[str, int]] = {i: {} for i in ids}
    started: dict[str, float] = {}
    for batch_id, status, n, first in sql(db, "SELECT batch_id, status, COUNT(*), MIN(started_at) FROM lq_job "
                                              f"WHERE batch_id IN ({marks}) GROUP BY batch_id, status", ids):
        counts[batch_id][status] = n
        if first is not None:
            started[batch_id] = min(first, started.get(batch_id, first))
    callback_ids = [c for r in rows for c in (r["on_complete_id"], r["on_failure_id"]) if c]
    callbacks: dict[str, str] = {}
    if callback_ids:
        callbacks = dict(sql(db, f"SELECT id, status FROM lq_job WHERE id IN ({', '.join('?' * len(callback_ids))})",
                             callback_ids).fetchall())
    out = []
    for r in rows:
        c = counts[r["id"]]
        done = r["succeeded"] + r["failed"]
        total = r["total"]
        first = started.get(r["id"])
        view: dict[str, Any] = {
            "id": r["id"], "name": r["name"], "state": _batch_state(r, callbacks), "parent_id": r["parent_id"],
            "total": total, "succeeded": r["succeeded"], "failed": r["failed"],
            "running": c.get(JobStatus.RUNNING.value, 0),
            "queued": sum(c.get(s, 0) for s in NOT_STARTED_VALUES),  # members not started yet
            "sealed": bool(r["sealed"]),
            "percent": round(100.0 * done / total, 1) if total else (100.0 if r["finished_at"] else 0.0),
            "eta_seconds": None,
            "created": iso(r["created_at"]), "started": iso(first), "sealed_at": iso(r["sealed_at"]),
            "finished": iso(r["finished_at"]), "completed": iso(r["completed_at"]),
            "on_complete": ({"id": r["on_complete_id"], "status": callbacks.get(r["on_complete_id"])}
                            if r["on_complete_id"] else None),
            "on_failure": ({"id": r["on_failure_id"], "status": callbacks.get(r["on_failure_id"]),
                            "fired": iso(r["failure_fired_at"])} if r["on_failure_id"] else None),
        }
        if r["finished_at"] is None and first is not None and 0 < done < total:
            rate = done / max(1e-6, now - first)
            view["eta_seconds"] = round((total - done) / rate, 1)
        out.append(view)
    return out


def _batch_state(row: dict[str, Any], callbacks: dict[str, str]) -> str:
    """open (its block has not ended), running, completing (its on_complete job has not
    finished), succeeded or failed (a member or the on_complete job did not succeed)."""
    if not row["sealed"]:
        return "open"
    if row["finished_at"] is None:
        return "running"
    if row["completed_at"] is None:
        return "completing"
    done = callbacks.get(row["on_complete_id"]) if row["on_complete_id"] else None  # None: pruned, or none
    return JobStatus.FAILED.value if row["failed"] or done not in (None, JobStatus.SUCCEEDED.value) else "succeeded"
