"""Huey's ``dequeue()`` / ``read_schedule()`` / ``execute(task)`` in the caller's process,
under litequeue's claims.

Huey's own tests, and many users' tests, run one job in-process: ``task = app.dequeue()``
then ``app.execute(task)``. In litequeue a job is never deleted when it is handed out: it
is *claimed* by this process, which registers itself like a consumer (a lock file held
for life, or its pid and heartbeat), so a process that dies between ``dequeue()`` and
``execute()`` has its claim recovered by any consumer's supervisor. ``execute()`` then
acks the job exactly as a worker does (outcome, attempt, result and follow-up rows in one
transaction), or releases it if the run was interrupted.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any

from litequeue.base import defaults
from litequeue.base.clock import to_epoch
from litequeue.runtime.supervisor import deregister_worker, register_worker, update_heartbeat
from litequeue.store.database import state_dir
from litequeue.store.liveness import LifeLock, holder_of, new_consumer_id

if TYPE_CHECKING:
    from huey.api import Task

    from litequeue.app import LiteQueue
    from litequeue.base.values import Claim, NewJob
    from litequeue.engine.storage import LiteStorage

log = logging.getLogger("litequeue.inline")


class InProcessClaims:
    """The claims this process took through Huey's storage API, by job id."""

    def __init__(self, storage: LiteStorage) -> None:
        self.storage = storage
        self._lock = threading.Lock()
        self._consumer: str | None = None
        self._pid = 0
        self._life: LifeLock | None = None
        self._beat = 0.0
        self._done = 0
        self._held: dict[str, Claim] = {}

    def holder(self) -> str:
        """This process's claim holder, registered like a consumer on first use."""
        with self._lock:
            if self._consumer is None or self._pid != os.getpid():
                self._register()
            assert self._consumer is not None
            return holder_of(self._consumer)

    def _register(self) -> None:
        consumer = new_consumer_id()
        folder = state_dir(self.storage.database.database) if self.storage.is_sqlite else None
        life = None
        if folder is not None:
            life = LifeLock(folder / "consumers" / f"{consumer}.lock")
            life.acquire()
        # No lease of its own: on PostgreSQL a consumer with one holds a session lock, and
        # is dead without it; this process is judged by its heartbeat (the default lease).
        register_worker(self.storage, consumer, os.getpid(), str(life.path) if life else None,
                        None, 1, "inline", lease=None)
        # After a fork the parent's claims stay the parent's.
        self._consumer, self._pid, self._life, self._held = consumer, os.getpid(), life, {}
        self._beat = time.monotonic()
        atexit.register(_close_at_exit, weakref.ref(self))

    def _heartbeat(self, holder: str) -> None:
        # Same-host liveness is the lock file (or pid); the heartbeat serves other hosts.
        if time.monotonic() - self._beat > defaults.HEARTBEAT_LEASE / 4:
            self._beat = time.monotonic()
            update_heartbeat(self.storage, holder, self._done)

    def dequeue(self) -> Claim | None:
        holder = self.holder()
        self._heartbeat(holder)
        claims = self.storage.claim(holder, None, 1, self.storage.paused_queues())
        for claim in claims:
            self._keep(claim)
        return claims[0] if claims else None

    def read_due(self, until: float) -> list[Claim]:
        claims = self.storage.claim_due(self.holder(), until)
        for claim in claims:
            self._keep(claim)
        return claims

    def _keep(self, claim: Claim) -> None:
        with self._lock:
            self._held[claim.job_id] = claim

    def take(self, job_id: str) -> Claim | None:
        """The claim on ``job_id`` this process holds (and will now settle), if any."""
        if not self._held:
            return None
        with self._lock:
            return self._held.pop(job_id, None)

    def hand_back(self, job: NewJob) -> bool:
        """``job`` was handed out here and is being enqueued again: give its claim back to
        the ready queue (with the new payload) instead of writing a second row."""
        claim = self.take(job.id)
        if claim is None:
            return False
        self.storage.hand_back(self.holder(), claim, job.data)
        return True

    def close(self) -> None:
        """Hand every claim still held back to the queue and deregister (at exit)."""
        with self._lock:
            if self._consumer is None or self._pid != os.getpid():
                return
            consumer, self._consumer, self._held = self._consumer, None, {}
            life, self._life = self._life, None
        try:
            released = self.storage.release(holder_of(consumer), reason="its process exited before executing it")
            if released:
                log.warning("handed %d dequeued but unexecuted job(s) back to the queue", released)
            deregister_worker(self.storage, consumer, self._done)
        finally:
            if life is not None:
                life.release()


def _close_at_exit(ref: weakref.ref[InProcessClaims]) -> None:
    claims = ref()
    if claims is not None:
        with contextlib.suppress(Exception):  # the database may be gone (a test's temp dir)
            claims.close()


def run_claimed(app: LiteQueue, claim: Claim, task: Task, timestamp: Any = None) -> Any:
    """Run a job this process claimed, then ack it (or release it if interrupted), as a
    consumer's worker would. Returns the task's value, as ``Huey.execute`` does."""
    from litequeue.runtime.outcomes import adds_ready_jobs, notify
    from litequeue.runtime.worker import execute_claim

    storage = app.storage
    inline = storage.inline
    assert inline is not None  # set by LiteQueue.get_storage
    holder = inline.holder()
    if not claim.attempt:  # handed out by read_schedule(): not started yet
        storage.start_claim(holder, claim)
    finished, value = execute_claim(app, claim, task, timestamp)
    if finished is None:
        storage.release(holder, [claim.row_id], reason="interrupted while executing")
        return value
    acked = storage.ack(holder, [finished])
    if not acked:
        log.warning("job %s: its claim was taken over (this process was presumed dead); "
                    "this run's outcome is dropped", claim.job_id)
        return value
    inline._done += 1
    if adds_ready_jobs(acked):
        storage.committed()
    notify(app.observers, acked)
    return value


def dequeue(app: LiteQueue) -> Task | None:
    """``app.dequeue()``: claim the next ready job for this process and load its task (None
    when none is ready). A job whose task cannot be loaded has failed visibly in the
    ledger; the next one is tried."""
    from litequeue.runtime.worker import load_claimed

    storage = app.storage
    while True:
        claim = storage.inline.dequeue()
        if claim is None:
            return None
        task = load_claimed(app, claim, storage.inline.holder())
        if task is not None:
            return task
        storage.inline.take(claim.job_id)


def read_schedule(app: LiteQueue, timestamp: Any = None) -> list[Task]:
    """``app.read_schedule()``: the jobs due at ``timestamp`` (default: now), taken off the
    schedule and claimed by this process, as tasks."""
    from litequeue.runtime.worker import load_claimed

    storage = app.storage
    until = time.time() if timestamp is None else to_epoch(timestamp, app.utc)
    tasks = []
    for claim in storage.inline.read_due(until or 0.0):
        task = load_claimed(app, claim, storage.inline.holder())
        if task is None:
            storage.inline.take(claim.job_id)
        else:
            tasks.append(task)
    return tasks
