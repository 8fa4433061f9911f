"""Actions on jobs and queues (retry, cancel, pause, resume, purge), shared by CLI and web.

They need only the database, never the user's code: a retry re-enqueues the original
payload under a new id (the worker gives a claimed payload its row's id).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from . import defaults
from .db import open_database
from .doorbell import BellTarget, bell_target, ring
from .errors import DatabaseError, JobNotFoundError, LiteQueueError
from .ids import new_job_id
from .ledger.queries import has_schema
from .status import FINAL_STATUSES, JobStatus
from .storage import LiteStorage, NewJob

RETRYABLE = {s.value for s in FINAL_STATUSES}
Hook = Callable[["LiteStorage", str, str], None]
#: Called as hook(storage, old_job_id, new_job_id) after a retry commits (the inbox moves
#: a failed file back here).
retry_hooks: list[Hook] = []


def open_store(db: str | None = None, *, create: bool = False, app: str = defaults.APP_NAME,
               readonly: bool = False) -> LiteStorage:
    """A storage on ``db`` for commands that need only the database, not the user's code."""
    database = open_database(db, create=create, readonly=readonly)
    if not create and not has_schema(database):
        raise DatabaseError(f"{database.database} is not a litequeue database (no lq_meta table); "
                            "point LITEQUEUE_DB at a litequeue database")
    return LiteStorage(app, database=database, create_tables=create)


def record_event(store: LiteStorage, action: str, *, job_id: str | None = None,
                 queue: str | None = None, detail: str | None = None, actor: str = "cli") -> None:
    store.sql("INSERT INTO lq_event (at, action, job_id, queue, detail, actor) VALUES (?, ?, ?, ?, ?, ?)",
              (time.time(), action, job_id, queue, detail, actor))


def _bell(store: LiteStorage) -> BellTarget:
    return bell_target(store.database.database, store.database)


