"""Where jobs are *claimed* and *acknowledged* for a consumer's workers.

Thread mode: one :class:`Dispatcher` thread serves every worker thread. Each round it
commits, in ONE transaction, the acks of the jobs that finished since the last round and
claims as many new jobs as there are idle workers; a busy consumer thus pays one commit
(one fsync) per round, however many jobs the round carries. It sleeps on the doorbell,
so a job enqueued to an idle consumer starts at once.

Process mode: the same dispatcher claims and acks for the worker processes, which get
their jobs and hand back their outcomes over pipes (see process_pipes.py).

A job counts as done only once its ack is committed; until then its claim stays, so a
crash gives a duplicate run, never a lost job.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from litequeue.base import defaults
from litequeue.base.errors import DatabaseBusyError
from litequeue.base.states import AttemptOutcome, JobStatus
from litequeue.base.values import Claim, Finished
from litequeue.runtime.fault_backoff import FaultWait
from litequeue.runtime.outcomes import Observer, adds_ready_jobs, log_dropped, notify
from litequeue.store.doorbell import BellTarget, Doorbell, ring
from litequeue.store.faults import is_disconnect, is_transient

if TYPE_CHECKING:
    from litequeue.engine.storage import LiteStorage

log = logging.getLogger("litequeue.pool")

#: Jobs count as short (claimed a round ahead) below this typical duration, in seconds.
SHORT_JOB = 0.005
SHORT_JOB_SAMPLE = 16
#: Jobs claimed ahead per worker while jobs are short (the prefetch buffer's size).
AHEAD_PER_WORKER = 4


def retrying(what: str, fn: Callable[[], Any], give_up: threading.Event | None = None,
             reconnect: Callable[[], object] | None = None) -> Any:
    """Run ``fn`` until it does not fail (a busy or locked database is waited out, logged,
    never fatal; a full disk or a read-only database is waited out with one line per
    back-off step, up to 30 s, see faultwait). ``give_up`` set: return None instead of
    retrying. ``reconnect`` drops the connection before retrying a read-only database."""
    delay = 0.05
    fault = FaultWait(log, what)
    while True:
        try:
            result = fn()
        except DatabaseBusyError:
            log.warning("%s: database busy, retrying", what)
        except Exception as exc:  # noqa: BLE001 - claims and acks must survive any database hiccup
            if not fault.handles(exc):
                log.exception("%s failed, retrying", what)
            elif give_up is None or not give_up.is_set():
                fault.wait(exc, reconnect=reconnect)
                continue
        else:
            fault.recovered()
            return result
        if give_up is not None and give_up.is_set():
            return None
        time.sleep(delay)
        delay = min(delay * 2, 1.0)


Starts = Sequence[tuple[Claim, float]]


def commit_round(storage: LiteStorage, holder: str, batch: Sequence[Finished], queues: Sequence[str] | None,
                 limit: int, paused: Iterable[str], isolate: str | None = None, starts: Starts = (),
                 start_first: int | None = None) -> tuple[list[Finished], list[Claim] | None]:
    """Write ``starts`` (claims taken ahead that workers began), ack ``batch`` and claim up
    to ``limit`` jobs, the first ``start_first`` of them started, in one transaction
    (claims None: the others declared ``holder`` dead, see
    :func:`litequeue.jobs.claim.holder_fenced`).

    A transient error (busy, locked, connection lost) propagates, for :func:`retrying` to
    wait out. A deterministic one (an outcome the database refuses: a NUL byte in an error
    text on PostgreSQL, text that cannot be encoded) would fail again on every retry and
    wedge the consumer: then each job is acked alone and the one that cannot be recorded
    ends ``failed`` with the reason (:func:`ack_each`)."""
    try:
        return storage.ack_and_claim(holder, batch, queues, limit, paused, isolate=isolate, starts=starts,
                                     start_first=start_first)
    except Exception as exc:
        if not batch or is_transient(exc):
            raise
        log.error("recording %d outcome(s) failed (%s); recording them one by one",
                  len(batch), one_line(exc))
    acked = ack_each(storage, holder, batch)
    _, claims = storage.ack_and_claim(holder, [], queues, limit, paused, isolate=isolate, starts=starts,
                                      start_first=start_first)
    return acked, claims


def ack_resilient(storage: LiteStorage, holder: str, batch: Sequence[Finished], starts: Starts = ()) -> list[Finished]:
    """:meth:`LiteStorage.ack`, falling back to :func:`ack_each` on a deterministic error."""
    try:
        return storage.ack(holder, batch, starts)
    except Exception as exc:
        if is_transient(exc):
            raise
        log.error("recording %d outcome(s) failed (%s); recording them one by one", len(batch), one_line(exc))
    storage.ack(holder, [], starts)
    return ack_each(storage, holder, batch)


def ack_each(storage: LiteStorage, holder: str, batch: Sequence[Finished]) -> list[Finished]:
    """Ack each job in its own transaction; a job whose outcome the database refuses ends
    ``failed`` with the reason instead (never retried as is: it would fail the same way)."""
    acked: list[Finished] = []
    for item in batch:
        def one(item: Finished = item) -> list[Finished]:
            try:
                return storage.ack(holder, [item])
            except Exception as exc:
                if is_transient(exc):
                    raise
                log.error("job %s: its outcome cannot be recorded (%s); it ends failed with that reason",
                          item.claim.job_id, one_line(exc))
                return storage.ack(holder, [unrecordable(item, exc)])
        acked.extend(retrying(f"ack of job {item.claim.job_id}", one) or [])
    return acked


def unrecordable(item: Finished, exc: BaseException) -> Finished:
    """``item`` as a failure whose error says why its own outcome could not be written."""
    error = f"its outcome could not be recorded ({type(exc).__name__}: {exc})"
    if item.error:
        error += f"; the job's own error: {item.error}"
    return Finished(item.claim, item.task, JobStatus.FAILED, AttemptOutcome.FAILED, item.started_at,
                    item.finished_at, error=safe_text(error))


def safe_text(text: str) -> str:
    """``text`` that every database stores: no NUL bytes, no lone surrogates."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


