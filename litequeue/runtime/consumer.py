"""``LiteConsumer``: Huey's consumer with claims, instant crash recovery and graceful stops.

What it changes at Huey's seams:

* workers take jobs from claims (``dispatcher.py``) and never delete a queue row themselves;
* SIGTERM and SIGINT both stop gracefully (finish running jobs within
  ``shutdown_timeout``, then hand unfinished claims back); a second signal stops at once,
  still handing claims back; SIGHUP restarts gracefully;
* the consumer holds a lock file for life (on PostgreSQL: a session advisory lock), so
  others know at once when it dies; a consumer the others presumed dead (its lease ran out
  while it was stopped or cut off) notices, drops its outcomes (fenced acks) and carries on
  under a fresh id;
* process workers die with their parent (``PR_SET_PDEATHSIG``) and ignore the signals
  meant for the parent; they get their jobs over pipes from the same dispatcher thread
  workers use (``process_pipes.py``), and a dead worker process's claim is recovered at once;
* task timeouts are enforced for thread workers too;
* a cancel watcher stops the running jobs someone cancelled (``cancel_watch.py``);
* ``worker_type="asyncio"``: N slots running ``async def`` tasks on one event loop (``aio.py``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from huey.consumer import ConsumerStopped

from litequeue.base import defaults, sdnotify
from litequeue.base.secrets import redact
from litequeue.engine.huey_compat import ConsumerSeams
from litequeue.engine.write_guard import FORK_GUARD
from litequeue.jobs.retention import AutoPruner
from litequeue.runtime import cancel_watch
from litequeue.runtime.cancel_watch import CancelWatcher
from litequeue.runtime.dispatcher import Dispatcher, Observer
from litequeue.runtime.environments import ChildProcessEnvironment, ThreadTimeoutEnvironment
from litequeue.runtime.fault_backoff import FaultWait
from litequeue.runtime.process_pipes import Courier, PipeEndpoint, WorkerPipe, recover_worker_claims
from litequeue.runtime.restart import restart_in_place
from litequeue.runtime.scheduler import LiteScheduler
from litequeue.runtime.supervisor import (
    Supervisor,
    deregister_worker,
    mark_stopping,
    register_worker,
    release_stalled_claims,
)
from litequeue.runtime.worker import LiteWorker
from litequeue.store import dialect, faults, outage
from litequeue.store.database import state_dir
from litequeue.store.doorbell import Doorbell, make_doorbell
from litequeue.store.liveness import LifeLock, SessionLock, consumer_of, holder_of, new_consumer_id

if TYPE_CHECKING:
    from litequeue.app import LiteQueue

log = logging.getLogger("litequeue.consumer")

#: Options of Huey's consumer (``huey_consumer``, ``create_consumer``) that are kept but
#: change nothing here: workers and the scheduler are woken by the doorbell instead of
#: polling, and SIGINT and SIGTERM both stop gracefully.
HUEY_POLLING_OPTIONS = ("initial_delay", "backoff", "max_delay", "scheduler_interval", "graceful_signal")


class LiteConsumer(ConsumerSeams):
    """Runs workers (threads or processes), a scheduler and a supervisor for one app.

    Takes Huey's consumer options too (what ``huey_consumer`` passes): ``flush_locks``,
    ``extra_locks``, ``check_worker_health``, ``health_check_interval`` and
    ``shutdown_timeout=None`` (wait for running jobs without limit) work as in Huey; the
    polling options are kept but change nothing (see :data:`HUEY_POLLING_OPTIONS`)."""

    worker_class = LiteWorker
    scheduler_class = LiteScheduler

    def __init__(self, huey: LiteQueue, workers: int = 1, worker_type: str = defaults.WORKER_TYPE,
                 queues: Sequence[str] | None = None, burst: bool = False,
                 max_tasks: int | None = None, shutdown_timeout: float | None = defaults.SHUTDOWN_TIMEOUT,
                 periodic: bool = True, observers: Sequence[Observer] = (),
                 pruner: AutoPruner | bool | None = None, flush_locks: bool = False,
                 extra_locks: str | None = None, check_worker_health: bool = True,
                 health_check_interval: float = 1, cancel_grace: float = defaults.CANCEL_GRACE,
                 lease: float = defaults.HEARTBEAT_LEASE,
                 **options: Any) -> None:
        unknown = set(options) - set(HUEY_POLLING_OPTIONS)
        if unknown:
            raise TypeError(f"unknown consumer option(s): {', '.join(sorted(unknown))}")
        self.consumer_id = new_consumer_id()
        self.queues = [q for q in (queues or ()) if q] or None
        self.burst = burst
        # None: prune by the default policy; False: never prune from this consumer.
        self.pruner: AutoPruner | None = AutoPruner() if pruner is None or pruner is True else (pruner or None)
        self.observers: list[Observer] = [*observers, *huey.observers]
        self.state = state_dir(huey.db_target)
        self.lock = LifeLock(self.state / "consumers" / f"{self.consumer_id}.lock") if self.state else None
        #: Others take this consumer's claims after this long without a heartbeat.
        self.lease = lease
        self.session: SessionLock | None = (
            SessionLock(huey.storage.database, self.consumer_id)
            if self.state is None and not dialect.is_sqlite(huey.storage.database) else None)
        self._session_lost_said = False
        self.stop_event = threading.Event()
        self.dispatcher: Dispatcher | None = None
        self.couriers: dict[int, Courier] = {}  # worker process pid -> its courier
        self._reported_before = False  # whether outages were said in the log before start()
        self._lazy_lock = threading.Lock()
        self.supervisor: Supervisor | None = None
        self._bell: Doorbell | None = None
        self._main_bell: Doorbell | None = None
        self.scheduler_bell: Doorbell | None = None
        self._burst_done = False
        self.cancel_grace = cancel_grace
        self.cancel_watcher: CancelWatcher | None = None
        super().__init__(huey, workers=workers, periodic=periodic, worker_type=worker_type,
                         max_tasks=max_tasks, shutdown_timeout=shutdown_timeout,
                         check_worker_health=check_worker_health,
                         health_check_interval=health_check_interval,
                         flush_locks=flush_locks, extra_locks=extra_locks, **options)
        self.set_signal_actions({signal.SIGINT: (False, True), signal.SIGTERM: (False, True),
                                 signal.SIGHUP: (True, True)})

    storage = property(lambda self: self.huey.storage)

    # -- Huey's seams -------------------------------------------------------------------

    def get_environment(self, worker_type: str) -> Any:
        # asyncio: thread slots whose coroutines share one event loop (see aio.py).
        if worker_type in ("thread", "asyncio"):
            return ThreadTimeoutEnvironment()
        if worker_type == "process":
            env = ChildProcessEnvironment(signal.SIGINT, signal.SIGUSR1)
            env.parent_pid = os.getpid()
            return env
        raise ValueError(f"worker type must be thread, process or asyncio, not {worker_type!r}")

    def create_worker(self) -> LiteWorker:
        worker = LiteWorker(self.huey, self.stop_flag, self, max_tasks=self.max_tasks)
        if self.worker_type == "process":
            worker.pipe = WorkerPipe()
        return worker

    def create_scheduler(self) -> LiteScheduler:
        return LiteScheduler(self.huey, self.stop_flag, self, self.periodic)

    def make_bell(self, name: str) -> Doorbell:
        return make_doorbell(self.huey.bell_target, f"{self.consumer_id.rsplit(':', 1)[-1]}-{name}-{os.getpid()}")

    def endpoints_for_worker(self, worker: Any = None) -> tuple[Any, Any]:
        """Where a worker takes claims from and hands outcomes to (called in the worker)."""
        pipe = getattr(worker, "pipe", None)
        if pipe is not None:  # a worker process: its pipe to the consumer's dispatcher
            endpoint = PipeEndpoint(pipe, self.storage, self.consumer_id, self.observers, self.huey.bell_target)
            return endpoint, endpoint
        if self.dispatcher is None:  # a worker thread started without start() (Huey's own tests do)
            with self._lazy_lock:
                if self.dispatcher is None:
                    self._bell = self.make_bell("dispatcher")
                    dispatcher = Dispatcher(self.storage, self.consumer_id, self.queues, self._bell,
                                            self.storage.paused_queues, self.observers, self.huey.bell_target,
                                            self.stop_event, workers=self.workers)
                    dispatcher.start()
                    self.dispatcher = dispatcher
        return self.dispatcher, self.dispatcher

    def _start_couriers(self) -> None:
        """A courier for each worker process that has none (new, or replacing a dead one)."""
        assert self.dispatcher is not None
        live = set()
        for worker, proc in self.worker_threads:
            pipe = getattr(worker, "pipe", None)
            if pipe is None or not proc.pid:
                continue
            live.add(proc.pid)
            if proc.pid not in self.couriers:
                courier = Courier(self.dispatcher, self.storage, self.consumer_id, pipe, proc,
                                  self.stop_event, self._worker_lost, self.max_tasks)
                self.couriers[proc.pid] = courier
                courier.start()
        for pid in [p for p, c in self.couriers.items() if p not in live and not c.thread.is_alive()]:
            del self.couriers[pid]

    def _worker_lost(self, pid: int, back: int, failed: int) -> None:
        log.warning("worker process %s died: %d job(s) back to the queue, %d failed at the crash cap",
                    pid, back, failed)

    # -- life -----------------------------------------------------------------------------

    def start(self) -> None:
        # A lost database server is said in this consumer's log, once per outage.
        self._reported_before = outage.report()
        self._register()
        self.huey.publish_limits()
        recovered = release_stalled_claims(self.storage, me=self.consumer_id)
        if recovered:
            log.warning("recovered %d job(s) from dead consumers", recovered)
        self._bell = self.make_bell("dispatcher")
        # The main thread sleeps on a bell of its own (a pipe, rung by signals and stops),
        # not on Huey's 0.1 s stop-flag poll.
        self._main_bell = Doorbell(None, "main")
        self.poll_stop_flag(0.0)
        self.supervisor = Supervisor(self.storage, self.consumer_id, self.huey.bell_target,
                                     self._jobs_done, pruner=self.pruner,
                                     progressing=self._dispatcher_progressing,
                                     identity=self.huey.db_identity, on_replaced=self.database_replaced,
                                     keep_session=self._keep_session, on_presumed_dead=self._presumed_dead,
                                     busy=self._busy, idle_heartbeat=min(defaults.IDLE_HEARTBEAT, self.lease / 3),
                                     on_request=self._asked)
        self.dispatcher = Dispatcher(self.storage, self.consumer_id, self.queues, self._bell,
                                     self.supervisor.paused, self.observers, self.huey.bell_target,
                                     self.stop_event, workers=self.workers,
                                     processes=self.worker_type == "process", on_fenced=self.supervisor.nudge)
        log.info("litequeue consumer %s: %d %s worker(s), queues: %s, database: %s",
                 self.consumer_id, self.workers, self.worker_type,
                 ",".join(self.queues) if self.queues else "all", redact(self.huey.db_target))
        with FORK_GUARD:  # forks process workers; no thread of this process is inside a write then
            super().start()
        self.supervisor.start()
        self.cancel_watcher = CancelWatcher(self, self.cancel_grace)
        self.cancel_watcher.start()
        self.dispatcher.start()
        if self.worker_type == "process":
            self._start_couriers()
        sdnotify.ready(f"{self.workers} {self.worker_type} worker(s), queues: "
                       f"{','.join(self.queues) if self.queues else 'all'}")

    def wake_main_loop(self) -> None:
        if self._main_bell is not None:
            self._main_bell.wake()  # a byte into a non-blocking pipe: safe in a signal handler

    def _asked(self, what: str) -> None:
        """Quiet: the dispatcher claims nothing more; stop: what SIGTERM does."""
        if self.dispatcher is not None:
            self.dispatcher.quiet = True
        if what == "stop":
            self.request_graceful_stop()

    def _busy(self) -> bool:
        return self.dispatcher is not None and self.dispatcher.busy(self.workers)

    def _dispatcher_progressing(self) -> bool:
        return self.dispatcher is None or self.dispatcher.stalled_for() < defaults.DISPATCHER_STALL

    def _register(self) -> None:
        """Take the life lock and register; a full disk or a read-only database (or its
        folder, where the lock file lives) is waited out, one line per step."""
        fault = FaultWait(log, "consumer start")
        while True:
            try:
                if self.lock is not None and self.lock.fd < 0:
                    try:
                        self.lock.acquire()
                    except OSError as exc:
                        raise faults.from_os_error(exc, self.storage.database) from exc
                if self.session is not None and self.session.conn is None:
                    self.session.acquire()  # before the row: a row others see always had its lock
                register_worker(self.storage, self.consumer_id, os.getpid(),
                                str(self.lock.path) if self.lock else None, self.queues, self.workers,
                                self.worker_type, self.lease)
            except Exception as exc:
                if not fault.handles(exc):
                    raise
                fault.wait(exc, self.stop_event, reconnect=self.storage.close)
                if self.signal_received() is not None or self.stop_event.is_set():
                    log.info("consumer %s stopped before it could register", self.consumer_id)
                    if self.lock is not None and self.lock.fd >= 0:
                        self.lock.release()
                    if self.session is not None:
                        self.session.close()
                    raise SystemExit(0) from None
            else:
                fault.recovered()
                return

    def _keep_session(self) -> None:
        """The supervisor's check before each heartbeat: the session advisory lock is still
        held, or is taken again on a new connection (a terminated backend, a restarted
        server). Raises while the server is away: the supervisor backs off and retries."""
        if self.session is None or self.stop_event.is_set() or self.session.held():
            return
        # Once per loss, not once per retry while the server is away (the outage says that).
        if not self._session_lost_said:
            self._session_lost_said = True
            log.warning("consumer %s lost its database session (and its advisory lock): reconnecting",
                        self.consumer_id, extra={"action": "reconnect"})
        self.session.acquire()
        self._session_lost_said = False
        log.info("consumer %s: database session and advisory lock taken again", self.consumer_id,
                 extra={"action": "reconnect"})

    def _presumed_dead(self) -> None:
        """The others presumed this consumer dead (its lease ran out, or its session lock
        went) and gave its claims away: carry on as a fresh consumer. Outcomes of jobs that
        were running meanwhile are dropped by the fenced ack (and logged there)."""
        if self.stop_event.is_set():
            return
        old = self.consumer_id
        if self.worker_type == "process" or self.supervisor is None:
            # Each worker process holds its claims under the old id: start over in place.
            log.warning("consumer %s was presumed dead by the others and its claims were given away: "
                        "restarting as a fresh consumer", old, extra={"action": "presumed-dead"})
            self.database_replaced()
            return
        new = new_consumer_id()
        session = SessionLock(self.storage.database, new) if self.session is not None else None
        lock = LifeLock(self.lock.path.with_name(f"{new}.lock")) if self.lock is not None else None
        try:
            if session is not None:
                session.acquire()
            if lock is not None:
                lock.acquire()
            register_worker(self.storage, new, os.getpid(), str(lock.path) if lock else None,
                            self.queues, self.workers, self.worker_type, self.lease)
        except Exception:
            if session is not None:
                session.close()
            if lock is not None:
                lock.release()
            raise
        self.consumer_id = self.supervisor.consumer_id = new
        if self.dispatcher is not None:
            self.dispatcher.holder = new
            self.dispatcher.bell.wake()  # it claims again now, not at its next poll
        if self.session is not None:
            self.session.close()
        if self.lock is not None:
            self.lock.release()
        self.session, self.lock = session, lock
        log.warning("consumer %s was presumed dead by the others and its claims were given away; "
                    "carrying on as a fresh consumer %s (outcomes of jobs it was running are dropped)",
                    old, new, extra={"action": "presumed-dead"})

    def database_replaced(self) -> None:
        """The database path names another file (or none): restart in place, which opens
        the file now at the path. Called by the supervisor, which logged why; see
        store/file_identity.py for why nothing is written to the old file first."""
        sdnotify.reloading()
        children = [proc.pid for _, proc in self.worker_threads
                    if self.worker_type == "process" and getattr(proc, "pid", None)]
        for pid in children:  # before the lock goes: they hold it too (inherited)
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        if self.lock is not None:
            self.lock.release()  # inheritable (for process workers): exec would keep it open
        if self.session is not None:
            self.session.close()
        restart_in_place()

    def _jobs_done(self) -> int:
        return self.dispatcher.done if self.dispatcher else 0

    def run(self) -> None:
        """Run until stopped; always hand unfinished claims back before returning."""
        self.install_signal_handlers()  # before start(): a SIGTERM while starting is a graceful stop
        self.start()
        health_check_ts = time.monotonic()
        try:
            while True:
                try:
                    health_check_ts = self.loop(health_check_ts)
                except ConsumerStopped:
                    break
        finally:
            if threading.current_thread() is threading.main_thread():
                for sig in (signal.SIGINT, signal.SIGTERM):  # not while handing claims back
                    signal.signal(sig, signal.SIG_IGN)
            try:
                self.shutdown()
            finally:
                self.restore_signal_handlers()
        if self.restart_requested:
            log.info("consumer restarting (SIGHUP)")
            sdnotify.reloading()
            os.execv(sys.executable, [sys.executable, *sys.argv])

    def loop(self, health_check_ts: float | None = None) -> float | None:
        if self.burst and not self._burst_done and self._drained():
            log.info("burst: queues drained, stopping")
            self._burst_done = True
            self.stop(graceful=True)
            raise ConsumerStopped
        # Asleep until the next health check, a signal or a stop (a burst consumer looks
        # whether it is done ten times a second, as Huey's loop did).
        try:
            if self._main_bell is not None and not self.stop_flag.is_set() and self.signal_received() is None:
                self._main_bell.wait(0.1 if self.burst else self.health_check_due(health_check_ts))
        except KeyboardInterrupt:  # a second signal before the loop saw the first: stop at once
            self.stop(graceful=False)
            raise ConsumerStopped from None
        return super().loop(health_check_ts)

    def _drained(self) -> bool:
        if self.dispatcher is None:
            return False
        return (not self.dispatcher.busy(self.workers) and self.dispatcher.empty_polls > 0
                and self._nothing_due())

    def _nothing_due(self) -> bool:
        nxt = self.storage.next_due()
        return nxt is None or nxt > time.time() + 1.0

    def stop(self, graceful: bool = False) -> None:
        sdnotify.stopping("finishing running jobs" if graceful else "stopping now")
        self.stop_event.set()
        self.stop_flag.set()  # Huey's stop() sets it too; set first, the main loop wakes to see it
        self.wake_main_loop()
        if self.dispatcher is not None:
            self.dispatcher.wake_workers()  # idle workers sleep without a timer
        with contextlib.suppress(Exception):  # visible to health and the status page
            mark_stopping(self.storage, self.consumer_id)
        for bell in (self._bell, self.scheduler_bell):
            if bell is not None:
                bell.wake()
        # Workers never started (stopped before start()): nothing to wait for.
        started = any(proc.ident is not None for _, proc in self.worker_threads)
        super().stop(graceful=graceful and started)

    def shutdown(self) -> None:
        """Commit finished acks, hand every unfinished claim back, deregister."""
        self.stop_event.set()
        if self.supervisor is not None:
            self.supervisor.halt()
        for courier in self.couriers.values():  # outcomes the workers sent, handed in
            courier.join(5.0)
        if self.cancel_watcher is not None:
            self.cancel_watcher.close()
        if self.dispatcher is not None:
            left = self.dispatcher.close()
            if left:
                self.storage.release(self.consumer_id, [c.row_id for c in left],
                                     reason="claimed but not started when the consumer stopped")
        released = self.storage.release(self.consumer_id)
        for _, proc in self.worker_threads:
            if self.worker_type == "process" and proc.pid:
                released += self.storage.release(holder_of(self.consumer_id, proc.pid))
        if released:
            log.warning("handed %d unfinished job(s) back to the queue", released)
        with contextlib.suppress(Exception):
            deregister_worker(self.storage, self.consumer_id, self._jobs_done())
        if self._bell is not None:
            self._bell.close()
        if self.lock is not None:
            self.lock.release()
        if self.session is not None:
            self.session.close()
        outage.report(self._reported_before)
        if self._main_bell is not None:
            self._main_bell.close()
        log.info("consumer %s stopped", self.consumer_id)

    def check_worker_health(self) -> bool:
        if self.worker_type == "process":
            for _, proc in self.worker_threads:
                if proc.pid and not proc.is_alive():
                    back, failed = recover_worker_claims(self.storage, holder_of(self.consumer_id, proc.pid))
                    if back or failed:
                        log.warning("worker process %s died: %d job(s) back to the queue, "
                                    "%d failed at the crash cap", proc.pid, back, failed)
            self.storage.close()  # the main thread's connection must not be inherited by new workers
            with FORK_GUARD:  # no thread of ours is inside a write transaction while we fork
                healthy = super().check_worker_health()
            self._start_couriers()
            self._recover_vanished_workers()
            return healthy
        self._replace_retired_threads()
        return super().check_worker_health()

    def _replace_retired_threads(self) -> None:
        """A worker thread left behind in a cancelled job (cancel_watch.py) gets a successor,
        so the consumer keeps its full worker count; the old thread exits on its own."""
        for i, (_, thread) in enumerate(self.worker_threads):
            if cancel_watch.retired(thread.ident):
                cancel_watch.forget_retired(thread.ident)
                self.worker_threads[i] = self.start_worker(f"Worker-{i + 1}")

    def _recover_vanished_workers(self) -> None:
        """Recover claims of this consumer held by a pid that is none of its live workers: a
        worker that died after the look above, just before Huey replaced it."""
        live = {holder_of(self.consumer_id, proc.pid) for _, proc in self.worker_threads
                if proc.pid and proc.is_alive()}
        for holder in self.storage.claim_holders():
            if consumer_of(holder) != self.consumer_id or holder == self.consumer_id or holder in live:
                continue
            back, failed = recover_worker_claims(self.storage, holder)
            log.warning("worker %s is gone: %d job(s) back to the queue, %d failed at the crash cap",
                        holder, back, failed)
