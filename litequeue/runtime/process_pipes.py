"""Process workers get their jobs through the consumer, claimed and acked in rounds.

Each worker process has a pipe to the consumer. In the consumer, one *courier* thread per
worker process takes a claim from the consumer's :class:`~litequeue.runtime.dispatcher.Dispatcher` (the
same group commit thread workers use: one transaction acks every job finished since the
last round and claims the next ones), sends it down the pipe, and hands the outcome the
worker sends back to the dispatcher, which acks it with the next round. A worker process
thus runs jobs at full speed instead of paying a commit (an fsync) per job.

The claims are held by the consumer's id and the courier knows which claim its worker
runs: when the worker process dies the courier takes that claim back at once (counted
against the crash cap, :func:`litequeue.jobs.recover.recover`). A claim the worker never took (it
left at a graceful stop, or after ``max_tasks``) goes back untouched. Which of the two it
was, the worker says through a shared word: the row id of the claim it holds, 0 between
jobs.

While a worker runs a job for more than a moment, its courier samples the worker's resident
memory (``/proc/PID/statm``), so a job that kills its worker (the kernel's OOM killer sends
SIGKILL) is recorded with the signal and the last figure seen: "killed by signal 9 (SIGKILL)
at 1.9 GB resident; out of memory?".

An outcome that cannot be sent (a pickling error) is acked by the worker itself, on its own
connection, fenced by the same claim.
"""

from __future__ import annotations

import collections
import logging
import multiprocessing
import pickle
import select
import signal
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from litequeue.base.usage import resident_bytes, size
from litequeue.base.values import Claim, Finished
from litequeue.runtime.dispatcher import ack_resilient, retrying
from litequeue.runtime.outcomes import Observer, adds_ready_jobs, log_dropped, notify
from litequeue.store.doorbell import BellTarget, ring

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from litequeue.engine.storage import LiteStorage
    from litequeue.runtime.dispatcher import Dispatcher

log = logging.getLogger("litequeue.couriers")

SKIPPED = b"S"  # the claim ended with nothing to ack (failed unrunnable, or interrupted)
ACKED = b"A"  # the worker acked the outcome itself (it could not be sent)
#: What the attempt of a claim records when its worker process died holding it.
WORKER_DIED = "interrupted: its worker process died"


#: How soon, then how often, the consumer samples a running worker process's memory (s).
SAMPLE_FIRST, SAMPLE_EVERY = 0.05, 0.25


def death_reason(exitcode: int | None, resident: int | None) -> str:
    """The error of an attempt whose worker process died with ``exitcode`` (negative: the
    signal), ``resident`` bytes resident when last seen."""
    at = f" at {size(resident)} resident" if resident else ""
    if exitcode is not None and exitcode < 0:
        number = -exitcode
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = "unknown signal"
        oom = "; out of memory?" if number == signal.SIGKILL else ""
        return f"killed by signal {number} ({name}){at}{oom}"
    if exitcode:
        return f"{WORKER_DIED} (exit status {exitcode}{at})"
    return WORKER_DIED


def recover_worker_claims(storage: LiteStorage, holder: str, row_ids: Sequence[int] | None = None,
                          reason: str = WORKER_DIED, peak_rss_bytes: int | None = None) -> tuple[int, int]:
    """Take back the claims a dead worker process held (all of ``holder``'s, or ``row_ids``):
    each counts as a crash (:func:`litequeue.jobs.recover.recover`). Returns (requeued, failed at the
    crash cap). The one place a worker process's claims are recovered."""
    return storage.recover(holder, reason=reason, row_ids=row_ids, peak_rss_bytes=peak_rss_bytes)


class WorkerPipe:
    """The pipe between the consumer and one worker process, and the shared word that says
    which claim (row id) the worker holds; made before the worker is forked."""

    def __init__(self) -> None:
        self.parent, self.child = multiprocessing.Pipe(duplex=True)
        self.holding = multiprocessing.RawValue("q", 0)


