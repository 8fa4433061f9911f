"""``litequeue health``: one word for scripts, cron and container health checks.

The answer is ``healthy`` (exit 0), ``degraded`` (exit 1) or ``unhealthy`` (exit 2), as
monitoring plugins expect, with one reason per problem:

* unhealthy: the database cannot be opened or written; a queue has jobs (queued, due, or
  held by a dead consumer) and no live consumer serves it, so they will never run;
* degraded: the oldest queued job of a queue waited longer than ``max_queued_age``; too
  many jobs failed in the last hour; a live consumer stopped writing its heartbeat; a job
  has been running longer than ``max_running_age`` (when set).

It reads and writes nothing but one no-op update (proof that writes work) and never imports
the user's code.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import peewee as pw

from litequeue.base.errors import LiteQueueError
from litequeue.jobs import rows as job_rows
from litequeue.ledger import queries
from litequeue.store import dialect, faults, file_identity
from litequeue.store.database import open_checked
from litequeue.store.liveness import judge

HEALTHY, DEGRADED, UNHEALTHY = "healthy", "degraded", "unhealthy"
EXIT_STATUS = {HEALTHY: 0, DEGRADED: 1, UNHEALTHY: 2}
_RANK = {HEALTHY: 0, DEGRADED: 1, UNHEALTHY: 2}
#: Fewer failures than this in the window never make the answer degraded: one failed
#: job out of two is not an incident.
MIN_FAILURES = 3
FAILURE_WINDOW = 3600.0
#: Less free space than this next to a SQLite database is a full disk.
FULL_BELOW = 1_000_000


@dataclass
class Thresholds:
    """When the answer turns ``degraded``."""

    #: seconds the oldest queued job of a (not paused) queue may wait
    max_queued_age: float = 300.0
    #: fraction of the jobs finished in the last hour that may have failed
    max_failure_rate: float = 0.2
    #: seconds a live consumer may go without a heartbeat (it writes one every second)
    max_heartbeat_age: float = 30.0
    #: seconds a job may run; None: no limit
    max_running_age: float | None = None
    #: how long to wait for the database write lock
    busy_timeout: float = 10.0


@dataclass
class Report:
    """The answer, its reasons, and what was measured."""

    status: str = HEALTHY
    reasons: list[str] = field(default_factory=list)
    checks: dict[str, Any] = field(default_factory=dict)

    @property
    def exit_status(self) -> int:
        return EXIT_STATUS[self.status]

    def add(self, level: str, reason: str) -> None:
        self.reasons.append(f"{level}: {reason}")
        if _RANK[level] > _RANK[self.status]:
            self.status = level

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "reasons": self.reasons, "checks": self.checks}


def check(db: str | None = None, thresholds: Thresholds | None = None, now: float | None = None) -> Report:
    """Check the queue on database ``db`` (``$LITEQUEUE_DB`` when None); never raises for a
    broken database: that is an ``unhealthy`` answer."""
    t = thresholds or Thresholds()
    report = Report()
    now = time.time() if now is None else now
    store = _open(db, t, report)
    if store is None:
        return report
    try:
        _check_writable(store, report)
        _check_replaced(store, report)
        alive = _check_consumers(store, t, report, now)
        _check_queues(store, t, report, now, alive)
        _check_failures(store, t, report, now)
        if t.max_running_age is not None:
            _check_running(store, t.max_running_age, report, now)
    except (pw.DatabaseError, LiteQueueError) as exc:
        report.add(UNHEALTHY, f"database: reading it failed: {exc}")
    finally:
        store.database.close()
    return report


class _Probe:
    """What the checks need of a storage, without Huey (start-up time): the database and
    a write that changes nothing."""

    def __init__(self, database: pw.Database) -> None:
        self.database = database

    def sql(self, query: str, params: Any = ()) -> Any:
        return dialect.sql(self.database, query, params)

    @contextlib.contextmanager
    def write(self) -> Iterator[None]:
        try:
            with self.database.atomic():
                yield
        except (pw.DatabaseError, sqlite3.Error) as exc:
            clear = faults.translate(exc, self.database)
            if isinstance(clear, Exception) and clear is not exc:
                raise clear from exc
            raise

    def touch(self) -> None:
        job_rows.touch(self)


def _open(db: str | None, t: Thresholds, report: Report) -> _Probe | None:
    try:
        database = open_checked(db, busy_timeout=t.busy_timeout)
        store = _Probe(database)
    except (LiteQueueError, pw.DatabaseError, OSError) as exc:
        # OSError: the path is a folder or unreadable (db.py lets that through).
        text = f"cannot open {exc.filename}: {exc.strerror}" if isinstance(exc, OSError) else str(exc)
        report.checks["database"] = {"reachable": False, "writable": False, "error": text}
        report.add(UNHEALTHY, f"database: {text}")
        return None
    report.checks["database"] = {"reachable": True, "target": str(database.database)}
    return store


def _check_writable(store: _Probe, report: Report) -> None:
    """A write transaction that changes nothing: it still takes the write lock and
    writes a page, so a read-only file, folder or filesystem fails here."""
    try:
        with store.write():
            store.touch()
    except (pw.DatabaseError, LiteQueueError) as exc:
        _, path = faults.location(store.database)
        report.checks["database"].update(writable=False, error=str(exc), fault=faults.kind(exc))
        if path is not None:
            report.checks["database"]["free_bytes"] = faults.free_bytes(path)
        report.add(UNHEALTHY, f"database: not writable ({exc}); producers cannot enqueue and "
                              "consumers cannot record outcomes: fix the file's permissions, "
                              "free the disk, or stop whatever holds the write lock")
        return
    report.checks["database"]["writable"] = True
    name, path = faults.location(store.database)
    free = faults.free_bytes(path) if path is not None else None
    if free is not None:
        report.checks["database"]["free_bytes"] = free
        # A no-op update can still fit in pages SQLite already has: look at the space too.
        if free < FULL_BELOW:
            report.add(UNHEALTHY, f"database: the disk is full: {name} ({faults.free_text(path)}); "
                                  "enqueues fail and consumers wait: free some space there")


def _check_replaced(store: _Probe, report: Report) -> None:
    """Processes that still serve a deleted or replaced copy of the database file."""
    _, path = faults.location(store.database)
    if path is None or path == ":memory:":
        return
    stale = file_identity.stale_openers(path)
    report.checks["database"]["stale_openers"] = [{"pid": p, "command": c} for p, c in stale]
    for pid, command in stale:
        report.add(DEGRADED, f"database: process {pid} ({command}) still has a deleted or replaced copy of "
                             f"{path} open and serves that file, not this one; restart it (a consumer "
                             "restarts by itself within a second)")


def _check_consumers(store: _Probe, t: Thresholds, report: Report, now: float) -> list[list[str]]:
    """The live consumers' queue lists ([] = every queue); flags silent ones."""
    verdict = judge(store.database, now=now)
    alive: list[list[str]] = []
    live = []
    dead = [{"id": cid, "why": why} for cid, why in verdict.dead.items()]
    for cid, _, _, _, _, heartbeat, queues in verdict.alive.values():
        served = [q for q in (queues or "").split(",") if q]
        alive.append(served)
        age = round(now - heartbeat, 1)
        live.append({"id": cid, "queues": served or "all", "heartbeat_age_s": age})
        if age > t.max_heartbeat_age:
            report.add(DEGRADED, f"consumer {cid}: no heartbeat for {age:.0f}s (hung, or the "
                                 "database stayed locked); see its log")
    report.checks["consumers"] = {"alive": live, "dead_but_registered": dead}
    return alive


