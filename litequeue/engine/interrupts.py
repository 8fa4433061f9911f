"""Where a thread worker's timeout (or enforced cancel) is delivered: never inside a database write.

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
from collections.abc import Callable, Iterator

from huey.exceptions import TaskTimeout

from litequeue.engine.exceptions import JobCancelled

_set_async_exc = ctypes.pythonapi.PyThreadState_SetAsyncExc


class _ThreadState:
    def __init__(self) -> None:
        self.ident = ctypes.c_ulong(threading.get_ident())
        self.lock = threading.Lock()
        self.depth = 0  # writes this thread is inside
        self.armed = False  # a deadline runs for this thread
        self.in_body = False  # the thread runs a task's body: an enforced cancel may land
        self.waker: Callable[[], None] | None = None  # wakes the thread from a wait we own
        self.sent = False  # raised asynchronously, not delivered yet
        self.held: type[BaseException] | None = None  # fired inside a write: raise on leaving it
        self.pending: type[BaseException] = ThreadTimeout  # what was last sent asynchronously


_local = threading.local()


def _state() -> _ThreadState:
    state: _ThreadState | None = getattr(_local, "state", None)
    if state is None:
        state = _local.state = _ThreadState()
    return state


class ThreadTimeout(TaskTimeout):
    """A thread worker's job ran past its timeout."""

    def __init__(self, *args: object) -> None:
        super().__init__(*(args or ("timed out",)))
        # CPython builds the instance in the receiving thread as it is raised: delivered.
        _state().sent = False


class ThreadCancelled(JobCancelled):
    """A thread worker's job was cancelled and did not stop within its grace period."""

    def __init__(self, *args: object) -> None:
        super().__init__(*(args or ("cancelled: stopped after the grace period",)))
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
                state.held = state.pending
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
        raise held()


def _fire(state: _ThreadState, exc: type[BaseException], cancel: bool = False) -> bool:
    with state.lock:
        if not (state.in_body if cancel else state.armed):
            return False
        if state.depth:
            state.held = exc
        else:
            state.sent = True
            state.pending = exc
            _set_async_exc(state.ident, ctypes.py_object(exc))
        waker = state.waker
    if waker is not None:
        waker()
    return True


def current_state() -> _ThreadState:
    """The calling thread's interrupt state (a handle for :func:`cancel_thread`)."""
    return _state()


def cancel_thread(state: _ThreadState) -> bool:
    """Raise :class:`ThreadCancelled` in the thread of ``state`` if it runs a task's body
    (outside its database writes, like a timeout). Returns whether it was sent."""
    return _fire(state, ThreadCancelled, cancel=True)


@contextlib.contextmanager
def task_body(waker: Callable[[], None] | None = None) -> Iterator[None]:
    """The calling thread runs a task's body: an enforced cancel may interrupt it.
    ``waker``: called after an interruption is sent, to wake a wait the thread is in (the
    exception lands at the next Python instruction, never inside a C-level wait)."""
    state = _state()
    with state.lock:
        outer = state.in_body, state.waker
        state.in_body = True
        state.waker = waker or state.waker
    try:
        yield
    finally:
        with state.lock:
            state.in_body, state.waker = outer
            # A cancel sent as the body ended must not land in Huey's bookkeeping or the ack.
            if state.sent and not state.in_body and (state.pending is ThreadCancelled or not state.armed):
                _set_async_exc(state.ident, None)
                state.sent = False
            if not state.in_body and state.held is ThreadCancelled:
                state.held = None


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Raise :class:`ThreadTimeout` in the calling thread after ``seconds`` (outside writes)."""
    state = _state()
    with state.lock:
        state.armed = True
        if state.held is ThreadTimeout:
            state.held = None
    timer = threading.Timer(seconds, _fire, (state, ThreadTimeout))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        with state.lock:
            state.armed = False
            if state.sent and not state.in_body:  # fired as the job ended: not into the ack
                _set_async_exc(state.ident, None)
                state.sent = False
            if state.held is ThreadTimeout:
                state.held = None
        timer.cancel()
