"""Every change of a job's state, one named function each, and the only writer of the queue
and ledger rows.

A job's life, and the function that moves it along:

==============  =====================================================================
``enqueue``     new queue (or schedule) row + ledger row, ``queued`` / ``scheduled`` /
                ``waiting`` (a pipeline step)
``dispatch_due``  due scheduled rows move to the ready queue (``scheduled``/``retrying``
                -> ``queued``)
``claim``       ready rows get a holder; ``start`` marks them ``running`` with an attempt
``ack``         the claim is deleted and the outcome written (``succeeded``, ``failed``,
                ``retrying``, ``cancelled``, ``expired``), with the writes the job made
``fail_unrunnable``  a claimed payload that cannot run ends ``failed`` with the reason
``release``     a claim handed back at a graceful stop (attempt ``interrupted``)
``recover``     a dead holder's claims go back to ``queued``, or ``failed`` at the crash cap
``cancel``      ``waiting``/``scheduled``/``queued``/``retrying`` -> ``cancelled``; a
                running job is asked to stop
``retry``       a final job is enqueued again under a new id, once
``purge``       queued jobs of a queue -> ``cancelled``
``prune_jobs``  finished jobs (and their attempts and results) are deleted
==============  =====================================================================

Each transition states its precondition in its ``WHERE`` (``AND claimed_by = ?``,
``AND status IN (...)``) and learns from ``RETURNING`` whether it happened, so two actors
racing on one job cannot both win. Every function runs inside the caller's write
transaction unless it says it opens its own. Statuses come from :class:`JobStatus`.

The consumer registry, queue pauses and the event log are written here too, so that a grep
for ``INSERT``/``UPDATE``/``DELETE`` on an ``lq_`` table finds this module (and the Huey
key/value store in ``storage.py``, the inbox's own table, and the migrations) only.
"""

from __future__ import annotations

import json
import logging
import pickle
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from litequeue.base.errors import BatchClosedError, DependencyError, JobNotFoundError, LiteQueueError
from litequeue.base.ids import new_job_id
from litequeue.base.states import FINAL_VALUES, NOT_STARTED_VALUES, AttemptOutcome, BreakerState, JobStatus
from litequeue.base.values import Claim, Finished, JobOptions, NewBatch, NewJob
from litequeue.ledger.queries import NOT_SCHEDULED
from litequeue.store.dialect import marks, skip_locked

if TYPE_CHECKING:
    from litequeue.engine.storage import LiteStorage

S = JobStatus
log = logging.getLogger("litequeue.transitions")
FINAL = FINAL_VALUES
NOT_STARTED = NOT_STARTED_VALUES
#: Called as hook(storage, old_job_id, new_job_id) inside a retry's transaction, for jobs
#: that have a file (the inbox moves the file back before any consumer can claim the job).
RetryHook = Callable[["LiteStorage", str, str], None]


def _in(values: Sequence[str]) -> str:
    return f"({marks(len(values))})"


# -- enqueue --------------------------------------------------------------------------------

def enqueue(store: LiteStorage, jobs: Sequence[NewJob], now: float, *, guarded: bool = False,
            app: str | None = None) -> None:
    """Write queue (or schedule) rows and ledger rows for ``jobs`` (of ``app``, by default
    the storage's own).

    ``guarded``: skip the queue row of a job the ledger already has as ``cancelled`` (a
    pipeline step cancelled while it waited must not run when its parent finishes). Only
    cancelled: Huey enqueues an error callback again under the same id on every failure."""
    name = app or store.name
    jobs, write_options = _job_options(store, jobs, now)
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
                               job.retried_from, job.crash_cap, int(job.has_file)))
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
    store.many(
        "INSERT INTO lq_job (id, app, task, queue, priority, status, args, kwargs, payload, "
        "enqueued_at, eta, updated_at, parent_id, retried_from, crash_cap, has_file, attempts, crashes) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0) "
        "ON CONFLICT (id) DO UPDATE SET status = excluded.status, eta = excluded.eta, "
        "enqueued_at = excluded.enqueued_at, updated_at = excluded.updated_at, "
        "payload = excluded.payload, parent_id = COALESCE(lq_job.parent_id, excluded.parent_id) "
        f"WHERE lq_job.status = '{S.WAITING}'",
        ledger_new,
    )
    store.many("UPDATE lq_job SET status = ?, eta = ?, updated_at = ? WHERE id = ?", ledger_retry)
    write_options()
    _add_batch_members(store, jobs, strict=not guarded)


# -- dispatch -------------------------------------------------------------------------------

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
    store.many(f"UPDATE lq_job SET status = '{S.QUEUED}', updated_at = ? "
               f"WHERE id = ? AND status IN ('{S.SCHEDULED}', '{S.RETRYING}')", [(now, r[3]) for r in rows])
    return len(rows)


def fire_periodic(store: LiteStorage, task: str, slot: str, job: NewJob, now: float,
                  app: str | None = None) -> None:
    """Record a periodic run under its unique (task, slot) key and enqueue its job (of
    ``app``, by default the storage's own); raises ``IntegrityError`` (and writes nothing,
    with the caller's transaction) if it fired."""
    store.sql("INSERT INTO lq_periodic_run (task, slot, job_id, created_at) VALUES (?, ?, ?, ?)",
              (task, slot, job.id, now))
    enqueue(store, [job], now, app=app)


# -- claim and start ------------------------------------------------------------------------

def claim(store: LiteStorage, holder: str, queues: Sequence[str] | None, limit: int,
          paused: Iterable[str], worker: str | None = None, isolate: str | None = None) -> list[Claim]:
    """Claim up to ``limit`` ready jobs for ``holder`` and :func:`start` them.

    ``queues`` are served in strict order; ``None`` means every queue, highest priority
    first, then oldest. Paused queues are skipped. ``isolate`` (thread consumers, where a
    job that kills its worker kills the jobs beside it): ``"others"`` claims only jobs no
    worker died on; ``"suspect-first"`` claims one job a worker died on, alone, or else as
    ``"others"``."""
    if limit <= 0:
        return []
    paused = set(paused)
    now = time.time()
    lock = skip_locked(store.database)
    if isolate == "suspect-first":
        suspects = claim(store, holder, queues, 1, paused, worker, "suspect")
        if suspects:
            return suspects
        isolate = "others"
    crashed = {None: "", "others": " AND crashes = 0", "suspect": " AND crashes > 0"}[isolate]
    update = "UPDATE lq_ready SET claimed_by = ?, claimed_at = ? WHERE id IN ("
    returning = ") RETURNING id, job_id, queue, priority, data, crash_cap, crashes, has_file"
    claims: list[Claim] = []
    limits = store.limits
    gate = _Gate(store, limits, now) if limits is not None and limits.active else None
    if gate is not None and gate.needed:  # a concurrency limit, or a breaker not closed
        claims = gate.claim(store, holder, queues, limit, paused, crashed.replace("crashes", "r.crashes"))
    elif queues:
        for queue in queues:
            if queue in paused:
                continue
            claims.extend(_claim_rows(store, update + (
                f"SELECT id FROM lq_ready WHERE app = ? AND queue = ? AND claimed_by IS NULL{crashed} "
                f"ORDER BY priority DESC, id LIMIT ?{lock}") + returning,
                (holder, now, store.name, queue, limit - len(claims)), now))
            if len(claims) >= limit:
                break
    else:
        skip = f" AND queue NOT IN {_in(sorted(paused))}" if paused else ""
        claims.extend(_claim_rows(store, update + (
            f"SELECT id FROM lq_ready WHERE app = ? AND claimed_by IS NULL{skip}{crashed} "
            f"ORDER BY priority DESC, id LIMIT ?{lock}") + returning,
            (holder, now, store.name, *sorted(paused), limit), now))
    if claims:
        start(store, claims, holder if worker is None else worker, now)
        if not _revocations_exist(store):
            for c in claims:
                c.revocable = False
    order = {q: i for i, q in enumerate(queues or ())}
    claims.sort(key=lambda c: (order.get(c.queue, 0), -c.priority, c.row_id))
    return claims


