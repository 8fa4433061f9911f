"""The concurrency gate and the circuit breakers: a claim takes only the jobs of limited
tasks and queues that have a free slot, and none of a task whose breaker is open; an ack
opens or closes breakers; a consumer publishes its app's limits.

Part of the job-state writer (:mod:`litequeue.jobs`): the only code that writes
``lq_limit`` and ``lq_breaker``. What an app declares is :mod:`litequeue.base.limits`.
"""

from __future__ import annotations

import json
import time
from collections import Counter as Tally
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from litequeue.base.states import AttemptOutcome, BreakerState, JobStatus
from litequeue.base.values import Claim, Finished
from litequeue.jobs.rows import claim_rows, in_list, record_event

if TYPE_CHECKING:
    from litequeue.engine.storage import LiteStorage

S = JobStatus
B = BreakerState

# A limited task or queue has no counter to keep right: its running jobs are its claimed
# ``lq_ready`` rows, counted in the claim's own transaction. A SIGKILLed consumer's slots thus
# come back with its claims (``recover`` clears ``claimed_by``), and a job over a limit is
# simply not claimed: no attempt, no retry, no worker holding it. SQLite has one writer, so
# counting and claiming cannot interleave; on PostgreSQL, where SKIP LOCKED claims run side by
# side and a count would miss the other transaction's uncommitted claims, the claim first takes
# a transaction-scoped advisory lock per limited task/queue (and per breaker that is not
# closed), in one order, so the claims of one limit queue up for the few milliseconds of a
# claim and each counts what the one before it committed. Apps without limits (the common
# case) never get here: their claim is the plain one (:func:`litequeue.jobs.claim.claim`).

_LIMIT_LOCK_CLASS = 0x6C71  # "lq": the advisory-lock namespace of limits (two-key form)


def _limit_keys(app: str, tasks: Iterable[str], queues: Iterable[str] = ()) -> list[str]:
    return [f"{app}:task:{t}" for t in tasks] + [f"{app}:queue:{q}" for q in queues]


def _limit_locks(store: LiteStorage, keys: Iterable[str]) -> None:
    """PostgreSQL: take the advisory lock of each key (held to the end of the transaction)."""
    if store.is_sqlite:
        return
    for key in sorted(set(keys)):
        store.sql("SELECT pg_advisory_xact_lock(?, hashtext(?))", (_LIMIT_LOCK_CLASS, key))


