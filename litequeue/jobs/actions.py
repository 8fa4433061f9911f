"""Actions on jobs and queues (retry, cancel, pause, resume, purge), shared by CLI and web.

They need only the database, never the user's code: a retry re-enqueues the original
payload under a new id (the worker gives a claimed payload its row's id).
"""

from __future__ import annotations

import getpass
import socket
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from litequeue.jobs import cancel, consumers, limits, prune, retry
from litequeue.jobs.retry import RetryHook
from litequeue.jobs.rows import record_event
from litequeue.ledger import queries
from litequeue.store.doorbell import BellTarget, bell_target, ring

if TYPE_CHECKING:
    from litequeue.engine.storage import LiteStorage

__all__ = ["ask_consumers", "cancel_jobs", "discard_jobs", "pause_queues", "purge_queues", "purge_tag",
           "reset_breaker",
           "resume_queues", "retry_jobs", "wait_ended", "who"]


def _bell(store: LiteStorage) -> BellTarget:
    return bell_target(store.database.database, store.database)


def retry_jobs(store: LiteStorage, job_ids: Sequence[str], actor: str = "cli",
               hooks: Sequence[RetryHook] = ()) -> dict[str, str]:
    """Re-enqueue finished jobs with their original arguments, in one transaction; returns
    {old id: new id}. A job already retried maps to the job it was retried as (retrying
    twice, or from two terminals at once, makes one job). ``hooks`` run for jobs that have
    a file (the inbox's ``move_back``), inside the transaction."""
    with store.write():
        mapping = retry.retry(store, job_ids, actor, hooks)
    ring(_bell(store))
    return mapping


def who(what: str) -> str:
    """Who does something, for the ledger: ``what (user@host)``."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "?"
    return f"{what} ({user}@{socket.gethostname()})"


def cancel_jobs(store: LiteStorage, job_ids: Sequence[str], actor: str = "cli") -> dict[str, str]:
    """Cancel jobs; returns {id: what happened} (see :func:`litequeue.jobs.cancel.cancel`). The
    doorbell rings, so consumers running one of them hear of it at once."""
    with store.write():
        outcome = {job_id: cancel.cancel(store, job_id, actor) for job_id in job_ids}
    if any(what.startswith("cancel requested") for what in outcome.values()):
        ring(_bell(store))
    return outcome


def wait_ended(store: LiteStorage, job_ids: Sequence[str], seconds: float,
               poll: float = 0.1) -> dict[str, dict[str, Any] | None]:
    """Wait up to ``seconds`` for ``job_ids`` to stop running; returns each job's ledger
    row as it is then (None for a job not in the ledger)."""
    deadline = time.monotonic() + seconds
    while True:
        jobs = {job_id: queries.get_job(store.database, job_id) for job_id in job_ids}
        if time.monotonic() >= deadline or all(j is None or j["status"] != "running" for j in jobs.values()):
            return jobs
        time.sleep(poll)


def pause_queues(store: LiteStorage, queues: Sequence[str], seconds: float | None = None,
                 actor: str = "cli") -> None:
    """Stop consumers taking new jobs from ``queues`` (running jobs finish); with
    ``seconds`` the pause ends by itself."""
    until = None if seconds is None else time.time() + seconds
    with store.write():
        for queue in queues:
            consumers.pause_queue(store, queue, until)
            record_event(store, "pause", queue=queue,
                         detail=f"for {seconds:g}s" if seconds else "until resumed", actor=actor)


def resume_queues(store: LiteStorage, queues: Sequence[str], actor: str = "cli") -> None:
    with store.write():
        for queue in queues:
            consumers.resume_queue(store, queue)
            record_event(store, "resume", queue=queue, actor=actor)
    ring(_bell(store))




def ask_consumers(store: LiteStorage, consumer_ids: Sequence[str], what: str, actor: str = "cli") -> list[str]:
    """Ask consumers to go ``quiet`` or ``stop`` (each obeys within a second, at its next
    supervisor pass); recorded in the actions log. Returns the ids that were asked."""
    asked: list[str] = []
    with store.write():
        for cid in consumer_ids:
            if consumers.request(store, cid, what):
                asked.append(cid)
                record_event(store, what, detail=f"consumer {cid}", actor=actor)
    return asked


def discard_jobs(store: LiteStorage, job_ids: Sequence[str], actor: str = "cli") -> dict[str, str]:
    """Delete failed (or cancelled, expired) jobs from the ledger now, instead of at the
    next prune; each is recorded in the actions log. Returns {id: what happened}."""
    with store.write():
        return prune.discard(store, job_ids, actor)


def purge_queues(store: LiteStorage, queues: Sequence[str], dry_run: bool = False,
                 actor: str = "cli", batch: int = 1000,
                 progress: Callable[[int], None] | None = None) -> dict[str, int]:
    """Drop the *queued* (not running, not scheduled) jobs of ``queues``; they end
    ``cancelled`` in the ledger. Returns the count per queue."""
    counts: dict[str, int] = {}
    for queue in queues:
        if dry_run:
            counts[queue] = queries.queued_count(store.database, queue)
            continue
        counts[queue] = 0
        while True:  # batches, each its own short transaction: consumers never wait long
            with store.write():
                n = cancel.purge(store, queue, batch)
            counts[queue] += n
            if progress is not None:
                progress(counts[queue])
            if n < batch:
                break
        with store.write():
            record_event(store, "purge", queue=queue, detail=f"{counts[queue]} job(s)", actor=actor)
    return counts


def purge_tag(store: LiteStorage, tag: str, queues: Sequence[str] = (), dry_run: bool = False,
              actor: str = "cli", batch: int = 1000) -> int:
    """Drop the *queued* jobs of ``tag`` (only in ``queues``, if given); they end
    ``cancelled`` in the ledger. Returns how many (would be) dropped."""
    total = 0
    for queue in list(queues) or [None]:
        if dry_run:
            total += queries.queued_count_with_tag(store.database, tag, queue)
            continue
        while True:  # batches, each its own short transaction
            with store.write():
                n = cancel.purge(store, queue, batch, tag=tag)
            total += n
            if n < batch:
                break
    if not dry_run:
        with store.write():
            where = f" in {', '.join(queues)}" if queues else ""
            record_event(store, "purge", detail=f"tag {tag}{where}: {total} job(s)", actor=actor)
    return total


def reset_breaker(store: LiteStorage, task: str, actor: str = "cli") -> list[tuple[str, str]]:
    """Close the breaker of ``task`` by hand (an event says so) and wake the consumers:
    its held jobs run at once. Returns (app, state it was in) per breaker found."""
    with store.write():
        found = limits.reset_breaker(store, task, actor)
    if found:
        ring(_bell(store))
    return found

