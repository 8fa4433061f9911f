"""Ringing the doorbell after a commit that SQLite gives no hook for: the jobs an open
application transaction wrote are watched for, from this process, until they can be read.

Python's sqlite3 has no commit hook. An enqueue made in the application's transaction
(``LiteQueue.using``) registers a watch here; one daemon thread checks each watch every few
milliseconds (backing off to :data:`SLOWEST`): once its jobs can be read on a connection of
its own (the transaction committed), it rings; once the transaction has ended without them
(a rollback, of it or of a savepoint around the jobs) for :data:`GRACE`, it drops the watch
without ringing.
A process that dies first rings nothing: consumers find the jobs at their next poll.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger("litequeue.using")
FASTEST = 0.002
SLOWEST = 0.05
#: How long a watch still looks for its jobs once the transaction reads as ended: SQLite
#: reports a connection out of its transaction as soon as its COMMIT begins, before the
#: commit can be read from another connection.
GRACE = 1.0


@dataclass(eq=False)
class Watch:
    visible: Callable[[], bool]
    still_open: Callable[[], bool]
    ring: Callable[[], object]
    since: float = field(default_factory=time.monotonic)
    ended: float | None = None  # when the transaction was first seen ended


_watches: list[Watch] = []
_wake = threading.Condition()
_thread: threading.Thread | None = None


def watch(visible: Callable[[], bool], still_open: Callable[[], bool], ring: Callable[[], object]) -> None:
    """Call ``ring()`` once ``visible()`` (the jobs committed), or never if ``still_open()``
    turns false first and they are still not visible."""
    global _thread
    with _wake:
        _watches.append(Watch(visible, still_open, ring))
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_run, name="litequeue-commit-watch", daemon=True)
            _thread.start()
        _wake.notify()


def pending() -> int:
    """How many watches wait (tests, ``doctor``)."""
    with _wake:
        return len(_watches)


def _settled(w: Watch) -> bool:
    try:
        if w.visible():
            w.ring()
            return True
        if w.still_open():
            return False
        if w.ended is None:  # ended, or its COMMIT under way: look again for a moment
            w.ended = time.monotonic()
        if w.visible():
            w.ring()
            return True
        return time.monotonic() - w.ended >= GRACE  # a rollback: dropped without a ring
    except Exception as exc:  # noqa: BLE001 - a watch must never stop the thread
        log.warning("doorbell after commit: %s; consumers find the job at their next poll", exc,
                    extra={"action": "using"})
        return True


def _run() -> None:
    delay = FASTEST
    while True:
        with _wake:
            while not _watches:
                _wake.wait()
                delay = FASTEST
            todo = list(_watches)
        done = [w for w in todo if _settled(w)]
        with _wake:
            for w in done:
                _watches.remove(w)
            if _watches and not done:
                _wake.wait(delay)
                delay = min(delay * 2, SLOWEST)
            else:
                delay = FASTEST