class Gate:
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
            if state == B.CLOSED:
                continue
            if state == B.HALF_OPEN or now >= (opened_at or 0) + cooldown:
                self.trials[task] = state  # one trial at a time (a lost one is replaced)
                free = 1 - running_task[task]
            else:
                free = 0  # open: its jobs are held
            self.task_free[task] = min(free, self.task_free.get(task, free))
        self.task_of: dict[int, str] = {}

    @staticmethod
    def _breakers(store: LiteStorage) -> list[tuple[str, str, float | None, float]]:
        return store.sql("SELECT task, state, opened_at, cooldown_s FROM lq_breaker WHERE app = ? "
                         f"AND state != '{B.CLOSED}'", (store.name,)).fetchall()

    def claim(self, store: LiteStorage, holder: str, queues: Sequence[str] | None, limit: int,
              paused: set[str], crashed: str) -> list[Claim]:
        claims: list[Claim] = []
        if queues:
            for queue in queues:
                if queue not in paused and len(claims) < limit:
                    claims.extend(self._take(store, holder, "r.queue = ?", [queue], limit - len(claims), crashed))
        else:
            skip = f"r.queue NOT IN {in_list(sorted(paused))}" if paused else "1 = 1"
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
            extra = (f" AND j.task NOT IN {in_list(full_tasks)}" if full_tasks else "") + (
                f" AND r.queue NOT IN {in_list(full_queues)}" if full_queues else "")
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
                claims.extend(claim_rows(
                    store, f"UPDATE lq_ready SET claimed_by = ?, claimed_at = ? WHERE id IN {in_list(picked)} "
                           "RETURNING id, job_id, queue, priority, data, crash_cap, crashes, has_file, enqueued_at",
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
            store.sql(f"UPDATE lq_breaker SET state = '{B.HALF_OPEN}', trial_job = ?, trial_at = ?, changed_at = ? "
                      f"WHERE app = ? AND task = ? AND state != '{B.CLOSED}'",
                      (c.job_id, self.now, self.now, store.name, task))
            if was == B.OPEN:
                record_event(store, "breaker-half-open", job_id=c.job_id, queue=c.queue,
                             detail=f"{task}: cool-down over, trial job {c.job_id} let through",
                             actor="litequeue")


def breaker_outcomes(store: LiteStorage, breakers: dict[str, Any], acked: Sequence[Finished],
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
                f"UPDATE lq_breaker SET state = '{B.CLOSED}', recent = '[]', opened_at = NULL, trial_job = NULL, "
                f"trial_at = NULL, changed_at = ? WHERE app = ? AND task = ? AND state = '{B.HALF_OPEN}' "
                "AND trial_job = ? RETURNING task", (now, store.name, item.task, job_id)).fetchone()
            if closed is not None:
                record_event(store, "breaker-closed", job_id=job_id, queue=item.claim.queue,
                             detail=f"{item.task}: trial job {job_id} succeeded", actor="litequeue")
            continue
        if item.outcome not in failed_outcomes:
            continue  # cancelled, expired, rate limited, handed back: says nothing of the upstream
        store.sql("INSERT INTO lq_breaker (app, task, state, failures, window_s, cooldown_s, recent, changed_at) "
                  f"VALUES (?, ?, '{B.CLOSED}', ?, ?, ?, '[]', ?) ON CONFLICT (app, task) DO NOTHING",
                  (store.name, item.task, breaker.failures, breaker.window_s, breaker.cooldown_s, now))
        state, recent, trial, failures, window = store.sql(
            "SELECT state, recent, trial_job, failures, window_s FROM lq_breaker WHERE app = ? AND task = ?"
            + lock, (store.name, item.task)).fetchone()
        if state == B.HALF_OPEN and trial == job_id:
            _open_breaker(store, item, now, f"{item.task}: trial job {job_id} failed; held again")
        elif state == B.CLOSED:
            times = [t for t in json.loads(recent) if t > now - window] + [now]
            if len(times) >= failures:
                _open_breaker(store, item, now, f"{item.task}: {len(times)} failures within "
                                                f"{window:g}s (last: job {job_id}); its jobs are held")
            else:
                store.sql("UPDATE lq_breaker SET recent = ? WHERE app = ? AND task = ?",
                          (json.dumps(times), store.name, item.task))


def _open_breaker(store: LiteStorage, item: Finished, now: float, detail: str) -> None:
    store.sql(f"UPDATE lq_breaker SET state = '{B.OPEN}', recent = '[]', opened_at = ?, trial_job = NULL, "
              "trial_at = NULL, changed_at = ? WHERE app = ? AND task = ?", (now, now, store.name, item.task))
    record_event(store, "breaker-open", job_id=item.claim.job_id, queue=item.claim.queue, detail=detail,
                 actor="litequeue")


def reset_breaker(store: LiteStorage, task: str, actor: str) -> list[tuple[str, str]]:
    """Close the breaker of ``task`` (of any app) by hand; returns (app, state it was in)
    for each breaker found."""
    now = time.time()
    rows = store.sql("SELECT app, state FROM lq_breaker WHERE task = ? ORDER BY app", (task,)).fetchall()
    for app, state in rows:
        store.sql(f"UPDATE lq_breaker SET state = '{B.CLOSED}', recent = '[]', opened_at = NULL, trial_job = NULL, "
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
    store.sql("DELETE FROM lq_limit WHERE app = ?"
              + (f" AND scope || ':' || name NOT IN {in_list(keep)}" if keep else ""), (app, *keep))
    store.many("INSERT INTO lq_limit (app, scope, name, concurrency, timeout, updated_at) VALUES (?, ?, ?, ?, ?, ?) "
               "ON CONFLICT (app, scope, name) DO UPDATE SET concurrency = excluded.concurrency, "
               "timeout = excluded.timeout, updated_at = excluded.updated_at", rows)
    declared = sorted(limits.breakers)
    store.sql("DELETE FROM lq_breaker WHERE app = ?" + (f" AND task NOT IN {in_list(declared)}" if declared else ""),
              (app, *declared))
    store.many("INSERT INTO lq_breaker (app, task, state, failures, window_s, cooldown_s, recent, changed_at) "
               f"VALUES (?, ?, '{B.CLOSED}', ?, ?, ?, '[]', ?) ON CONFLICT (app, task) DO UPDATE SET "
               "failures = excluded.failures, window_s = excluded.window_s, cooldown_s = excluded.cooldown_s",
               [(app, t, b.failures, b.window_s, b.cooldown_s, now) for t, b in sorted(limits.breakers.items())])
