"""The workflow rules of enqueue and of a job's end: tags, dependencies (``depends_on``,
pipeline steps) and unique keys planned before a job is written, and :func:`settle`, which
every transition that ends a job for good calls in its transaction.

Part of the job-state writer (:mod:`litequeue.jobs`). ``enqueue`` calls
:func:`plan_options` first and what it returns last.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from litequeue.base.errors import DependencyError
from litequeue.base.states import FINAL_VALUES, JobStatus
from litequeue.base.values import NewJob
from litequeue.jobs.batches import batch_members_finished
from litequeue.jobs.rows import in_list, moves, record_event, recount, statuses
from litequeue.jobs.unique import end_keys, take_keys

if TYPE_CHECKING:
    from litequeue.engine.storage import LiteStorage

S = JobStatus


#: A dependency that ended in one of these failed for good.
DEPENDENCY_FAILED = (S.FAILED.value, S.CANCELLED.value, S.EXPIRED.value)
_CHUNK = 500


def plan_options(store: LiteStorage, jobs: Sequence[NewJob], now: float
                 ) -> tuple[Sequence[NewJob], Callable[[], None]]:
    """Before ``enqueue`` writes ``jobs``: take their unique keys (a job whose key another
    job holds is not written; the holder's id goes to its ``on_duplicate``), refuse unknown
    dependencies and cycles (raising before anything is written), and make a job whose
    dependencies have not all succeeded ``waiting``. Returns the jobs to write and what to
    write after them (tags, dependency rows)."""
    if not any(j.options is not None and not j.retry for j in jobs):
        return jobs, lambda: None
    dropped = take_keys(store, [j for j in jobs if j.options and j.options.unique_key and not j.retry], now)
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
        statuses.update(store.sql(f"SELECT id, status FROM lq_job WHERE id IN {in_list(part)}{lock}", part).fetchall())
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
        pending = any(s not in FINAL_VALUES for s in ended)
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
                   [(job.id, d, statuses[d] if statuses.get(d) in FINAL_VALUES else None) for d in deps])
        if not job.waiting:
            continue
        run_anyway = job.options.on_dependency_failure == "run"
        store.sql("INSERT INTO lq_dependency_wait (job_id, remaining, run_anyway) VALUES (?, ?, ?) "
                  "ON CONFLICT (job_id) DO UPDATE SET remaining = excluded.remaining, run_anyway = excluded.run_anyway",
                  (job.id, sum(statuses.get(d) not in FINAL_VALUES for d in deps), int(run_anyway)))
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
        end_keys(store, part, now)
        edges = store.sql(
            "SELECT d.job_id, d.depends_on, j.status FROM lq_dependency d JOIN lq_job j ON j.id = d.depends_on "
            f"WHERE d.outcome IS NULL AND d.depends_on IN {in_list(part)} AND j.status IN {in_list(FINAL_VALUES)} "
            "ORDER BY d.job_id, d.depends_on", (*part, *FINAL_VALUES)).fetchall()
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
    seen = statuses(store, [job_id])
    row = store.sql(
        f"UPDATE lq_job SET status = CASE WHEN eta IS NOT NULL AND eta > ? THEN '{S.SCHEDULED}' "
        f"ELSE '{S.QUEUED}' END, enqueued_at = ?, updated_at = ? WHERE id = ? AND status = '{S.WAITING}' "
        "AND payload IS NOT NULL RETURNING app, queue, priority, payload, crash_cap, has_file, eta, status",
        (now, now, now, job_id)).fetchone()
    if row is None:
        return False
    recount(store, seen, [job_id])
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
    moves(store, {job_id: (row[0], S.WAITING.value)}, {job_id: (row[0], S.CANCELLED.value)})
    cancel_waiting_steps(store, [job_id], now)
    batch_members_finished(store, [(job_id, S.CANCELLED.value)], now)  # a member of a batch ends
    record_event(store, "cancel", job_id=job_id, queue=row[0], detail=reason, actor="litequeue")
    return True


def copy_tags(store: LiteStorage, pairs: Sequence[tuple[str | None, str]]) -> None:
    """A retried job keeps the original's tags (``jobs retry --all-failed --tag`` finds it again)."""
    store.many("INSERT INTO lq_job_tag (tag, job_id) SELECT tag, ? FROM lq_job_tag WHERE job_id = ? "
               "ON CONFLICT (tag, job_id) DO NOTHING", [(new, old) for old, new in pairs if old])


def forget_options(store: LiteStorage, job_ids: Sequence[tuple[str]]) -> None:
    """Pruned jobs: their tags and the dependency rows that name them."""
    store.many("DELETE FROM lq_job_tag WHERE job_id = ?", job_ids)
    store.many("DELETE FROM lq_dependency WHERE job_id = ?", job_ids)
    store.many("DELETE FROM lq_dependency_wait WHERE job_id = ?", job_ids)


def cancel_waiting_steps(store: LiteStorage, parents: list[str], now: float) -> int:
    """Cancel the pipeline steps waiting on ``parents``, and theirs, down the chain."""
    total = 0
    while parents:
        rows = store.sql(
            f"UPDATE lq_job SET status = '{S.CANCELLED}', finished_at = ?, updated_at = ?, error = ? "
            f"WHERE parent_id IN {in_list(parents)} AND status = '{S.WAITING}' RETURNING id, queue",
            (now, now, "cancelled: the pipeline step before it was cancelled", *parents)).fetchall()
        moves(store, {j: (q, S.WAITING.value) for j, q in rows}, {j: (q, S.CANCELLED.value) for j, q in rows})
        parents = [r[0] for r in rows]
        total += len(parents)
    return total