def claim_due(store: LiteStorage, holder: str, until: float) -> list[Claim]:
    """Move the jobs due at ``until`` from the schedule to ready, claimed by ``holder`` but
    not started (Huey's ``read_schedule``); soonest first."""
    now = time.time()
    rows = store.sql(
        "DELETE FROM lq_schedule WHERE app = ? AND eta <= ? "
        "RETURNING id, queue, priority, job_id, data, crash_cap, eta, has_file",
        (store.name, until)).fetchall()
    rows.sort(key=lambda r: (r[6], r[0]))
    claims = []
    for _, queue, priority, job_id, data, cap, _, has_file in rows:
        row_id = store.sql(
            "INSERT INTO lq_ready (app, queue, priority, job_id, data, crash_cap, enqueued_at, "
            "claimed_by, claimed_at, has_file) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (store.name, queue, priority, job_id, data, cap, now, holder, now, has_file)).fetchone()[0]
        claims.append(Claim(row_id, job_id, queue, priority, bytes(data), cap, attempt=0,
                            has_file=bool(has_file)))
    store.many(f"UPDATE lq_job SET status = '{S.QUEUED}', updated_at = ? "
               f"WHERE id = ? AND status IN ('{S.SCHEDULED}', '{S.RETRYING}')", [(now, c.job_id) for c in claims])
    return claims


def start_claimed(store: LiteStorage, holder: str, claim: Claim) -> None:
    """Start a job claimed but not started (``dequeue``/``read_schedule`` then ``execute``)."""
    now = time.time()
    start(store, [claim], holder, now)
    claim.claimed_at = now
    claim.revocable = _revocations_exist(store)


def hand_back(store: LiteStorage, holder: str, claim: Claim, data: bytes) -> int:
    """Give a claimed job back to the ready queue with ``data`` as its payload (a job
    ``dequeue()`` handed out, enqueued again). Fenced by ``holder``."""
    store.sql("UPDATE lq_ready SET data = ? WHERE id = ? AND claimed_by = ?", (data, claim.row_id, holder))
    if claim.attempt:
        return release(store, holder, [claim.row_id], reason="handed back to the queue by enqueue()")
    return store.sql("UPDATE lq_ready SET claimed_by = NULL, claimed_at = NULL "
                     "WHERE id = ? AND claimed_by = ?", (claim.row_id, holder)).rowcount


def _claim_rows(store: LiteStorage, query: str, params: Sequence[Any], now: float) -> list[Claim]:
    return [Claim(row_id, job_id, queue, priority, bytes(data), crash_cap, claimed_at=now,
                  suspect=crashes > 0, has_file=bool(has_file), crashes=crashes)
            for row_id, job_id, queue, priority, data, crash_cap, crashes, has_file
            in store.sql(query, params).fetchall()]


def _revocations_exist(store: LiteStorage) -> bool:
    """Any Huey revoke key (``r:<id>`` or ``rt:<task>``) at all? Two index probes."""
    return store.sql(
        "SELECT 1 FROM lq_kv WHERE queue = ? AND ((key >= 'r:' AND key < 'r;') OR "
        "(key >= 'rt:' AND key < 'rt;')) LIMIT 1", (store.name,)).fetchone() is not None


def start(store: LiteStorage, claims: list[Claim], worker: str, now: float) -> None:
    """Mark claimed jobs ``running`` and open an attempt for each (numbers them)."""
    by_id = {c.job_id: c for c in claims}
    rows = store.sql(
        f"UPDATE lq_job SET status = '{S.RUNNING}', started_at = ?, attempts = attempts + 1, "
        f"worker = ?, updated_at = ? WHERE id IN {_in(list(by_id))} RETURNING id, attempts",
        (now, worker, now, *by_id)).fetchall()
    for job_id, attempts in rows:
        by_id[job_id].attempt = attempts
    store.many("INSERT INTO lq_attempt (job_id, number, consumer_id, started_at, outcome) "
               f"VALUES (?, ?, ?, ?, '{AttemptOutcome.RUNNING}') ON CONFLICT (job_id, number) DO NOTHING",
               [(c.job_id, c.attempt, worker, now) for c in claims])


# -- ack --------------------------------------------------------------------------------------

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
        f"DELETE FROM lq_ready WHERE claimed_by = ? AND id IN {_in(row_ids)} AND (id, crashes) IN "
        f"(VALUES {', '.join(['(?, ?)'] * len(finished))}) RETURNING id",
        (holder, *row_ids, *pairs)).fetchall()}
    acked = [i for i in finished if i.claim.row_id in held]
    if not acked:
        return []
    jobs = [job for item in acked if item.unit for job in item.unit.jobs]
    if jobs:
        enqueue(store, jobs, now, guarded=True)
    store.put_many([(store.name, key, value) for item in acked if item.unit
                    for key, value in item.unit.results])
    store.many(
        "UPDATE lq_job SET status = ?, finished_at = ?, error = ?, traceback = ?, "
        "result = ?, updated_at = ? WHERE id = ?",
        [(i.status.value, i.finished_at if i.status.is_final else None, i.error,
          i.traceback, i.result, now, i.claim.job_id) for i in acked])
    store.many(
        "UPDATE lq_attempt SET finished_at = ?, outcome = ?, error = ? WHERE job_id = ? AND number = ?",
        [(i.finished_at, i.outcome.value, i.error, i.claim.job_id, i.claim.attempt) for i in acked])
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
        _breaker_outcomes(store, store.limits.breakers, acked, now)
    return acked


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
    store.sql(f"UPDATE lq_job SET status = '{S.FAILED}', finished_at = ?, error = ?, updated_at = ? "
              "WHERE id = ?", (now, error, now, claim.job_id))
    store.sql(f"UPDATE lq_attempt SET finished_at = ?, outcome = '{AttemptOutcome.FAILED}', error = ? "
              "WHERE job_id = ? AND number = ?", (now, error, claim.job_id, claim.attempt))
    settle(store, [claim.job_id], now)
    batch_members_finished(store, [(claim.job_id, S.FAILED.value)], now)
    return True


# -- batches ----------------------------------------------------------------------------------
#
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


def _add_batch_members(store: LiteStorage, jobs: Sequence[NewJob], strict: bool) -> None:
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
            added += len(store.sql(f"UPDATE lq_job SET batch_id = ? WHERE id IN {_in(chunk)} AND batch_id IS NULL "
                                   "RETURNING id", (batch_id, *chunk)).fetchall())
        if store.sql("UPDATE lq_batch SET total = total + ? WHERE id = ? AND finished_at IS NULL RETURNING id",
                     (added, batch_id)).fetchone() is None:
            if strict:
                raise BatchClosedError(_why_closed(store, batch_id))
            log.warning("%d job(s) enqueued outside batch %s: %s", added, batch_id, _why_closed(store, batch_id))
            store.sql(f"UPDATE lq_job SET batch_id = NULL WHERE id IN {_in(ids)} AND batch_id = ?", (*ids, batch_id))


