"""Restarting this process in place: ``exec`` of its own command line, with no cleanup.

A consumer, and ``watch-inbox``, restart so when their database file was deleted or
replaced: :mod:`litequeue.store.file_identity` notices it and says why nothing is written
to the old file first.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
from collections.abc import Iterable
from typing import NoReturn

log = logging.getLogger("litequeue.replaced")


def restart_argv() -> list[str]:
    """This process's own command line, interpreter options (``-m litequeue``) included."""
    argv = list(getattr(sys, "orig_argv", None) or [sys.executable, *sys.argv])
    return [sys.executable, *argv[1:]]


def restart_in_place(children: Iterable[int] = ()) -> NoReturn:
    """Kill ``children`` (process workers), then exec this process's command line again.
    No cleanup runs: see the module's docstring for why. Exits 1 if exec fails."""
    for pid in children:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    for handler in logging.getLogger().handlers:
        with contextlib.suppress(Exception):
            handler.flush()
    try:
        os.execv(sys.executable, restart_argv())
    except OSError as exc:
        log.error("cannot restart (%s); exiting 1 so that the service manager restarts this process", exc)
    os._exit(1)
