"""Where delayed jobs and retries become ready (one transaction) and periodic tasks fire
(once per task and minute, across consumers and restarts): ``@periodic_task`` schedules in
code and the schedules stored in the database (:mod:`litequeue.schedules`) alike."""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from huey.consumer import Scheduler

from litequeue import schedules
from litequeue.base.errors import UnknownTaskError
from litequeue.engine import huey_compat
from litequeue.runtime.fault_backoff import FaultWait
from litequeue.store.doorbell import Doorbell, ring
from litequeue.store.faults import is_transient

if TYPE_CHECKING:
    from litequeue.app import LiteQueue

log = logging.getLogger("litequeue.scheduler")
MAX_SLEEP = 1.0
#: A slot not recorded for this many minutes (the database failed all along) is given up.
MAX_OWED_MINUTES = 60
MINUTE = dt.timedelta(minutes=1)
CLOCK_OFFSET_ENV = "LITEQUEUE_TEST_CLOCK_OFFSET_FILE"


def fire_slot(huey: LiteQueue, slot: dt.datetime, names: set[str] | None = None,
              fired: list[str] | None = None) -> set[str]:
    """Record and enqueue the periodic tasks and stored schedules due in ``slot`` (``names``
    only, if given), each in its own transaction; returns the names still owed (a transient
    database error: retry them). A schedule failing for good is logged and skips no other.
    The names fired are appended to ``fired``."""
    key = slot.strftime("%Y-%m-%dT%H:%M")
    owed: set[str] = set()
    fired = [] if fired is None else fired
    registry = huey_compat.registry(huey)
    candidates: list[tuple[str, Callable[[], Any]]] = [
        (registry.task_to_string(type(task)), functools.partial(_same, task)) for task in huey.read_periodic(slot)]
    if names is None or any(n.startswith(schedules.KEY_PREFIX) for n in names):
        try:
            candidates += schedules.due(huey, slot)
        except Exception as exc:  # noqa: BLE001 - the code schedules must still fire
            if is_transient(exc):
                owed.add(schedules.ALL_STORED)
                log.warning("stored schedules for %s not read yet (%s); retrying", key, exc)
            else:
                log.exception("stored schedules for %s cannot be read; skipped", key)
    for name, make in candidates:
        if names is not None and name not in names and not (
                schedules.ALL_STORED in names and name.startswith(schedules.KEY_PREFIX)):
            continue
        try:
            if huey.storage.fire_periodic(name, key, huey._job_row(make(), None)):
                fired.append(name)
                log.info("periodic task %s fired for %s", name, key)
        except UnknownTaskError as exc:
            log.error("schedule %s for %s skipped: %s", name, key, exc)
        except Exception as exc:  # noqa: BLE001 - one task's failure must not skip the others
            if is_transient(exc):
                owed.add(name)
                log.warning("periodic task %s for %s not recorded yet (%s); retrying", name, key, exc)
            else:
                log.exception("periodic task %s for %s cannot be recorded; skipped", name, key)
    if fired:
        ring(huey.bell_target)
    return owed


def _same(task: Any) -> Any:
    return task


def clock_offset() -> float:
    """Seconds added to the scheduler's clock: the number in the file
    ``$LITEQUEUE_TEST_CLOCK_OFFSET_FILE``, re-read on every pass (0 without it). For tests
    only: it steps a real consumer's periodic clock to the next minute instead of waiting."""
    path = os.environ.get(CLOCK_OFFSET_ENV)
    if not path:
        return 0.0
    try:
        return float(Path(path).read_text().strip() or 0)
    except (OSError, ValueError):
        return 0.0


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
        if now is None:  # Huey's crontabs read UTC (utc=True, the default) or local time
            now = dt.datetime.now(dt.UTC).replace(tzinfo=None) if self.huey.utc else dt.datetime.now()
            now += dt.timedelta(seconds=clock_offset())
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
