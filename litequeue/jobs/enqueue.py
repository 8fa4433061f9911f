"""Where a job is enqueued: its queue (or schedule) row and ledger row are written
(``queued``, ``scheduled``, or ``waiting`` for a pipeline step or a dependency); due
scheduled jobs move to the ready queue; a periodic run is recorded once.

Part of the job-state writer (:mod:`litequeue.jobs`); it runs inside the caller's write
transaction. A finished batch's callbacks are enqueued here too, through the hook this
module sets at import (:data:`litequeue.jobs.batches.write_callbacks`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from litequeue.base.states import JobStatus
from litequeue.base.values import NewJob
from litequeue.jobs import batches
from litequeue.jobs.batches import add_batch_members
from litequeue.jobs.dependencies import plan_options
from litequeue.jobs.rows import moves, recount, statuses

if TYPE_CHECKING:
    from litequeue.engine.storage import LiteStorage

S = JobStatus


def enqueue(store: LiteStorage, jobs: Sequence[NewJob], now: float, *, guarded: bool = False,
            app: str | None = None) -> None:
    """Write queue (or schedule) rows and ledger rows for ``jobs`` (of ``app``, by default
    the storage's own).

    ``guarded``: skip the queue row of a job the ledger already has as ``cancelled`` (a
    pipeline step cancelled while it waited must not run when its parent finishes). Only
    cancelled: Huey enqueues an error callback again under the same id on every failure."""
    name = app or store.name
    jobs, write_options = plan_options(store, jobs, now)
    ready, scheduled, ledger_new, ledger_retry = [], [], [], []
    for job in jobs:
        later = job.eta is not None and (job.eta > now or job.on_schedule)
        if not job.waiting:
            if later and not job.on_queue:
                scheduled.append((name, job.queue, job.priority, job.id, job.data, job.eta,
                                  job.crash_cap, int(job.has_file)))
            else:
                ready.append((name, job.queue, job.priority, job.id, job.data, job.crash_cap,
                              now, int(job.has_file)))
        if job.retry:
            ledger_retry.append((S.RETRYING.value, job.eta, now, job.id))
        else:
            if job.waiting:
                status = S.WAITING
            elif later:
                status = S.SCHEDULED
            else:
                status = S.QUEUED
            ledger_new.append((job.id, name, job.task, job.queue, job.priority, status.value,
                               job.args, job.kwargs, job.data, now, job.eta, now, job.parent_id,
                               job.retried_from, job.crash_cap, int(job.has_file), job.trace))
    if guarded:
        unless_cancelled = f" WHERE NOT EXISTS (SELECT 1 FROM lq_job WHERE id = ? AND status = '{S.CANCELLED}')"
        store.many("INSERT INTO lq_ready (app, queue, priority, job_id, data, crash_cap, enqueued_at, has_file) "
                   "SELECT ?, ?, ?, ?, ?, ?, ?, ?" + unless_cancelled, [(*r, r[3]) for r in ready])
        store.many("INSERT INTO lq_schedule (app, queue, priority, job_id, data, eta, crash_cap, has_file) "
                   "SELECT ?, ?, ?, ?, ?, ?, ?, ?" + unless_cancelled, [(*r, r[3]) for r in scheduled])
    else:
        store.many("INSERT INTO lq_ready (app, queue, priority, job_id, data, crash_cap, enqueued_at, has_file) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", ready)
        store.many("INSERT INTO lq_schedule (app, queue, priority, job_id, data, eta, crash_cap, has_file) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", scheduled)
    # A waiting pipeline step already has its row: enqueueing it updates the status.
    ids = [row[0] for row in ledger_new] + [row[3] for row in ledger_retry]
    seen = statuses(store, ids)
    store.many(
        "INSERT INTO lq_job (id, app, task, queue, priority, status, args, kwargs, payload, "
        "enqueued_at, eta, updated_at, parent_id, retried_from, crash_cap, has_file, trace, attempts, crashes) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0) "
        "ON CONFLICT (id) DO UPDATE SET status = excluded.status, eta = excluded.eta, "
        "enqueued_at = excluded.enqueued_at, updated_at = excluded.updated_at, "
        "trace = COALESCE(excluded.trace, lq_job.trace), "
        "payload = excluded.payload, parent_id = COALESCE(lq_job.parent_id, excluded.parent_id) "
        f"WHERE lq_job.status = '{S.WAITING}'",
        ledger_new,
    )
    store.many("UPDATE lq_job SET status = ?, eta = ?, updated_at = ? WHERE id = ?", ledger_retry)
    # Read again only the rows that were there (an upsert or a retry moved them); a new
    # row is where it was written (a bulk enqueue reads its ids once, not twice).
    after = statuses(store, list(seen))
    after.update((row[0], (row[3], row[5])) for row in ledger_new if row[0] not in seen)
    moves(store, seen, after)
    write_options()
    add_batch_members(store, jobs, strict=not guarded)


def dispatch_due(store: LiteStorage, now: float) -> int:
    """Move every due scheduled job of the app to the ready queue."""
    rows = store.sql(
        "DELETE FROM lq_schedule WHERE app = ? AND eta <= ? "
        "RETURNING id, queue, priority, job_id, data, crash_cap, eta, has_file",
        (store.name, now)).fetchall()
    if not rows:
        return 0
    rows.sort(key=lambda r: (r[6], r[0]))
    store.many("INSERT INTO lq_ready (app, queue, priority, job_id, data, crash_cap, enqueued_at, has_file) "
               "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
               [(store.name, q, p, j, d, c, now, f) for _, q, p, j, d, c, _, f in rows])
    ids = [r[3] for r in rows]
    seen = statuses(store, ids)
    store.many(f"UPDATE lq_job SET status = '{S.QUEUED}', updated_at = ? "
               f"WHERE id = ? AND status IN ('{S.SCHEDULED}', '{S.RETRYING}')", [(now, r[3]) for r in rows])
    recount(store, seen, ids)
    return len(rows)


def fire_periodic(store: LiteStorage, task: str, slot: str, job: NewJob, now: float,
                  app: str | None = None) -> None:
    """Record a periodic run under its unique (task, slot) key and enqueue its job (of
    ``app``, by default the storage's own); raises ``IntegrityError`` (and writes nothing,
    with the caller's transaction) if it fired."""
    store.sql("INSERT INTO lq_periodic_run (task, slot, job_id, created_at) VALUES (?, ?, ?, ?)",
              (task, slot, job.id, now))
    enqueue(store, [job], now, app=app)


batches.write_callbacks = enqueue  # a finished batch enqueues its callbacks (batches cannot import this)
