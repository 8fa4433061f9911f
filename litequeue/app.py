"""``LiteQueue``: Huey with named queues, a ledger, and writes that never lose a job.

This is where a job is *enqueued*: :meth:`LiteQueue.enqueue` (and ``add_schedule`` for
retries and delayed jobs) turns a Huey task into a queue row and a ledger row written in
one transaction, then rings the consumers' doorbell.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from huey import signals as S
from huey.api import Huey, Result, ResultGroup, Task, TaskWrapper, chord, group
from huey.exceptions import HueyException
from huey.registry import Registry

from . import defaults, transitions
from .db import database_target, open_database
from .doorbell import BellTarget, bell_target, ring
from .errors import ConfigurationError, UnknownTaskError
from .ids import new_job_id
from .ledger.preview import preview
from .replaced import FileIdentity
from .storage import LiteStorage, NewJob


def to_epoch(value: dt.datetime | None) -> float | None:
    """Huey keeps naive UTC datetimes; the tables keep epoch seconds."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.timestamp()


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
            found = [cls for cls in self._registry.values() if cls.__name__ == short]
            if len(found) == 1:
                return found[0]
            raise

    def find(self, name: str) -> type[Task]:
        """The task class called ``name`` (short ``fn`` or qualified ``module.fn``)."""
        if name in self._registry:
            return self._registry[name]
        found = {key: cls for key, cls in self._registry.items() if cls.__name__ == name}
        if len(found) == 1:
            return next(iter(found.values()))
        if found:
            raise UnknownTaskError(
                f"task name {name!r} is ambiguous; use one of: {', '.join(sorted(found))}")
        known = ", ".join(sorted(cls.__name__ for cls in self._registry.values())) or "none"
        raise UnknownTaskError(f"unknown task {name!r}; registered tasks: {known}")


class LiteTaskWrapper(TaskWrapper):
    """Huey's task wrapper: time-ordered job ids, and ``map`` writes every job in one
    transaction."""

    def create_task(self, func: Callable[..., Any], context: bool = False, name: str | None = None,
                    **settings: Any) -> type[Task]:
        settings.setdefault("create_id", lambda _task: new_job_id())
        return super().create_task(func, context, name, **settings)

    def map(self, it: Iterable[Any]) -> ResultGroup | None:
        tasks = self._apply(it)
        self.huey.enqueue_many(tasks)
        if self.huey.results:
            return ResultGroup([Result(self.huey, t) for t in tasks])
        return None


