"""What every ledger read shares: the job row's fields, rows turned into the JSON objects the
CLI and web print (ISO times, parsed previews), and the checks that a database holds a ledger."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

import peewee as pw

from litequeue.base.states import JobStatus
from litequeue.store.database import has_schema
from litequeue.store.dialect import sql

__all__ = ["COUNTED", "JOB_FIELDS", "NOT_SCHEDULED", "dict_rows", "has_schema", "iso", "job_dict", "ping",
           "progress_view"]  # has_schema: store.database's, shown here too

#: Every job object, in a list or alone, carries every field (null when empty).
JOB_FIELDS = (
    "seq", "id", "app", "task", "queue", "priority", "status", "args", "kwargs", "enqueued_at",
    "eta", "started_at", "finished_at", "updated_at", "attempts", "crashes", "crash_cap",
    "worker", "error", "traceback", "result", "parent_id", "retried_from", "retried_as", "has_file",
    "progress_done", "progress_total", "progress_message", "progress_at", "batch_id",
)
COUNTED = (JobStatus.SCHEDULED, JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.RETRYING,
           JobStatus.FAILED)

#: A job enqueued through Huey with a future ETA waits in the ready queue until a worker puts
#: it on the schedule (Huey's way); the ledger already says ``scheduled``: not "queued".
NOT_SCHEDULED = (" AND NOT EXISTS (SELECT 1 FROM lq_job j WHERE j.id = lq_ready.job_id "
                 f"AND j.status = '{JobStatus.SCHEDULED}')")


def iso(ts: float | None) -> str | None:
    """Epoch seconds as ISO 8601 UTC (``2026-11-23T18:35:20.123456Z``)."""
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _loads(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def job_dict(row: dict[str, Any]) -> dict[str, Any]:
    """A ledger row as the JSON object the CLI and web API print (ISO times, parsed previews)."""
    out = dict(row)
    for key in ("args", "kwargs", "result"):
        if key in out:
            out[key] = _loads(out[key])
    for key in ("enqueued_at", "eta", "started_at", "finished_at", "updated_at", "progress_at"):
        if key in out:
            out[key] = iso(out[key])
    if "has_file" in out:
        out["has_file"] = bool(out["has_file"])
    out["progress"] = progress_view(row) if row.get("progress_total") else None
    return out


def progress_view(row: dict[str, Any], now: float | None = None) -> dict[str, Any] | None:
    """done/total, percent and an ETA from the rate so far."""
    done, total = row.get("progress_done"), row.get("progress_total")
    if done is None:
        return None
    view: dict[str, Any] = {"done": done, "total": total, "message": row.get("progress_message")}
    if total:
        view["percent"] = round(100.0 * done / total, 1)
        started = row.get("started_at")
        at = row.get("progress_at") or now or time.time()
        if started and done > 0 and total > done:
            rate = done / max(1e-6, at - started)
            view["eta_seconds"] = round((total - done) / rate, 1)
    return view


def dict_rows(cursor: Any) -> list[dict[str, Any]]:
    """A cursor's rows as dicts keyed by column name."""
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]


def ping(db: pw.Database) -> None:
    """Raise unless the database answers and holds a litequeue ledger."""
    sql(db, "SELECT COUNT(*) FROM lq_meta").fetchone()