def _served(queue: str, alive: Iterable[list[str]]) -> bool:
    return any(not served or queue in served for served in alive)


def _check_queues(store: _Probe, t: Thresholds, report: Report, now: float,
                  alive: list[list[str]]) -> None:
    queues: dict[str, dict[str, Any]] = {}

    def entry(q: str) -> dict[str, Any]:
        return queues.setdefault(q, {"queued": 0, "due": 0, "orphaned": 0, "oldest_queued_age_s": None,
                                     "paused": False})

    db = store.database
    for queue, n, oldest in queries.ready_by_queue(db):
        entry(queue).update(queued=n, oldest_queued_age_s=round(max(0.0, now - oldest), 1))
    for queue, n in queries.due_by_queue(db, now):
        entry(queue)["due"] = n
    for queue, n in _orphaned(store, now):
        entry(queue)["orphaned"] += n
    for queue, until in queries.paused_rows(db):
        if queue in queues and (until is None or until > now):
            queues[queue]["paused"] = True
    for name, q in sorted(queues.items()):
        waiting = q["queued"] + q["due"] + q["orphaned"]
        if waiting and not _served(name, alive):
            parts = [f"{q[k]} {k}" for k in ("queued", "due", "orphaned") if q[k]]
            report.add(UNHEALTHY, f"queue {name!r}: {', '.join(parts)} job(s) and no live consumer "
                                  f"serves it; start one: litequeue run-consumer APP -Q {name}")
        age = q["oldest_queued_age_s"]
        if age is not None and age > t.max_queued_age and not q["paused"] and _served(name, alive):
            report.add(DEGRADED, f"queue {name!r}: the oldest queued job has waited {_span(age)} "
                                 f"(more than {_span(t.max_queued_age)}); add workers or consumers")
    report.checks["queues"] = queues


def _orphaned(store: _Probe, now: float) -> list[tuple[str, int]]:
    """(queue, count) of claims whose holder's consumer is dead or not registered."""
    rows = queries.claims_by_holder(store.database)
    if not rows:
        return []
    verdict = judge(store.database, now=now)
    return [(queue, n) for holder, queue, n in rows if verdict.holder_is_orphaned(holder)]


def _check_failures(store: _Probe, t: Thresholds, report: Report, now: float) -> None:
    counts = queries.finished_since(store.database, now - FAILURE_WINDOW)
    failed, succeeded = counts.get("failed", 0), counts.get("succeeded", 0)
    rate = failed / (failed + succeeded) if failed + succeeded else 0.0
    report.checks["last_hour"] = {"succeeded": succeeded, "failed": failed, "failure_rate": round(rate, 4)}
    if failed >= MIN_FAILURES and rate > t.max_failure_rate:
        report.add(DEGRADED, f"{failed} of {failed + succeeded} jobs finished in the last hour failed "
                             f"({rate:.0%} > {t.max_failure_rate:.0%}); see litequeue jobs list --status failed")


def _check_running(store: _Probe, limit: float, report: Report, now: float) -> None:
    rows = queries.running_since(store.database, now - limit, 6)
    report.checks["running_too_long"] = [{"id": r[0], "task": r[1], "queue": r[2],
                                          "running_s": round(now - r[3], 1)} for r in rows]
    for job_id, task, queue, started in rows[:5]:
        report.add(DEGRADED, f"job {job_id} ({task}, queue {queue!r}) has been running for "
                             f"{_span(now - started)} (more than {_span(limit)}); see litequeue jobs "
                             f"show {job_id}")


def _span(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"
