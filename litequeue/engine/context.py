"""``current_job()``: what a running task knows about itself (id, attempt, progress, cancel)."""

from __future__ import annotations

import contextvars
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from litequeue.engine.exceptions import JobCancelled  # also offered here: litequeue.engine.context.JobCancelled
from litequeue.engine.running import running

if TYPE_CHECKING:
    from litequeue.app import LiteQueue
    from litequeue.engine.batches import Batch

_local = threading.local()
# An async task runs on the event loop's thread: its job travels in its asyncio context.
_job_var: contextvars.ContextVar[JobContext | None] = contextvars.ContextVar("litequeue_job", default=None)
#: A task that asks ``cancelled`` in a loop reads the database at most this often.
CANCEL_CHECK_INTERVAL = 0.2
#: Progress is written at most this often, except the last report (done == total).
PROGRESS_INTERVAL = 0.5


@dataclass
class JobContext:
    """The job this thread is running."""

    id: str
    task: str
    queue: str
    attempt: int
    app: LiteQueue
    _last_progress: float = field(default=0.0, repr=False)
    _pending: tuple[float, float | None, str | None] | None = field(default=None, repr=False)
    _batch: Any = field(default=False, repr=False)  # False: not looked up yet

    def progress(self, done: float, total: float | None = None, message: str | None = None) -> None:
        """Record progress (``done`` of ``total``) in the ledger; cheap to call often.

        Reports closer together than half a second are held back, and the latest one is
        written with the next report or when the job ends, so the ledger never lags behind
        for long and never misses the last report."""
        now = time.monotonic()
        final = total is not None and done >= total
        if not final and now - self._last_progress < PROGRESS_INTERVAL:
            self._pending = (done, total, message)
            return
        self._pending = None
        self._last_progress = now
        self.app.record_progress(self.id, done, total, message)

    def flush(self) -> None:
        """Write a held-back progress report (called when the job ends)."""
        if self._pending is not None:
            done, total, message = self._pending
            self._pending = None
            self.app.record_progress(self.id, done, total, message)

    @property
    def batch(self) -> Batch | None:
        """The batch this job is a member of, or None: ``current_job().batch.add(page.s(url))``
        adds members (written with this job's ack, counted before this job is)."""
        if self._batch is False:
            self._batch = self.app.batch_of(self.id)
        return self._batch

    _cancelled_by: str | None = field(default=None, repr=False)
    _cancel_checked: float = field(default=0.0, repr=False)

    @property
    def cancelled(self) -> bool:
        """True once someone asked to cancel this job (``litequeue jobs cancel``, the page,
        ``result.cancel()``). Cheap to ask often: the consumer's cancel watcher sets it
        without a query; elsewhere (process workers) the database is read at most every
        :data:`CANCEL_CHECK_INTERVAL` seconds."""
        return self.cancelled_by is not None

    @property
    def cancelled_by(self) -> str | None:
        """Who asked to cancel this job, or None."""
        if self._cancelled_by is None:
            entry = running(self.id)
            if entry is not None and entry.cancelled_by is not None:
                self._cancelled_by = entry.cancelled_by
            elif time.monotonic() - self._cancel_checked >= CANCEL_CHECK_INTERVAL:
                self._cancel_checked = time.monotonic()
                self._cancelled_by = self.app.cancel_requested_by(self.id)
        return self._cancelled_by

    def raise_if_cancelled(self) -> None:
        """Raise :class:`JobCancelled` if someone asked to cancel this job: the job ends
        ``cancelled`` (not ``failed``) and is not retried."""
        by = self.cancelled_by
        if by is not None:
            raise JobCancelled(f"cancelled by {by}")


def current_job() -> JobContext | None:
    """The job the calling thread (or async task) is running, or None outside a job."""
    job = _job_var.get()
    return job if job is not None else getattr(_local, "job", None)


def set_async_job(job: JobContext | None) -> None:
    """Set the job of the calling asyncio task (its context is its own)."""
    _job_var.set(job)


def set_current_job(job: JobContext | None) -> None:
    _local.job = job
