"""Waiting out a storage fault (the disk is full, the database is read-only) in a consumer.

One log line per back-off step (1 s, 2 s, 4 s, ... up to 30 s) saying what and where, never a
traceback; the wait ends early once the cause looks gone (free space grew, a permission or
the mount changed), and one line says when writes work again. Nothing is dropped meanwhile:
the caller retries the same write.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable

from litequeue.store import faults

FIRST_STEP = 1.0
MAX_STEP = 30.0
#: How often the cause is looked at during a step.
PROBE_EVERY = 0.25
#: GONE: the file was deleted under us; the consumer's supervisor restarts it within a second.
FAULTS = (faults.FULL, faults.READ_ONLY, faults.GONE, faults.DISCONNECTED)
#: A lost server connection is retried sooner (a terminated backend reconnects at once).
RECONNECT_FIRST_STEP = 0.1
RECONNECT_MAX_STEP = 5.0


class FaultWait:
    """Back-off for one writer (a dispatcher, a supervisor, a scheduler)."""

    def __init__(self, log: logging.Logger, what: str) -> None:
        self.log = log
        self.what = what
        self.step_seconds = FIRST_STEP
        self.active = False
        self.reconnecting = False

    @staticmethod
    def handles(exc: BaseException) -> bool:
        return faults.kind(exc) in FAULTS

    def wait(self, exc: BaseException, stop: threading.Event | None = None,
             reconnect: Callable[[], object] | None = None) -> None:
        """Log one line for ``exc`` and wait one back-off step (or until ``stop`` is set,
        or the cause changes). ``reconnect`` drops the connection before the next try: a
        connection SQLite opened read-only stays read-only."""
        if faults.kind(exc) == faults.DISCONNECTED:
            step = self.step_seconds if self.active else RECONNECT_FIRST_STEP
            self.step_seconds = min(step * 2, RECONNECT_MAX_STEP)
            self.active = self.reconnecting = True
            # Said once per outage for the whole process (litequeue.store.outage), not per writer and step.
            self.log.debug("%s: lost the database connection (%s); reconnecting in %gs", self.what,
                           faults.first_line(exc), step, extra={"action": "reconnect"})
            if stop is not None:
                stop.wait(step)
            else:
                time.sleep(step)
            return
        step = self.step_seconds
        self.step_seconds = min(step * 2, MAX_STEP)
        self.active, self.reconnecting = True, False
        self.log.warning("%s: %s; retrying in %gs", self.what, exc, step, extra={"action": "storage-fault"})
        path = getattr(exc, "path", None)
        path = path if path and "://" not in path else None
        baseline = faults.probe(path)
        deadline = time.monotonic() + step
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            if stop is not None:
                if stop.wait(min(PROBE_EVERY, left)):
                    break
            else:
                time.sleep(min(PROBE_EVERY, left))
            if path is not None and faults.probe(path) != baseline:
                break
        if reconnect is not None and faults.kind(exc) == faults.READ_ONLY:
            with contextlib.suppress(Exception):
                reconnect()

    def recovered(self) -> None:
        """The write went through: say so once, start the next fault's back-off afresh."""
        if self.active and self.reconnecting:
            self.log.debug("%s: reconnected to the database; carrying on", self.what,
                           extra={"action": "reconnect"})
        elif self.active:
            self.log.warning("%s: the database takes writes again; carrying on", self.what,
                             extra={"action": "storage-fault"})
        self.active = self.reconnecting = False
        self.step_seconds = FIRST_STEP
