"""``LiteQueue``: Huey with named queues, a ledger, and writes that never lose a job.

This is where a job is *enqueued*: :meth:`LiteQueue.enqueue` (and ``add_schedule`` for
retries and delayed jobs) turns a Huey task into a queue row and a ledger row written in
one transaction, then rings the consumers' doorbell.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import peewee as pw
from huey import signals as S
from huey.api import Result, Task, TaskWrapper, chord, group
from huey.utils import normalize_time

from litequeue.base import defaults, tracing
from litequeue.base.clock import to_epoch
from litequeue.base.errors import ConfigurationError
from litequeue.base.limits import Breaker, Limits
from litequeue.base.values import NewJob, Unit
from litequeue.engine import batches, huey_compat, job_rows
from litequeue.engine.job_options import LiteTask, clean_tags
from litequeue.engine.storage import LiteStorage
from litequeue.engine.tasks import LiteRegistry, LiteResult, LiteTaskWrapper, aenqueue_many, task_settings, with_limits
from litequeue.jobs import rows
from litequeue.jobs.cancel import cancel_actor
from litequeue.jobs.limits import publish_limits
from litequeue.store.database import database_target, open_database, own_target
from litequeue.store.doorbell import BellTarget, bell_target, ring
from litequeue.store.file_identity import FileIdentity

# chord and group are re-exported: examples import them from here
__all__ = ["LiteQueue", "LiteRegistry", "LiteTaskWrapper", "chord", "default_app", "group", "periodic_task",
           "task", "to_epoch"]


class LiteQueue(huey_compat.HueySeams):
    """A Huey whose storage is the ledger's database (SQLite by default).

    ``LiteQueue("shop")`` uses ``$LITEQUEUE_DB`` or ``./litequeue.db``; ``db=`` takes a
    path or a database URL. ``durability="full"`` (the default) makes every enqueue that
    returned survive power loss; ``"fast"`` survives a crash of the process only.
    """

    storage_class = LiteStorage

    def __init__(self, name: str = defaults.APP_NAME, db: str | os.PathLike[str] | pw.Database | None = None, *,
                 durability: str | None = None, busy_timeout: float | None = None,
                 crash_cap: int = defaults.CRASH_CAP, results: bool = True,
                 store_none: bool = False, utc: bool = True, **kwargs: Any) -> None:
        #: the application's own peewee database, when ``db`` is one (its atomic() blocks take the enqueues)
        self._own_database = db if isinstance(db, pw.Database) else None
        self.db_target = own_target(db) if isinstance(db, pw.Database) else database_target(db)
        durability = durability or os.environ.get("LITEQUEUE_DURABILITY") or defaults.DURABILITY
        if busy_timeout is None:
            busy_timeout = float(os.environ.get("LITEQUEUE_BUSY_TIMEOUT") or defaults.BUSY_TIMEOUT)
        self.durability = durability
        self.busy_timeout = busy_timeout
        self.crash_cap = crash_cap
        self.bell_target: BellTarget = None
        self._database: pw.Database | None = None
        self._lite_storage: LiteStorage | None = None
        #: the file the database path named when it was opened (None for a server database)
        self.db_identity: FileIdentity | None = None
        self._serialized = threading.local()
        #: concurrency limits, queue timeouts and breakers (see configure_queue, task)
        self.limits = Limits()
        super().__init__(name, results=results, store_none=store_none, utc=utc, **kwargs)
        huey_compat.install_registry(self, LiteRegistry())
        self.post_execute("litequeue.unit")(self._record_outcome)
        self.signal()(self._record_signal)
        #: called with each batch of acked jobs, after the commit (see ``add_observer``)
        self.observers: list[Callable[[Sequence[Any]], None]] = []

    storage: LiteStorage

    @property
    def database(self) -> pw.Database:
        """The queue and ledger database, opened on first use: an app created in immediate
        mode never opens (or creates) it."""
        if self._database is None:
            self._database = self._own_database or open_database(self.db_target, durability=self.durability,
                                                                 busy_timeout=self.busy_timeout)
            self.bell_target = bell_target(self.db_target, self._database)
            self.db_identity = FileIdentity.of(self._database)
        return self._database

    def get_storage(self, **kwargs: Any) -> Any:
        # Leaving immediate mode brings back the same storage (and its claims).
        if self._lite_storage is None:
            kwargs.setdefault("database", self.database)
            storage = super().get_storage(**kwargs)
            storage.describe = self.jobs_for
            storage.committed = self._ring
            storage.bell = self.bell_target
            storage.utc = self.utc
            storage.limits = self.limits
            from litequeue.runtime.in_process import InProcessClaims

            storage.inline = InProcessClaims(storage)
            self._lite_storage = storage
        return self._lite_storage

    def _ring(self) -> None:
        ring(self.bell_target)

    def _unit(self) -> Unit | None:
        # Immediate mode swaps in Huey's MemoryStorage, which knows no units.
        storage = self.storage
        return storage.unit if isinstance(storage, LiteStorage) else None

    @property
    def bell_dir(self) -> BellTarget:
        """Where producers ring the consumers' doorbell (alias of ``bell_target``)."""
        return self.bell_target

    def get_task_wrapper_class(self) -> type[TaskWrapper]:
        return LiteTaskWrapper

    # -- declaring tasks ------------------------------------------------------------------

    def task(self, *args: Any, queue: str = defaults.QUEUE, priority: int | None = None,
             crash_cap: int | None = None, on_worker_death: str = "retry",
             tags: Iterable[str] | None = None, unique: bool = False, unique_for: float | None = None,
             concurrency: int | None = None, breaker: Breaker | None = None, **kwargs: Any) -> Any:
        """Declare a task: ``@app.task`` or ``@app.task(retries=3, queue="mail", priority=5)``.

        Huey's options all work (retries, retry_delay, retry_backoff, expires, timeout,
        context, name). ``crash_cap``: how many worker deaths end the job ``failed``
        (default 3). ``on_worker_death="fail"``: never re-run it after a crash.
        ``tags``: tags of every job of the task. ``unique=True``: a job with the same task
        and arguments is not enqueued twice while one waits, is queued or runs (or finished
        less than ``unique_for`` seconds ago). ``concurrency``: at most this many of its
        jobs run at once, across every consumer on the database. ``breaker``: a
        :class:`litequeue.Breaker` that holds its jobs after repeated failures.
        ``cancel_grace``: seconds a running job of the task has to stop by itself once
        cancelled before it is stopped (default: the consumer's ``--cancel-grace``). An
        ``async def`` task runs on an event loop.
        """
        if args and callable(args[0]) and len(args) == 1 and not kwargs:
            return self.task(queue=queue, priority=priority)(args[0])
        settings = task_settings(queue, priority, crash_cap, on_worker_death, kwargs, self.crash_cap)
        settings.setdefault("task_base", LiteTask)
        settings.update(lq_tags=tuple(clean_tags(tags or ())), lq_unique=bool(unique), lq_unique_for=unique_for)
        return with_limits(super().task(*args, **settings), self.limits, concurrency, breaker)

    def configure_queue(self, queue: str, concurrency: int | None = None,
                        timeout: float | str | None = None) -> None:
        """Limits of ``queue`` (the config file's ``[queues.NAME]``): at most
        ``concurrency`` of its jobs run at once across every consumer; ``timeout``
        (seconds or ``"10m"``) for its tasks that set none."""
        self.limits.set_queue(queue, concurrency, timeout)

    def publish_limits(self) -> None:
        """A consumer starts: queue timeouts go to the tasks that set none, and the limits
        and breakers to the database (what ``status`` and ``litequeue breakers`` show)."""
        for cls in huey_compat.task_classes(self).values():
            queue_timeout = self.limits.timeouts.get(getattr(cls, "queue", None) or defaults.QUEUE)
            if queue_timeout is not None and not getattr(cls, "default_timeout", None):
                cls.default_timeout = queue_timeout
        storage = self.storage
        if not self.limits.active and not self.limits.timeouts and not storage.sql(
                "SELECT 1 FROM lq_limit UNION ALL SELECT 1 FROM lq_breaker LIMIT 1").fetchone():
            return  # nothing declared, nothing published before: no write at start
        with storage.write():
            publish_limits(storage, self.limits, time.time())

    def enqueue(self, task: Any, **options: Any) -> Any:
        """Huey's enqueue; ``options`` are litequeue's per-job options (``tags``,
        ``depends_on``, ``on_dependency_failure``, ``unique_key``, ``unique_for``,
        ``batch``; see :class:`litequeue.base.values.JobOptions`)."""
        if options:
            if not isinstance(task, LiteTask):
                raise ConfigurationError("job options need a task declared with @app.task (a LiteQueue task)")
            task.with_options(**options)
        unit = self._unit()
        job_id = getattr(task, "id", None)
        span = None if job_id is None or (unit is not None and job_id == unit.job_id) else tracing.send(
            job_rows.queue_of(task), job_id, type(task).__name__)  # (Huey enqueues a retry again: no new send)
        if span is None:
            return super().enqueue(task)
        try:
            return super().enqueue(task)
        except BaseException as exc:
            span.fail(exc)
            raise
        finally:
            span.end()

    def periodic_task(self, validate_datetime: Callable[[dt.datetime], bool], *args: Any,
                      queue: str = defaults.QUEUE, priority: int | None = None,
                      crash_cap: int | None = None, on_worker_death: str = "retry",
                      **kwargs: Any) -> Any:
        """Declare a task run on a schedule (``crontab(minute="*/5")``), once per slot."""
        return super().periodic_task(validate_datetime, *args, **task_settings(
            queue, priority, crash_cap, on_worker_death, kwargs, self.crash_cap))

    def add_observer(self, observer: Callable[[Sequence[Any]], None]) -> None:
        """Run ``observer(finished_jobs)`` in every consumer of this app after each ack
        commits (plugins such as the inbox settle their files here). An observer that
        raises is logged and never stops a worker."""
        if observer not in self.observers:
            self.observers.append(observer)

    def find_task(self, name: str) -> type[Task]:
        registry = huey_compat.registry(self)
        assert isinstance(registry, LiteRegistry)
        return registry.find(name)

    def task_names(self) -> list[str]:
        return sorted(huey_compat.task_classes(self))

    def task_class(self, qualified_name: str) -> type[Task]:
        return huey_compat.task_classes(self)[qualified_name]

    # -- enqueue --------------------------------------------------------------------------

    # Huey.enqueue and Huey.add_schedule run unchanged (signals, groups, chords, expiry,
    # pipelines); they hand the serialized task to LiteStorage.enqueue / add_to_schedule,
    # which asks jobs_for() for the rows to write (queue row + ledger row, one transaction).

    def serialize_task(self, task: Task) -> bytes:
        data = super().serialize_task(task)
        self._serialized.last = (task, data)  # jobs_for() reads the task back without unpickling
        return data

    def jobs_for(self, data: bytes) -> list[NewJob]:
        """The rows a serialized task writes (what ``LiteStorage.enqueue`` asks for)."""
        last = getattr(self._serialized, "last", None)
        task = last[0] if last is not None and last[1] is data else self.deserialize_task(data)
        return self.new_jobs(task, data)

    def bulk(self, chunk: int | None = 10_000) -> Any:
        """A block whose enqueues are written ``chunk`` jobs per transaction (``None``: all
        of them in one)."""
        if isinstance(self.storage, LiteStorage):
            return self.storage.bulk(chunk)
        return contextlib.nullcontext()

    def init_app(self, app: Any) -> None:
        """Flask's extension pattern: ``queue.init_app(app)`` takes ``LITEQUEUE_DB``,
        ``LITEQUEUE_DURABILITY`` and ``LITEQUEUE_BUSY_TIMEOUT`` from ``app.config`` (call it
        before enqueueing) and sets ``app.extensions["litequeue"]`` to this queue."""
        config = app.config
        db = config.get("LITEQUEUE_DB")
        moved = db is not None and (db is not self._own_database if isinstance(db, pw.Database)
                                    else database_target(db) != self.db_target)
        durability = config.get("LITEQUEUE_DURABILITY", self.durability)
        busy = float(config.get("LITEQUEUE_BUSY_TIMEOUT", self.busy_timeout))
        if moved or (durability, busy) != (self.durability, self.busy_timeout):
            if moved:
                self._own_database = db if isinstance(db, pw.Database) else None
                self.db_target = own_target(db) if isinstance(db, pw.Database) else database_target(db)
            self.durability, self.busy_timeout = durability, busy
            if self._database is not None:  # opened with the settings it had: reopen with these
                if self._database is not self._own_database:
                    self._database.close()
                self._database = self._lite_storage = None
                self.storage = self.create_storage()
        app.extensions["litequeue"] = self

    def using(self, connection: Any) -> Any:
        """``with app.using(connection):`` every enqueue inside the block runs on the
        application's ``connection`` (sqlite3, psycopg 3, peewee, SQLAlchemy, Django) in its
        open transaction: the job exists iff that transaction commits, and consumers are woken
        after the commit. See docs/tasks-and-workflows.md, "Enqueue in your own transaction"."""
        from litequeue.engine.using import using

        return using(self.storage, connection, self.durability)

    def enqueue_many(self, tasks: Sequence[Task], chunk: int | None = None) -> list[str]:
        """Write many jobs in ONE transaction: all of them or, on any error (a full disk),
        none; the same rows, ids, tags, batch membership, unique keys and doorbell as one
        :meth:`enqueue` each (see :meth:`write_many`). ``chunk`` is accepted for
        compatibility and ignored."""
        self.write_many(tasks)
        return [t.id for t in tasks]

    def write_many(self, tasks: Sequence[Task]) -> list[Any]:
        """The bulk path of :meth:`enqueue_many` and ``task.map``: every task serialized and
        described here, its rows written with the others by one ``executemany`` per table
        in ONE transaction, the doorbell rung once after it; returns the result handles.
        Huey's per-task enqueue is skipped for a plain task (no pipeline, no expiry, no
        group or chord) when nothing but litequeue listens to Huey's signals and the app is
        not in immediate mode; any other task goes through it, inside the same transaction."""
        direct = (not self.immediate and self._unit() is None  # a running job's enqueues wait for its ack
                  and all(fn == self._record_signal for fn in huey_compat.signal_receivers(self)))
        results: list[Any] = []
        with self.bulk(None):
            for task in tasks:
                if direct and isinstance(task, LiteTask) and task.on_complete is None and task.on_error is None \
                        and not task.expires:
                    data = self.serialize_task(task)
                    self.storage.add_described(self.new_jobs(task, data))
                    results.append(self.result_handle(task) if self.results else None)
                else:
                    results.append(self.enqueue(task))
        return results

    async def aenqueue_many(self, tasks: Sequence[Task]) -> list[str]:
        """``await app.aenqueue_many([...])``: :meth:`enqueue_many` without blocking the
        event loop (the write runs in a thread)."""
        return await aenqueue_many(self, tasks)

    def enqueue_by_name(self, name: str, args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None,
                        *, queue: str | None = None, priority: int | None = None,
                        delay: float | None = None, **options: Any) -> Result | None:
        """Enqueue a registered task by name (what ``litequeue enqueue`` calls); ``options``
        as for :meth:`enqueue` (``tags=...``)."""
        cls = self.find_task(name)
        eta = normalize_time(delay=delay, utc=self.utc) if delay else None
        task = cls(tuple(args), dict(kwargs or {}), eta=eta, priority=priority)
        if queue:
            task.queue = queue
        return self.enqueue(task, **{k: v for k, v in options.items() if v})

    def new_jobs(self, task: Task, data: bytes | None = None) -> list[NewJob]:
        """The rows enqueueing ``task`` writes (its own, plus waiting pipeline steps; built by
        :func:`litequeue.engine.job_rows.new_jobs`)."""
        return job_rows.new_jobs(self, task, self._unit(), data)

    # -- batches --------------------------------------------------------------------------

    def batch(self, name: str, on_complete: Any = None, on_failure: Any = None) -> batches.Batch:
        """Open a batch of jobs (see :mod:`litequeue.engine.batches`): ``with app.batch("crawl acme",
        on_complete=assemble, on_failure=report) as b:`` makes every job enqueued inside
        the block a member; ``on_complete(batch_id)`` runs once, after the last member.
        Inside a running job, the batch is written with the job's ack."""
        return batches.Batch(self, name, on_complete, on_failure)

    def batch_results(self, batch_id: str) -> list[Any]:
        """The results of a batch's members in enqueue order (None for a member that did
        not succeed)."""
        return batches.results(self, batch_id)

    def batch_of(self, job_id: str) -> batches.Batch | None:
        """The batch job ``job_id`` is a member of, or None (``current_job().batch``)."""
        return batches.job_batch(self, job_id)

    # -- periodic -------------------------------------------------------------------------

    def fire_periodic(self, now: dt.datetime) -> list[str]:
        """Enqueue the periodic tasks due in the minute ``now`` (naive UTC), each once per
        (task, minute) across every consumer and restart. Returns the names fired."""
        from litequeue.runtime.periodic import fire_slot

        fired: list[str] = []
        fire_slot(self, now, fired=fired)
        return fired

    # -- what a running job records ---------------------------------------------------------

    def _record_signal(self, signal: str, task: Task, *args: Any) -> None:
        unit = self._unit()
        if unit is not None and task.id == unit.job_id:
            if signal == S.SIGNAL_EXECUTING:
                unit.in_body = True
            elif signal == S.SIGNAL_CANCELED:
                unit.in_body = False
            unit.signals.add(signal)
            if signal == S.SIGNAL_ERROR and args and unit.exception is None:
                unit.exception = args[0]

    def _record_outcome(self, task: Task, value: Any, exception: BaseException | None) -> None:
        unit = self._unit()
        if unit is not None and task.id == unit.job_id:
            unit.in_body = False  # Huey's own enqueues (retry, next step) follow: ack them with it
            unit.value = value
            unit.exception = exception

    def result_handle(self, task: Task) -> LiteResult:
        return LiteResult(self, task)

    def is_revoked(self, task: Any, timestamp: Any = None, peek: bool = True) -> bool:
        unit = self._unit()
        if unit is not None and not unit.revocable and isinstance(task, Task) and task.id == unit.job_id:
            return False  # no revocation existed when the job was claimed
        return super().is_revoked(task, timestamp, peek)

    # -- running one job in this process (Huey's dequeue / execute) ------------------------

    def dequeue(self) -> Task | None:
        """Claim the next ready job for this process (Huey's ``dequeue``): the job stays in
        the queue, claimed, until :meth:`execute` acks it; recovered if this process dies."""
        if not isinstance(self.storage, LiteStorage):
            return super().dequeue()
        from litequeue.runtime import in_process

        return in_process.dequeue(self)

    def read_schedule(self, timestamp: dt.datetime | None = None) -> list[Task]:
        """The jobs due at ``timestamp``, off the schedule and claimed by this process:
        enqueue them to hand them to any consumer, or execute them here."""
        if not isinstance(self.storage, LiteStorage):
            return super().read_schedule(timestamp)
        from litequeue.runtime import in_process

        return in_process.read_schedule(self, timestamp)

    def execute(self, task: Task, timestamp: dt.datetime | None = None) -> Any:
        """Huey's ``execute``; a job this process dequeued is acked (or released) after."""
        storage = self.storage
        if not isinstance(storage, LiteStorage) or storage.unit is not None:
            return super().execute(task, timestamp)  # immediate mode, or inside a worker's run
        claim = storage.inline.take(task.id)
        if claim is None:  # not a job from the queue (a task built by hand): just run it
            return super().execute(task, timestamp)
        from litequeue.runtime.in_process import run_claimed

        return run_claimed(self, claim, task, timestamp)

    def record_progress(self, job_id: str, done: float, total: float | None, message: str | None) -> None:
        with self.storage.write():
            rows.record_progress(self.storage, job_id, done, total, message)

    def is_cancel_requested(self, job_id: str) -> bool:
        """Whether anyone asked to cancel ``job_id`` (:meth:`cancel_requested_by` as a yes/no)."""
        return self.cancel_requested_by(job_id) is not None

    def cancel_requested_by(self, job_id: str) -> str | None:
        """Who asked to cancel ``job_id``, or None if nobody did."""
        value = self.storage.peek_many([f"cancel:{job_id}"]).get(f"cancel:{job_id}")
        return None if value is None else cancel_actor(value)

    # -- consumer ---------------------------------------------------------------------------

    def create_consumer(self, **options: Any) -> Any:
        """litequeue's consumer; takes Huey's consumer options too (``huey_consumer``)."""
        from litequeue.runtime.consumer import LiteConsumer

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
