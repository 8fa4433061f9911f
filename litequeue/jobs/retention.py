"""Where old ledger records are *pruned*: finished jobs, their attempts and results, old
events, periodic-run keys and long-stopped consumers; and where the file is vacuumed.

Pruning never touches a job that is not final (or that still has a queue row), and never
touches the ``lq_finished`` counters, so metrics keep counting after the rows are gone.
It works in small batches, each its own short write transaction, so a consumer waiting
for the write lock waits for one batch at most.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from litequeue.base import defaults
from litequeue.base.durations import DAY
from litequeue.base.errors import ConfigurationError
from litequeue.base.states import FINAL_VALUES, JobStatus
from litequeue.jobs import prune as prune_writes
from litequeue.store.database import sqlite_path

if TYPE_CHECKING:
    from litequeue.engine.storage import LiteStorage

#: A periodic run's (task, minute) key is kept at least this long whatever the cutoff, so a
#: prune with a tiny ``older_than`` can never let a consumer fire the same minute twice.
PERIODIC_KEY_MIN_AGE = 3600.0
#: How often the consumer's auto-pruner runs, at most.
AUTO_PRUNE_INTERVAL = 600.0
#: Batches one auto-prune call runs before it yields back to the consumer's housekeeping.
AUTO_PRUNE_MAX_BATCHES = 10

Progress = Callable[[int, int], None]


def check_statuses(statuses: Iterable[str]) -> tuple[str, ...]:
    """The statuses as a tuple; every one must be final (only finished jobs are pruned)."""
    out = tuple(dict.fromkeys(s.strip().lower() for s in statuses if s.strip()))
    wrong = [s for s in out if s not in FINAL_VALUES]
    if wrong or not out:
        raise ConfigurationError(f"cannot prune status {', '.join(wrong) or '(none)'}: only finished "
                                 f"jobs are pruned; use one or more of {', '.join(FINAL_VALUES)}")
    return out


@dataclass
class PruneResult:
    """What a prune deleted (or, with ``dry_run``, would delete)."""

    jobs: int = 0
    attempts: int = 0
    results: int = 0
    events: int = 0
    periodic_runs: int = 0
    consumers: int = 0
    dry_run: bool = False
    #: True when a ``limit`` stopped the prune before everything old was gone.
    more: bool = False
    cutoffs: dict[str, float] = field(default_factory=dict)

    def add(self, other: PruneResult) -> None:
        for name in ("jobs", "attempts", "results", "events", "periodic_runs", "consumers"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.more = self.more or other.more
        self.cutoffs.update(other.cutoffs)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def prune(store: LiteStorage, older_than_seconds: float, statuses: Sequence[str] = FINAL_VALUES,
          dry_run: bool = False, batch: int = 1000, progress: Progress | None = None, *,
          now: float | None = None, limit: int | None = None, extras: bool = True) -> PruneResult:
    """Delete finished jobs (``statuses``) that finished more than ``older_than_seconds`` ago,
    with their attempts and stored results; with ``extras``, also events, periodic-run keys
    and stopped consumers older than the cutoff.

    Each batch of at most ``batch`` jobs is one write transaction. ``progress(done, total)``
    is called after each batch. ``limit`` caps the jobs deleted in this call (``more`` tells
    whether some were left). ``lq_finished`` counters and unfinished jobs are never touched.
    """
    if older_than_seconds < 0:
        raise ConfigurationError("older_than must be zero or more seconds")
    if batch < 1:
        raise ConfigurationError("batch must be at least 1")
    statuses = check_statuses(statuses)
    now = time.time() if now is None else now
    cutoff = now - older_than_seconds
    result = PruneResult(dry_run=dry_run, cutoffs={",".join(statuses): cutoff})
    where, params = _where(statuses, cutoff)
    total = store.sql(f"SELECT COUNT(*) FROM lq_job WHERE {where}", params).fetchone()[0]
    if limit is not None:
        result.more = total > limit
        total = min(total, limit)
    if dry_run:
        result.jobs = total
        if total:
            result.attempts = store.sql(f"SELECT COUNT(*) FROM lq_attempt WHERE job_id IN (SELECT id "
                                        f"FROM lq_job WHERE {where})", params).fetchone()[0]
            result.results = store.sql(f"SELECT COUNT(*) FROM lq_kv WHERE EXISTS (SELECT 1 FROM lq_job "
                                       f"WHERE {where} AND lq_job.app = lq_kv.queue AND lq_job.id = "
                                       "lq_kv.key)", params).fetchone()[0]
        if extras:
            _prune_extras(store, now, cutoff, batch, result, dry_run=True)
        if progress:
            progress(total, total)
        return result
    done = 0
    if progress:
        progress(0, total)
    while done < total:
        with store.write():
            rows = store.sql(f"SELECT id, app FROM lq_job WHERE {where} ORDER BY finished_at LIMIT ?",
                             (*params, min(batch, total - done))).fetchall()
            if not rows:
                break
            jobs, attempts, results = prune_writes.prune_jobs(store, [(r[0], r[1]) for r in rows])
            result.jobs += jobs
            result.attempts += attempts
            result.results += results
        done += len(rows)
        if progress:
            progress(done, total)
    if extras:
        _prune_extras(store, now, cutoff, batch, result, dry_run=False)
    return result


def _where(statuses: Sequence[str], cutoff: float) -> tuple[str, tuple[Any, ...]]:
    marks = ", ".join("?" * len(statuses))
    # A final job that still has a queue row is a bug elsewhere; keeping it keeps it visible.
    where = (f"lq_job.status IN ({marks}) AND lq_job.finished_at < ? AND NOT EXISTS (SELECT 1 FROM "
             "lq_ready r WHERE r.job_id = lq_job.id) AND NOT EXISTS (SELECT 1 FROM lq_schedule s "
             "WHERE s.job_id = lq_job.id)")
    return where, (*statuses, cutoff)


def count_prunable(store: LiteStorage, statuses: Sequence[str], cutoff: float) -> int:
    """How many jobs of ``statuses`` finished before ``cutoff`` (epoch seconds)."""
    where, params = _where(check_statuses(statuses), cutoff)
    return store.sql(f"SELECT COUNT(*) FROM lq_job WHERE {where}", params).fetchone()[0]


_EXTRAS = (
    # (field, table, the condition on rows older than the cutoff)
    ("events", "lq_event", "at < ?"),
    ("periodic_runs", "lq_periodic_run", "created_at < ?"),
    # A stopped consumer's row is only history; one holding claims is never removed.
    ("consumers", "lq_consumer", "status IN ('stopped', 'dead') AND stopped_at < ? AND NOT EXISTS "
                                 "(SELECT 1 FROM lq_ready r WHERE r.claimed_by = lq_consumer.id "
                                 "OR r.claimed_by LIKE lq_consumer.id || '/%')"),  # liveness.holder_pattern, in SQL
)


def _prune_extras(store: LiteStorage, now: float, cutoff: float, batch: int, result: PruneResult,
                  dry_run: bool) -> None:
    for name, table, condition in _EXTRAS:
        edge = min(cutoff, now - PERIODIC_KEY_MIN_AGE) if table == "lq_periodic_run" else cutoff
        if dry_run:
            n = store.sql(f"SELECT COUNT(*) FROM {table} WHERE {condition}", (edge,)).fetchone()[0]
            setattr(result, name, getattr(result, name) + n)
            continue
        while True:
            with store.write():
                n = prune_writes.prune_rows(store, table, condition, edge, batch)
            setattr(result, name, getattr(result, name) + n)
            if n < batch:
                break


def prune_policy(store: LiteStorage, keep_succeeded_days: float = defaults.KEEP_SUCCEEDED_DAYS,
                 keep_failed_days: float = defaults.KEEP_FAILED_DAYS, *, dry_run: bool = False,
                 batch: int = 1000, progress: Progress | None = None, now: float | None = None,
                 limit: int | None = None, statuses: Sequence[str] = FINAL_VALUES) -> PruneResult:
    """Prune by the retention policy: succeeded jobs after ``keep_succeeded_days``, failed,
    cancelled and expired ones after ``keep_failed_days``; events, periodic-run keys and
    stopped consumers after the longer of the two. ``statuses`` narrows what is pruned."""
    statuses = check_statuses(statuses)
    now = time.time() if now is None else now
    plans = [([s for s in statuses if s == JobStatus.SUCCEEDED.value], keep_succeeded_days),
             ([s for s in statuses if s != JobStatus.SUCCEEDED.value], keep_failed_days)]
    plans = [(s, days) for s, days in plans if s]
    longest = max(keep_succeeded_days, keep_failed_days)
    total = PruneResult(dry_run=dry_run)
    # One progress scale over both groups: count them first.
    counts = [count_prunable(store, group, now - days * DAY) for group, days in plans]
    grand = sum(counts) if limit is None else min(limit, sum(counts))
    offset = 0
    for group, days in plans:
        left = None if limit is None else max(0, limit - total.jobs)
        if left == 0:
            total.more = True
            break

        def report(done: int, _total: int, base: int = offset) -> None:
            if progress:
                progress(min(grand, base + done), grand)

        part = prune(store, days * DAY, group, dry_run=dry_run, batch=batch, progress=report,
                     now=now, limit=left, extras=False)
        total.add(part)
        offset += part.jobs
    if not total.more:
        _prune_extras(store, now, now - longest * DAY, batch, total, dry_run=dry_run)
    return total


def vacuum(store: LiteStorage) -> tuple[int | None, int | None]:
    """Give the space of deleted rows back to the filesystem; returns the file size (bytes)
    before and after on SQLite, ``(None, None)`` elsewhere.

    On SQLite this rewrites the whole file and holds the write lock while it does: run it
    when the queue is quiet. Freed pages are reused without it, so the file does not grow.
    """
    db = store.database
    if store.is_sqlite:
        path = sqlite_path(db.database)
        before = _size(path)
        db.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        db.execute_sql("VACUUM")
        db.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        return before, _size(path)
    # PostgreSQL refuses VACUUM inside a transaction block.
    conn = db.connection()
    previous = conn.autocommit
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for table in ("lq_job", "lq_attempt", "lq_kv", "lq_event", "lq_periodic_run", "lq_consumer"):
                cur.execute(f"VACUUM ANALYZE {table}")
    finally:
        conn.autocommit = previous
    return None, None


def _size(path: str | None) -> int | None:
    if not path or path == ":memory:" or not os.path.exists(path):
        return None
    return os.path.getsize(path)


def page_stats(store: LiteStorage) -> dict[str, int]:
    """SQLite's page count and free-list count (how much of the file is reusable)."""
    return {"page_count": store.sql("PRAGMA page_count").fetchone()[0],
            "freelist_count": store.sql("PRAGMA freelist_count").fetchone()[0],
            "page_size": store.sql("PRAGMA page_size").fetchone()[0]}


