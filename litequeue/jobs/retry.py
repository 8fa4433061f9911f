"""Where a finished job is retried: enqueued again with its original payload under a new id,
once, keeping its tags.

Part of the job-state writer (:mod:`litequeue.jobs`); it runs inside the caller's write
transaction.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from litequeue.base.errors import JobNotFoundError, LiteQueueError
from litequeue.base.ids import new_job_id
from litequeue.base.states import FINAL_VALUES
from litequeue.base.values import NewJob
from litequeue.jobs.dependencies import copy_tags
from litequeue.jobs.enqueue import enqueue
from litequeue.jobs.rows import in_list, record_event

if TYPE_CHECKING:
    from litequeue.engine.storage import LiteStorage


#: Called as hook(storage, old_job_id, new_job_id) inside a retry's transaction, for jobs
#: that have a file (the inbox moves the file back before any consumer can claim the job).
RetryHook = Callable[["LiteStorage", str, str], None]


def retry(store: LiteStorage, job_ids: Sequence[str], actor: str,
          hooks: Sequence[RetryHook] = ()) -> dict[str, str]:
    """Enqueue finished jobs again with their original payload, each under a new id linked
    to the original (``retried_from``); returns {old id: new id}.

    A job is retried once: the original is marked (``retried_as``) by the same statement
    that checks it is final, so of several concurrent retries exactly one makes a job and
    the others get that job's id. All or nothing: a job that is not final, or unknown,
    raises before anything is written."""
    now = time.time()
    mapping: dict[str, str] = {}
    by_app: dict[str, list[NewJob]] = {}
    for job_id in job_ids:
        new_id = new_job_id()
        row = store.sql(
            f"UPDATE lq_job SET retried_as = ?, updated_at = ? WHERE id = ? AND status IN {in_list(FINAL_VALUES)} "
            "AND retried_as IS NULL AND payload IS NOT NULL "
            "RETURNING app, task, queue, priority, args, kwargs, payload, crash_cap, has_file",
            (new_id, now, job_id, *FINAL_VALUES)).fetchone()
        if row is None:
            mapping[job_id] = _why_not_retried(store, job_id)
            continue
        app, task, queue, priority, args, kwargs, payload, cap, has_file = row
        mapping[job_id] = new_id
        by_app.setdefault(app, []).append(NewJob(
            new_id, task, queue, priority, bytes(payload), crash_cap=cap, args=args, kwargs=kwargs,
            retried_from=job_id, has_file=bool(has_file)))
    for app, batch in by_app.items():
        enqueue(store, batch, now, app=app)
        copy_tags(store, [(job.retried_from, job.id) for job in batch])
        for job in batch:
            record_event(store, "retry", job_id=job.retried_from, queue=job.queue,
                         detail=f"retried as {job.id}", actor=actor)
            if job.has_file:
                # Inside the transaction: no consumer may claim the new job before its
                # file is back where the payload says.
                for hook in hooks:
                    hook(store, job.retried_from or "", job.id)
    return mapping


def _why_not_retried(store: LiteStorage, job_id: str) -> str:
    row = store.sql("SELECT status, retried_as, payload IS NOT NULL FROM lq_job WHERE id = ?",
                    (job_id,)).fetchone()
    if row is None:
        raise JobNotFoundError(f"no job {job_id!r} in the ledger; see `litequeue jobs list`")
    status, retried_as, has_payload = row
    if retried_as:
        return str(retried_as)  # retried already (perhaps a moment ago, by someone else)
    if status not in FINAL_VALUES:
        raise LiteQueueError(f"job {job_id} is {status}; only finished jobs "
                             f"({', '.join(FINAL_VALUES)}) can be retried")
    if not has_payload:
        raise LiteQueueError(f"job {job_id} has no stored payload to retry")
    raise LiteQueueError(f"job {job_id} could not be retried")  # pragma: no cover - raced a prune
