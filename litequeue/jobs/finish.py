"""Where a job is acknowledged: its claim is deleted and its outcome written
(``succeeded``, ``failed``, ``retrying``, ``cancelled``, ``expired``) together with the
writes it made; a payload that cannot run ends ``failed``.

Part of the job-state writer (:mod:`litequeue.jobs`); it runs inside the caller's write
transaction.
"""

from __future__ import annotations

import time
from collections import Counter as Tally
from collections.abc import Sequence
from typing import TYPE_CHECKING

from litequeue.base.states import AttemptOutcome, JobStatus
from litequeue.base.values import Claim, Finished, NewJob
from litequeue.jobs.batches import batch_members_finished, open_batch, seal_batch
from litequeue.jobs.claim import record_starts
from litequeue.jobs.counters import count_acked, count_failed, shard_of
from litequeue.jobs.dependencies import settle
from litequeue.jobs.enqueue import enqueue
from litequeue.jobs.limits import breaker_outcomes
from litequeue.jobs.rows import in_list, recount, statuses

if TYPE_CHECKING:
    from litequeue.engine.storage import LiteStorage

S = JobStatus


def ack(store: LiteStorage, holder: str, finished: Sequence[Finished]) -> list[Finished]:
    """Acknowledge finished jobs; return those acked.

    Fenced: only claims ``holder`` still holds are deleted, and only for those is anything
    written. A claim that was recovered meanwhile (its holder presumed dead) and perhaps
    run and finished elsewhere is not ours: its outcome here is dropped (the caller logs
    it). So is one the same holder claimed again since (it did not notice it was presumed
    dead): the recovery counted a crash on the row, so the row's ``crashes`` differs. The
    retry and follow-up rows are written in the same transaction that deletes the claim, so
    a crash leaves a duplicate, never a loss."""
    if not finished:
        return []
    now = time.time()
    row_ids = [i.claim.row_id for i in finished]
    pairs = [v for i in finished for v in (i.claim.row_id, i.claim.crashes)]
    held = {r[0] for r in store.sql(
        f"DELETE FROM lq_ready WHERE claimed_by = ? AND id IN {in_list(row_ids)} AND (id, crashes) IN "
        f"(VALUES {', '.join(['(?, ?)'] * len(finished))}) RETURNING id",
        (holder, *row_ids, *pairs)).fetchall()}
    acked = [i for i in finished if i.claim.row_id in held]
    if not acked:
        return []
    # Claimed ahead and both begun and ended since the last round: its start is written here.
    record_starts(store, holder, [(i.claim, i.started_at) for i in acked if i.claim.pending_start],
                  check_held=False)
    jobs = [job for item in acked if item.unit for job in item.unit.jobs]
    if jobs:
        enqueue(store, jobs, now, guarded=True)
    store.put_many([(store.name, key, value) for item in acked if item.unit
                    for key, value in item.unit.results])
    ids = [i.claim.job_id for i in acked]
    seen = statuses(store, ids)  # after the enqueue above: a retry under the same id counted itself
    store.many(
        "UPDATE lq_job SET status = ?, finished_at = ?, error = ?, traceback = ?, "
        "result = ?, updated_at = ? WHERE id = ?",
        [(i.status.value, i.finished_at if i.status.is_final else None, i.error,
          i.traceback, i.result, now, i.claim.job_id) for i in acked])
    recount(store, seen, ids)
    count_acked(store, acked, shard_of(store, holder))
    store.many(
        "UPDATE lq_attempt SET finished_at = ?, outcome = ?, error = ?, cpu_seconds = ?, peak_rss_bytes = ?, "
        "rss_scope = ? WHERE job_id = ? AND number = ?",
        [(i.finished_at, i.outcome.value, i.error, *_usage(i), i.claim.job_id, i.claim.attempt) for i in acked])
    settle(store, [i.claim.job_id for i in acked if i.status.is_final], now)
    # Not due yet (Huey put it on the schedule): taking it was no attempt at running it.
    early = [(i.claim.job_id, i.claim.attempt) for i in acked if i.outcome is AttemptOutcome.RELEASED]
    if early:
        store.many("DELETE FROM lq_attempt WHERE job_id = ? AND number = ?", early)
        store.many("UPDATE lq_job SET attempts = attempts - 1, "
                   "started_at = CASE WHEN attempts = 1 THEN NULL ELSE started_at END "
                   "WHERE id = ? AND attempts = ?", early)
    _count_finished(store, acked)
    _batch_ack(store, acked, now)
    if store.limits is not None and store.limits.breakers:
        breaker_outcomes(store, store.limits.breakers, acked, now)
    return acked