class AutoPruner:
    """Prunes by the retention policy from the consumer's housekeeping, at most every
    ``interval`` seconds across all consumers of the database, and at most ``max_batches``
    batches per call, so one call never holds up heartbeats and recovery for long: a backlog
    is worked off over the next calls.

    The consumer calls :meth:`maybe_prune` from its supervisor tick (once a second)."""

    def __init__(self, keep_succeeded_days: float = defaults.KEEP_SUCCEEDED_DAYS,
                 keep_failed_days: float = defaults.KEEP_FAILED_DAYS,
                 interval: float = AUTO_PRUNE_INTERVAL, batch: int = 1000,
                 max_batches: int = AUTO_PRUNE_MAX_BATCHES) -> None:
        if interval < 0 or keep_succeeded_days < 0 or keep_failed_days < 0:
            raise ConfigurationError("retention days and the prune interval must be zero or more")
        self.keep_succeeded_days = keep_succeeded_days
        self.keep_failed_days = keep_failed_days
        self.interval = interval
        self.batch = batch
        self.max_batches = max_batches
        self.next_at = 0.0  # time.time() of the next look at the database
        self.backlog = False
        self.last: PruneResult | None = None
        self._lock = threading.Lock()

    def maybe_prune(self, store: LiteStorage, now: float | None = None) -> PruneResult | None:
        """Prune if due; return what was pruned, or None when it was not this call's turn.

        Cheap when not due (no database access). Another consumer's recent prune counts:
        the pass is claimed through a timestamp in ``lq_meta``."""
        now = time.time() if now is None else now
        if now < self.next_at or not self._lock.acquire(blocking=False):
            return None
        try:
            if not self.backlog and not self._claim_turn(store, now):
                return None
            result = prune_policy(store, self.keep_succeeded_days, self.keep_failed_days,
                                  batch=self.batch, now=now, limit=self.batch * self.max_batches)
            self.backlog = result.more
            self.next_at = now if result.more else now + self.interval
            self.last = result
            return result
        finally:
            self._lock.release()

    def _claim_turn(self, store: LiteStorage, now: float) -> bool:
        with store.write():
            taken = prune_writes.take_prune_turn(store, now, self.interval)
        if not taken:
            row = store.sql("SELECT value FROM lq_meta WHERE key = 'auto_prune_at'").fetchone()
            self.next_at = (float(row[0]) if row else now) + self.interval
            return False
        return True
