"""Where a job is claimed: ready rows get a holder and :func:`start` marks them ``running``
with an attempt (or, claimed ahead, :func:`record_starts` once a worker takes them); a
schedule's due rows are claimed for Huey's ``read_schedule``. A holder
whose consumer the others declared dead claims nothing (:func:`holder_fenced`).

Part of the job-state writer (:mod:`litequeue.jobs`); it runs inside the caller's write
transaction. An app with limits or breakers claims through :class:`litequeue.jobs.limits.Gate`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from litequeue.base.states import AttemptOutcome, JobStatus
from litequeue.base.values import Claim
from litequeue.jobs.limits import Gate
from litequeue.jobs.rows import claim_rows, in_list, recount, statuses
from litequeue.store.dialect import skip_locked
from litequeue.store.liveness import consumer_of

if TYPE_CHECKING:
    from litequeue.engine.storage import LiteStorage

S = JobStatus


def holder_fenced(store: LiteStorage, holder: str) -> bool:
    """Is ``holder``'s consumer registered as no longer ``running`` (declared dead by the
    others, or stopping)? Then it must claim nothing: its claims would be taken back again,
    each counted against its job's crash cap, and their outcomes dropped.

    On PostgreSQL it holds that consumer row (``FOR SHARE``) to the end of the transaction:
    a recovery that declares the consumer dead (:func:`litequeue.jobs.consumers.mark_dead`,
    then :func:`litequeue.jobs.recover.recover`, one transaction) waits for this claim and
    takes it back with the rest, or this claim waits for it and sees ``dead``. Call it first
    in the transaction, before any write to ``lq_ready`` (the recovery writes the consumer
    row, then the claims: the same order, never a circle). A holder with no row (a caller
    of the storage API that never registered) is not fenced.

    On SQLite nothing is asked: a consumer is declared dead there once its lock file is
    free, that is once its process is gone, and writers take turns, so a dead holder cannot
    claim (the claim stays one statement)."""
    if store.is_sqlite:
        return False
    row = store.sql("SELECT status FROM lq_consumer WHERE id = ? FOR SHARE", (consumer_of(holder),)).fetchone()
    return row is not None and row[0] != "running"


def claim(store: LiteStorage, holder: str, queues: Sequence[str] | None, limit: int,
          paused: Iterable[str], worker: str | None = None, isolate: str | None = None,
          fenced: bool | None = None, start_first: int | None = None) -> list[Claim]:
    """Claim up to ``limit`` ready jobs for ``holder`` and :func:`start` them: all of
    them, or the first ``start_first`` (in the order they will run). The others are
    claimed ahead (a prefetch): still ``queued`` in the ledger, with no attempt, until a
    worker takes one and :func:`record_starts` writes its start.

    ``queues`` are served in strict order; ``None`` means every queue, highest priority
    first, then oldest. Paused queues are skipped. ``isolate`` (thread consumers, where a
    job that kills its worker kills the jobs beside it): ``"others"`` claims only jobs no
    worker died on; ``"suspect-first"`` claims one job a worker died on, alone, or else as
    ``"others"``. Nothing for a fenced holder (``fenced``: the caller already asked
    :func:`holder_fenced` in this transaction; None: ask it here)."""
    if limit <= 0:
        return []
    if fenced is None:
        fenced = holder_fenced(store, holder)
    if fenced:
        return []
    paused = set(paused)
    now = time.time()
    lock = skip_locked(store.database)
    if isolate == "suspect-first":
        suspects = claim(store, holder, queues, 1, paused, worker, "suspect", fenced=False)
        if suspects:
            return suspects
        isolate = "others"
    crashed = {None: "", "others": " AND crashes = 0", "suspect": " AND crashes > 0"}[isolate]
    update = "UPDATE lq_ready SET claimed_by = ?, claimed_at = ? WHERE id IN ("
    returning = ") RETURNING id, job_id, queue, priority, data, crash_cap, crashes, has_file, enqueued_at"
    claims: list[Claim] = []
    limits = store.limits
    gate = Gate(store, limits, now) if limits is not None and limits.active else None
    if gate is not None and gate.needed:  # a concurrency limit, or a breaker not closed
        claims = gate.claim(store, holder, queues, limit, paused, crashed.replace("crashes", "r.crashes"))
    elif queues:
        for queue in queues:
            if queue in paused:
                continue
            claims.extend(claim_rows(store, update + (
                f"SELECT id FROM lq_ready WHERE app = ? AND queue = ? AND claimed_by IS NULL{crashed} "
                f"ORDER BY priority DESC, id LIMIT ?{lock}") + returning,
                (holder, now, store.name, queue, limit - len(claims)), now))
            if len(claims) >= limit:
                break
    else:
        skip = f" AND queue NOT IN {in_list(sorted(paused))}" if paused else ""
        claims.extend(claim_rows(store, update + (
            f"SELECT id FROM lq_ready WHERE app = ? AND claimed_by IS NULL{skip}{crashed} "
            f"ORDER BY priority DESC, id LIMIT ?{lock}") + returning,
            (holder, now, store.name, *sorted(paused), limit), now))
    order = {q: i for i, q in enumerate(queues or ())}
    claims.sort(key=lambda c: (order.get(c.queue, 0), -c.priority, c.row_id))
    if claims:
        now_ = len(claims) if start_first is None else max(0, start_first)
        if now_:
            start(store, claims[:now_], holder if worker is None else worker, now)
        _ahead(store, claims[now_:])
        if not _revocations_exist(store):
            for c in claims:
                c.revocable = False
    return claims


def _ahead(store: LiteStorage, claims: list[Claim]) -> None:
    """Claims taken ahead: numbered as the attempt their start will open (one read, no
    write: the ledger says ``queued`` until a worker takes one)."""
    if not claims:
        return
    by_id = {c.job_id: c for c in claims}
    for job_id, attempts, trace in store.sql(
            f"SELECT id, attempts, trace FROM lq_job WHERE id IN {in_list(list(by_id))}", list(by_id)).fetchall():
        claim = by_id[job_id]
        claim.attempt, claim.trace, claim.pending_start = attempts + 1, trace, True


def record_starts(store: LiteStorage, holder: str, starts: Sequence[tuple[Claim, float]],
                  check_held: bool = True) -> list[Claim]:
    """Write the starts of claims taken ahead that a worker has begun: each job
    ``running`` since its ``started_at``, its attempt opened. ``check_held``: only the
    claims ``holder`` still holds (the others may have taken one back, presumed dead);
    False when the caller just deleted them under the same fence (an ack). Returns the
    claims recorded.

    On PostgreSQL the claims asked about are locked (``FOR UPDATE``) to the end of the
    transaction: a recovery taking them back meanwhile (:func:`litequeue.jobs.recover.recover`)
    either waits for this start and ends its attempt ``interrupted``, or has taken them, and
    this waits for it and writes nothing. A plain read saw them still held while that
    recovery ran, and wrote an attempt left ``running`` for ever."""
    if check_held and starts:
        rows = [c.row_id for c, _ in starts]
        lock = "" if store.is_sqlite else " FOR UPDATE"
        held = {r[0] for r in store.sql(f"SELECT id FROM lq_ready WHERE claimed_by = ? AND id IN {in_list(rows)}"
                                        f"{lock}", (holder, *rows)).fetchall()}
        for c, _ in starts:
            c.start_refused = c.row_id not in held
        starts = [(c, at) for c, at in starts if c.row_id in held]
    if not starts:
        return []
    ids = [c.job_id for c, _ in starts]
    seen = statuses(store, ids)
    now = time.time()
    store.many(f"UPDATE lq_job SET status = '{S.RUNNING}', started_at = ?, attempts = ?, worker = ?, "
               "updated_at = ? WHERE id = ?", [(at, c.attempt, holder, now, c.job_id) for c, at in starts])
    recount(store, seen, ids)
    _open_attempts(store, starts, holder)
    return [c for c, _ in starts]


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
    for _, queue, priority, job_id, data, cap, eta, has_file in rows:
        row_id = store.sql(
            "INSERT INTO lq_ready (app, queue, priority, job_id, data, crash_cap, enqueued_at, "
            "claimed_by, claimed_at, has_file) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (store.name, queue, priority, job_id, data, cap, now, holder, now, has_file)).fetchone()[0]
        claims.append(Claim(row_id, job_id, queue, priority, bytes(data), cap, attempt=0,
                            has_file=bool(has_file), due_at=eta))
    ids = [c.job_id for c in claims]
    seen = statuses(store, ids)
    store.many(f"UPDATE lq_job SET status = '{S.QUEUED}', updated_at = ? "
               f"WHERE id = ? AND status IN ('{S.SCHEDULED}', '{S.RETRYING}')", [(now, c.job_id) for c in claims])
    recount(store, seen, ids)
    return claims


def start_claimed(store: LiteStorage, holder: str, claim: Claim) -> None:
    """Start a job claimed but not started (``dequeue``/``read_schedule`` then ``execute``)."""
    now = time.time()
    start(store, [claim], holder, now)
    claim.claimed_at = now
    claim.revocable = _revocations_exist(store)


def _revocations_exist(store: LiteStorage) -> bool:
    """Any Huey revoke key (``r:<id>`` or ``rt:<task>``) at all? Two index probes."""
    return store.sql(
        "SELECT 1 FROM lq_kv WHERE queue = ? AND ((key >= 'r:' AND key < 'r;') OR "
        "(key >= 'rt:' AND key < 'rt;')) LIMIT 1", (store.name,)).fetchone() is not None


def start(store: LiteStorage, claims: list[Claim], worker: str, now: float) -> None:
    """Mark claimed jobs ``running`` and open an attempt for each (numbers them)."""
    by_id = {c.job_id: c for c in claims}
    seen = statuses(store, list(by_id))
    rows = store.sql(
        f"UPDATE lq_job SET status = '{S.RUNNING}', started_at = ?, attempts = attempts + 1, "
        f"worker = ?, updated_at = ? WHERE id IN {in_list(list(by_id))} RETURNING id, attempts, trace",
        (now, worker, now, *by_id)).fetchall()
    recount(store, seen, list(by_id))
    for job_id, attempts, trace in rows:
        claim = by_id[job_id]
        claim.attempt, claim.trace = attempts, trace
    _open_attempts(store, [(c, now) for c in claims], worker)


def _open_attempts(store: LiteStorage, starts: Sequence[tuple[Claim, float]], worker: str) -> None:
    """The ``running`` attempt of each started claim, numbered by its ``attempt``."""
    store.many("INSERT INTO lq_attempt (job_id, number, consumer_id, started_at, outcome) "
               f"VALUES (?, ?, ?, ?, '{AttemptOutcome.RUNNING}') ON CONFLICT (job_id, number) DO NOTHING",
               [(c.job_id, c.attempt, worker, at) for c, at in starts])
