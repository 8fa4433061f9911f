"""Where Huey's workers run: threads with task timeouts, or processes that die with the
consumer and leave its signals to it."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
from typing import Any

from huey.consumer import ProcessEnvironment, ThreadEnvironment

from litequeue.engine import interrupts

_PR_SET_PDEATHSIG = 1


class ThreadTimeoutEnvironment(ThreadEnvironment):
    """Thread workers with task timeouts: ``TaskTimeout`` is raised inside the worker
    thread when its job runs past ``timeout`` (at the next Python instruction outside a
    database write, see ``interrupts.py``)."""

    def timeout(self, seconds: float) -> contextlib.AbstractContextManager[None]:
        return interrupts.deadline(seconds)


class ChildProcessEnvironment(ProcessEnvironment):
    """Process workers that die with the consumer and leave its signals to it."""

    def init_child(self, process: Any) -> None:
        super().init_child(process)
        # A SQLite connection must never cross a fork: forget (never close, never use) the
        # one the forking thread may have had; this process opens its own.
        process.huey.storage.database._state.reset()
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        with contextlib.suppress(Exception):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != self.parent_pid:  # the parent died before prctl took effect
            os._exit(1)
