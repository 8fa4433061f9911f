"""The rows a Huey task becomes when it is enqueued: its job's :class:`NewJob`, plus a
waiting row for each later step of its pipeline.

:meth:`LiteQueue.new_jobs` (every enqueue), the batch callbacks, the periodic scheduler
and ``schedules run`` all build their rows here, so a job is described one way."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from huey.api import Task

from litequeue.base import defaults, tracing
from litequeue.base.clock import to_epoch
from litequeue.base.preview import preview
from litequeue.base.values import NewJob, Unit
from litequeue.engine.batch_scope import stamp
from litequeue.engine.job_options import adopt_existing, options_for

if TYPE_CHECKING:
    from litequeue.app import LiteQueue


def args_preview(args: Any) -> str:
    """The ledger's preview of a task's positional arguments."""
    # Huey takes ``schedule(3, delay=60)`` and keeps the bare 3 as the task's args.
    return preview(list(args) if isinstance(args, (list, tuple)) else [args])


def queue_of(task: Task) -> str:
    """The queue ``task`` runs on (the default queue when it names none)."""
    return getattr(task, "queue", None) or defaults.QUEUE


def job_row(huey: LiteQueue, task: Task, parent: str | None, data: bytes | None = None) -> NewJob:
    """The row of ``task``'s job, child of ``parent``; ``data``: its serialized message
    (serialized here when not given). Inside a ``with huey.batch(...)`` block the job
    joins that batch."""
    return NewJob(
        id=task.id,
        task=type(task).__name__,
        queue=queue_of(task),
        priority=int(task.priority or 0),
        data=huey.serialize_task(task) if data is None else data,
        eta=to_epoch(task.eta, huey.utc),
        crash_cap=int(getattr(task, "crash_cap", None) or huey.crash_cap),
        args=args_preview(task.args),
        kwargs=preview(task.kwargs),
        parent_id=parent,
        options=stamp(huey, options_for(task)),
    )


def new_jobs(huey: LiteQueue, task: Task, unit: Unit | None, data: bytes | None = None) -> list[NewJob]:
    """The rows enqueueing ``task`` writes: its own, plus a waiting row for each later
    pipeline step. ``unit``: the running job's unit of work in this thread, if any (its
    own task enqueued again is its retry; any other task is its child)."""
    retry = unit is not None and task.id == unit.job_id
    parent = None if unit is None or retry else unit.job_id
    job = job_row(huey, task, parent, data)
    job.retry = retry
    if not retry:
        job.trace = tracing.traceparent()  # the send span of LiteQueue.enqueue, if tracing
    job.on_duplicate = adopt_existing(task) if job.options and job.options.unique_key else None
    if retry and unit is not None:
        job.has_file = unit.has_file
    jobs = [job]
    step, prev = task.on_complete, task.id
    while step is not None and not retry:
        jobs.append(NewJob(step.id, type(step).__name__, queue_of(step),
                           int(step.priority or 0), b"", parent_id=prev, waiting=True,
                           args=args_preview(step.args), kwargs=preview(step.kwargs)))
        step, prev = step.on_complete, step.id
    return jobs
