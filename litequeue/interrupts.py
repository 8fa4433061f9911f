"""Where a thread worker's timeout is delivered: never inside a database write.

A thread worker's timeout is an asynchronous exception (``PyThreadState_SetAsyncExc``),
raised at whatever Python instruction the thread runs next. Raised inside a write (a
commit, peewee's transaction bookkeeping, the fork guard) it can leave a transaction open
or a lock held. So the storage's write guard counts the writes a thread is inside
(:func:`enter_write` / :func:`leave_write`); a timeout that fires meanwhile is held and
raised by the thread itself as it leaves its outermost write, once that write has
committed or rolled back.

Every step below that must not be split by an asynchronous exception runs under the
thread's lock, and between the lock and the ctypes call there is no Python-level call
(where CPython would deliver a pending asynchronous exception).
"""

from __future__ import annotations

import contextlib
import ctypes
import threading
from collections.abc import Iterator

from huey.exceptions import TaskTimeout

_set_async_exc = ctypes.pythonapi.PyThreadState_SetAsyncExc


class _ThreadState:
    def __init__(self) -> None:
        self.ident = ctypes.c_ulong(threading.get_ident())
        self.lock = threading.Lock()
        self.depth = 0  # writes this thread is inside
        self.armed = False  # a deadline runs for this thread
        self.sent = False  # raised asynchronously, not delivered yet
        self.held: type[BaseException] | None = None  # fired inside a write: raise on leaving it


_local = threading.local()


def _state() -> _ThreadState:
    state: _ThreadState | None = getattr(_local, "state", None)
    if state is None:
        state = _local.state = _ThreadState()
    return state


class ThreadTimeout(TaskTimeout):
    """A thread worker's job ran past its timeout."""

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        # CPython builds the instance in the receiving thread as it is raised: delivered.
        _state().sent = False


def enter_write() -> None:
    """The calling thread enters a database write: hold its timeouts until it leaves."""
    state = _state()
    with state.lock:
        state.depth += 1
        try:
            if state.sent:  # fired just before this thread took the lock: hold it instead
                _set_async_exc(state.ident, None)
                state.sent = False
                state.held = ThreadTimeout
        except BaseException:  # delivered before it could be taken back: not in a write yet
            state.depth -= 1
            raise


def leave_write() -> None:
    """The calling thread leaves a database write; a timeout held meanwhile is raised now."""
    state = _state()
    with state.lock:
        state.depth -= 1
        held = state.held if state.depth == 0 else None
        if held is not None:
            state.held = None
    if held is not None:
        raise held("timed out (raised once its database write had ended)")


def _fire(state: _ThreadState, exc: type[BaseException]) -> None:
    with state.lock:
        if not state.armed:
            return
        if state.depth:
            state.held = exc
        else:
            state.sent = True
            _set_async_exc(state.ident, ctypes.py_object(exc))


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Raise :class:`ThreadTimeout` in the calling thread after ``seconds`` (outside writes)."""
    state = _state()
    with state.lock:
        state.armed = True
        state.held = None
    timer = threading.Timer(seconds, _fire, (state, ThreadTimeout))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        with state.lock:
            state.armed = False
            if state.sent:  # fired as the job ended: it must not land in what runs next (the ack)
                _set_async_exc(state.ident, None)
                state.sent = False
            state.held = None
        timer.cancel()
