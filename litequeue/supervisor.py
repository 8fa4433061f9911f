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

from . import defaults, sdnotify
from .doorbell import ring
from .faultwait import FaultWait
from .liveness import boot_id, consumer_is_dead, consumer_of, hostname

if TYPE_CHECKING:
    from .replaced import FileIdentity
    from .retention import AutoPruner
    from .storage import LiteStorage

log = logging.getLogger("litequeue.supervisor")


def register_worker(storage: LiteStorage, consumer_id: str, pid: int, lock_path: str | None,
                    queues: Sequence[str] | None, concurrency: int, worker_type: str) -> None:
    now = time.time()
    with storage.write():
        storage.ledger.Consumer.insert(
            id=consumer_id, hostname=hostname(), pid=pid, boot_id=boot_id(), lock_path=lock_path,
            queues=",".join(queues or ()), concurrency=concurrency, worker_type=worker_type,
            started_at=now, heartbeat_at=now, status="running",
        ).execute()


def update_heartbeat(storage: LiteStorage, consumer_id: str, jobs_done: int) -> None:
    with storage.write():
        storage.sql("UPDATE lq_consumer SET heartbeat_at = ?, jobs_done = ? WHERE id = ?",
                    (time.time(), jobs_done, consumer_id))


def mark_stopping(storage: LiteStorage, consumer_id: str) -> None:
    with storage.write():
        storage.sql("UPDATE lq_consumer SET status = 'stopping' WHERE id = ? AND status = 'running'",
                    (consumer_id,))


def deregister_worker(storage: LiteStorage, consumer_id: str, jobs_done: int) -> None:
    now = time.time()
    with storage.write():
        storage.sql("UPDATE lq_consumer SET status = 'stopped', stopped_at = ?, heartbeat_at = ?, "
                    "jobs_done = ? WHERE id = ?", (now, now, jobs_done, consumer_id))


def release_stalled_claims(storage: LiteStorage, me: str | None = None,
                           lease: float = defaults.HEARTBEAT_LEASE) -> int:
    """Recover the claims of every dead consumer; returns how many jobs went back or failed.

    A holder is ``CONSUMER`` or ``CONSUMER/PID`` (a process worker); a holder whose
    consumer is not registered at all is an orphan and is recovered too.
    """
    rows = storage.sql(
        "SELECT id, hostname, boot_id, pid, lock_path, heartbeat_at, status FROM lq_consumer "
        "WHERE status IN ('running', 'stopping')").fetchall()
    consumers = {r[0]: r for r in rows}
    dead: dict[str, str] = {}
    for cid, host, boot, pid, lock_path, heartbeat, _ in rows:
        if cid == me:
            continue
        why = consumer_is_dead(host, boot, pid, lock_path, heartbeat, lease)
        if why:
            dead[cid] = why
    recovered = 0
    for holder in storage.claim_holders():
        base = consumer_of(holder)
        if base == me:
            continue
        if base in dead or base not in consumers:
            why = dead.get(base, "its consumer is not registered")
            back, failed = storage.recover(holder, reason=f"interrupted: {why}")
            log.warning("consumer %s is dead (%s): %d job(s) back to the queue, %d failed at the "
                        "crash cap", base, why, back, failed, extra={"action": "recover"})
            recovered += back + failed
    for cid in dead:
        with storage.write():
            storage.sql("UPDATE lq_consumer SET status = 'dead', stopped_at = ? WHERE id = ? "
                        "AND status != 'stopped'", (time.time(), cid))
    return recovered


class Supervisor:
    """The consumer's housekeeping thread: heartbeat, recovery, pause state."""

    def __init__(self, storage: LiteStorage, consumer_id: str, bell_target: object,
                 jobs_done: Callable[[], int], interval: float = defaults.HEARTBEAT_INTERVAL,
                 pruner: AutoPruner | None = None, identity: FileIdentity | None = None,
                 on_replaced: Callable[[], object] | None = None) -> None:
        self.storage = storage
        self.identity = identity
        self.on_replaced = on_replaced
        self.fault = FaultWait(log, "heartbeat")
        self.consumer_id = consumer_id
        self.bell_target = bell_target
        self.jobs_done = jobs_done
        self.interval = interval
        self.pruner = pruner
        self.stop = threading.Event()
        self._paused: set[str] = set()
        self.thread = threading.Thread(target=self._run, name="litequeue-supervisor", daemon=True)

    def start(self) -> None:
        self.refresh_paused()
        self.thread.start()

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
        update_heartbeat(self.storage, self.consumer_id, self.jobs_done())
        sdnotify.watchdog()  # only once the heartbeat is written: a stuck database trips it
        self.refresh_paused()
        if release_stalled_claims(self.storage, me=self.consumer_id):
            ring(self.bell_target)  # type: ignore[arg-type]
        if self.pruner is not None:
            result = self.pruner.maybe_prune(self.storage)
            if result is not None and result.as_dict().get("jobs"):
                log.info("pruned old ledger records: %s", result.as_dict(), extra={"action": "prune"})

    def _run(self) -> None:
        while not self.stop.wait(self.interval):
            try:
                self.tick()
            except Exception as exc:  # noqa: BLE001 - housekeeping must survive a busy database
                if not self.fault.handles(exc):
                    log.exception("supervisor pass failed; retrying")
                else:  # a full disk or a read-only database: one line per back-off step
                    self.fault.wait(exc, self.stop, reconnect=self.storage.close)
            else:
                self.fault.recovered()
