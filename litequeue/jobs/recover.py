"""Where claims go back: released at a graceful stop, handed back to the queue, taken back
as never held, and recovered from a dead holder (``queued`` again, or ``failed`` at the
crash cap, or ``cancelled`` if someone asked).

Part of the job-state writer (:mod:`litequeue.jobs`); it runs inside the caller's write
transaction.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from litequeue.base.states import AttemptOutcome, JobStatus
from litequeue.base.values import Claim
from litequeue.jobs.batches import batch_members_finished
from litequeue.jobs.cancel import cancel_requests
from litequeue.jobs.counters import count_failed
from litequeue.jobs.dependencies import cancel_waiting_steps, settle
from litequeue.jobs.rows import in_list, recount, statuses

if TYPE_CHECKING:
    from litequeue.engine.storage import LiteStorage

S = JobStatus


def release(store: LiteStorage, holder: str, row_ids: Sequence[int] | None = None,
            reason: str = "released when its consumer stopped") -> int:
    """Hand ``holder``'s claims (all, or ``row_ids``) back to the ready queue: the job is
    ``queued`` again and its attempt ``interrupted``. Returns how many."""
    query = "UPDATE lq_ready SET claimed_by = NULL, claimed_at = NULL WHERE claimed_by = ?"
    params: list[Any] = [holder]
    if row_ids is not None:
        if not row_ids:
            return 0
        query += f" AND id IN {in_list(list(row_ids))}"
        params.extend(row_ids)
    job_ids = [r[0] for r in store.sql(query + " RETURNING job_id", params).fetchall()]
    _requeue(store, job_ids, reason, time.time(), crashed=False)
    return len(job_ids)


def unclaim_strays(store: LiteStorage, holder: str, keep: Sequence[int]) -> int:
    """Claims of ``holder`` other than ``keep`` go back to the ready queue as if never taken:
    they were claimed (and started) by a commit whose answer the connection lost, so their
    holder never had them, and no worker ran them. Their attempt is taken back, as a
    job released before it was due. Returns how many."""
    query = "UPDATE lq_ready SET claimed_by = NULL, claimed_at = NULL WHERE claimed_by = ?"
    if keep:
        query += f" AND id NOT IN {in_list(list(keep))}"
    job_ids = [r[0] for r in store.sql(query + " RETURNING job_id", (holder, *keep)).fetchall()]
    if not job_ids:
        return 0
    now = time.time()
    store.many(f"DELETE FROM lq_attempt WHERE job_id = ? AND outcome = '{AttemptOutcome.RUNNING}' "
               "AND number = (SELECT attempts FROM lq_job WHERE id = ?)", [(j, j) for j in job_ids])
    seen = statuses(store, job_ids)
    store.many(f"UPDATE lq_job SET status = '{S.QUEUED}', attempts = attempts - 1, updated_at = ?, "
               "started_at = CASE WHEN attempts = 1 THEN NULL ELSE started_at END "
               f"WHERE id = ? AND status = '{S.RUNNING}'", [(now, j) for j in job_ids])
    recount(store, seen, job_ids)
    return len(job_ids)


def _requeue(store: LiteStorage, job_ids: Sequence[str], reason: str, now: float, crashed: bool,
             peak: int | None = None) -> None:
    bump = ", crashes = crashes + 1" if crashed else ""
    seen = statuses(store, job_ids)
    store.many(f"UPDATE lq_job SET status = '{S.QUEUED}', updated_at = ?{bump} WHERE id = ?",
               [(now, j) for j in job_ids])
    recount(store, seen, job_ids)
    _interrupt_attempts(store, job_ids, reason, now, peak)


def _interrupt_attempts(store: LiteStorage, job_ids: Sequence[str], reason: str, now: float,
                        peak: int | None = None) -> None:
    """The running attempts of ``job_ids`` end ``interrupted`` with ``reason``; ``peak``: the
    resident memory last seen of the worker process that ran them (scope ``job``)."""
    used = "" if peak is None else f", peak_rss_bytes = {int(peak)}, rss_scope = 'job'"
    store.many(f"UPDATE lq_attempt SET outcome = '{AttemptOutcome.INTERRUPTED}', finished_at = ?, error = ?{used} "
               f"WHERE job_id = ? AND outcome = '{AttemptOutcome.RUNNING}'", [(now, reason, j) for j in job_ids])


def recover(store: LiteStorage, holder: str, reason: str = "its consumer died",
            row_ids: Sequence[int] | None = None, crashed: bool = True,
            peak_rss_bytes: int | None = None) -> tuple[int, int]:
    """Take back a dead holder's claims (all, or ``row_ids``: the one a dead worker process
    ran): to ``queued`` with the attempt ``interrupted``, or to ``failed`` once the job's
    worker has died ``crash_cap`` times. Returns (requeued, failed). ``peak_rss_bytes``: the
    dead worker process's last resident memory seen, recorded with its attempt.

    Only a worker's death counts toward the crash cap: not ``crashed`` (the holder's
    process lives, only its database session went), and not a claim never started (a due
    job taken from the schedule, not yet run). The queue row counts every take-back all the
    same (``lq_ready.crashes``): it fences the old run's ack (:func:`litequeue.jobs.finish.ack`)."""
    now = time.time()
    only = f" AND id IN {in_list(list(row_ids))}" if row_ids else ""
    rows = store.sql(
        "UPDATE lq_ready SET claimed_by = NULL, claimed_at = NULL, crashes = crashes + 1 "
        f"WHERE claimed_by = ?{only} RETURNING id, job_id, crash_cap", (holder, *(row_ids or ()))).fetchall()
    if not rows:
        return 0, 0
    jobs = {job_id: (crashes, status) for job_id, crashes, status in store.sql(
        f"SELECT id, crashes, status FROM lq_job WHERE id IN {in_list([r[1] for r in rows])}",
        [r[1] for r in rows]).fetchall()}
    # A job someone asked to cancel ends cancelled instead: its worker died, or was stopped
    # for the cancel (cancelling.stop_worker_process).
    asked = cancel_requests(store, [r[1] for r in rows])
    if asked:
        _end_cancelled(store, [(r[0], r[1]) for r in rows if r[1] in asked], asked, reason, now)
        rows = [r for r in rows if r[1] not in asked]
    died = {j for _, j, _ in rows if crashed and jobs.get(j, (0, S.RUNNING.value))[1] == S.RUNNING.value}
    spared = [j for _, j, _ in rows if j not in died]
    _requeue(store, spared, reason, now, crashed=False)
    rows = [r for r in rows if r[1] in died]
    requeued = [job_id for _, job_id, cap in rows if jobs.get(job_id, (0,))[0] + 1 < cap]
    failed = [(row_id, job_id, jobs.get(job_id, (0,))[0] + 1) for row_id, job_id, cap in rows
              if jobs.get(job_id, (0,))[0] + 1 >= cap]
    _requeue(store, requeued, reason, now, crashed=True, peak=peak_rss_bytes)
    store.many("DELETE FROM lq_ready WHERE id = ?", [(r,) for r, _, _ in failed])
    seen = statuses(store, [j for _, j, _ in failed])
    for _, job_id, n in failed:
        error = f"worker died while running this job ({n} time{'s' if n != 1 else ''})"
        store.sql(f"UPDATE lq_job SET status = '{S.FAILED}', crashes = ?, finished_at = ?, "
                  "error = ?, updated_at = ? WHERE id = ?", (n, now, error, now, job_id))
    recount(store, seen, [j for _, j, _ in failed])
    count_failed(store, [j for _, j, _ in failed], now)
    _interrupt_attempts(store, [j for _, j, _ in failed], reason, now, peak_rss_bytes)
    settle(store, [j for _, j, _ in failed], now)
    batch_members_finished(store, [(j, S.FAILED.value) for _, j, _ in failed], now)
    return len(spared) + len(requeued), len(failed)


