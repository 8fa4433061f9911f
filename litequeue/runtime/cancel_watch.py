"""The consumer's watch for cancel requests: it flags, then stops, the running jobs someone cancelled.

A cancel request is a ``cancel:<job id>`` key (its value: who asked) written by
``litequeue.jobs.cancel.cancel``, which rings the doorbell after its commit. Each consumer has one
:class:`CancelWatcher` thread. Woken by the doorbell, or every :data:`POLL` seconds, and
only while it has jobs running, it asks the database ONCE which of this consumer's claims
carry a cancel request (an indexed join over its own claims, never a query per job, and
never on the claim or ack path). For each such job it:

1. sets the job's flag at once, so ``current_job().cancelled`` is true without a query
   (cooperative: the task stops at its next ``raise_if_cancelled()``); the jobs this
   process runs, and their flags, are :mod:`litequeue.engine.running`'s registry;
2. after the job's grace period (``@app.task(cancel_grace=...)``, else the consumer's
   ``--cancel-grace``) stops it: a thread worker gets the same asynchronous interruption a
   timeout gets (``interrupts.cancel_thread``), an async task's asyncio task is cancelled,
   and a process worker is killed by :func:`stop_worker_process` and replaced by the
   consumer's health check. A thread blocked in a call Python cannot interrupt
   (``time.sleep(60)``) is left behind: the job ends ``cancelled`` and a new worker thread
   takes its place.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from typing import TYPE_CHECKING

from litequeue.base import defaults
from litequeue.base.states import AttemptOutcome, JobStatus
from litequeue.base.values import Finished
from litequeue.engine import interrupts
from litequeue.engine.running import Running, any_running, running
from litequeue.jobs.cancel import cancel_actor
from litequeue.ledger import queries
from litequeue.store import faults, outage
from litequeue.store.liveness import holder_pattern

if TYPE_CHECKING:
    from litequeue.runtime.consumer import LiteConsumer

log = logging.getLogger("litequeue.cancel")

#: The watcher looks for cancel requests at least this often while jobs run (seconds).
POLL = 0.5
#: ... and at most this often, however often the doorbell rings.
MIN_GAP = 0.1
#: A thread worker still in the job this long after its interruption is blocked in a call
#: Python cannot interrupt (``time.sleep(60)``, a C extension): its job ends ``cancelled``
#: now and a new worker thread takes its place (the old one exits when the call returns).
ABANDON_AFTER = 0.3


_retired: set[int] = set()  # idents of worker threads left behind in a cancelled job


def retired(ident: int | None) -> bool:
    """True for a worker thread left behind in a cancelled job (the consumer replaces it)."""
    return ident in _retired


def forget_retired(ident: int | None) -> None:
    _retired.discard(ident or 0)


def stop_worker_process(consumer: LiteConsumer, job_id: str, grace: float) -> int | None:
    """Kill the worker process of ``consumer`` that runs ``job_id``. Its courier sees it
    die and recovers the claim, which ends ``cancelled`` because a cancel was requested
    (``litequeue.jobs.recover.recover``); the consumer's health check starts a new worker in its
    place, so it keeps its full worker count. Returns the pid, or None when none of its
    workers runs that job.

    The one place a process worker is stopped for a cancel."""
    for courier in list(consumer.couriers.values()):
        proc = courier.proc
        if courier.running(job_id) and proc.is_alive():
            courier.stopped_for = f"its worker process was stopped after its {grace:g}s grace period"
            # SIGKILL: the workers ignore SIGTERM and SIGINT (those are the parent's).
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            return int(proc.pid)
    return None


class CancelWatcher:
    """The consumer's thread that notices cancel requests for its own running jobs."""

    def __init__(self, consumer: LiteConsumer, grace: float = defaults.CANCEL_GRACE) -> None:
        self.consumer = consumer
        self.grace = grace
        self.stop = threading.Event()
        self.bell = consumer.make_bell("cancel")
        self.seen: dict[str, float] = {}  # process mode: job id -> when first seen
        self.thread = threading.Thread(target=self._run, name="litequeue-cancel-watch", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.bell.wake()
        if self.thread.ident is not None:
            self.thread.join(5)
        self.bell.close()

    def _run(self) -> None:
        while not self.stop.is_set():
            started = time.monotonic()
            wait = POLL
            try:
                wait = self.tick()
                self.bell.wait(max(0.0, min(POLL, wait)))
            except Exception as exc:  # noqa: BLE001 - the watcher must outlive a database hiccup
                if faults.is_transient(exc):  # the server went away, the file is locked: one line
                    log.log(logging.DEBUG if outage.is_away() else logging.WARNING,
                            "looking for cancel requests failed (%s); trying again", faults.first_line(exc))
                else:
                    log.exception("looking for cancel requests failed; trying again")
                with contextlib.suppress(Exception):
                    self.consumer.storage.close()
                self._new_bell()
                self.stop.wait(POLL)
            left = MIN_GAP - (time.monotonic() - started)
            if left > 0:
                self.stop.wait(left)

    def _new_bell(self) -> None:
        """A bell whose connection broke (PostgreSQL's LISTEN) is replaced; until then the
        watcher polls."""
        with contextlib.suppress(Exception):
            self.bell.close()  # closing twice is harmless: the next retry closes it again
        try:
            self.bell = self.consumer.make_bell("cancel")
        except Exception:  # noqa: BLE001 - the database is away: poll until it is back
            log.log(logging.DEBUG if outage.is_away() else logging.WARNING,
                    "cancel watcher: no doorbell (%s); polling", "database unreachable")

    def _grace_of(self, task: str, own: float | None) -> float:
        if own is not None:
            return float(own)
        with contextlib.suppress(Exception):
            value = getattr(self.consumer.huey.find_task(task), "cancel_grace", None)
            if value is not None:
                return float(value)
        return self.grace

    def tick(self) -> float:
        """Look once; act on what is due. Returns seconds until the next grace runs out."""
        processes = self.consumer.worker_type == "process"
        busy = any(c.sent for c in list(self.consumer.couriers.values())) if processes else any_running()
        if not busy:  # nothing running here: nothing to look up (idle CPU)
            return POLL
        consumer_id = self.consumer.consumer_id
        requests = queries.cancel_requests(self.consumer.storage.database, self.consumer.huey.name,
                                           consumer_id, holder_pattern(consumer_id))
        now = time.monotonic()
        soonest = POLL
        for job_id, holder, task, value in requests:
            entry = running(job_id)
            if entry is not None:
                soonest = min(soonest, self._thread_job(entry, cancel_actor(value), now))
            elif processes:
                soonest = min(soonest, self._process_job(job_id, holder, task, now))
        live = {r[0] for r in requests}
        self.seen = {k: v for k, v in self.seen.items() if k in live}
        return soonest

    def _thread_job(self, entry: Running, actor: str, now: float) -> float:
        if entry.cancelled_by is None:
            entry.cancelled_by, entry.asked_at = actor, now
            log.info("job %s: cancel requested by %s", entry.job_id, actor,
                     extra={"action": "cancel", "job_id": entry.job_id})
        grace = self._grace_of(entry.task, entry.grace)
        left = entry.asked_at + grace - now
        if left > 0:
            return left
        if entry.enforced_after is None:
            entry.enforced_after = grace
            log.warning("job %s did not stop within its %gs grace period: stopping it", entry.job_id,
                        grace, extra={"action": "cancel-enforced", "job_id": entry.job_id})
            if entry.future is not None:
                entry.future.cancel()
                return POLL
            interrupts.cancel_thread(entry.state)
            return ABANDON_AFTER
        if entry.future is None and left <= -ABANDON_AFTER:
            self._abandon(entry)
        return POLL

    def _abandon(self, entry: Running) -> None:
        """The interrupted thread is stuck in a call Python cannot interrupt: hand in the
        job's ``cancelled`` outcome for it and have the consumer start a worker thread in
        its place (its health check, see ``LiteConsumer.check_worker_health``)."""
        dispatcher = self.consumer.dispatcher
        if dispatcher is None or entry.claim is None:
            return
        with entry.lock:
            if entry.done or entry.abandoned:
                return
            entry.abandoned = True
        _retired.add(entry.state.ident.value)
        log.warning("job %s is blocked in a call Python cannot interrupt: it ends cancelled and a new "
                    "worker thread takes its place (this one exits when the call returns)", entry.job_id,
                    extra={"action": "cancel-abandoned", "job_id": entry.job_id})
        dispatcher.put(Finished(entry.claim, entry.task, JobStatus.CANCELLED, AttemptOutcome.CANCELLED,
                                entry.started_at, time.time(), error=entry.note()))

    def _process_job(self, job_id: str, holder: str, task: str, now: float) -> float:
        if job_id not in self.seen:
            log.info("job %s: cancel requested (worker process %s)", job_id, holder,
                     extra={"action": "cancel", "job_id": job_id})
        first = self.seen.setdefault(job_id, now)
        grace = self._grace_of(task, None)
        left = first + grace - now
        if left > 0:
            return left
        pid = stop_worker_process(self.consumer, job_id, grace)
        if pid is not None:
            log.warning("job %s did not stop within its %gs grace period: stopped worker process %d",
                        job_id, grace, pid, extra={"action": "cancel-enforced", "job_id": job_id})
        return POLL