class PipeEndpoint:
    """The worker process's side: claims come down the pipe, outcomes go back up."""

    def __init__(self, pipe: WorkerPipe, storage: LiteStorage, holder: str, observers: Sequence[Observer],
                 bell_target: BellTarget) -> None:
        self.conn: Connection = pipe.child
        self.holding = pipe.holding
        self.storage = storage
        self.holder = holder
        self.observers = list(observers)
        self.bell_target = bell_target

    #: a worker process looks at its pipe twice a second (its stop flag is set by a signal)
    idle_wait: float | None = 0.5

    def get(self, timeout: float | None) -> Claim | None:
        if not self.conn.poll(timeout):
            return None
        claim: Claim = self.conn.recv()
        self.holding.value = claim.row_id
        return claim

    def put(self, finished: Finished) -> None:
        unit = finished.unit
        if unit is not None:  # classified already; the task's value or exception may not pickle
            unit.value = unit.exception = None
            if not (unit.jobs or unit.results or unit.batch_ops or unit.rings):
                unit = None  # nothing for the ack to write
        try:  # the consumer has the claim: everything else
            data = pickle.dumps((finished.task, finished.status, finished.outcome, finished.started_at,
                                 finished.finished_at, finished.error, finished.traceback, finished.result,
                                 unit, finished.usage), pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # noqa: BLE001 - then the outcome is acked here
            log.debug("job %s: outcome acked by its worker (%s)", finished.claim.job_id, exc)
            self._ack_here(finished)
            data = ACKED
        self._reply(data)

    def skip(self) -> None:
        self._reply(SKIPPED)

    def _reply(self, data: bytes) -> None:
        self.conn.send_bytes(data)
        self.holding.value = 0

    def _ack_here(self, finished: Finished) -> None:
        acked = retrying("ack", lambda: ack_resilient(self.storage, self.holder, [finished])) or []
        log_dropped([finished], acked)
        if acked:
            if adds_ready_jobs(acked):
                ring(self.bell_target)
            notify(self.observers, acked)


class Courier:
    """The consumer's side of one worker process: a thread that delivers claims to it and
    hands its outcomes to the dispatcher; takes a claim back if the worker dies with it."""

    def __init__(self, dispatcher: Dispatcher, storage: LiteStorage, holder: str, pipe: WorkerPipe,
                 proc: Any, stopping: threading.Event, on_lost: Callable[[int, int, int], None],
                 max_tasks: int | None = None) -> None:
        self.dispatcher = dispatcher
        self.left = max_tasks or None  # jobs to send before the worker leaves by itself (max_tasks)
        self.storage = storage
        self.holder = holder
        self.conn = pipe.parent
        self.holding = pipe.holding
        self.proc = proc
        self.sentinel = proc.sentinel
        self.stopping = stopping
        self.on_lost = on_lost
        pipe.child.close()  # the worker's end lives in the worker (and the forks after it)
        #: Claims in the pipe or running, in order (the first is the one the worker runs).
        self.sent: collections.deque[Claim] = collections.deque()
        #: Why the worker was stopped on purpose (a cancel), for the claim it held.
        self.stopped_for: str | None = None
        #: The worker's resident memory when last sampled during the job it runs (bytes).
        self.resident: int | None = None
        self.thread = threading.Thread(target=self._run, name=f"litequeue-courier-{proc.pid}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def join(self, timeout: float) -> None:
        if self.thread.ident is not None:
            self.thread.join(timeout)

    def running(self, job_id: str) -> bool:
        """True while the worker runs ``job_id``."""
        holding = self.holding.value
        return any(c.job_id == job_id and c.row_id == holding for c in list(self.sent))

    def _run(self) -> None:
        sent = self.sent
        try:
            while True:
                if not sent:
                    if self.stopping.is_set() or self._worker_gone(0.5 if self.left == 0 else 0):
                        return
                    if self.left == 0:
                        continue  # it leaves after its last job: wait for that
                    claim = self.dispatcher.get(0.5)
                    if claim is None:
                        continue
                    sent.append(claim)
                    self._send(claim)
                if len(sent) == 1 and self.left != 0 and self.dispatcher.short_jobs() and not self.stopping.is_set():
                    # Short jobs: the next one waits in the pipe, so the worker never waits
                    # for the consumer between jobs (not past its last one: max_tasks).
                    nxt = self.dispatcher.take()
                    if nxt is not None:
                        sent.append(nxt)
                        self._send(nxt)
                reply = self._reply()
                claim = sent.popleft()
                if reply is None:
                    self._take_back([claim, *sent])
                    sent.clear()
                    return
                if reply in (SKIPPED, ACKED):
                    self.dispatcher.skip()
                else:
                    self.dispatcher.put(Finished(claim, *pickle.loads(reply)))
        except Exception:  # noqa: BLE001 - logged; the worker is replaced, with a new courier
            log.exception("courier for worker process %s failed", self.proc.pid)
            if sent:
                self._take_back(list(sent))
        finally:
            self.conn.close()

    def _send(self, claim: Claim) -> None:
        if self.left is not None:
            self.left -= 1
        try:
            self.conn.send(claim)
        except OSError:
            pass  # the worker is gone: _reply says so, and the claim is taken back

    def _worker_gone(self, wait: float = 0) -> bool:
        return bool(select.select([self.sentinel], [], [], wait)[0])

    def _reply(self) -> bytes | None:
        """The worker's answer, or None once it is gone without one. While it runs a job,
        its resident memory is sampled, for the error of a job that kills it."""
        fd = self.conn.fileno()
        self.resident = None
        wait = SAMPLE_FIRST
        while True:
            ready = select.select([fd, self.sentinel], [], [], wait)[0]
            if not ready:
                self.resident = resident_bytes(self.proc.pid) or self.resident
                wait = SAMPLE_EVERY
                continue
            try:
                if fd in ready or self.conn.poll(0):
                    return self.conn.recv_bytes()
            except (OSError, EOFError):
                return None
            if self.sentinel in ready:
                return None

    def death(self) -> str:
        """What the attempt of a job whose worker process died records: the signal that
        killed it and the last resident memory seen (SIGKILL: the OOM killer's signal)."""
        self.proc.join(1.0)  # reaped, so its exit code is known
        return death_reason(self.proc.exitcode, self.resident)

    def _take_back(self, claims: list[Claim]) -> None:
        """The worker is gone: the claim it ran counts as a crash, the ones it never took
        go back untouched."""
        holding = self.holding.value
        crashed = [c.row_id for c in claims if c.row_id == holding]
        untaken = [c.row_id for c in claims if c.row_id != holding]
        if crashed:
            reason = self.stopped_for or self.death()
            back, failed = retrying("recovery", lambda: recover_worker_claims(
                self.storage, self.holder, crashed, reason, self.resident)) or (0, 0)
            self.on_lost(self.proc.pid, back, failed)
        if untaken:
            retrying("release", lambda: self.storage.release(
                self.holder, untaken, reason="its worker process left before taking it"))
        for _ in claims:
            self.dispatcher.skip()