def _usage(item: Finished) -> tuple[float | None, int | None, str | None]:
    u = item.usage
    return (None, None, None) if u is None else (round(u.cpu_seconds, 6), u.peak_rss_bytes, u.rss_scope)


def _count_finished(store: LiteStorage, items: Sequence[Finished]) -> None:
    tally: Tally[tuple[str, str, str]] = Tally()
    durations: dict[tuple[str, str, str], float] = {}
    for item in items:
        if item.status.is_final:
            key = (item.claim.queue, item.task, item.status.value)
            tally[key] += 1
            durations[key] = durations.get(key, 0.0) + item.duration
    store.many(
        "INSERT INTO lq_finished (queue, task, outcome, count, duration_sum) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (queue, task, outcome) DO UPDATE SET "
        "count = lq_finished.count + excluded.count, "
        "duration_sum = lq_finished.duration_sum + excluded.duration_sum",
        [(*key, n, durations[key]) for key, n in tally.items()])


def fail_unrunnable(store: LiteStorage, holder: str, claim: Claim, error: str) -> bool:
    """A claimed payload that cannot run (cannot be unpickled, unknown task) ends
    ``failed`` with ``error``, kept in the ledger and retryable once the code is fixed.
    Fenced like :func:`ack`; returns whether the claim was still ours."""
    now = time.time()
    gone = store.sql("DELETE FROM lq_ready WHERE id = ? AND claimed_by = ? RETURNING id",
                     (claim.row_id, holder)).fetchone()
    if gone is None:
        return False
    if claim.pending_start:
        record_starts(store, holder, [(claim, claim.started_at or now)], check_held=False)
    seen = statuses(store, [claim.job_id])
    store.sql(f"UPDATE lq_job SET status = '{S.FAILED}', finished_at = ?, error = ?, updated_at = ? "
              "WHERE id = ?", (now, error, now, claim.job_id))
    recount(store, seen, [claim.job_id])
    count_failed(store, [claim.job_id], now)
    store.sql(f"UPDATE lq_attempt SET finished_at = ?, outcome = '{AttemptOutcome.FAILED}', error = ? "
              "WHERE job_id = ? AND number = ?", (now, error, claim.job_id, claim.attempt))
    settle(store, [claim.job_id], now)
    batch_members_finished(store, [(claim.job_id, S.FAILED.value)], now)
    return True


def _batch_ack(store: LiteStorage, acked: Sequence[Finished], now: float) -> None:
    """The batch side of an ack: what each job that succeeded did to batches while it ran
    (opened them, added members, sealed them; dropped for any other outcome: its next
    attempt does it again), then the final outcomes counted."""
    written: list[NewJob] = []
    for item in acked:
        unit = item.unit
        if unit is None or not unit.batch_ops or item.status is not S.SUCCEEDED:
            continue
        for kind, value in unit.batch_ops:
            if kind == "open":
                open_batch(store, value, now, strict=False)
        members = [value for kind, value in unit.batch_ops if kind == "job"]
        if members:
            enqueue(store, members, now, guarded=True)
            written.extend(members)
        for kind, value in unit.batch_ops:
            if kind == "seal":
                written.extend(seal_batch(store, value, now))
    written.extend(batch_members_finished(store, [(i.claim.job_id, i.status.value) for i in acked], now))
    if written:
        for item in acked:
            if item.unit is not None:
                item.unit.rings = True  # the consumer rings its doorbell after the commit