def batch_members_finished(store: LiteStorage, outcomes: Sequence[tuple[str, str]], now: float) -> list[NewJob]:
    """Jobs reached a final status ((job id, status) pairs): count the members in their
    batches and the on_complete jobs in their batch's parent, and finish the batches that
    are done. Call in the transaction that wrote the statuses. Returns the callback jobs
    that enqueued."""
    status_of = {job_id: status for job_id, status in outcomes if status in FINAL}
    if not status_of:
        return []
    ids = list(status_of)
    rows = store.sql(f"SELECT id, batch_id, 0 FROM lq_job WHERE id IN {_in(ids)} AND batch_id IS NOT NULL "
                     f"UNION ALL SELECT on_complete_id, id, 1 FROM lq_batch WHERE on_complete_id IN {_in(ids)}",
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
            enqueue(store, jobs, now, app=app)
            fired.extend(jobs)
        if parent is not None and not done_id:
            fired.extend(_count_in_batches(store, {parent: [0, 1] if failed else [1, 0]}, now))
    return fired


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


# -- release and recover ----------------------------------------------------------------------

def release(store: LiteStorage, holder: str, row_ids: Sequence[int] | None = None,
            reason: str = "released when its consumer stopped") -> int:
    """Hand ``holder``'s claims (all, or ``row_ids``) back to the ready queue: the job is
    ``queued`` again and its attempt ``interrupted``. Returns how many."""
    query = "UPDATE lq_ready SET claimed_by = NULL, claimed_at = NULL WHERE claimed_by = ?"
    params: list[Any] = [holder]
    if row_ids is not None:
        if not row_ids:
            return 0
        query += f" AND id IN {_in(list(row_ids))}"
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
        query += f" AND id NOT IN {_in(list(keep))}"
    job_ids = [r[0] for r in store.sql(query + " RETURNING job_id", (holder, *keep)).fetchall()]
    if not job_ids:
        return 0
    now = time.time()
    store.many(f"DELETE FROM lq_attempt WHERE job_id = ? AND outcome = '{AttemptOutcome.RUNNING}' "
               "AND number = (SELECT attempts FROM lq_job WHERE id = ?)", [(j, j) for j in job_ids])
    store.many(f"UPDATE lq_job SET status = '{S.QUEUED}', attempts = attempts - 1, updated_at = ?, "
               "started_at = CASE WHEN attempts = 1 THEN NULL ELSE started_at END "
               f"WHERE id = ? AND status = '{S.RUNNING}'", [(now, j) for j in job_ids])
    return len(job_ids)


def _requeue(store: LiteStorage, job_ids: Sequence[str], reason: str, now: float, crashed: bool) -> None:
    bump = ", crashes = crashes + 1" if crashed else ""
    store.many(f"UPDATE lq_job SET status = '{S.QUEUED}', updated_at = ?{bump} WHERE id = ?",
               [(now, j) for j in job_ids])
    _interrupt_attempts(store, job_ids, reason, now)


def _interrupt_attempts(store: LiteStorage, job_ids: Sequence[str], reason: str, now: float) -> None:
    store.many(f"UPDATE lq_attempt SET outcome = '{AttemptOutcome.INTERRUPTED}', finished_at = ?, error = ? "
               f"WHERE job_id = ? AND outcome = '{AttemptOutcome.RUNNING}'", [(now, reason, j) for j in job_ids])


def recover(store: LiteStorage, holder: str, reason: str = "its consumer died",
            row_ids: Sequence[int] | None = None) -> tuple[int, int]:
    """Take back a dead holder's claims (all, or ``row_ids``: the one a dead worker process
    ran): to ``queued`` with the attempt ``interrupted``, or to ``failed`` once the job's
    worker has died ``crash_cap`` times. Returns (requeued, failed)."""
    now = time.time()
    only = f" AND id IN {_in(list(row_ids))}" if row_ids else ""
    rows = store.sql(
        "UPDATE lq_ready SET claimed_by = NULL, claimed_at = NULL, crashes = crashes + 1 "
        f"WHERE claimed_by = ?{only} RETURNING id, job_id, crash_cap", (holder, *(row_ids or ()))).fetchall()
    if not rows:
        return 0, 0
    crashes = dict(store.sql(f"SELECT id, crashes FROM lq_job WHERE id IN {_in([r[1] for r in rows])}",
                             [r[1] for r in rows]).fetchall())
    # A job someone asked to cancel ends cancelled instead: its worker died, or was stopped
    # for the cancel (cancelling.stop_worker_process).
    asked = _cancel_requests(store, [r[1] for r in rows])
    if asked:
        _end_cancelled(store, [(r[0], r[1]) for r in rows if r[1] in asked], asked, reason, now)
        rows = [r for r in rows if r[1] not in asked]
    requeued = [job_id for _, job_id, cap in rows if crashes.get(job_id, 0) + 1 < cap]
    failed = [(row_id, job_id, crashes.get(job_id, 0) + 1) for row_id, job_id, cap in rows
              if crashes.get(job_id, 0) + 1 >= cap]
    _requeue(store, requeued, reason, now, crashed=True)
    store.many("DELETE FROM lq_ready WHERE id = ?", [(r,) for r, _, _ in failed])
    for _, job_id, n in failed:
        error = f"worker died while running this job ({n} time{'s' if n != 1 else ''})"
        store.sql(f"UPDATE lq_job SET status = '{S.FAILED}', crashes = ?, finished_at = ?, "
                  "error = ?, updated_at = ? WHERE id = ?", (n, now, error, now, job_id))
    _interrupt_attempts(store, [j for _, j, _ in failed], reason, now)
    settle(store, [j for _, j, _ in failed], now)
    batch_members_finished(store, [(j, S.FAILED.value) for _, j, _ in failed], now)
    return len(requeued), len(failed)


def _cancel_requests(store: LiteStorage, job_ids: Sequence[str]) -> dict[str, str]:
    """{job id: who asked} for the jobs among ``job_ids`` someone asked to cancel."""
    rows = store.sql("SELECT j.id, kv.value FROM lq_job j JOIN lq_kv kv ON kv.queue = j.app "
                     f"AND kv.key = 'cancel:' || j.id WHERE j.id IN {_in(job_ids)}", list(job_ids)).fetchall()
    return {job_id: cancel_actor(value) for job_id, value in rows}


def cancel_actor(value: Any) -> str:
    """Who asked, from a ``cancel:`` key's value (``1`` from older releases)."""
    if isinstance(value, memoryview):
        value = value.tobytes()
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value or "")
    return "someone" if text in ("", "1") else text


def _end_cancelled(store: LiteStorage, rows: Sequence[tuple[int, str]], asked: dict[str, str],
                   reason: str, now: float) -> None:
    """Recovered claims of jobs asked to cancel: the claim goes, the job and its running
    attempt end ``cancelled``, saying who asked and what stopped it."""
    store.many("DELETE FROM lq_ready WHERE id = ?", [(row_id,) for row_id, _ in rows])
    ids = [job_id for _, job_id in rows]
    notes = {j: f"cancelled by {asked[j]}; {reason}" for j in ids}
    store.many(f"UPDATE lq_job SET status = '{S.CANCELLED}', finished_at = ?, updated_at = ?, error = ? "
               f"WHERE id = ? AND status = '{S.RUNNING}'", [(now, now, notes[j], j) for j in ids])
    store.many(f"UPDATE lq_attempt SET outcome = '{AttemptOutcome.CANCELLED}', finished_at = ?, error = ? "
               f"WHERE job_id = ? AND outcome = '{AttemptOutcome.RUNNING}'", [(now, notes[j], j) for j in ids])
    _cancel_waiting_steps(store, ids, now)
    settle(store, ids, now)
    batch_members_finished(store, [(j, S.CANCELLED.value) for j in ids], now)


# -- actions people take ----------------------------------------------------------------------

