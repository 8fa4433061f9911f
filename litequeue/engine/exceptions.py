"""The exceptions the engine raises inside a running job or its worker thread.

Kept out of :mod:`litequeue.base.errors`: these subclass Huey's exceptions, and the base
errors are imported by every read command, which never imports Huey. The thread
interruptions (``ThreadTimeout``, ``ThreadCancelled``) live in
:mod:`litequeue.engine.interrupts`: building one marks the interruption delivered in that
module's per-thread state.
"""

from __future__ import annotations

from huey.consumer import WorkerRecycle
from huey.exceptions import CancelExecution

from litequeue.base.errors import LiteQueueError


class JobCancelled(LiteQueueError, CancelExecution):
    """Raised inside a running job when someone cancelled it (``raise_if_cancelled()``, or
    by the consumer once the grace period is over): the job ends ``cancelled``, never
    ``failed``, and is not retried (it is Huey's ``CancelExecution`` with ``retry=False``)."""

    def __init__(self, *args: object) -> None:
        Exception.__init__(self, *args)
        self.retry = False


class WorkerRetired(WorkerRecycle):
    """Raised in a worker thread that was left behind in a cancelled job, once that job
    finally returns: the thread ends (a new one took its place) and acks nothing."""
