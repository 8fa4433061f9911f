"""The jobs this process runs right now: which job runs in which thread, and its cancel flag.

A worker registers the job it starts (:func:`started`) and drops it when it ends
(:func:`finished`). The consumer's cancel watcher (:mod:`litequeue.runtime.cancel_watch`)
sets an entry's ``cancelled_by`` when someone asks to cancel the job, so
``current_job().cancelled`` is true without a query, and stops the job's thread (or
asyncio task) after its grace period.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from litequeue.base.values import Claim
from litequeue.engine import interrupts


@dataclass
class Running:
    """A job running in this process (thread or async task)."""

    job_id: str
    task: str
    grace: float | None  # the task's own cancel_grace, if it has one
    state: Any = field(default_factory=interrupts.current_state)  # the running thread's
    cancelled_by: str | None = None  # set once a cancel request is seen
    asked_at: float = 0.0  # monotonic time the request was seen
    enforced_after: float | None = None  # the grace it was stopped after
    future: Future[Any] | None = None  # an async task's: cancelling it cancels the asyncio task
    claim: Claim | None = None
    started_at: float = field(default_factory=time.time)
    lock: threading.Lock = field(default_factory=threading.Lock)
    done: bool = False  # the job returned (its outcome goes the normal way)
    abandoned: bool = False  # its outcome was handed in for it; its thread must retire

    def note(self) -> str:
        """What the attempt records: who cancelled it, and whether it had to be stopped."""
        text = f"cancelled by {self.cancelled_by or 'someone'}"
        if self.enforced_after is not None:
            text += f"; stopped after its {self.enforced_after:g}s grace period"
        if self.abandoned:
            text += " (its worker thread, blocked in a call Python cannot interrupt, was replaced)"
        return text

    def end(self) -> bool:
        """The job returned in its thread; False if it was abandoned meanwhile (then the
        thread must not hand in an outcome: see
        :class:`~litequeue.engine.exceptions.WorkerRetired`)."""
        with self.lock:
            self.done = True
            return not self.abandoned


_running: dict[str, Running] = {}
_lock = threading.Lock()


def started(job_id: str, task: str, grace: float | None, claim: Claim | None = None) -> Running:
    """Register the job the calling thread starts running."""
    entry = Running(job_id, task, grace, claim=claim)
    with _lock:
        _running[job_id] = entry
    return entry


def finished(job_id: str) -> None:
    with _lock:
        _running.pop(job_id, None)


def running(job_id: str) -> Running | None:
    return _running.get(job_id)


def any_running() -> bool:
    return bool(_running)