def cancel(store: LiteStorage, job_id: str, actor: str) -> str:
    """Cancel one job; returns what happened.

    A job that has not started (``waiting``, ``scheduled``, ``queued``, ``retrying``)
    leaves the queue and ends ``cancelled``, and so do the pipeline steps waiting on it.
    A running job is asked to stop (``current_job().cancelled``; its consumer stops it
    after a grace period, see cancelling.py) and revoked, so it will not run again should
    its worker die (:func:`recover` ends it ``cancelled``)."""
    now = time.time()
    # The queue row first (claims lock it first too): a claim that won keeps its row.
    store.sql("DELETE FROM lq_ready WHERE job_id = ? AND claimed_by IS NULL", (job_id,))
    store.sql("DELETE FROM lq_schedule WHERE job_id = ?", (job_id,))
    done = store.sql(
        f"UPDATE lq_job SET status = '{S.CANCELLED}', finished_at = ?, updated_at = ?, error = ? "
        f"WHERE id = ? AND status IN {_in(NOT_STARTED)} RETURNING queue",
        (now, now, f"cancelled by {actor}", job_id, *NOT_STARTED)).fetchone()
    if done is not None:
        steps = _cancel_waiting_steps(store, [job_id], now)
        settle(store, [job_id], now)
        batch_members_finished(store, [(job_id, S.CANCELLED.value)], now)
        outcome = "cancelled" + (f" (and {steps} pipeline step(s) waiting on it)" if steps else "")
        record_event(store, "cancel", job_id=job_id, queue=done[0], detail=outcome, actor=actor)
        return outcome
    row = store.sql("SELECT status, queue, app FROM lq_job WHERE id = ?", (job_id,)).fetchone()
    if row is None:
        raise JobNotFoundError(f"no job {job_id!r} in the ledger; see `litequeue jobs list`")
    status, queue, app = row
    if status != S.RUNNING.value:
        return f"already {status}"
    revoke_once = pickle.dumps((None, True), pickle.HIGHEST_PROTOCOL)  # Huey's (revoke_until, once)
    # The cancel key holds who asked: the attempt names them when the job ends cancelled.
    store.put_many([(app, f"cancel:{job_id}", actor.encode()), (app, f"r:{job_id}", revoke_once)])
    outcome = "cancel requested (running)"
    record_event(store, "cancel", job_id=job_id, queue=queue, detail=outcome, actor=actor)
    return outcome


def _cancel_waiting_steps(store: LiteStorage, parents: list[str], now: float) -> int:
    """Cancel the pipeline steps waiting on ``parents``, and theirs, down the chain."""
    total = 0
    while parents:
        parents = [r[0] for r in store.sql(
            f"UPDATE lq_job SET status = '{S.CANCELLED}', finished_at = ?, updated_at = ?, error = ? "
            f"WHERE parent_id IN {_in(parents)} AND status = '{S.WAITING}' RETURNING id",
            (now, now, "cancelled: the pipeline step before it was cancelled", *parents)).fetchall()]
        total += len(parents)
    return total


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
            f"UPDATE lq_job SET retried_as = ?, updated_at = ? WHERE id = ? AND status IN {_in(FINAL)} "
            "AND retried_as IS NULL AND payload IS NOT NULL "
            "RETURNING app, task, queue, priority, args, kwargs, payload, crash_cap, has_file",
            (new_id, now, job_id, *FINAL)).fetchone()
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
        _copy_tags(store, [(job.retried_from, job.id) for job in batch])
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
    if status not in FINAL:
        raise LiteQueueError(f"job {job_id} is {status}; only finished jobs "
                             f"({', '.join(FINAL)}) can be retried")
    if not has_payload:
        raise LiteQueueError(f"job {job_id} has no stored payload to retry")
    raise LiteQueueError(f"job {job_id} could not be retried")  # pragma: no cover - raced a prune


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
    store.many(f"UPDATE lq_job SET status = '{S.CANCELLED}', finished_at = ?, updated_at = ?, "
               f"error = 'purged' WHERE id = ? AND status IN ('{S.QUEUED}', '{S.RETRYING}')",
               [(now, now, i) for i in ids])
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
    store.many(f"UPDATE lq_job SET status = '{S.CANCELLED}', finished_at = ?, updated_at = ?, "
               f"error = 'flushed' WHERE id = ? AND status IN {_in(NOT_STARTED)}",
               [(now, now, i, *NOT_STARTED) for i in ids])
    settle(store, ids, now)
    batch_members_finished(store, [(i, S.CANCELLED.value) for i in ids], now)
    return len(ids)


def touch(store: Any) -> None:
    """A write that changes nothing but still takes the write lock and writes a page, so a
    read-only file, folder or filesystem fails here (``health``)."""
    store.sql("UPDATE lq_meta SET value = value WHERE key IN (SELECT key FROM lq_meta LIMIT 1)")


def record_progress(store: LiteStorage, job_id: str, done: float, total: float | None,
                    message: str | None) -> None:
    """A running job's progress report."""
    now = time.time()
    store.sql("UPDATE lq_job SET progress_done = ?, progress_total = ?, progress_message = ?, "
              "progress_at = ?, updated_at = ? WHERE id = ?", (done, total, message, now, now, job_id))


def record_event(store: LiteStorage, action: str, *, job_id: str | None = None,
                 queue: str | None = None, detail: str | None = None, actor: str = "cli") -> None:
    """An action a person or tool took (retry, cancel, pause, purge, prune) for the log."""
    store.sql("INSERT INTO lq_event (at, action, job_id, queue, detail, actor) VALUES (?, ?, ?, ?, ?, ?)",
              (time.time(), action, job_id, queue, detail, actor))


# -- prune ---------------------------------------------------------------------------------------

def prune_jobs(store: LiteStorage, rows: Sequence[tuple[str, str]]) -> tuple[int, int, int]:
    """Delete finished jobs ``rows`` ((id, app) pairs, chosen by ``retention``), their
    attempts, results and flags. Returns (jobs, attempts, results) deleted."""
    ids = [(job_id,) for job_id, _ in rows]
    attempts = _count(store, "DELETE FROM lq_attempt WHERE job_id = ?", ids)
    kv = "DELETE FROM lq_kv WHERE queue = ? AND key = ?"
    results = _count(store, kv, [(app, job_id) for job_id, app in rows])
    # Cancel and revoke flags of a finished job are dead weight.
    _count(store, kv, [(app, f"{flag}:{job_id}") for job_id, app in rows for flag in ("cancel", "r")])
    jobs = _count(store, f"DELETE FROM lq_job WHERE id = ? AND status IN {_in(FINAL)}",
                  [(i, *FINAL) for (i,) in ids])
    _forget_options(store, ids)
    return jobs, attempts, results


def prune_rows(store: LiteStorage, table: str, condition: str, edge: float, batch: int) -> int:
    """Delete up to ``batch`` history rows of ``table`` (events, periodic-run keys, stopped
    consumers) matching ``condition`` (one ``?``, bound to ``edge``)."""
    return max(0, store.sql(f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} "
                            f"WHERE {condition} LIMIT ?)", (edge, batch)).rowcount)


def _count(store: LiteStorage, query: str, rows: Sequence[Sequence[Any]]) -> int:
    return max(0, store.many(query, rows)) if rows else 0


def take_prune_turn(store: LiteStorage, now: float, interval: float) -> bool:
    """Take the shared auto-prune turn (one consumer prunes per ``interval``)."""
    return store.sql(
        "INSERT INTO lq_meta (key, value) VALUES ('auto_prune_at', ?) ON CONFLICT (key) DO "
        # DOUBLE PRECISION, not REAL: on PostgreSQL REAL is 4 bytes, which rounds an epoch
        # to 128 s (SQLite reads either name as its 8-byte REAL).
        "UPDATE SET value = excluded.value WHERE CAST(lq_meta.value AS DOUBLE PRECISION) <= ?",
        (repr(now), now - interval)).rowcount == 1


