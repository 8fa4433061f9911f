"""Where jobs are *claimed* and *acknowledged* for a consumer's workers.

Thread mode shares one :class:`Claimer` (claims as many jobs as there are idle workers,
in one transaction, waking on the doorbell) and one :class:`Acker` (commits the acks of
jobs that finish close together in one transaction). Process mode gives each worker
process a :class:`DirectEndpoint` that claims one job and acks it itself.

A job counts as done only once its ack is committed; until then its claim stays, so a
crash gives a duplicate run, never a lost job.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from . import defaults
from .doorbell import Doorbell, ring
from .errors import DatabaseBusyError
from .storage import Claim, Finished

if TYPE_CHECKING:
    from .storage import LiteStorage

log = logging.getLogger("litequeue.pool")

Observer = Callable[[Sequence[Finished]], None]


def retrying(what: str, fn: Callable[[], object], stop: threading.Event | None = None) -> object:
    """Run ``fn`` until it does not fail with a busy/locked database (logged, never fatal)."""
    delay = 0.05
    while True:
        try:
            return fn()
        except DatabaseBusyError:
            log.warning("%s: database busy, retrying", what)
        except Exception:  # noqa: BLE001 - a claim or ack must survive any database hiccup
            log.exception("%s failed, retrying", what)
        if stop is not None and stop.is_set() and what.startswith("claim"):
            return []
        time.sleep(delay)
        delay = min(delay * 2, 1.0)


def notify(observers: Sequence[Observer], items: Sequence[Finished]) -> None:
    for observer in observers:
        try:
            observer(items)
        except Exception:  # noqa: BLE001 - observers can never kill a worker
            log.exception("observer %r failed", observer)


class Claimer:
    """Claims jobs for idle worker threads; a doorbell ring wakes it at once."""

    def __init__(self, storage: LiteStorage, holder: str, queues: Sequence[str] | None,
                 bell: Doorbell, paused: Callable[[], set[str]], stop: threading.Event) -> None:
        self.storage = storage
        self.holder = holder
        self.queues = list(queues) if queues else None
        self.bell = bell
        self.paused = paused
        self.stop = stop
        self.cond = threading.Condition()
        self.buffer: collections.deque[Claim] = collections.deque()
        self.idle = 0
        self.empty_polls = 0  # claims that found nothing since the last job (for --burst)
        self.thread = threading.Thread(target=self._run, name="litequeue-claimer", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def get(self, timeout: float) -> Claim | None:
        """Called by a worker thread: the next claimed job, or None after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self.cond:
            self.idle += 1
            if not self.buffer:
                self.bell.wake()
            try:
                while not self.buffer:
                    left = deadline - time.monotonic()
                    if left <= 0 or self.stop.is_set():
                        return None
                    self.cond.wait(left)
                return self.buffer.popleft()
            finally:
                self.idle -= 1

    def _run(self) -> None:
        while not self.stop.is_set():
            with self.cond:
                want = self.idle - len(self.buffer)
            if want <= 0:
                self.bell.wait(defaults.IDLE_POLL)
                continue
            claims = retrying("claim", lambda w=want: self.storage.claim(
                self.holder, self.queues, w, self.paused()), self.stop)
            if self.stop.is_set():
                if claims:  # claimed as we were told to stop: hand them straight back
                    self.storage.release(self.holder, [c.row_id for c in claims])
                return
            if claims:
                self.empty_polls = 0
                with self.cond:
                    self.buffer.extend(claims)  # type: ignore[arg-type]
                    self.cond.notify_all()
            else:
                self.empty_polls += 1
                self.bell.wait(defaults.IDLE_POLL)

    def drain_unstarted(self) -> list[Claim]:
        with self.cond:
            left = list(self.buffer)
            self.buffer.clear()
        return left


class Acker:
    """Commits acknowledgements in groups: one transaction for the jobs that finished
    while the previous commit was under way (or within ``window`` seconds)."""

    def __init__(self, storage: LiteStorage, holder: str, observers: list[Observer],
                 bell_target: object, window: float = defaults.ACK_GROUP_WINDOW) -> None:
        self.storage = storage
        self.holder = holder
        self.observers = observers
        self.bell_target = bell_target
        self.window = window
        self.inbox: queue.SimpleQueue[Finished | None] = queue.SimpleQueue()
        self.pending = 0
        self.lock = threading.Lock()
        self.done = 0
        self.thread = threading.Thread(target=self._run, name="litequeue-acker", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def put(self, finished: Finished) -> None:
        with self.lock:
            self.pending += 1
        self.inbox.put(finished)

    def close(self, timeout: float = 10.0) -> None:
        """Commit every ack handed in so far, then stop."""
        self.inbox.put(None)
        self.thread.join(timeout)

    def _run(self) -> None:
        closing = False
        while not closing:
            first = self.inbox.get()
            if first is None:
                break
            batch = [first]
            deadline = time.monotonic() + self.window
            while True:
                try:
                    item = self.inbox.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if item is None:
                    closing = True
                    break
                batch.append(item)
            self.commit(batch)

    def commit(self, batch: list[Finished]) -> None:
        acked = retrying("ack", lambda: self.storage.ack(self.holder, batch))
        assert isinstance(acked, list)
        if len(acked) != len(batch):
            lost = {id(i) for i in batch} - {id(i) for i in acked}
            for item in batch:
                if id(item) in lost:
                    log.warning("job %s: claim was taken over (its consumer was presumed dead); "
                                "this run's outcome is dropped", item.claim.job_id)
        with self.lock:
            self.pending -= len(batch)
            self.done += len(acked)
        if any(i.unit and any(not j.waiting for j in i.unit.jobs) for i in acked):
            ring(self.bell_target)  # type: ignore[arg-type]
        notify(self.observers, acked)


class DirectEndpoint:
    """A process worker's own claim-one, ack-one endpoint (its own connection and bell)."""

    def __init__(self, storage: LiteStorage, holder: str, queues: Sequence[str] | None,
                 bell: Doorbell, paused: Callable[[], set[str]], observers: list[Observer],
                 bell_target: object) -> None:
        self.storage = storage
        self.holder = holder
        self.queues = list(queues) if queues else None
        self.bell = bell
        self.paused = paused
        self.observers = observers
        self.bell_target = bell_target
        self.empty_polls = 0

    def get(self, timeout: float) -> Claim | None:
        claims = retrying("claim", lambda: self.storage.claim(self.holder, self.queues, 1, self.paused()))
        if claims:
            self.empty_polls = 0
            return claims[0]  # type: ignore[index]
        self.empty_polls += 1
        self.bell.wait(timeout)
        return None

    def put(self, finished: Finished) -> None:
        acked = retrying("ack", lambda: self.storage.ack(self.holder, [finished]))
        if acked and finished.unit and any(not j.waiting for j in finished.unit.jobs):
            ring(self.bell_target)  # type: ignore[arg-type]
        notify(self.observers, acked)  # type: ignore[arg-type]