def _end_cancelled(store: LiteStorage, rows: Sequence[tuple[int, str]], asked: dict[str, str],
                   reason: str, now: float) -> None:
    """Recovered claims of jobs asked to cancel: the claim goes, the job and its running
    attempt end ``cancelled``, saying who asked and what stopped it."""
    store.many("DELETE FROM lq_ready WHERE id = ?", [(row_id,) for row_id, _ in rows])
    ids = [job_id for _, job_id in rows]
    notes = {j: f"cancelled by {asked[j]}; {reason}" for j in ids}
    seen = statuses(store, ids)
    store.many(f"UPDATE lq_job SET status = '{S.CANCELLED}', finished_at = ?, updated_at = ?, error = ? "
               f"WHERE id = ? AND status = '{S.RUNNING}'", [(now, now, notes[j], j) for j in ids])
    recount(store, seen, ids)
    store.many(f"UPDATE lq_attempt SET outcome = '{AttemptOutcome.CANCELLED}', finished_at = ?, error = ? "
               f"WHERE job_id = ? AND outcome = '{AttemptOutcome.RUNNING}'", [(now, notes[j], j) for j in ids])
    cancel_waiting_steps(store, ids, now)
    settle(store, ids, now)
    batch_members_finished(store, [(j, S.CANCELLED.value) for j in ids], now)


def hand_back(store: LiteStorage, holder: str, claim: Claim, data: bytes) -> int:
    """Give a claimed job back to the ready queue with ``data`` as its payload (a job
    ``dequeue()`` handed out, enqueued again). Fenced by ``holder``."""
    store.sql("UPDATE lq_ready SET data = ? WHERE id = ? AND claimed_by = ?", (data, claim.row_id, holder))
    if claim.attempt:
        return release(store, holder, [claim.row_id], reason="handed back to the queue by enqueue()")
    return store.sql("UPDATE lq_ready SET claimed_by = NULL, claimed_at = NULL "
                     "WHERE id = ? AND claimed_by = ?", (claim.row_id, holder)).rowcount