# -- tags, dependencies, unique keys ------------------------------------------------------------
# ``enqueue`` calls :func:`_job_options` first and what it returns last; every transition that
# ends a job for good calls :func:`settle` in its transaction.

#: A dependency that ended in one of these failed for good.
DEPENDENCY_FAILED = (S.FAILED.value, S.CANCELLED.value, S.EXPIRED.value)
_CHUNK = 500


def _job_options(store: LiteStorage, jobs: Sequence[NewJob], now: float
                 ) -> tuple[Sequence[NewJob], Callable[[], None]]:
    """Before ``enqueue`` writes ``jobs``: take their unique keys (a job whose key another
    job holds is not written; the holder's id goes to its ``on_duplicate``), refuse unknown
    dependencies and cycles (raising before anything is written), and make a job whose
    dependencies have not all succeeded ``waiting``. Returns the jobs to write and what to
    write after them (tags, dependency rows)."""
    if not any(j.options is not None and not j.retry for j in jobs):
        return jobs, lambda: None
    dropped = _take_unique_keys(store, [j for j in jobs if j.options and j.options.unique_key and not j.retry], now)
    if dropped:
        kept: list[NewJob] = []
        for job in jobs:  # the pipeline steps of a job not written are not written either
            if job.id in dropped or (job.waiting and job.parent_id in dropped):
                dropped.add(job.id)
            else:
                kept.append(job)
        jobs = kept
    fresh = [j for j in jobs if j.options is not None and not j.retry]
    statuses = _plan_dependencies(store, fresh, {j.id: j for j in jobs})

    def write() -> None:
        _write_job_options(store, fresh, statuses, now)

    return jobs, write


def _take_unique_keys(store: LiteStorage, jobs: list[NewJob], now: float) -> set[str]:
    """Each job takes its unique key, unless a job holds it: one that has not ended, or
    ended less than its ``unique_for`` ago. An upsert on the key's primary key, so of
    any number of producers at once exactly one takes it (the others wait for its commit,
    then find it held). Returns the ids of the jobs not to write."""
    dropped: set[str] = set()
    holders: dict[str, str] = {}
    # In key order: two producers taking the same keys never wait for each other in a circle.
    for job in sorted(jobs, key=lambda j: str(j.options.unique_key if j.options else "")):
        assert job.options is not None and job.options.unique_key is not None
        key = job.options.unique_key
        holder = holders.get(key)
        if holder is None:
            took = store.sql(
                "INSERT INTO lq_unique (key, job_id, unique_for, held_until, created_at) VALUES (?, ?, ?, NULL, ?) "
                "ON CONFLICT (key) DO UPDATE SET job_id = excluded.job_id, unique_for = excluded.unique_for, "
                "held_until = NULL, created_at = excluded.created_at "
                "WHERE lq_unique.held_until IS NOT NULL AND lq_unique.held_until <= ? RETURNING job_id",
                (key, job.id, float(job.options.unique_for or 0.0), now, now)).fetchone()
            if took is not None:
                holders[key] = job.id
                continue
            holder = holders[key] = str(store.sql("SELECT job_id FROM lq_unique WHERE key = ?", (key,)).fetchone()[0])
        if holder == job.id:
            continue  # the holder itself, enqueued again under its id (a pipeline step's turn)
        dropped.add(job.id)
        if job.on_duplicate is not None:
            job.on_duplicate(holder)
    return dropped


def _plan_dependencies(store: LiteStorage, jobs: list[NewJob], batch: dict[str, NewJob]) -> dict[str, str]:
    """Check the dependencies of ``jobs`` (each exists in the ledger or in ``batch``, and no
    cycle) and make a job ``waiting`` unless every dependency has succeeded (or ended, for
    one that runs anyway). Returns the status of each dependency already in the ledger."""
    dependents = [j for j in jobs if j.options and j.options.depends_on]
    if not dependents:
        return {}
    outside = sorted({d for j in dependents for d in j.options.depends_on if d not in batch})  # type: ignore[union-attr]
    statuses: dict[str, str] = {}
    # PostgreSQL: a shared lock on each dependency's row, so its ack (which updates the row)
    # waits for this commit and then finds the dependency rows written here.
    lock = "" if store.is_sqlite else " ORDER BY id FOR SHARE"
    for i in range(0, len(outside), _CHUNK):
        part = outside[i:i + _CHUNK]
        statuses.update(store.sql(f"SELECT id, status FROM lq_job WHERE id IN {_in(part)}{lock}", part).fetchall())
    for job in dependents:
        assert job.options is not None
        for dep in job.options.depends_on:
            if dep not in batch and dep not in statuses:
                raise DependencyError(f"job {job.id} ({job.task}) depends on {dep}, which is not a job in the "
                                      "ledger; enqueue that job first or leave it out of depends_on "
                                      "(nothing was enqueued)")
    _refuse_cycles(store, dependents, batch)
    for job in dependents:
        assert job.options is not None
        ended = [statuses.get(d) for d in job.options.depends_on]
        pending = any(s not in FINAL for s in ended)
        failed = any(s in DEPENDENCY_FAILED for s in ended)
        job.waiting = job.waiting or pending or (failed and job.options.on_dependency_failure != "run")
    return statuses


def _refuse_cycles(store: LiteStorage, dependents: list[NewJob], batch: dict[str, NewJob]) -> None:
    """A cycle needs jobs given explicit ids (a new id is depended on by nobody yet): walk
    each new job's dependencies, in this enqueue and in the ledger, looking for the job."""
    def depends_on(job_id: str) -> list[str]:
        if job_id in batch:
            options = batch[job_id].options
            return list(options.depends_on) if options else []
        return [r[0] for r in store.sql("SELECT depends_on FROM lq_dependency WHERE job_id = ? "
                                        "AND outcome IS NULL", (job_id,)).fetchall()]

    for job in dependents:
        seen: set[str] = set()
        todo = depends_on(job.id)
        while todo:
            other = todo.pop()
            if other == job.id:
                raise DependencyError(f"job {job.id} ({job.task}) would wait for itself: its depends_on makes "
                                      "a cycle; remove one of the dependencies (nothing was enqueued)")
            if other not in seen:
                seen.add(other)
                todo.extend(depends_on(other))


def _write_job_options(store: LiteStorage, jobs: list[NewJob], statuses: dict[str, str], now: float) -> None:
    """After the job rows: their tags and dependency rows; a job whose dependency already
    failed for good ends ``cancelled`` now (and its dependents with it)."""
    store.many("INSERT INTO lq_job_tag (tag, job_id) VALUES (?, ?) ON CONFLICT (tag, job_id) DO NOTHING",
               [(tag, j.id) for j in jobs if j.options for tag in j.options.tags])
    doomed: list[tuple[str, str]] = []
    for job in jobs:
        if not job.options or not job.options.depends_on:
            continue
        deps = job.options.depends_on
        store.many("INSERT INTO lq_dependency (job_id, depends_on, outcome) VALUES (?, ?, ?) "
                   "ON CONFLICT (job_id, depends_on) DO NOTHING",
                   [(job.id, d, statuses[d] if statuses.get(d) in FINAL else None) for d in deps])
        if not job.waiting:
            continue
        run_anyway = job.options.on_dependency_failure == "run"
        store.sql("INSERT INTO lq_dependency_wait (job_id, remaining, run_anyway) VALUES (?, ?, ?) "
                  "ON CONFLICT (job_id) DO UPDATE SET remaining = excluded.remaining, run_anyway = excluded.run_anyway",
                  (job.id, sum(statuses.get(d) not in FINAL for d in deps), int(run_anyway)))
        failed = [d for d in deps if statuses.get(d) in DEPENDENCY_FAILED]
        if failed and not run_anyway:
            doomed.append((job.id, f"cancelled: dependency {failed[0]} {statuses[failed[0]]}"))
    ended = [job_id for job_id, reason in doomed if _cancel_dependent(store, job_id, reason, now)]
    settle(store, ended, now)