def one_line(exc: BaseException) -> str:
    return safe_text(f"{type(exc).__name__}: {exc}").splitlines()[0] if str(exc) else type(exc).__name__


class Dispatcher:
    """Acks finished jobs and claims new ones for idle worker threads, one transaction a round."""

    def __init__(self, storage: LiteStorage, holder: str, queues: Sequence[str] | None, bell: Doorbell,
                 paused: Callable[[], set[str]], observers: list[Observer], bell_target: BellTarget,
                 stop: threading.Event, workers: int = 1,
                 window: float = defaults.ACK_GROUP_WINDOW, processes: bool = False,
                 on_fenced: Callable[[], object] | None = None) -> None:
        self.storage = storage
        self.on_fenced = on_fenced  # a round found the holder declared dead (the supervisor's nudge)
        # Worker threads share a process: a job some worker died on runs alone. A worker
        # process dies alone: no need. Worker processes take their next short job while
        # running one (process_pipes.py): claim ahead for them even when none is idle.
        self.isolate_suspects = not processes
        self.eager = processes
        self.window = window
        self.holder = holder
        self.queues = list(queues) if queues else None
        self.bell = bell
        self.paused = paused
        self.observers = observers
        self.bell_target = bell_target
        self.stop = stop
        self.cond = threading.Condition()
        # Woken when the last running job is handed in: a round waits (a moment) for the
        # jobs still running, so one commit carries them all (group commit).
        self.settled = threading.Condition(self.cond)
        self.running = 0
        self.seen = 0  # jobs finished, and their typical (moving average) duration
        self.typical_duration = 0.0
        #: Claims waiting for a worker, in the order they run. Those claimed ahead of an
        #: idle worker (``pending_start``) are ``queued`` in the ledger until taken.
        self.buffer: collections.deque[Claim] = collections.deque()
        #: Claims taken ahead that a worker began since the last round: the round writes their start.
        self.begun: list[Claim] = []
        self.finished: list[Finished] = []
        self.idle = 0
        self.pending = 0  # handed to put() but not yet committed
        self.done = 0
        self.empty_polls = 0  # rounds that found nothing to claim since the last job (--burst)
        self.sleeping = False  # the dispatcher waits on its bell: put() must wake it
        self.suspect: Claim | None = None  # a job a worker died on, running alone
        self.quiet = False  # asked to go quiet: finish the running jobs, claim no new ones
        self.workers = workers
        self.turned = time.monotonic()  # when the loop last began a turn (see stalled_for)
        #: The claims this dispatcher took and has not yet seen acked, by row id: everything
        #: else its holder holds after a lost connection was claimed by a lost commit. A row
        #: recovered by the others and claimed again is held by its newer claim.
        self.held: dict[int, Claim] = {}
        self.uncertain = False  # a round failed with the connection: did its commit happen?
        self.fenced_holder: str | None = None  # the holder a round last found declared dead
        self.waiting = threading.local()  # per worker: idle since its last call to get()
        self.thread = threading.Thread(target=self._run, name="litequeue-dispatcher", daemon=True)

    def start(self) -> None:
        self.thread.start()

    # -- the workers' side -------------------------------------------------------------------

    #: Idle worker threads sleep until a claim or a stop wakes them (:meth:`wake_workers`):
    #: no timer, so an idle consumer makes no more wake-ups than bare Huey's.
    idle_wait: float | None = None

    def get(self, timeout: float | None) -> Claim | None:
        """The next claimed job for a worker thread, or None after ``timeout`` (None: wait
        until there is one, or the dispatcher stops)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        # A worker that just became idle wakes the dispatcher (to claim for it); one still
        # idle since its last call does not again: the dispatcher found nothing then, and a
        # new job rings the doorbell (no claim round per idle worker per call: idle CPU).
        fresh = not getattr(self.waiting, "idle", False)
        with self.cond:
            self.idle += 1
            try:
                if not self.buffer and fresh:
                    # Never ring while holding the condition: the dispatcher needs it to
                    # finish the round that would drain the bell.
                    self.cond.release()
                    try:
                        self.bell.wake()
                    finally:
                        self.cond.acquire()
                while not self.buffer:
                    left = None if deadline is None else deadline - time.monotonic()
                    if (left is not None and left <= 0) or self.stop.is_set():
                        self.waiting.idle = True
                        return None
                    self.cond.wait(left)
                self.running += 1
                self.waiting.idle = False
                return self._begin(self.buffer.popleft())
            finally:
                self.idle -= 1

    def take(self) -> Claim | None:
        """A job already claimed, if any, without waiting (a worker process's next job)."""
        with self.cond:
            if not self.buffer:
                return None
            self.running += 1
            return self._begin(self.buffer.popleft())

    def _begin(self, claim: Claim) -> Claim:
        """A worker takes ``claim`` (lock held): one claimed ahead starts now, and the next
        round writes that start (woken for it, should it sleep)."""
        if claim.pending_start:
            claim.started_at = time.time()
            self.begun.append(claim)
            if self.sleeping:
                self.bell.wake()  # a byte into a non-blocking pipe: never blocks, lock or not
        return claim

    def short_jobs(self) -> bool:
        """Are jobs short (a few milliseconds, measured)? Then claiming ahead pays."""
        return self.seen >= SHORT_JOB_SAMPLE and self.typical_duration <= SHORT_JOB

    def put(self, finished: Finished) -> None:
        """Hand in a finished job; its ack is committed with the next round."""
        with self.cond:
            self.finished.append(finished)
            self.pending += 1
            self.running -= 1
            if self.running == 0:
                self.settled.notify()
            sleeping = self.sleeping
        if sleeping:
            self.bell.wake()

    def skip(self) -> None:
        """A claimed job ended with nothing to ack (failed unrunnable, or interrupted)."""
        with self.cond:
            self.running -= 1
            if self.running == 0:
                self.settled.notify()

    # -- the dispatcher's loop ---------------------------------------------------------------

    def stalled_for(self) -> float:
        """Seconds since the loop last began a turn; 0 when not running. An idle loop turns
        at least every ``IDLE_POLL_MAX``: a large value means it is stuck."""
        if self.stop.is_set() or not self.thread.is_alive():
            return 0.0
        return max(0.0, time.monotonic() - self.turned)

    def _run(self) -> None:
        while True:
            self.turned = time.monotonic()
            with self.cond:
                if self.finished and self.running:
                    self._gather()
                batch, self.finished = self.finished, []
                starts = self._starts(batch)
                self._measure(batch)
                want = 0 if self.stop.is_set() or self.quiet else self.idle + self._ahead() - len(self.buffer)
                if self.suspect is not None and not any(f.claim is self.suspect for f in batch):
                    want = 0  # a job a worker died on runs alone until it is acked
                if not batch and want <= 0 and not starts:
                    self.sleeping = True
                in_flight = self.pending - len(batch) + len(self.buffer)
                alone = in_flight == 0 and self.idle >= self.workers
                # Claims for the workers waiting now start at once; the rest wait in the buffer.
                start_first = self.idle if not self.buffer else 0
            if not batch and want <= 0 and not starts:
                if self.stop.is_set():
                    return
                self._sleep()
                continue
            if self.suspect is not None and any(f.claim is self.suspect for f in batch):
                self.suspect = None
            # Nothing else running: a job some worker died on gets its turn first, alone.
            isolate = "suspect-first" if alone and self.suspect is None else "others"
            if not self.isolate_suspects:
                isolate = None
            acked, claims = retrying("ack and claim", lambda b=batch, w=want, i=isolate, s=starts, f=start_first:
                                     self._round(b, w, i, s, f), reconnect=self.storage.close)
            for claim, _ in starts:
                claim.pending_start = False
            if claims is None:  # declared dead: idle until the supervisor carries on under a new id
                self._fenced()
                claims = []
            elif want > 0 and not claims:
                self.empty_polls += 1
            if claims and claims[0].suspect and self.isolate_suspects:
                self.suspect = claims[0]
            if claims:
                self.empty_polls = 0
                with self.cond:
                    self._fill(claims)
                    self.cond.notify(len(claims))
            if batch:
                self._settle(batch, acked)
            if want > 0 and not claims and not batch:
                with self.cond:
                    self.sleeping = True
                # Found nothing: poll less often the longer nothing comes (the doorbell
                # still wakes it at once).
                self._sleep(min(defaults.IDLE_POLL_MAX, defaults.IDLE_POLL * (1 + self.empty_polls // 10)))

    def _round(self, batch: list[Finished], want: int, isolate: str | None, starts: Starts = (),
               start_first: int | None = None) -> tuple[list[Finished], list[Claim] | None]:
        """One ack-and-claim commit. After a round lost its connection, the claims that
        round's commit may have made (the server may have committed before the connection
        died) are handed back first: nobody would ever run them."""
        if self.uncertain:
            strays = self.storage.unclaim_strays(self.holder, sorted(self.held))
            if strays:
                log.warning("%d job(s) claimed by a commit whose answer the lost connection never brought "
                            "went back to the queue", strays, extra={"action": "reconnect"})
            self.uncertain = False
        try:
            acked, claims = commit_round(self.storage, self.holder, batch, self.queues, want, self.paused(),
                                         isolate, starts, start_first)
        except Exception as exc:
            if is_disconnect(exc):
                self.uncertain = True
            raise
        self.held.update((c.row_id, c) for c in claims or ())
        return acked, claims

    def _fenced(self) -> None:
        """A round claimed nothing because the others declared this holder dead (its
        session went, or its lease ran out): say so once, and have the supervisor's
        heartbeat find out now and carry on under a new id (``LiteConsumer._presumed_dead``)."""
        if self.on_fenced is not None:
            self.on_fenced()
        if self.fenced_holder != self.holder:
            self.fenced_holder = self.holder
            log.warning("consumer %s was declared dead by the others: claiming nothing under that id "
                        "until it carries on as a fresh consumer", self.holder, extra={"action": "fenced"})

    def _ahead(self) -> int:
        """How many jobs to claim beyond the idle workers (lock held): the prefetch. A
        buffer lets a worker that finishes take its next job while the round acking it
        commits, and each commit carry more jobs; but a job claimed ahead waits for this
        consumer's workers even if another consumer is idle (behind a higher-priority job
        claimed later only until the next round, see :meth:`_fill`). So only while jobs
        are short (measured): at most ``AHEAD_PER_WORKER`` x ``SHORT_JOB`` (20 ms) of work
        per worker is held. Four per worker, not one: 4,082 and 4,635 no-op jobs/s against
        3,279 and 3,261 (benchmarks/run.py, -w 8 threads)."""
        if not self.short_jobs():
            return 0
        return self.workers * AHEAD_PER_WORKER

    def _fill(self, claims: list[Claim]) -> None:
        """Add claims to the buffer (lock held), keeping it in the order jobs run: a job of
        higher priority (or of an earlier queue under ``-Q``) claimed now goes before the
        buffer's own."""
        tail = self.buffer[-1] if self.buffer else None
        self.buffer.extend(claims)
        if tail is not None and self._order(claims[0]) < self._order(tail):
            self.buffer = collections.deque(sorted(self.buffer, key=self._order))

    def _order(self, claim: Claim) -> tuple[int, int, int]:
        rank = self.queues.index(claim.queue) if self.queues and claim.queue in self.queues else 0
        return rank, -claim.priority, claim.row_id

    def _starts(self, batch: Sequence[Finished]) -> list[tuple[Claim, float]]:
        """The starts this round writes (lock held): the claims taken ahead that workers
        began and are still running (those in ``batch`` have theirs written by the ack)."""
        ending = {id(item.claim) for item in batch}
        starts = [(c, c.started_at) for c in self.begun if id(c) not in ending]
        self.begun = []
        return starts

    def _measure(self, batch: list[Finished]) -> None:
        for item in batch:
            self.seen += 1
            self.typical_duration += (item.duration - self.typical_duration) * 0.1

    def _gather(self) -> None:
        """Wait up to the group-commit window for the jobs still running (lock held)."""
        deadline = time.monotonic() + self.window
        while self.running and not self.stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self.settled.wait(left)

    def _sleep(self, timeout: float = defaults.IDLE_POLL) -> None:
        try:
            self.bell.wait(timeout)
        finally:
            with self.cond:
                self.sleeping = False

    def _settle(self, batch: list[Finished], acked: list[Finished]) -> None:
        log_dropped(batch, acked)
        for item in batch:  # not a newer claim of the same row (the others took the older one)
            if self.held.get(item.claim.row_id) is item.claim:
                del self.held[item.claim.row_id]
        with self.cond:
            self.pending -= len(batch)
            self.done += len(acked)
        if adds_ready_jobs(acked):
            ring(self.bell_target)
        notify(self.observers, acked)

    def wake_workers(self) -> None:
        """Wake every worker waiting in :meth:`get` (the stop event was set: they return)."""
        with self.cond:
            self.cond.notify_all()

    def close(self, timeout: float = 10.0) -> list[Claim]:
        """Commit every ack handed in so far, stop claiming; return claims never started."""
        self.stop.set()
        self.bell.wake()
        self.wake_workers()
        if self.thread.ident is not None:
            self.thread.join(timeout)
        with self.cond:
            left = list(self.buffer)
            self.buffer.clear()
            batch, self.finished = self.finished, []
            starts = self._starts(batch)
        if batch or starts:  # handed in after the loop's last round
            acked = retrying("ack", lambda: ack_resilient(self.storage, self.holder, batch, starts))
            self._settle(batch, acked or [])
        return left

    def busy(self, workers: int) -> bool:
        with self.cond:
            return self.idle < workers or bool(self.buffer) or self.pending > 0
