"""The batch writes: a batch opened, sealed and fed members, its members' final outcomes
counted, and the batch finished once (its callbacks enqueued in that transaction).

The API people use (``app.batch(...)``, ``map_into``) is :mod:`litequeue.engine.batches`;
this module is the part of the job-state writer (:mod:`litequeue.jobs`) it writes through.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from litequeue.base.errors import BatchClosedError
from litequeue.base.states import FINAL_VALUES, JobStatus
from litequeue.base.values import JobOptions, NewBatch, NewJob
from litequeue.jobs.rows import in_list

if TYPE_CHECKING:
    from litequeue.engine.storage import LiteStorage

S = JobStatus
log = logging.getLogger("litequeue.transitions")


def _enqueue_not_loaded(store: LiteStorage, jobs: Sequence[NewJob], now: float, *, app: str) -> None:
    raise RuntimeError("litequeue.jobs.enqueue sets batches.write_callbacks when it loads")  # pragma: no cover


#: How a finished batch's callback jobs are enqueued, ``write_callbacks(store, jobs, now, app=app)``:
#: :func:`litequeue.jobs.enqueue.enqueue`, which sets it when it loads (``litequeue.jobs`` loads
#: it first). Enqueue reaches this module (a new member joins its batch in the enqueue's
#: transaction), so this module cannot import it back.
write_callbacks: Callable[..., None] = _enqueue_not_loaded

# A batch's counters move in the transaction of each member's final transition (the ack, a
# crash-cap recover, a cancel, a purge), and the statement that finds the last member counted
# (a conditional UPDATE ... RETURNING, ``finished_at IS NULL`` in its WHERE) is the one that
# enqueues the callbacks, in that transaction: a SIGKILL at any moment leaves either the count
# and the callback or neither, and two consumers racing on the last members cannot both win.
# A nested batch holds one slot in its parent, counted when its on_complete job has finished
# (or, without one, when its last member has).

_BATCH_FINISH = (
    "UPDATE lq_batch SET finished_at = ?, "
    "completed_at = CASE WHEN on_complete_id IS NULL THEN ? ELSE completed_at END, "
    "failure_fired_at = CASE WHEN failed > 0 AND on_failure_id IS NOT NULL THEN ? ELSE NULL END "
    "WHERE id = ? AND sealed = 1 AND finished_at IS NULL AND succeeded + failed >= total "
    "RETURNING app, parent_id, failed, on_complete_id, on_complete_payload, on_complete_meta, "
    "on_failure_id, on_failure_payload, on_failure_meta")


def _job_meta(job: NewJob) -> str:
    tags = list(job.options.tags) if job.options else []
    return json.dumps({"task": job.task, "queue": job.queue, "priority": job.priority,
                       "crash_cap": job.crash_cap, "args": job.args, "kwargs": job.kwargs, "tags": tags})


def _job_from(job_id: str, payload: bytes, meta: str) -> NewJob:
    m = json.loads(meta)
    return NewJob(job_id, m["task"], m["queue"], m["priority"], bytes(payload), crash_cap=m["crash_cap"],
                  args=m["args"], kwargs=m["kwargs"],
                  options=JobOptions(tags=tuple(m["tags"])) if m.get("tags") else None)


def open_batch(store: LiteStorage, batch: NewBatch, now: float, strict: bool = True) -> None:
    """Open ``batch`` (unsealed, no members yet); a nested one takes a slot in its parent,
    which must not have finished (``strict=False``: it is opened on its own instead)."""
    parent = batch.parent_id
    if parent is not None and store.sql("UPDATE lq_batch SET total = total + 1 WHERE id = ? "
                                        "AND finished_at IS NULL RETURNING id", (parent,)).fetchone() is None:
        if strict:
            raise BatchClosedError(_why_closed(store, parent))
        log.warning("batch %s opened outside batch %s: %s", batch.id, parent, _why_closed(store, parent))
        parent = None
    done, fail = batch.on_complete, batch.on_failure
    store.sql("INSERT INTO lq_batch (id, app, name, parent_id, total, succeeded, failed, sealed, on_complete_id, "
              "on_complete_payload, on_complete_meta, on_failure_id, on_failure_payload, on_failure_meta, "
              "created_at) VALUES (?, ?, ?, ?, 0, 0, 0, 0, ?, ?, ?, ?, ?, ?, ?)",
              (batch.id, batch.app, batch.name, parent,
               done.id if done else None, done.data if done else None, _job_meta(done) if done else None,
               fail.id if fail else None, fail.data if fail else None, _job_meta(fail) if fail else None, now))


def seal_batch(store: LiteStorage, batch_id: str, now: float) -> list[NewJob]:
    """No more members from its opener: the batch may finish now (at once if every member
    has). Returns the callback jobs that enqueued."""
    if store.sql("UPDATE lq_batch SET sealed = 1, sealed_at = ? WHERE id = ? RETURNING id",
                 (now, batch_id)).fetchone() is None:
        raise BatchClosedError(f"no batch {batch_id!r}; see `litequeue batches list`")
    return _finish_batches(store, [batch_id], now)


def _why_closed(store: LiteStorage, batch_id: str) -> str:
    row = store.sql("SELECT name, finished_at FROM lq_batch WHERE id = ?", (batch_id,)).fetchone()
    if row is None:
        return f"no batch {batch_id!r}; open it with app.batch(...) first"
    return (f"batch {batch_id} ({row[0]}) has finished: its callbacks ran; add jobs while it runs "
            "(from its opener's block or from one of its own jobs)")


def add_batch_members(store: LiteStorage, jobs: Sequence[NewJob], strict: bool) -> None:
    """Count new jobs into their batches (``lq_job.batch_id``, ``total``), in their
    enqueue's transaction. A finished batch refuses them (``strict=False``: they are
    written outside it, with a warning: an ack must not fail)."""
    by_batch: dict[str, list[str]] = {}
    for job in jobs:
        if job.options is not None and job.options.batch_id and not job.retry and not job.waiting:
            by_batch.setdefault(job.options.batch_id, []).append(job.id)
    for batch_id, ids in by_batch.items():
        added = 0
        for start_at in range(0, len(ids), 500):
            chunk = ids[start_at:start_at + 500]
            added += len(store.sql(f"UPDATE lq_job SET batch_id = ? WHERE id IN {in_list(chunk)} AND batch_id IS NULL "
                                   "RETURNING id", (batch_id, *chunk)).fetchall())
        if store.sql("UPDATE lq_batch SET total = total + ? WHERE id = ? AND finished_at IS NULL RETURNING id",
                     (added, batch_id)).fetchone() is None:
            if strict:
                raise BatchClosedError(_why_closed(store, batch_id))
            log.warning("%d job(s) enqueued outside batch %s: %s", added, batch_id, _why_closed(store, batch_id))
            store.sql(f"UPDATE lq_job SET batch_id = NULL WHERE id IN {in_list(ids)} AND batch_id = ?",
                      (*ids, batch_id))


def batch_members_finished(store: LiteStorage, outcomes: Sequence[tuple[str, str]], now: float) -> list[NewJob]:
    """Jobs reached a final status ((job id, status) pairs): count the members in their
    batches and the on_complete jobs in their batch's parent, and finish the batches that
    are done. Call in the transaction that wrote the statuses. Returns the callback jobs
    that enqueued."""
    status_of = {job_id: status for job_id, status in outcomes if status in FINAL_VALUES}
    if not status_of:
        return []
    ids = list(status_of)
    rows = store.sql(f"SELECT id, batch_id, 0 FROM lq_job WHERE id IN {in_list(ids)} AND batch_id IS NOT NULL "
                     f"UNION ALL SELECT on_complete_id, id, 1 FROM lq_batch WHERE on_complete_id IN {in_list(ids)}",
                     (*ids, *ids)).fetchall()
    tally: dict[str, list[int]] = {}
    for job_id, batch_id, is_callback in rows:
        ok = status_of[job_id] == S.SUCCEEDED.value
        if is_callback:
            done = store.sql("UPDATE lq_batch SET completed_at = ? WHERE id = ? AND completed_at IS NULL "
                             "RETURNING parent_id, failed", (now, batch_id)).fetchone()
            if done is None or done[0] is None:
                continue
            batch_id, ok = done[0], ok and not done[1]
        tally.setdefault(batch_id, [0, 0])[0 if ok else 1] += 1
    return _count_in_batches(store, tally, now)


def _count_in_batches(store: LiteStorage, tally: dict[str, list[int]], now: float) -> list[NewJob]:
    for batch_id in sorted(tally):  # one lock order for every writer (PostgreSQL)
        ok, bad = tally[batch_id]
        store.sql("UPDATE lq_batch SET succeeded = succeeded + ?, failed = failed + ? WHERE id = ?",
                  (ok, bad, batch_id))
    return _finish_batches(store, sorted(tally), now)


def _finish_batches(store: LiteStorage, batch_ids: Sequence[str], now: float) -> list[NewJob]:
    """Finish each batch whose members have all finished, once: enqueue its callbacks and,
    without an on_complete job, count it in its parent right away."""
    fired: list[NewJob] = []
    for batch_id in batch_ids:
        row = store.sql(_BATCH_FINISH, (now, now, now, batch_id)).fetchone()
        if row is None:
            continue
        app, parent, failed, done_id, done_data, done_meta, fail_id, fail_data, fail_meta = row
        jobs = [_job_from(done_id, done_data, done_meta)] if done_id else []
        if failed and fail_id:
            jobs.append(_job_from(fail_id, fail_data, fail_meta))
        if jobs:
            write_callbacks(store, jobs, now, app=app)
            fired.extend(jobs)
        if parent is not None and not done_id:
            fired.extend(_count_in_batches(store, {parent: [0, 1] if failed else [1, 0]}, now))
    return fired