def settle(store: LiteStorage, job_ids: Sequence[str], now: float) -> None:
    """``job_ids`` may just have ended for good (the caller changed their rows): each one's
    unique key is held ``unique_for`` seconds more, then free; each job waiting on it is
    queued (its last dependency succeeded) or ends ``cancelled`` (a dependency failed for
    good, unless it runs anyway), and so on down. Each dependency is counted once."""
    todo = list(dict.fromkeys(job_ids))
    while todo:
        part, todo = todo[:_CHUNK], todo[_CHUNK:]
        store.sql("UPDATE lq_unique SET held_until = ? + unique_for WHERE held_until IS NULL "
                  f"AND job_id IN {_in(part)} AND EXISTS (SELECT 1 FROM lq_job j "
                  f"WHERE j.id = lq_unique.job_id AND j.status IN {_in(FINAL)})",
                  (now, *part, *FINAL))
        edges = store.sql(
            "SELECT d.job_id, d.depends_on, j.status FROM lq_dependency d JOIN lq_job j ON j.id = d.depends_on "
            f"WHERE d.outcome IS NULL AND d.depends_on IN {_in(part)} AND j.status IN {_in(FINAL)} "
            "ORDER BY d.job_id, d.depends_on", (*part, *FINAL)).fetchall()
        for dependent, dep, status in edges:
            counted = store.sql("UPDATE lq_dependency SET outcome = ? WHERE job_id = ? AND depends_on = ? "
                                "AND outcome IS NULL RETURNING job_id", (status, dependent, dep)).fetchone()
            if counted is None:
                continue  # counted by someone else meanwhile
            wait = store.sql("SELECT run_anyway FROM lq_dependency_wait WHERE job_id = ?", (dependent,)).fetchone()
            if wait is None:
                continue  # it never waited (its dependencies had ended when it was enqueued)
            if status == S.SUCCEEDED.value or wait[0]:
                # In place: two dependencies acked at once cannot both miss the last one.
                left = store.sql("UPDATE lq_dependency_wait SET remaining = remaining - 1 WHERE job_id = ? "
                                 "RETURNING remaining", (dependent,)).fetchone()
                if left is not None and left[0] <= 0:
                    _release_dependent(store, dependent, now)
            elif _cancel_dependent(store, dependent, f"cancelled: dependency {dep} {status}", now):
                todo.append(dependent)


