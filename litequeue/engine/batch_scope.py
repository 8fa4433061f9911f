"""The ``with app.batch(...)`` blocks open in this thread, and the batch a job enqueued
inside one joins (the job's rows are stamped with it)."""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import TYPE_CHECKING

from litequeue.base.values import JobOptions

if TYPE_CHECKING:
    from litequeue.app import LiteQueue
    from litequeue.engine.batches import Batch

_local = threading.local()


def open_blocks() -> list[Batch]:
    """This thread's open ``with app.batch(...)`` blocks, innermost last (a :class:`Batch`
    pushes itself on entering its block and removes itself on leaving it)."""
    stack = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
    return stack


def current_batch(app: LiteQueue) -> Batch | None:
    """The innermost ``with app.batch(...)`` block of this thread, for ``app``."""
    for batch in reversed(open_blocks()):
        if batch.app is app:
            return batch
    return None


def stamp(app: LiteQueue, options: JobOptions | None) -> JobOptions | None:
    """A job enqueued inside a ``with app.batch(...)`` block joins that batch (unless its
    options name another)."""
    batch = current_batch(app)
    if batch is None or (options is not None and options.batch_id):
        return options
    return replace(options or JobOptions(), batch_id=batch.id)
