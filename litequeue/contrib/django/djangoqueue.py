"""``DjangoQueue``: the project's LiteQueue, whose enqueues follow Django's transactions.

Inside ``transaction.atomic()`` on the Django database that holds the queue, an enqueue
runs on Django's own connection (``LiteQueue.using``), in its transaction: the job exists
iff that transaction commits, and consumers are woken after the commit. When the queue
lives elsewhere (another engine, or a database of its own), an enqueue inside ``atomic()``
is made by ``transaction.on_commit``, once Django's transaction has committed, and never
after a rollback. Around each job, Django's connections are closed when unusable or past
``CONN_MAX_AGE`` (``close_old_connections``), as Django does around each request.

The queue's database opens on first use, or when Django first connects to it, never while
Django starts (``manage.py check`` works with the database down; a test run opens its own).
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Sequence
from typing import Any

from huey.api import Task

from litequeue.app import LiteQueue
from litequeue.base.errors import ConfigurationError, LiteQueueError
from litequeue.contrib.django import conf

log = logging.getLogger("litequeue.django")

#: Set while an enqueue already took its route (a join in progress, or a deferred one now
#: running): the enqueues it makes inside go straight through.
_routed: contextvars.ContextVar[bool] = contextvars.ContextVar("litequeue_django_routed", default=False)


def close_old_connections(*_: Any) -> None:
    """Django's ``close_old_connections`` (the signature of a pre- or post-execute hook)."""
    from django.db import close_old_connections as close

    close()


class DjangoQueue(LiteQueue):
    """A LiteQueue configured by ``settings.LITEQUEUE`` (see :mod:`litequeue.contrib.django.conf`)."""

    def __init__(self, cfg: dict[str, Any] | None = None) -> None:
        self.django_config = conf.config() if cfg is None else cfg
        self._placement: conf.Placement | None = None
        self._storage: Any = None
        self._local = threading.local()  # this thread's borrowed Django connections
        self._starting = True  # Huey's __init__ creates the storage: here, on first use
        super().__init__(**conf.queue_options(self.django_config))
        self._starting = False
        # Each job starts and ends like a request: no connection the database dropped.
        self.pre_execute("django.close_old_connections")(close_old_connections)
        self.post_execute("django.close_old_connections")(close_old_connections)

    def placement(self) -> conf.Placement:
        """Where the queue lives, read from Django's settings: when they name another
        database than the one open (a test run's database, which the test runner puts in
        ``DATABASES`` after this queue was built), the queue moves there. The app calls
        this as Django connects (:meth:`connected`), before any transaction is open: the
        queue's first open of a file writes its schema, which must not wait for a lock
        the application's own transaction holds."""
        where = conf.place(self.django_config)
        if self._placement is not None and where.target != self._placement.target and self._database is not None:
            self._database.close()
            self._database = self._lite_storage = self._storage = None
            self.db_target = where.target
        self._placement = where
        self.db_target = where.target
        return where

    def connected(self, alias: str) -> None:
        """Django opened a connection on ``alias``: if it holds the queue (or its transactions
        decide the queue's enqueues), follow the settings and open the queue now, before a
        transaction is open (SQLite: a first open writes the schema, which would wait for
        the write lock the application's own transaction holds)."""
        try:
            where = self.placement()
        except ConfigurationError:
            return  # said in one line at the first enqueue
        if alias in (where.joins, where.defers):
            try:
                self.storage  # noqa: B018
            except LiteQueueError as exc:
                log.warning("litequeue could not open its database %s: %s", where.target, exc,
                            extra={"action": "django"})

    def create_storage(self) -> Any:
        return None if self._starting else super().create_storage()

    @property  # type: ignore[override]
    def storage(self) -> Any:
        if self._storage is None:
            self._storage = super().create_storage()
        return self._storage

    @storage.setter
    def storage(self, value: Any) -> None:
        self._storage = value

    @property
    def database(self) -> Any:
        if self._database is None and self._placement is None:
            self.placement()
        return super().database

    def _route(self) -> tuple[str, str] | None:
        """``("join", alias)``, ``("defer", alias)``, or None: enqueue now, on litequeue's
        own connection (no Django transaction is open)."""
        if _routed.get():
            return None
        from django.db import connections

        where = self.placement()
        if where.joins is not None:
            return ("join", where.joins) if connections[where.joins].in_atomic_block else None
        return ("defer", where.defers) if connections[where.defers].in_atomic_block else None

    def enqueue(self, task: Any, **options: Any) -> Any:
        route = self._route()
        if route is None:
            return super().enqueue(task, **options)
        kind, alias = route
        if kind == "join":
            return self._joined(alias, lambda: super(DjangoQueue, self).enqueue(task, **options))
        self._defer(alias, lambda: super(DjangoQueue, self).enqueue(task, **options))
        return self.result_handle(task) if isinstance(task, Task) and self.results else None

    def enqueue_many(self, tasks: Sequence[Task], chunk: int | None = None) -> list[str]:
        route = self._route()
        if route is None:
            return super().enqueue_many(tasks, chunk)
        kind, alias = route
        if kind == "join":
            return list(self._joined(alias, lambda: super(DjangoQueue, self).enqueue_many(tasks, chunk)))
        self._defer(alias, lambda: super(DjangoQueue, self).enqueue_many(tasks, chunk))
        return [t.id for t in tasks]

    def _joined(self, alias: str, enqueue: Any) -> Any:
        token = _routed.set(True)
        try:
            with self.using(self._borrowed(alias)):
                return enqueue()
        finally:
            _routed.reset(token)

    def _borrowed(self, alias: str) -> Any:
        """This thread's Django connection on ``alias``, borrowed: one per thread and alias,
        so ``using()`` checks it is on the queue's database once per driver connection
        (about 1.8 ms a time on PostgreSQL), not at every enqueue."""
        from django.db import connections

        from litequeue.store.borrowed import borrow

        conn = connections[alias]
        kept = getattr(self._local, alias, None)
        if kept is None or kept.conn is not conn:
            kept = borrow(conn)
            setattr(self._local, alias, kept)
        return kept

    def _defer(self, alias: str, enqueue: Any) -> None:
        from django.db import transaction

        def run() -> None:
            token = _routed.set(True)
            try:
                enqueue()
            finally:
                _routed.reset(token)

        transaction.on_commit(run, using=alias)
