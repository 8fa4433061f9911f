"""Where a job is cancelled: one job (a running one is asked to stop), a queue's queued jobs
purged, the app's waiting rows flushed (Huey's ``flush``); and who asked to cancel.

Part of the job-state writer (:mod:`litequeue.jobs`); it runs inside the caller's write
transaction. A recovered claim of a job asked to cancel ends in :mod:`litequeue.jobs.recover`.
"""

from __future__ import annotations

import pickle
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from litequeue.base.errors import JobNotFoundError
from litequeue.base.states import NOT_STARTED_VALUES, JobStatus
from litequeue.jobs.batches import batch_members_finished
from litequeue.jobs.dependencies import cancel_waiting_steps, settle
from litequeue.jobs.rows import in_list, record_event, recount, statuses
from litequeue.ledger.queries import NOT_SCHEDULED

if TYPE_CHECKING:
    from litequeue.engine.storage import LiteStorage

S = JobStatus


def cancel(store: LiteStorage, job_id: str, actor: str) -> str:
    """Cancel one job; returns what happened.

    A job that has not started (``waiting``, ``scheduled``, ``queued``, ``retrying``)
    leaves the queue and ends ``cancelled``, and so do the pipeline steps waiting on it.
    A running job is asked to stop (``current_job().cancelled``; its consumer stops it
    after a grace period, see runtime/cancel_watch.py) and revoked, so it will not run again
    should its worker die (:func:`litequeue.jobs.recover.recover` ends it ``cancelled``)."""
    now = time.time()
    # The queue row first (claims lock it first too): a claim that won keeps its row.
    store.sql("DELETE FROM lq_ready WHERE job_id = ? AND claimed_by IS NULL", (job_id,))
    store.sql("DELETE FROM lq_schedule WHERE job_id = ?", (job_id,))
    # Still claimed: a consumer took it ahead (``queued`` until a worker begins it) and may
    # begin it any moment, so it is asked to stop like a running job.
    held = store.sql("SELECT 1 FROM lq_ready WHERE job_id = ?", (job_id,)).fetchone() is not None
    seen = statuses(store, [job_id])
    done = None if held else store.sql(
        f"UPDATE lq_job SET status = '{S.CANCELLED}', finished_at = ?, updated_at = ?, error = ? "
        f"WHERE id = ? AND status IN {in_list(NOT_STARTED_VALUES)} RETURNING queue",
        (now, now, f"cancelled by {actor}", job_id, *NOT_STARTED_VALUES)).fetchone()
    if done is not None:
        recount(store, seen, [job_id])
        steps = cancel_waiting_steps(store, [job_id], now)
        settle(store, [job_id], now)
        batch_members_finished(store, [(job_id, S.CANCELLED.value)], now)
        outcome = "cancelled" + (f" (and {steps} pipeline step(s) waiting on it)" if steps else "")
        record_event(store, "cancel", job_id=job_id, queue=done[0], detail=outcome, actor=actor)
        return outcome
    row = store.sql("SELECT status, queue, app FROM lq_job WHERE id = ?", (job_id,)).fetchone()
    if row is None:
        raise JobNotFoundError(f"no job {job_id!r} in the ledger; see `litequeue jobs list`")
    status, queue, app = row
    if status != S.RUNNING.value and not (held and status == S.QUEUED.value):
        return f"already {status}"
    revoke_once = pickle.dumps((None, True), pickle.HIGHEST_PROTOCOL)  # Huey's (revoke_until, once)
    # The cancel key holds who asked: the attempt names them when the job ends cancelled.
    store.put_many([(app, f"cancel:{job_id}", actor.encode()), (app, f"r:{job_id}", revoke_once)])
    outcome = "cancel requested (running)"
    record_event(store, "cancel", job_id=job_id, queue=queue, detail=outcome, actor=actor)
    return outcome


def purge(store: LiteStorage, queue: str | None, batch: int, tag: str | None = None) -> int:
    """Up to ``batch`` queued (not running, not scheduled) jobs of ``queue`` (any queue:
    None), and of ``tag`` if given, end ``cancelled`` ("purged"). Returns how many."""
    now = time.time()
    where = [f"claimed_by IS NULL{NOT_SCHEDULED}"]
    params: list[Any] = []
    if queue is not None:
        where.append("queue = ?")
        params.append(queue)
    if tag is not None:
        where.append("job_id IN (SELECT job_id FROM lq_job_tag WHERE tag = ?)")
        params.append(tag)
    ids = [r[0] for r in store.sql(
        f"DELETE FROM lq_ready WHERE id IN (SELECT id FROM lq_ready WHERE {' AND '.join(where)} LIMIT ?) "
        "RETURNING job_id", (*params, batch)).fetchall()]
    seen = statuses(store, ids)
    store.many(f"UPDATE lq_job SET status = '{S.CANCELLED}', finished_at = ?, updated_at = ?, "
               f"error = 'purged' WHERE id = ? AND status IN ('{S.QUEUED}', '{S.RETRYING}')",
               [(now, now, i) for i in ids])
    recount(store, seen, ids)
    settle(store, ids, now)
    batch_members_finished(store, [(i, S.CANCELLED.value) for i in ids], now)
    return len(ids)


def flush(store: LiteStorage, table: str) -> int:
    """Huey's ``flush``: drop every job of the app waiting in ``lq_ready`` (unclaimed) or
    ``lq_schedule``; they end ``cancelled`` ("flushed"). Returns how many."""
    now = time.time()
    unclaimed = " AND claimed_by IS NULL" if table == "lq_ready" else ""
    ids = [r[0] for r in store.sql(f"DELETE FROM {table} WHERE app = ?{unclaimed} RETURNING job_id",
                                   (store.name,)).fetchall()]
    seen = statuses(store, ids)
    store.many(f"UPDATE lq_job SET status = '{S.CANCELLED}', finished_at = ?, updated_at = ?, "
               f"error = 'flushed' WHERE id = ? AND status IN {in_list(NOT_STARTED_VALUES)}",
               [(now, now, i, *NOT_STARTED_VALUES) for i in ids])
    recount(store, seen, ids)
    settle(store, ids, now)
    batch_members_finished(store, [(i, S.CANCELLED.value) for i in ids], now)
    return len(ids)


def cancel_requests(store: LiteStorage, job_ids: Sequence[str]) -> dict[str, str]:
    """{job id: who asked} for the jobs among ``job_ids`` someone asked to cancel."""
    rows = store.sql("SELECT j.id, kv.value FROM lq_job j JOIN lq_kv kv ON kv.queue = j.app "
                     f"AND kv.key = 'cancel:' || j.id WHERE j.id IN {in_list(job_ids)}", list(job_ids)).fetchall()
    return {job_id: cancel_actor(value) for job_id, value in rows}


def cancel_actor(value: Any) -> str:
    """Who asked, from a ``cancel:`` key's value (``1`` from older releases)."""
    if isinstance(value, memoryview):
        value = value.tobytes()
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value or "")
    return "someone" if text in ("", "1") else text