class LiteQueue(Huey):
    """A Huey whose storage is the ledger's database (SQLite by default).

    ``LiteQueue("shop")`` uses ``$LITEQUEUE_DB`` or ``./litequeue.db``; ``db=`` takes a
    path or a database URL. ``durability="full"`` (the default) makes every enqueue that
    returned survive power loss; ``"fast"`` survives a crash of the process only.
    """

    storage_class = LiteStorage

    def __init__(self, name: str = defaults.APP_NAME, db: str | os.PathLike[str] | None = None, *,
                 durability: str | None = None, busy_timeout: float | None = None,
                 crash_cap: int = defaults.CRASH_CAP, results: bool = True,
                 store_none: bool = False, **kwargs: Any) -> None:
        self.db_target = database_target(db)
        durability = durability or os.environ.get("LITEQUEUE_DURABILITY") or defaults.DURABILITY
        if busy_timeout is None:
            busy_timeout = float(os.environ.get("LITEQUEUE_BUSY_TIMEOUT") or defaults.BUSY_TIMEOUT)
        self.durability = durability
        self.crash_cap = crash_cap
        database = open_database(self.db_target, durability=durability, busy_timeout=busy_timeout)
        #: the file the database path named when it was opened (None for a server database)
        self.db_identity = FileIdentity.of(database)
        self.bell_target = bell_target(self.db_target, database)
        super().__init__(name, results=results, store_none=store_none, utc=True,
                         database=database, **kwargs)
        self._registry = LiteRegistry()
        #: called with each batch of acked jobs, after the commit (see ``add_observer``)
        self.observers: list[Callable[[Sequence[Any]], None]] = []
        self._post_execute["litequeue.unit"] = self._record_outcome
        self._signal.connect(self._record_signal)

    storage: LiteStorage

    @property
    def bell_dir(self) -> BellTarget:
        """Where producers ring the consumers' doorbell (alias of ``bell_target``)."""
        return self.bell_target

    def get_task_wrapper_class(self) -> type[TaskWrapper]:
        return LiteTaskWrapper

    # -- declaring tasks ------------------------------------------------------------------

    def task(self, *args: Any, queue: str = defaults.QUEUE, priority: int | None = None,
             crash_cap: int | None = None, on_worker_death: str = "retry",
             **kwargs: Any) -> Any:
        """Declare a task: ``@app.task`` or ``@app.task(retries=3, queue="mail", priority=5)``.

        Huey's options all work (retries, retry_delay, retry_backoff, expires, timeout,
        context, name). ``crash_cap``: how many worker deaths end the job ``failed``
        (default 3). ``on_worker_death="fail"``: never re-run it after a crash.
        """
        if args and callable(args[0]) and len(args) == 1 and not kwargs:
            return self.task(queue=queue, priority=priority)(args[0])
        return super().task(*args, **self._settings(queue, priority, crash_cap,
                                                     on_worker_death, kwargs))

    def periodic_task(self, validate_datetime: Callable[[dt.datetime], bool], *args: Any,
                      queue: str = defaults.QUEUE, priority: int | None = None,
                      crash_cap: int | None = None, on_worker_death: str = "retry",
                      **kwargs: Any) -> Any:
        """Declare a task run on a schedule (``crontab(minute="*/5")``), once per slot."""
        return super().periodic_task(validate_datetime, *args, **self._settings(
            queue, priority, crash_cap, on_worker_death, kwargs))

    def _settings(self, queue: str, priority: int | None, crash_cap: int | None,
                  on_worker_death: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        if on_worker_death not in ("retry", "fail"):
            raise ConfigurationError(
                f"on_worker_death must be 'retry' or 'fail', not {on_worker_death!r}")
        if not queue or "," in queue:
            raise ConfigurationError(f"queue must be a non-empty name without commas, not {queue!r}")
        cap = 1 if on_worker_death == "fail" else (crash_cap or self.crash_cap)
        return dict(kwargs, queue=queue, priority=priority, crash_cap=cap)

    def add_observer(self, observer: Callable[[Sequence[Any]], None]) -> None:
        """Run ``observer(finished_jobs)`` in every consumer of this app after each ack
        commits (plugins such as the inbox settle their files here). An observer that
        raises is logged and never stops a worker."""
        if observer not in self.observers:
            self.observers.append(observer)

    def find_task(self, name: str) -> type[Task]:
        return self._registry.find(name)

    def task_names(self) -> list[str]:
        return sorted(self._registry._registry)

    # -- enqueue --------------------------------------------------------------------------

    def enqueue(self, task: Any) -> Any:
        """Write the job (queue row + ledger row, one transaction) and wake a consumer."""
        if self._immediate or isinstance(task, (group, chord)):
            return super().enqueue(task)
        if task.expires:
            task.resolve_expires(self.utc)
        self._emit(S.SIGNAL_ENQUEUED, task)
        self._write(self.new_jobs(task))
        if not self.results:
            return None
        results = self._pipeline_results(task)
        return ResultGroup(results) if len(results) > 1 else results[0]

    def add_schedule(self, task: Task) -> None:
        """Huey calls this for retries with a delay and jobs not due yet."""
        if self._immediate:
            return super().add_schedule(task)
        self._write(self.new_jobs(task))
        self._emit(S.SIGNAL_SCHEDULED, task)

    def enqueue_many(self, tasks: Sequence[Task], chunk: int | None = None) -> list[str]:
        """Write many jobs in ONE transaction: all of them or, on any error (a full disk),
        none. ``chunk`` is accepted for compatibility and ignored."""
        jobs: list[NewJob] = []
        for task in tasks:
            if task.expires:
                task.resolve_expires(self.utc)
            jobs.extend(self.new_jobs(task))
        if jobs:
            self._write(jobs)
        return [t.id for t in tasks]

    def enqueue_by_name(self, name: str, args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None,
                        *, queue: str | None = None, priority: int | None = None,
                        delay: float | None = None) -> Result | None:
        """Enqueue a registered task by name (what ``litequeue enqueue`` calls)."""
        cls = self.find_task(name)
        eta = None
        if delay:
            eta = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(seconds=delay)
        task = cls(tuple(args), dict(kwargs or {}), eta=eta, priority=priority)
        if queue:
            task.queue = queue
        return self.enqueue(task)

    def _write(self, jobs: list[NewJob]) -> None:
        self.storage.write_jobs(jobs)
        if self.storage.unit is None:
            ring(self.bell_target)

    def new_jobs(self, task: Task) -> list[NewJob]:
        """The rows enqueueing ``task`` writes (its own, plus waiting pipeline steps)."""
        unit = self.storage.unit
        retry = unit is not None and task.id == unit.job_id
        parent = None if unit is None or retry else unit.job_id
        job = self._job_row(task, parent)
        job.retry = retry
        if retry and unit is not None:
            job.has_file = unit.has_file
        jobs = [job]
        step, prev = task.on_complete, task.id
        while step is not None and not retry:
            jobs.append(NewJob(step.id, type(step).__name__, self._queue_of(step),
                               int(step.priority or 0), b"", parent_id=prev, waiting=True,
                               args=preview(list(step.args)), kwargs=preview(step.kwargs)))
            step, prev = step.on_complete, step.id
        return jobs

    def _job_row(self, task: Task, parent: str | None) -> NewJob:
        return NewJob(
            id=task.id,
            task=type(task).__name__,
            queue=self._queue_of(task),
            priority=int(task.priority or 0),
            data=self.serialize_task(task),
            eta=to_epoch(task.eta),
            crash_cap=int(getattr(task, "crash_cap", None) or self.crash_cap),
            args=preview(list(task.args)),
            kwargs=preview(task.kwargs),
            parent_id=parent,
        )

    @staticmethod
    def _queue_of(task: Task) -> str:
        return getattr(task, "queue", None) or defaults.QUEUE

    # -- periodic -------------------------------------------------------------------------

    def fire_periodic(self, now: dt.datetime) -> list[str]:
        """Enqueue the periodic tasks due in the minute ``now`` (naive UTC), each once per
        (task, minute) across every consumer and restart. Returns the names fired."""
        from .scheduler import fire_slot

        fired: list[str] = []
        fire_slot(self, now, fired=fired)
        return fired

    # -- what a running job records ---------------------------------------------------------

    def _record_signal(self, signal: str, task: Task, *args: Any) -> None:
        unit = self.storage.unit
        if unit is not None and task.id == unit.job_id:
            unit.signals.add(signal)
            if signal == S.SIGNAL_ERROR and args and unit.exception is None:
                unit.exception = args[0]

    def _record_outcome(self, task: Task, value: Any, exception: BaseException | None) -> None:
        unit = self.storage.unit
        if unit is not None and task.id == unit.job_id:
            unit.value = value
            unit.exception = exception

    def is_revoked(self, task: Any, timestamp: Any = None, peek: bool = True) -> bool:
        unit = self.storage.unit
        if unit is not None and not unit.revocable and isinstance(task, Task) and task.id == unit.job_id:
            return False  # no revocation existed when the job was claimed
        return super().is_revoked(task, timestamp, peek)

    def record_progress(self, job_id: str, done: float, total: float | None, message: str | None) -> None:
        with self.storage.write():
            transitions.record_progress(self.storage, job_id, done, total, message)

    def is_cancel_requested(self, job_id: str) -> bool:
        return self.storage.has_data_for_key(f"cancel:{job_id}")

    # -- consumer ---------------------------------------------------------------------------

    def create_consumer(self, **options: Any) -> Any:
        from .consumer import LiteConsumer

        return LiteConsumer(self, **options)


_default_app: LiteQueue | None = None


def default_app() -> LiteQueue:
    """The app behind ``from litequeue import task``, configured from ``LITEQUEUE_DB``."""
    global _default_app
    if _default_app is None:
        _default_app = LiteQueue(defaults.APP_NAME)
    return _default_app


def task(*args: Any, **kwargs: Any) -> Any:
    """``@task`` / ``@task(queue=...)`` on the default app."""
    return default_app().task(*args, **kwargs)


def periodic_task(*args: Any, **kwargs: Any) -> Any:
    """``@periodic_task(crontab(...))`` on the default app."""
    return default_app().periodic_task(*args, **kwargs)