def _release_dependent(store: LiteStorage, job_id: str, now: float) -> bool:
    """A waiting dependent whose dependencies are done: its queue (or schedule, if its ETA
    is ahead) row from its stored payload. Once: only from ``waiting``."""
    row = store.sql(
        f"UPDATE lq_job SET status = CASE WHEN eta IS NOT NULL AND eta > ? THEN '{S.SCHEDULED}' "
        f"ELSE '{S.QUEUED}' END, enqueued_at = ?, updated_at = ? WHERE id = ? AND status = '{S.WAITING}' "
        "AND payload IS NOT NULL RETURNING app, queue, priority, payload, crash_cap, has_file, eta, status",
        (now, now, now, job_id)).fetchone()
    if row is None:
        return False
    app, queue, priority, payload, cap, has_file, eta, status = row
    if status == S.SCHEDULED.value:
        store.sql("INSERT INTO lq_schedule (app, queue, priority, job_id, data, eta, crash_cap, has_file) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (app, queue, priority, job_id, payload, eta, cap, has_file))
    else:
        store.sql("INSERT INTO lq_ready (app, queue, priority, job_id, data, crash_cap, enqueued_at, has_file) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (app, queue, priority, job_id, payload, cap, now, has_file))
    return True


def _cancel_dependent(store: LiteStorage, job_id: str, reason: str, now: float) -> bool:
    """A waiting dependent ends ``cancelled`` with ``reason`` (with its pipeline steps)."""
    row = store.sql(f"UPDATE lq_job SET status = '{S.CANCELLED}', finished_at = ?, updated_at = ?, error = ? "
                    f"WHERE id = ? AND status = '{S.WAITING}' RETURNING queue", (now, now, reason, job_id)).fetchone()
    if row is None:
        return False
    _cancel_waiting_steps(store, [job_id], now)
    batch_members_finished(store, [(job_id, S.CANCELLED.value)], now)  # a member of a batch ends
    record_event(store, "cancel", job_id=job_id, queue=row[0], detail=reason, actor="litequeue")
    return True


def _copy_tags(store: LiteStorage, pairs: Sequence[tuple[str | None, str]]) -> None:
    """A retried job keeps the original's tags (``jobs retry --all-failed --tag`` finds it again)."""
    store.many("INSERT INTO lq_job_tag (tag, job_id) SELECT tag, ? FROM lq_job_tag WHERE job_id = ? "
               "ON CONFLICT (tag, job_id) DO NOTHING", [(new, old) for old, new in pairs if old])


def _forget_options(store: LiteStorage, job_ids: Sequence[tuple[str]]) -> None:
    """Pruned jobs: their tags and the dependency rows that name them."""
    store.many("DELETE FROM lq_job_tag WHERE job_id = ?", job_ids)
    store.many("DELETE FROM lq_dependency WHERE job_id = ?", job_ids)
    store.many("DELETE FROM lq_dependency_wait WHERE job_id = ?", job_ids)


# -- consumers and queues ------------------------------------------------------------------------

def register_consumer(store: LiteStorage, row: dict[str, Any]) -> None:
    """A consumer starts: its registry row (who, where, how to tell it is alive)."""
    cols = list(row)
    store.sql(f"INSERT INTO lq_consumer ({', '.join(cols)}) VALUES ({marks(len(cols))})",
              [row[c] for c in cols])


def heartbeat(store: LiteStorage, consumer_id: str, jobs_done: int) -> bool:
    """Renew the consumer's lease; False when it was presumed dead meanwhile (its row is no
    longer ``running``/``stopping``: its claims were, or are being, given to others)."""
    return store.sql("UPDATE lq_consumer SET heartbeat_at = ?, jobs_done = ? WHERE id = ? "
                     "AND status IN ('running', 'stopping')", (time.time(), jobs_done, consumer_id)).rowcount > 0


def mark_stopping(store: LiteStorage, consumer_id: str) -> None:
    store.sql("UPDATE lq_consumer SET status = 'stopping' WHERE id = ? AND status = 'running'", (consumer_id,))


def deregister_consumer(store: LiteStorage, consumer_id: str, jobs_done: int) -> None:
    now = time.time()
    store.sql("UPDATE lq_consumer SET status = 'stopped', stopped_at = ?, heartbeat_at = ?, "
              "jobs_done = ? WHERE id = ?", (now, now, jobs_done, consumer_id))


def mark_dead(store: LiteStorage, consumer_id: str) -> None:
    store.sql("UPDATE lq_consumer SET status = 'dead', stopped_at = COALESCE(stopped_at, ?) "
              "WHERE id = ? AND status != 'stopped'", (time.time(), consumer_id))


def pause_queue(store: LiteStorage, queue: str, until: float | None) -> None:
    store.sql("INSERT INTO lq_queue_state (queue, paused, paused_until, updated_at) "
              "VALUES (?, ?, ?, ?) ON CONFLICT (queue) DO UPDATE SET paused = excluded.paused, "
              "paused_until = excluded.paused_until, updated_at = excluded.updated_at",
              (queue, True, until, time.time()))


def resume_queue(store: LiteStorage, queue: str) -> None:
    store.sql("UPDATE lq_queue_state SET paused = ?, paused_until = NULL, updated_at = ? WHERE queue = ?",
              (False, time.time(), queue))


# -- schedules kept in the database ------------------------------------------------------------

def add_schedule(store: LiteStorage, row: dict[str, Any], now: float) -> bool:
    """Store a new schedule (``row``: name, app, task, cron, timezone, args, kwargs, queue,
    priority); False, writing nothing, if one of that name exists."""
    cols = [*row, "enabled", "created_at", "updated_at"]
    done = store.sql(f"INSERT INTO lq_periodic_schedule ({', '.join(cols)}) VALUES ({marks(len(cols))}) "
                     "ON CONFLICT (name) DO NOTHING RETURNING name",
                     [*row.values(), 1, now, now]).fetchone()
    return done is not None


def set_schedule_enabled(store: LiteStorage, name: str, enabled: bool, now: float) -> bool:
    """Pause (``enabled=False``) or resume a schedule; False if it does not exist or already
    was in that state."""
    done = store.sql("UPDATE lq_periodic_schedule SET enabled = ?, updated_at = ? "
                     "WHERE name = ? AND enabled = ? RETURNING name",
                     (int(enabled), now, name, int(not enabled))).fetchone()
    return done is not None


def remove_schedule(store: LiteStorage, name: str) -> bool:
    """Delete a schedule (its past runs stay in ``lq_periodic_run``); False if none had that name."""
    return store.sql("DELETE FROM lq_periodic_schedule WHERE name = ? RETURNING name", (name,)).fetchone() is not None
# -- concurrency limits and circuit breakers ---------------------------------------------------
#
# A limited task or queue has no counter to keep right: its running jobs are its claimed
# ``lq_ready`` rows, counted in the claim's own transaction. A SIGKILLed consumer's slots thus
# come back with its claims (``recover`` clears ``claimed_by``), and a job over a limit is
# simply not claimed: no attempt, no retry, no worker holding it. SQLite has one writer, so
# counting and claiming cannot interleave; on PostgreSQL, where SKIP LOCKED claims run side by
# side and a count would miss the other transaction's uncommitted claims, the claim first takes
# a transaction-scoped advisory lock per limited task/queue (and per breaker that is not
# closed), in one order, so the claims of one limit queue up for the few milliseconds of a
# claim and each counts what the one before it committed. Apps without limits (the common
# case) never get here: their claim is the plain one above.

_LIMIT_LOCK_CLASS = 0x6C71  # "lq": the advisory-lock namespace of limits (two-key form)


def _limit_keys(app: str, tasks: Iterable[str], queues: Iterable[str] = ()) -> list[str]:
    return [f"{app}:task:{t}" for t in tasks] + [f"{app}:queue:{q}" for q in queues]


def _limit_locks(store: LiteStorage, keys: Iterable[str]) -> None:
    """PostgreSQL: take the advisory lock of each key (held to the end of the transaction)."""
    if store.is_sqlite:
        return
    for key in sorted(set(keys)):
        store.sql("SELECT pg_advisory_xact_lock(?, hashtext(?))", (_LIMIT_LOCK_CLASS, key))


class _Gate:
    """The free slots of each limited task and queue for one claim, and the breakers that
    hold a task's jobs back (or let one trial through)."""

    def __init__(self, store: LiteStorage, limits: Any, now: float) -> None:
        app = store.name
        self.now = now
        breakers = self._breakers(store) if limits.breakers else []
        self.needed = bool(limits.tasks or limits.queues or breakers)
        if not self.needed:
            return  # only breakers, all closed: the plain claim
        _limit_locks(store, _limit_keys(app, {*limits.tasks, *(t for t, *_ in breakers)}, limits.queues))
        if breakers and not store.is_sqlite:
            breakers = self._breakers(store)  # as the claim before us left them
        running_task: Tally[str] = Tally()
        running_queue: Tally[str] = Tally()
        for task, queue, n in store.sql(
                "SELECT j.task, r.queue, COUNT(*) FROM lq_ready r CROSS JOIN lq_job j "
                "WHERE r.claimed_by IS NOT NULL AND r.app = ? AND j.id = r.job_id GROUP BY j.task, r.queue",
                (app,)).fetchall():
            running_task[task] += n
            running_queue[queue] += n
        self.running = running_task
        self.task_free = {t: n - running_task[t] for t, n in limits.tasks.items()}
        self.queue_free = {q: n - running_queue[q] for q, n in limits.queues.items()}
        #: tasks whose breaker lets a trial job through now -> the state it is in
        self.trials: dict[str, str] = {}
        for task, state, opened_at, cooldown in breakers:
            if state == BreakerState.CLOSED:
                continue
            if state == BreakerState.HALF_OPEN or now >= (opened_at or 0) + cooldown:
                self.trials[task] = state  # one trial at a time (a lost one is replaced)
                free = 1 - running_task[task]
            else:
                free = 0  # open: its jobs are held
            self.task_free[task] = min(free, self.task_free.get(task, free))
        self.task_of: dict[int, str] = {}

    @staticmethod
    def _breakers(store: LiteStorage) -> list[tuple[str, str, float | None, float]]:
        return store.sql("SELECT task, state, opened_at, cooldown_s FROM lq_breaker WHERE app = ? "
                         "AND state != 'closed'", (store.name,)).fetchall()

    def claim(self, store: LiteStorage, holder: str, queues: Sequence[str] | None, limit: int,
              paused: set[str], crashed: str) -> list[Claim]:
        claims: list[Claim] = []
        if queues:
            for queue in queues:
                if queue not in paused and len(claims) < limit:
                    claims.extend(self._take(store, holder, "r.queue = ?", [queue], limit - len(claims), crashed))
        else:
            skip = f"r.queue NOT IN {_in(sorted(paused))}" if paused else "1 = 1"
            claims = self._take(store, holder, skip, sorted(paused), limit, crashed)
        self._trials_started(store, claims)
        return claims

    def _take(self, store: LiteStorage, holder: str, where: str, params: list[Any], want: int,
              crashed: str) -> list[Claim]:
        """Claim up to ``want`` rows matching ``where``, in claim order, skipping the tasks
        and queues that have no free slot (a round per limit that fills up meanwhile)."""
        lock = "" if store.is_sqlite else " FOR UPDATE OF r SKIP LOCKED"
        claims: list[Claim] = []
        for _ in range(len(self.task_free) + len(self.queue_free) + 1):
            if len(claims) >= want:
                break
            full_tasks = sorted(t for t, n in self.task_free.items() if n <= 0)
            full_queues = sorted(q for q, n in self.queue_free.items() if n <= 0)
            extra = (f" AND j.task NOT IN {_in(full_tasks)}" if full_tasks else "") + (
                f" AND r.queue NOT IN {_in(full_queues)}" if full_queues else "")
            ask = want - len(claims)
            rows = store.sql(
                "SELECT r.id, j.task, r.queue FROM lq_ready r CROSS JOIN lq_job j WHERE r.app = ? "
                f"AND {where} AND r.claimed_by IS NULL{crashed}{extra} AND j.id = r.job_id "
                f"ORDER BY r.priority DESC, r.id LIMIT ?{lock}",
                (store.name, *params, *full_tasks, *full_queues, ask)).fetchall()
            picked: list[int] = []
            for row_id, task, queue in rows:
                if len(picked) >= ask:
                    break
                if self.task_free.get(task, 1) <= 0 or self.queue_free.get(queue, 1) <= 0:
                    continue  # filled up by a row picked just before: the next round skips it
                for free, key in ((self.task_free, task), (self.queue_free, queue)):
                    if key in free:
                        free[key] -= 1
                picked.append(row_id)
                self.task_of[row_id] = task
            if picked:
                claims.extend(_claim_rows(
                    store, f"UPDATE lq_ready SET claimed_by = ?, claimed_at = ? WHERE id IN {_in(picked)} "
                           "RETURNING id, job_id, queue, priority, data, crash_cap, crashes, has_file",
                    (holder, self.now, *picked), self.now))
            if len(rows) < ask or len(picked) == len(rows):
                break  # nothing more to look at, or nothing skipped
        return claims

    def _trials_started(self, store: LiteStorage, claims: Sequence[Claim]) -> None:
        """A job of a task whose breaker let a trial through was claimed: half-open now,
        with that job as its trial."""
        for c in claims:
            task = self.task_of.get(c.row_id)
            if task is None or task not in self.trials:
                continue
            was = self.trials.pop(task)
            store.sql("UPDATE lq_breaker SET state = 'half-open', trial_job = ?, trial_at = ?, changed_at = ? "
                      "WHERE app = ? AND task = ? AND state != 'closed'",
                      (c.job_id, self.now, self.now, store.name, task))
            if was == BreakerState.OPEN:
                record_event(store, "breaker-half-open", job_id=c.job_id, queue=c.queue,
                             detail=f"{task}: cool-down over, trial job {c.job_id} let through",
                             actor="litequeue")


def _breaker_outcomes(store: LiteStorage, breakers: dict[str, Any], acked: Sequence[Finished],
                      now: float) -> None:
    """Acked jobs of tasks with breakers: failures within the window open a closed breaker;
    the trial job's success closes a half-open one, its failure opens it again."""
    failed_outcomes = (AttemptOutcome.FAILED, AttemptOutcome.RETRYING, AttemptOutcome.TIMEOUT)
    lock = "" if store.is_sqlite else " FOR UPDATE"
    if not store.is_sqlite and any(i.task in breakers for i in acked):
        # A claim that starts a trial holds its advisory locks, then writes the breaker row;
        # this ack writes that row, and its claim (ack_and_claim) then takes advisory locks.
        # Taking every lock a claim may take first, in the claims' order, keeps the two from
        # waiting for each other in a circle.
        limits = store.limits
        _limit_locks(store, _limit_keys(store.name, {*limits.tasks, *breakers}, limits.queues))
    for item in sorted(acked, key=lambda i: (i.task, i.claim.row_id)):
        breaker = breakers.get(item.task)
        if breaker is None:
            continue
        job_id = item.claim.job_id
        if item.status is S.SUCCEEDED:
            closed = store.sql(
                "UPDATE lq_breaker SET state = 'closed', recent = '[]', opened_at = NULL, trial_job = NULL, "
                "trial_at = NULL, changed_at = ? WHERE app = ? AND task = ? AND state = 'half-open' "
                "AND trial_job = ? RETURNING task", (now, store.name, item.task, job_id)).fetchone()
            if closed is not None:
                record_event(store, "breaker-closed", job_id=job_id, queue=item.claim.queue,
                             detail=f"{item.task}: trial job {job_id} succeeded", actor="litequeue")
            continue
        if item.outcome not in failed_outcomes:
            continue  # cancelled, expired, rate limited, handed back: says nothing of the upstream
        store.sql("INSERT INTO lq_breaker (app, task, state, failures, window_s, cooldown_s, recent, changed_at) "
                  "VALUES (?, ?, 'closed', ?, ?, ?, '[]', ?) ON CONFLICT (app, task) DO NOTHING",
                  (store.name, item.task, breaker.failures, breaker.window_s, breaker.cooldown_s, now))
        state, recent, trial, failures, window = store.sql(
            "SELECT state, recent, trial_job, failures, window_s FROM lq_breaker WHERE app = ? AND task = ?"
            + lock, (store.name, item.task)).fetchone()
        if state == "half-open" and trial == job_id:
            _open_breaker(store, item, now, f"{item.task}: trial job {job_id} failed; held again")
        elif state == "closed":
            times = [t for t in json.loads(recent) if t > now - window] + [now]
            if len(times) >= failures:
                _open_breaker(store, item, now, f"{item.task}: {len(times)} failures within "
                                                f"{window:g}s (last: job {job_id}); its jobs are held")
            else:
                store.sql("UPDATE lq_breaker SET recent = ? WHERE app = ? AND task = ?",
                          (json.dumps(times), store.name, item.task))


def _open_breaker(store: LiteStorage, item: Finished, now: float, detail: str) -> None:
    store.sql("UPDATE lq_breaker SET state = 'open', recent = '[]', opened_at = ?, trial_job = NULL, "
              "trial_at = NULL, changed_at = ? WHERE app = ? AND task = ?", (now, now, store.name, item.task))
    record_event(store, "breaker-open", job_id=item.claim.job_id, queue=item.claim.queue, detail=detail,
                 actor="litequeue")


def reset_breaker(store: LiteStorage, task: str, actor: str) -> list[tuple[str, str]]:
    """Close the breaker of ``task`` (of any app) by hand; returns (app, state it was in)
    for each breaker found."""
    now = time.time()
    rows = store.sql("SELECT app, state FROM lq_breaker WHERE task = ? ORDER BY app", (task,)).fetchall()
    for app, state in rows:
        store.sql("UPDATE lq_breaker SET state = 'closed', recent = '[]', opened_at = NULL, trial_job = NULL, "
                  "trial_at = NULL, changed_at = ? WHERE app = ? AND task = ?", (now, app, task))
        record_event(store, "breaker-reset", detail=f"{task}: closed by hand (was {state})", actor=actor)
    return [(app, state) for app, state in rows]


def publish_limits(store: LiteStorage, limits: Any, now: float) -> None:
    """A consumer starts: its app's limits and breakers go to the database (what ``status``
    and ``litequeue breakers`` show); a breaker keeps its state, one no longer declared is
    dropped (its jobs are no longer held)."""
    app = store.name
    rows = [(app, "task", t, n, None, now) for t, n in sorted(limits.tasks.items())]
    rows += [(app, "queue", q, limits.queues.get(q), limits.timeouts.get(q), now)
             for q in sorted(set(limits.queues) | set(limits.timeouts))]
    keep = [f"{scope}:{name}" for _, scope, name, *_ in rows]
    store.sql("DELETE FROM lq_limit WHERE app = ?" + (f" AND scope || ':' || name NOT IN {_in(keep)}" if keep else ""),
              (app, *keep))
    store.many("INSERT INTO lq_limit (app, scope, name, concurrency, timeout, updated_at) VALUES (?, ?, ?, ?, ?, ?) "
               "ON CONFLICT (app, scope, name) DO UPDATE SET concurrency = excluded.concurrency, "
               "timeout = excluded.timeout, updated_at = excluded.updated_at", rows)
    declared = sorted(limits.breakers)
    store.sql("DELETE FROM lq_breaker WHERE app = ?" + (f" AND task NOT IN {_in(declared)}" if declared else ""),
              (app, *declared))
    store.many("INSERT INTO lq_breaker (app, task, state, failures, window_s, cooldown_s, recent, changed_at) "
               "VALUES (?, ?, 'closed', ?, ?, ?, '[]', ?) ON CONFLICT (app, task) DO UPDATE SET "
               "failures = excluded.failures, window_s = excluded.window_s, cooldown_s = excluded.cooldown_s",
               [(app, t, b.failures, b.window_s, b.cooldown_s, now) for t, b in sorted(limits.breakers.items())])
