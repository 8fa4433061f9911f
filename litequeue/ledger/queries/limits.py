"""What holds queued jobs back: concurrency limits, breakers and rate limits, and the reason
one job is held."""

from __future__ import annotations

import json
import time
from typing import Any

import peewee as pw

from litequeue.base.states import JobStatus
from litequeue.ledger.queries._common import dict_rows, iso
from litequeue.store.dialect import sql
from litequeue.store.job_indexes import OFF_PATH_SQL

#: How a rate-limited job's ``error`` starts (written by the worker's classify).
RATE_LIMITED = "rate limited"


def _running(db: pw.Database, scope: str, app: str, name: str) -> int:
    column = "j.task" if scope == "task" else "r.queue"
    return int(sql(db, "SELECT COUNT(*) FROM lq_ready r JOIN lq_job j ON j.id = r.job_id WHERE "
                       f"r.claimed_by IS NOT NULL AND r.app = ? AND {column} = ?", [app, name]).fetchone()[0])


def _queued(db: pw.Database, app: str, column: str, name: str) -> int:
    """Queued jobs of a task or queue: read from the ready rows (a queued job has one), not
    by a status scan of the ledger."""
    return int(sql(db, "SELECT COUNT(*) FROM lq_job WHERE id IN (SELECT job_id FROM lq_ready WHERE app = ?) "
                       f"AND app = ? AND {column} = ? AND status = ?",
                   [app, app, name, JobStatus.QUEUED.value]).fetchone()[0])


def concurrency_limits(db: pw.Database) -> list[dict[str, Any]]:
    """Each published limit (``@task(concurrency=)``, ``[queues.NAME]``) with its running
    and queued jobs now."""
    if not db.table_exists("lq_limit"):
        return []
    out = dict_rows(sql(db, "SELECT app, scope, name, concurrency, timeout FROM lq_limit ORDER BY app, scope, name"))
    for row in out:
        column = "task" if row["scope"] == "task" else "queue"
        row["running"] = _running(db, row["scope"], row["app"], row["name"])
        row["queued"] = _queued(db, row["app"], column, row["name"])
    return out


def breakers(db: pw.Database, now: float | None = None) -> list[dict[str, Any]]:
    """Each breaker: its state, its settings, the failures counted in its window, the jobs
    it holds, and when it lets a trial job through (``trial_due``, while open)."""
    if not db.table_exists("lq_breaker"):
        return []
    now = time.time() if now is None else now
    out = dict_rows(sql(db, "SELECT app, task, state, failures, window_s, cooldown_s, recent, opened_at, trial_job, "
                        "trial_at, changed_at FROM lq_breaker ORDER BY app, task"))
    for row in out:
        recent = json.loads(row.pop("recent") or "[]")
        row["recent_failures"] = sum(1 for t in recent if t > now - row["window_s"])
        due = row["opened_at"] + row["cooldown_s"] if row["state"] == "open" and row["opened_at"] else None
        row["trial_due"] = iso(due)
        row["trial_due_in_s"] = None if due is None else round(max(0.0, due - now), 1)
        row["held"] = _queued(db, row["app"], "task", row["task"]) if row["state"] != "closed" else 0
        for key in ("opened_at", "trial_at", "changed_at"):
            row[key] = iso(row[key])
    return out


def rate_limited(db: pw.Database) -> list[dict[str, Any]]:
    """Jobs waiting out a Huey ``rate_limit`` (scheduled again, no retry used), per task.
    Only ``scheduled`` jobs are looked at: a rate-limited job waits there until its next
    try, and reading ``queued`` too walked every queued job (270 ms at 1,000,000)."""
    return dict_rows(sql(db, "SELECT task, queue, COUNT(*) AS jobs, MIN(eta) AS next_try FROM lq_job "
                         f"WHERE {OFF_PATH_SQL} AND status = ? AND error LIKE ? GROUP BY task, queue "
                         "ORDER BY task, queue",
                     [JobStatus.SCHEDULED.value, RATE_LIMITED + "%"]))


def held_reason(db: pw.Database, job: dict[str, Any]) -> str | None:
    """Why a ``queued`` (or ``scheduled``) job is not running yet, when something holds it:
    its task's breaker, a concurrency limit, a rate limit."""
    status, app, task, queue = job.get("status"), job.get("app"), job.get("task"), job.get("queue")
    error = job.get("error") or ""
    if status in (JobStatus.SCHEDULED.value, JobStatus.QUEUED.value) and error.startswith(RATE_LIMITED):
        return error
    if status != JobStatus.QUEUED.value:
        return None
    for b in breakers(db):
        if b["app"] == app and b["task"] == task and b["state"] != "closed":
            if b["state"] == "open":
                return (f"held by the breaker of {task} (open since {b['opened_at']}); a trial job goes "
                        f"through at {b['trial_due']}")
            return f"held by the breaker of {task} (half-open: trial job {b['trial_job']} decides)"
    for lim in concurrency_limits(db):
        if lim["app"] == app and lim["name"] == (task if lim["scope"] == "task" else queue) \
                and lim["concurrency"] is not None and lim["running"] >= lim["concurrency"]:
            return (f"over the concurrency limit of {lim['scope']} {lim['name']} "
                    f"({lim['running']}/{lim['concurrency']} running)")
    return None
