"""Tasks as a :class:`LiteQueue` declares and hands them out: the checked settings
``@app.task`` passes to Huey, the registry that finds a task by its short name, the
wrapper a declaration returns, and the result handle an enqueue returns."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from huey.api import Result, ResultGroup, Task, TaskWrapper
from huey.exceptions import HueyException
from huey.registry import Registry

from litequeue.base.errors import ConfigurationError, UnknownTaskError
from litequeue.base.ids import new_job_id
from litequeue.base.limits import Breaker, Limits
from litequeue.engine import aio, batches, huey_compat
from litequeue.engine.batch_scope import current_batch
from litequeue.jobs import actions


def task_settings(queue: str, priority: int | None, crash_cap: int | None, on_worker_death: str,
                  kwargs: dict[str, Any], default_crash_cap: int) -> dict[str, Any]:
    """Huey's task settings for ``@app.task`` / ``@app.periodic_task``: ``kwargs`` plus
    the queue, priority and crash cap, checked (a bad one raises ConfigurationError)."""
    if on_worker_death not in ("retry", "fail"):
        raise ConfigurationError(
            f"on_worker_death must be 'retry' or 'fail', not {on_worker_death!r}")
    if not queue or "," in queue:
        raise ConfigurationError(f"queue must be a non-empty name without commas, not {queue!r}")
    cap = 1 if on_worker_death == "fail" else (crash_cap or default_crash_cap)
    return dict(kwargs, queue=queue, priority=priority, crash_cap=cap)


def with_limits(decorate: Callable[[Callable[..., Any]], Any], limits: Limits, concurrency: int | None,
                breaker: Breaker | None) -> Callable[[Callable[..., Any]], Any]:
    """Huey's task decorator ``decorate``, made to declare the task's ``concurrency`` and
    ``breaker`` in ``limits`` (unchanged when it sets neither)."""
    if concurrency is None and breaker is None:
        return decorate
    Limits().add_task("task", concurrency, breaker)  # a bad value fails at the decorator

    def limited(fn: Callable[..., Any]) -> Any:
        wrapper = decorate(fn)
        limits.add_task(wrapper.task_class.__name__, concurrency, breaker)
        return wrapper

    return limited


class LiteRegistry(Registry):
    """Huey's registry, plus lookup by short task name.

    A producer run as a script registers ``__main__.send_receipt`` while the consumer
    imported ``tasks.send_receipt``: when the full name is unknown, a unique short name
    is used instead.
    """

    def string_to_task(self, task_str: str) -> type[Task]:
        try:
            return super().string_to_task(task_str)
        except HueyException:
            short = task_str.rsplit(".", 1)[-1]
            found = [cls for cls in huey_compat.registered(self).values() if cls.__name__ == short]
            if len(found) == 1:
                return found[0]
            raise

    def find(self, name: str) -> type[Task]:
        """The task class called ``name`` (short ``fn`` or qualified ``module.fn``)."""
        classes = huey_compat.registered(self)
        if name in classes:
            return classes[name]
        found = {key: cls for key, cls in classes.items() if cls.__name__ == name}
        if len(found) == 1:
            return next(iter(found.values()))
        if found:
            raise UnknownTaskError(
                f"task name {name!r} is ambiguous; use one of: {', '.join(sorted(found))}")
        known = ", ".join(sorted(cls.__name__ for cls in classes.values())) or "none"
        raise UnknownTaskError(f"unknown task {name!r}; registered tasks: {known}")


class LiteTaskWrapper(TaskWrapper):
    """Huey's task wrapper: time-ordered job ids, and ``map`` writes every job in one
    transaction."""

    def create_task(self, func: Callable[..., Any], context: bool = False, name: str | None = None,
                    **settings: Any) -> type[Task]:
        settings.setdefault("create_id", lambda _task: new_job_id())
        # async def runs on the event loop; a plain body is marked interruptible (aio.py).
        return super().create_task(aio.wrap(func), context, name, **settings)

    def map(self, it: Iterable[Any], batch: Any = None) -> ResultGroup | None:
        """One job per item, all written in one transaction; ``batch``: as members of it."""
        if batch is not None:
            return batches.map_into(self, it, batch)
        results = self.huey.write_many(self._apply(it))  # all of them or none, one transaction
        return ResultGroup(results) if self.huey.results else None


    async def aenqueue(self, *args: Any, **kwargs: Any) -> Result | None:
        """``await task.aenqueue(...)``: the call ``task(...)`` makes, from async code: the
        write runs in a thread, so a database that makes it wait (a busy SQLite file, a
        server reconnecting) never stops the event loop."""
        return await aenqueue(self.huey, self.s(*args, **kwargs))


async def aenqueue(app: Any, task: Task, **options: Any) -> Result | None:
    """Enqueue ``task`` in a thread (the caller's context goes with it; so does the
    ``with app.batch(...)`` block it runs in, which is the caller thread's)."""
    batch = current_batch(app)
    if batch is not None and "batch" not in options:
        options["batch"] = batch
    return await asyncio.to_thread(app.enqueue, task, **options)


async def aenqueue_many(app: Any, tasks: Sequence[Task]) -> list[str]:
    """``app.enqueue_many(tasks)`` (one transaction) in a thread."""
    batch = current_batch(app)
    if batch is not None:
        for task in tasks:
            task.with_options(batch=batch)
    return await asyncio.to_thread(app.enqueue_many, tasks)


class LiteResult(Result):
    """Huey's result handle, plus :meth:`cancel`."""

    def cancel(self, wait: float | None = None) -> str:
        """Cancel this job: one not started ends ``cancelled`` at once; a running one is
        asked to stop and stopped after its grace period (see ``litequeue jobs cancel``).
        ``wait``: seconds to wait for a running job to end. Returns what happened, or the
        job's status after the wait."""
        store = self.huey.storage
        what = actions.cancel_jobs(store, [self.id], actor=actions.who("result.cancel()"))[self.id]
        if wait and what.startswith("cancel requested"):
            job = actions.wait_ended(store, [self.id], wait)[self.id]
            return str(job["status"]) if job else what
        return what
