"""Where dead consumers are noticed and their claims *recovered*; heartbeats and pauses.

Runs in every consumer: registers it (``register_worker``), writes its heartbeat
(``update_heartbeat``), and once a second looks at every claim holder; a holder whose
consumer is dead (lock released, host rebooted, or heartbeat lease expired) has its
claims handed back (``release_stalled_claims``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from litequeue.base import defaults, sdnotify
from litequeue.jobs import consumers, recover
from litequeue.ledger import queries
from litequeue.runtime.fault_backoff import FaultWait
from litequeue.store.doorbell import ring
from litequeue.store.liveness import boot_id, consumer_of, hostname, judge

if TYPE_CHECKING:
    from litequeue.engine.storage import LiteStorage
    from litequeue.jobs.retention import AutoPruner
    from litequeue.store.file_identity import FileIdentity

log = logging.getLogger("litequeue.supervisor")


def register_worker(storage: LiteStorage, consumer_id: str, pid: int, lock_path: str | None,
                    queues: Sequence[str] | None, concurrency: int, worker_type: str,
                    lease: float | None = defaults.HEARTBEAT_LEASE) -> None:
    now = time.time()
    with storage.write():
        consumers.register_consumer(storage, dict(
            id=consumer_id, hostname=hostname(), pid=pid, boot_id=boot_id(), lock_path=lock_path,
            queues=",".join(queues or ()), concurrency=concurrency, worker_type=worker_type,
            started_at=now, heartbeat_at=now, status="running", jobs_done=0, lease=lease))


def update_heartbeat(storage: LiteStorage, consumer_id: str, jobs_done: int) -> bool:
    """Renew the lease; False when the others presumed this consumer dead meanwhile."""
    with storage.write():
        return consumers.heartbeat(storage, consumer_id, jobs_done)


def mark_stopping(storage: LiteStorage, consumer_id: str) -> None:
    with storage.write():
        consumers.mark_stopping(storage, consumer_id)


def deregister_worker(storage: LiteStorage, consumer_id: str, jobs_done: int) -> None:
    with storage.write():
        consumers.deregister_consumer(storage, consumer_id, jobs_done)


def release_stalled_claims(storage: LiteStorage, me: str | None = None,
                           lease: float | None = None) -> int:
    """Recover the claims of every dead consumer; returns how many jobs went back or failed.

    A holder whose consumer is not registered at all is an orphan and is recovered too.
    Each dead consumer is marked so and has its claims taken back in ONE transaction, the
    mark first: a claim it makes meanwhile either committed before (and is taken back with
    the rest) or finds it dead and claims nothing (``jobs.claim.holder_fenced``), so no
    claim of a dead consumer is left for the next pass to take back again (counting its job
    one more crash). A consumer whose process is seen alive (only its database session
    ended) had no worker die: its jobs go back counting no crash."""
    verdict = judge(storage.database, lease=lease, skip=me)
    held: dict[str, list[str]] = {}
    for holder in storage.claim_holders():
        if consumer_of(holder) != me and verdict.holder_is_orphaned(holder):
            held.setdefault(consumer_of(holder), []).append(holder)
    recovered = 0
    for cid in sorted({*verdict.dead, *held}):
        why, crashed = verdict.why(cid), cid not in verdict.living
        with storage.write():
            consumers.mark_dead(storage, cid)
            results = [recover.recover(storage, h, f"interrupted: {why}", crashed=crashed) for h in held.get(cid, ())]
        back, failed = sum(r[0] for r in results), sum(r[1] for r in results)
        if back or failed:
            log.warning("consumer %s is dead (%s): %d job(s) back to the queue%s, %d failed at the crash cap",
                        cid, why, back, "" if crashed else " (no worker died: no crash counted)", failed,
                        extra={"action": "recover"})
        recovered += back + failed
    return recovered


class Supervisor:
    """The consumer's housekeeping thread: heartbeat, recovery, pause state."""

    def __init__(self, storage: LiteStorage, consumer_id: str, bell_target: object,
                 jobs_done: Callable[[], int], interval: float = defaults.HEARTBEAT_INTERVAL,
                 pruner: AutoPruner | None = None, progressing: Callable[[], bool] | None = None,
                 identity: FileIdentity | None = None, on_replaced: Callable[[], object] | None = None,
                 keep_session: Callable[[], object] | None = None,
                 on_presumed_dead: Callable[[], object] | None = None,
                 busy: Callable[[], bool] | None = None, idle_heartbeat: float = defaults.IDLE_HEARTBEAT,
                 on_request: Callable[[str], object] | None = None) -> None:
        self.storage = storage
        #: Someone asked this consumer to go ``quiet`` or ``stop`` (the status page's buttons).
        self.on_request = on_request
        self._obeyed: str | None = None
        #: Before each heartbeat: check the session lock (PostgreSQL), take it again if lost.
        self.keep_session = keep_session
        #: The heartbeat found this consumer presumed dead: carry on as a fresh consumer.
        self.on_presumed_dead = on_presumed_dead
        self.busy = busy
        #: How often an idle consumer writes its heartbeat (well inside its lease).
        self.idle_heartbeat = idle_heartbeat
        self.progressing = progressing
        self.identity = identity
        self.on_replaced = on_replaced
        self.fault = FaultWait(log, "heartbeat")
        self.consumer_id = consumer_id
        self.bell_target = bell_target
        self.jobs_done = jobs_done
        self.interval = interval
        self.pruner = pruner
        self.stop = threading.Event()
        self._nudged = threading.Event()  # tick now, not at the end of the interval
        self._paused: set[str] = set()
        self._beat = (-1, 0.0)  # jobs done at the last heartbeat, and when
        self.thread = threading.Thread(target=self._run, name="litequeue-supervisor", daemon=True)

    def start(self) -> None:
        self.refresh_paused()
        self.thread.start()

    def nudge(self) -> None:
        """Tick now (the dispatcher found this consumer declared dead: the heartbeat that
        carries it on under a new id should not wait for the interval)."""
        self._nudged.set()

    def halt(self) -> None:
        self.stop.set()
        self._nudged.set()

    def paused(self) -> set[str]:
        return self._paused

    def refresh_paused(self) -> None:
        paused = self.storage.paused_queues()
        if paused != self._paused:
            log.info("paused queues: %s", ", ".join(sorted(paused)) or "none")
            if self._paused - paused:
                ring(self.bell_target)  # type: ignore[arg-type]
        self._paused = paused

    def tick(self) -> None:
        if self.identity is not None and self.on_replaced is not None:
            # Before the heartbeat: not one more write into a file that is gone.
            message = self.identity.check()
            if message is not None:
                log.error("%s; restarting to serve the file now at that path (the old file's "
                          "claims go with it)", message, extra={"action": "database-replaced"})
                self.on_replaced()
                return
        if self.keep_session is not None:
            self.keep_session()
        done, now = self.jobs_done(), time.monotonic()
        # Idle (no job running, none finished since the last heartbeat): a heartbeat every
        # few seconds is enough, and each one is a commit (idle CPU).
        idle = done == self._beat[0] and self.busy is not None and not self.busy()
        if not idle or now - self._beat[1] >= self.idle_heartbeat:
            if not update_heartbeat(self.storage, self.consumer_id, done) and self.on_presumed_dead:
                self.on_presumed_dead()  # the others gave its claims away: it carries on as a fresh consumer
                return
            self._beat = (done, now)
        # Only once the heartbeat is written and the workers' jobs still move: a stuck
        # database or a hung dispatcher trips the watchdog (systemd restarts the consumer).
        if self.progressing is None or self.progressing():
            sdnotify.watchdog()
        else:
            log.error("the dispatcher is stuck: not feeding the systemd watchdog")
        self.refresh_paused()
        self.check_request()
        if release_stalled_claims(self.storage, me=self.consumer_id):
            ring(self.bell_target)  # type: ignore[arg-type]
        if self.pruner is not None:
            result = self.pruner.maybe_prune(self.storage)
            if result is not None and result.as_dict().get("jobs"):
                log.info("pruned old ledger records: %s", result.as_dict(), extra={"action": "prune"})

    def check_request(self) -> None:
        """Obey a Quiet or Stop asked of this consumer (one primary-key read a pass)."""
        if self.on_request is None:
            return
        requested, _ = queries.consumer_request(self.storage.database, self.consumer_id)
        if requested is None or requested == self._obeyed:
            return
        log.warning("asked to %s: %s", requested, "taking no new jobs, finishing the running ones"
                    if requested == "quiet" else "stopping gracefully", extra={"action": requested})
        self._obeyed = requested
        with self.storage.write():
            consumers.obeyed(self.storage, self.consumer_id, requested)
        self.on_request(requested)

    def _run(self) -> None:
        while not self._rest():
            try:
                self.tick()
            except Exception as exc:  # noqa: BLE001 - housekeeping must survive a busy database
                if not self.fault.handles(exc):
                    log.exception("supervisor pass failed; retrying")
                else:  # a full disk or a read-only database: one line per back-off step
                    self.fault.wait(exc, self.stop, reconnect=self.storage.close)
            else:
                self.fault.recovered()

    def _rest(self) -> bool:
        """Wait for the next tick (the interval, or a nudge); True once stopped."""
        self._nudged.wait(self.interval)
        self._nudged.clear()
        return self.stop.is_set()
