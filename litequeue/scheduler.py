"""Where delayed jobs and retries become ready (one transaction) and periodic tasks fire
(once per task and minute, across consumers and restarts)."""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import TYPE_CHECKING, Any

from huey.consumer import Scheduler

from .doorbell import Doorbell, ring

if TYPE_CHECKING:
    from .app import LiteQueue

log = logging.getLogger("litequeue.scheduler")
MAX_SLEEP = 1.0


class LiteScheduler(Scheduler):
    """Sleeps until the next ETA (at most a second, or until a producer rings)."""

    def __init__(self, huey: LiteQueue, stop_flag: Any, consumer: Any, periodic: bool) -> None:
        super().__init__(huey, stop_flag, 1, periodic)
        self.consumer = consumer
        self.bell: Doorbell | None = None
        self.last_minute: str | None = None

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
            if self.periodic:
                self.fire_periodic()
            nxt = huey.storage.next_due()
        except Exception:  # noqa: BLE001 - the scheduler must survive a busy database
            log.exception("scheduler pass failed; retrying")
            nxt = None
        wait = MAX_SLEEP if nxt is None else min(MAX_SLEEP, max(0.0, nxt - time.time()))
        if self.stop_flag.is_set():
            return
        if self.bell is not None:
            self.bell.wait(wait)
        else:
            self.stop_flag.wait(wait)

    def fire_periodic(self) -> None:
        # Huey's crontabs read UTC (utc=True, the default) or local time
        now = (dt.datetime.now(dt.UTC).replace(tzinfo=None) if self.huey.utc else dt.datetime.now())
        now = now.replace(second=0, microsecond=0)
        minute = now.isoformat()
        if minute == self.last_minute:
            return
        self.last_minute = minute
        for name in self.huey.fire_periodic(now):
            log.info("periodic task %s fired for %s", name, minute)