def retry_jobs(store: LiteStorage, job_ids: Sequence[str], actor: str = "cli") -> dict[str, str]:
    """Re-enqueue finished jobs with their original arguments; returns {old id: new id}.

    Each new job links to the original (``retried_from``). Only final jobs (failed,
    cancelled, expired, succeeded) can be retried."""
    from .inbox import retry as _inbox_retry  # noqa: F401  (registers the inbox's retry hook)

    rows = {}
    for job_id in job_ids:
        row = store.sql("SELECT id, app, task, queue, priority, status, args, kwargs, payload, "
                        "crash_cap FROM lq_job WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise JobNotFoundError(f"no job {job_id!r} in the ledger; see `litequeue jobs list`")
        if row[5] not in RETRYABLE:
            raise LiteQueueError(f"job {job_id} is {row[5]}; only finished jobs "
                                 f"({', '.join(sorted(RETRYABLE))}) can be retried")
        if not row[8]:
            raise LiteQueueError(f"job {job_id} has no stored payload to retry")
        rows[job_id] = row
    mapping: dict[str, str] = {}
    now = time.time()
    by_app: dict[str, list[NewJob]] = {}
    for job_id, (_, app, task, queue, priority, _, args, kwargs, payload, cap) in rows.items():
        new_id = new_job_id()
        mapping[job_id] = new_id
        by_app.setdefault(app, []).append(NewJob(new_id, task, queue, priority, bytes(payload),
                                                 crash_cap=cap, args=args, kwargs=kwargs,
                                                 retried_from=job_id))
    for app, jobs in by_app.items():
        app_store = LiteStorage(app, database=store.database, create_tables=False)
        with app_store.write():
            app_store.insert_jobs(jobs, now)
            for job in jobs:
                record_event(app_store, "retry", job_id=job.retried_from, queue=job.queue,
                             detail=f"retried as {job.id}", actor=actor)
                # Inside the transaction: a consumer must not claim the new job before the
                # hooks ran (the inbox moves the file back first).
                for hook in retry_hooks:
                    hook(store, job.retried_from or "", job.id)
    ring(_bell(store))
    return mapping


def cancel_jobs(store: LiteStorage, job_ids: Sequence[str], actor: str = "cli") -> dict[str, str]:
    """Cancel jobs; returns {id: what happened}.

    A queued, scheduled, retrying or waiting job is removed from the queue and ends
    ``cancelled``. A running job is asked to stop (``current_job().cancelled``) and is
    revoked, so it will not run again if its worker dies."""
    out: dict[str, str] = {}
    now = time.time()
    with store.write():
        for job_id in job_ids:
            row = store.sql("SELECT status, queue, app FROM lq_job WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise JobNotFoundError(f"no job {job_id!r} in the ledger; see `litequeue jobs list`")
            status, queue, app = row
            if status in RETRYABLE:
                out[job_id] = f"already {status}"
                continue
            if status == JobStatus.RUNNING.value:
                flags = [(app, f"cancel:{job_id}", b"1"), (app, f"r:{job_id}", _revoke_once())]
                store.many("INSERT INTO lq_kv (queue, key, value) VALUES (?, ?, ?) ON CONFLICT "
                           "(queue, key) DO UPDATE SET value = excluded.value", flags)
                out[job_id] = "cancel requested (running)"
            else:
                store.sql("DELETE FROM lq_ready WHERE job_id = ? AND claimed_by IS NULL", (job_id,))
                store.sql("DELETE FROM lq_schedule WHERE job_id = ?", (job_id,))
                store.sql("UPDATE lq_job SET status = 'cancelled', finished_at = ?, updated_at = ?, "
                          "error = ? WHERE id = ?", (now, now, f"cancelled by {actor}", job_id))
                out[job_id] = "cancelled"
            record_event(store, "cancel", job_id=job_id, queue=queue, detail=out[job_id], actor=actor)
    return out


def _revoke_once() -> bytes:
    import pickle

    return pickle.dumps((None, True), pickle.HIGHEST_PROTOCOL)  # Huey's (revoke_until, once)


def pause_queues(store: LiteStorage, queues: Sequence[str], seconds: float | None = None,
                 actor: str = "cli") -> None:
    """Stop consumers taking new jobs from ``queues`` (running jobs finish); with
    ``seconds`` the pause ends by itself."""
    now = time.time()
    until = None if seconds is None else now + seconds
    with store.write():
        for queue in queues:
            store.sql("INSERT INTO lq_queue_state (queue, paused, paused_until, updated_at) "
                      "VALUES (?, ?, ?, ?) ON CONFLICT (queue) DO UPDATE SET paused = excluded.paused, "
                      "paused_until = excluded.paused_until, updated_at = excluded.updated_at",
                      (queue, True, until, now))
            record_event(store, "pause", queue=queue,
                         detail=f"for {seconds:g}s" if seconds else "until resumed", actor=actor)


def resume_queues(store: LiteStorage, queues: Sequence[str], actor: str = "cli") -> None:
    now = time.time()
    with store.write():
        for queue in queues:
            store.sql("UPDATE lq_queue_state SET paused = ?, paused_until = NULL, updated_at = ? "
                      "WHERE queue = ?", (False, now, queue))
            record_event(store, "resume", queue=queue, actor=actor)
    ring(_bell(store))


#: A job enqueued with a future ETA waits in the ready queue until a worker puts it on the
#: schedule (Huey's way); the ledger already says ``scheduled`` and purge leaves it alone.
_NOT_SCHEDULED = (" AND NOT EXISTS (SELECT 1 FROM lq_job j WHERE j.id = lq_ready.job_id "
                  "AND j.status = 'scheduled')")


def purge_queues(store: LiteStorage, queues: Sequence[str], dry_run: bool = False,
                 actor: str = "cli", batch: int = 1000,
                 progress: Callable[[int], None] | None = None) -> dict[str, int]:
    """Drop the *queued* (not running, not scheduled) jobs of ``queues``; they end
    ``cancelled`` in the ledger. Returns the count per queue."""
    counts: dict[str, int] = {}
    for queue in queues:
        if dry_run:
            counts[queue] = store.sql("SELECT COUNT(*) FROM lq_ready WHERE queue = ? AND claimed_by IS NULL"
                                      f"{_NOT_SCHEDULED}", (queue,)).fetchone()[0]
            continue
        counts[queue] = 0
        while True:  # batches, each its own short transaction: consumers never wait long
            now = time.time()
            with store.write():
                ids = [r[0] for r in store.sql(
                    "DELETE FROM lq_ready WHERE id IN (SELECT id FROM lq_ready WHERE queue = ? AND "
                    f"claimed_by IS NULL{_NOT_SCHEDULED} LIMIT ?) RETURNING job_id", (queue, batch)).fetchall()]
                store.many("UPDATE lq_job SET status = 'cancelled', finished_at = ?, updated_at = ?, "
                           "error = 'purged' WHERE id = ?", [(now, now, i) for i in ids])
            counts[queue] += len(ids)
            if progress is not None:
                progress(counts[queue])
            if len(ids) < batch:
                break
        with store.write():
            record_event(store, "purge", queue=queue, detail=f"{counts[queue]} job(s)", actor=actor)
    return counts
