"""``current_job()``: what a running task knows about itself (id, attempt, progress, cancel)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import JobCancelled

if TYPE_CHECKING:
    from .app import LiteQueue
    from .batches import Batch

_local = threading.local()
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
            from .batches import job_batch

            self._batch = job_batch(self.app, self.id)
        return self._batch

    @property
    def cancelled(self) -> bool:
        """True once someone asked to cancel this job (``litequeue jobs cancel``)."""
        return self.app.is_cancel_requested(self.id)

    def raise_if_cancelled(self) -> None:
        if self.cancelled:
            raise JobCancelled(f"job {self.id} was cancelled")


def current_job() -> JobContext | None:
    """The job the calling thread is running, or None outside a job."""
    return getattr(_local, "job", None)


def set_current_job(job: JobContext | None) -> None:
    _local.job = job
