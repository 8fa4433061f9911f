"""Knowing, once per process, that the database server went away and that it came back.

A server restart breaks every connection of a process at once (the dispatcher's, the
supervisor's, the scheduler's, each thread has its own), and each notices on its own. This
module turns those sightings into two log lines per outage: one when the first connection
finds the server gone, one when a new connection reaches it again (with how long it was away).

A connection is stamped with the *generation* it was opened in (how many outages the process
had seen end). An error on a connection opened before the last outage ended is that outage's
leftover, not a new one: the connection died with the server, and the one that replaces it says
whether the server is there.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

log = logging.getLogger("litequeue.database")

_lock = threading.Lock()
#: how many outages ended in this process (a connection's generation)
_generation = 0
#: monotonic time the current outage began, None while the database is there
_since: float | None = None
_STAMP = "_litequeue_generation"
#: Only a long-running process (a consumer, the status page) says it in its log: a one-shot
#: command (``litequeue health``, an enqueue) answers in its own one line instead.
_reporting = False


def report(on: bool = True) -> bool:
    """Say outages in this process's log (a consumer turns it on while it runs, and puts back
    what it was when it stops: the CLI also runs in-process). Returns what it was."""
    global _reporting
    before, _reporting = _reporting, on
    return before


def generation() -> int:
    return _generation


def stamp(conn: Any) -> None:
    """Remember on ``conn`` the generation it was opened in."""
    try:
        setattr(conn, _STAMP, _generation)
    except (AttributeError, TypeError):
        pass


def is_away() -> bool:
    return _since is not None


def went_away(name: str, reason: str, conn: Any = None) -> bool:
    """The database ``name`` cannot be used (``reason``, one line): logged once per outage.
    ``conn``: the connection the error came on; an error on one opened before the last
    outage ended is ignored. True when this call declared the outage."""
    global _since
    with _lock:
        if conn is not None and getattr(conn, _STAMP, 0) < _generation:  # unstamped: opened before any
            return False
        if _since is not None:
            return False
        _since = time.monotonic()
    if _reporting:
        log.warning("the %s went away (%s); waiting for it to come back, nothing is lost meanwhile", name, reason,
                    extra={"action": "outage"})
    return True


def came_back(name: str) -> bool:
    """A new connection to ``name`` works: logged once, with how long it was away."""
    global _since, _generation
    with _lock:
        if _since is None:
            return False
        away = time.monotonic() - _since
        _since = None
        _generation += 1
    if _reporting:
        log.warning("the %s is back after %.1fs; carrying on", name, away, extra={"action": "outage"})
    return True
