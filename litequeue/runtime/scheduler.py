"""The consumer's scheduler thread: where delayed jobs and retries become ready (one
transaction) and periodic slots are fired (once per task and minute, across consumers and
restarts; what a slot fires is :mod:`litequeue.runtime.periodic`'s), minute by minute,
with no minute left behind while the database refuses a write."""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import TYPE_CHECKING, Any

from huey.consumer import Scheduler

from litequeue.runtime.fault_backoff import FaultWait
from litequeue.runtime.periodic import fire_slot
from litequeue.store.doorbell import Doorbell, ring

if TYPE_CHECKING:
    from litequeue.app import LiteQueue

log = logging.getLogger("litequeue.scheduler")
MAX_SLEEP = 1.0
#: A slot not recorded for this many minutes (the database failed all along) is given up.
MAX_OWED_MINUTES = 60
MINUTE = dt.timedelta(minutes=1)


def wall_clock(utc: bool) -> dt.datetime:
    """The scheduler's minute clock, naive: UTC when ``utc`` (Huey's crontabs read UTC,
    the default) or local time. The one place the scheduler reads the wall clock for
    periodic slots: a test steps a real consumer's clock by replacing it
    (tests/support/clock_offset)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None) if utc else dt.datetime.now()


class LiteScheduler(Scheduler):
    """Sleeps until the next ETA (at most a second, or until a producer rings)."""

    def __init__(self, huey: LiteQueue, stop_flag: Any, consumer: Any, periodic: bool) -> None:
        super().__init__(huey, stop_flag, 1, periodic)
        self.consumer = consumer
        self.bell: Doorbell | None = None
        #: the latest minute seen; a minute is done only once every task due in it is recorded
        self.last_minute: dt.datetime | None = None
        #: slots not fully recorded yet: slot -> names still owed (None: every task due)
        self.owed: dict[dt.datetime, set[str] | None] = {}
        self.fault = FaultWait(log, "scheduler")

    def initialize(self) -> None:
        self.bell = self.consumer.make_bell("scheduler")
        self.consumer.scheduler_bell = self.bell

    def shutdown(self) -> None:
        if self.bell is not None:
            self.bell.close()

    def loop(self, now: Any = None) -> None:
        huey: LiteQueue = self.huey
        try:
            due = huey.storage.next_due()
            moved = huey.storage.dispatch_due() if due is not None and due <= time.time() else 0
            if moved:
                log.debug("dispatched %d due jobs", moved)
                ring(huey.bell_target)
        except Exception as exc:  # noqa: BLE001 - the scheduler must survive a busy database
            if self._waited_out(exc):
                return
        if self.periodic:  # even when dispatching failed: the minute must still be noted
            self.fire_periodic()
        try:
            nxt = huey.storage.next_due()
        except Exception as exc:  # noqa: BLE001
            if self._waited_out(exc):
                return
            nxt = None
        else:
            self.fault.recovered()
        wait = MAX_SLEEP if nxt is None else min(MAX_SLEEP, max(0.0, nxt - time.time()))
        if self.stop_flag.is_set():
            return
        if self.bell is not None:
            self.bell.wait(wait)
        else:
            self.stop_flag.wait(wait)

    def _waited_out(self, exc: Exception) -> bool:
        """Log a failed pass; a full disk or a read-only database is waited out here with
        one line per back-off step (True: skip the rest of this pass)."""
        if not self.fault.handles(exc):
            log.exception("scheduler pass failed; retrying")
            return False
        self.fault.wait(exc, self.stop_flag, reconnect=self.huey.storage.close)
        return True

    def fire_periodic(self, now: dt.datetime | None = None) -> None:
        """Fire every slot owed up to ``now`` (naive UTC; default: the clock)."""
        if now is None:
            now = wall_clock(self.huey.utc)
        now = now.replace(second=0, microsecond=0)
        if self.last_minute is None or now > self.last_minute:
            # A pass that took minutes (a database lock wait) leaves no minute behind.
            slot = now if self.last_minute is None else max(self.last_minute + MINUTE,
                                                            now - MINUTE * (MAX_OWED_MINUTES - 1))
            while slot <= now:
                self.owed.setdefault(slot, None)
                slot += MINUTE
            self.last_minute = now
        for slot in sorted(self.owed):
            if slot <= now - MINUTE * MAX_OWED_MINUTES:
                log.error("periodic slot %s given up: the database refused it for %d minutes",
                          slot.isoformat(), MAX_OWED_MINUTES)
                del self.owed[slot]
                continue
            left = fire_slot(self.huey, slot, self.owed[slot])
            if left:
                self.owed[slot] = left
            else:
                del self.owed[slot]
