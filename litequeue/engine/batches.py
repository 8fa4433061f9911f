"""Batches: a group of jobs, and callbacks that run once every member has finished.

::

    with app.batch("crawl acme", on_complete=assemble, on_failure=report) as b:
        fetch("https://acme.example")          # enqueued inside the block: a member
        b.add(fetch.s("https://acme.example/about"))
        page.map(urls, batch=b)

    @app.task()
    def fetch(url):
        for link in links_of(url):             # a member adds to its own batch as it goes
            current_job().batch.add(page.s(link))

``on_complete(batch_id, ...)`` is enqueued exactly once, when the batch is *sealed* (its
``with`` block ended) and every member has finished, whatever their outcome; it reads the
members' results with ``app.batch_results(batch_id)``. ``on_failure(batch_id, ...)`` is
enqueued then too if any member did not succeed (failed for good, cancelled or expired).

Where the writes happen (:mod:`litequeue.jobs.batches`): a producer's batch is opened, fed and
sealed by its own transactions; what a *running job* does to batches (opening one, adding
members, sealing) waits in the job's unit and is written by its ack, in the transaction
that records its success, so a crash never adds a member twice nor loses one, and the
batch cannot reach "all done" before the members a job adds are counted. A job that fails
(or is retried) drops what it did to batches: its next attempt does it again.

A batch opened inside another's block, or by one of another batch's jobs, is a member of
it: the parent finishes only once the child's ``on_complete`` job has finished.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from huey.api import ResultGroup, Task, TaskWrapper

from litequeue.base.errors import ConfigurationError
from litequeue.base.ids import new_job_id
from litequeue.base.values import NewBatch, NewJob
from litequeue.engine.batch_scope import current_batch, open_blocks
from litequeue.engine.job_rows import job_row

if TYPE_CHECKING:
    from litequeue.app import LiteQueue


class Batch:
    """A batch of jobs (``app.batch(...)``): opened when made, sealed when its ``with`` block
    ends (or by :meth:`seal`)."""

    def __init__(self, app: LiteQueue, name: str, on_complete: Any = None, on_failure: Any = None, *,
                 batch_id: str | None = None) -> None:
        self.app = app
        self.name = name
        self.id = batch_id or new_job_id()
        self.on_complete_id: str | None = None
        self.on_failure_id: str | None = None
        if batch_id is None:
            self._open(on_complete, on_failure)

    @classmethod
    def attach(cls, app: LiteQueue, batch_id: str, name: str = "") -> Batch:
        """A handle on an existing batch (``current_job().batch``)."""
        return cls(app, name, batch_id=batch_id)

    def __repr__(self) -> str:
        return f"<Batch {self.id} {self.name!r}>"

    # -- writing --------------------------------------------------------------------------

    def _open(self, on_complete: Any, on_failure: Any) -> None:
        from litequeue.jobs.batches import open_batch

        storage = _storage(self.app)
        parent = current_batch(self.app)
        parent_id = parent.id if parent is not None else _running_job_batch(self.app)
        done = _callback(self.app, on_complete, self.id, "on_complete")
        fail = _callback(self.app, on_failure, self.id, "on_failure")
        self.on_complete_id = done.id if done else None
        self.on_failure_id = fail.id if fail else None
        row = NewBatch(self.id, storage.name, self.name, parent_id, done, fail)
        unit = storage.unit
        if unit is not None:
            unit.batch_ops.append(("open", row))
            return
        with storage.write():
            open_batch(storage, row, time.time())

    def add(self, *tasks: Task) -> list[Any]:
        """Enqueue ``tasks`` (``task.s(...)`` signatures) as members; returns their result
        handles. Allowed until the batch has finished (a sealed batch still running takes
        more: a crawler's page jobs add the links they find)."""
        return [self.app.enqueue(task, batch=self) for task in tasks]

    def seal(self) -> None:
        """No more members from here: the batch finishes once every member has (at once if
        they all have). The ``with`` block does this when it ends without an error."""
        from litequeue.jobs.batches import seal_batch

        storage = _storage(self.app)
        unit = storage.unit
        if unit is not None:
            unit.batch_ops.append(("seal", self.id))
            return
        with storage.write():
            fired = seal_batch(storage, self.id, time.time())
        if fired:
            storage.after_write([job.id for job in fired])

    def __enter__(self) -> Batch:
        open_blocks().append(self)
        return self

    def __exit__(self, et: Any, ev: Any, tb: Any) -> None:
        stack = open_blocks()
        if self in stack:
            stack.remove(self)
        if et is None:
            self.seal()
        # On an error the batch stays open (unsealed): it never finishes by itself, so its
        # callbacks never see half a batch. Its members still run; seal() it to finish it.

    # -- reading --------------------------------------------------------------------------

    def status(self) -> dict[str, Any] | None:
        """What ``litequeue batches show ID --json`` prints (None before its opener's ack)."""
        from litequeue.ledger import queries

        return queries.get_batch(self.app.storage.database, self.id)

    def results(self) -> list[Any]:
        return self.app.batch_results(self.id)


def _storage(app: LiteQueue) -> Any:
    from litequeue.engine.storage import LiteStorage

    storage = app.storage
    if not isinstance(storage, LiteStorage):
        raise ConfigurationError("batches need the queue's database; they do not work in immediate mode")
    return storage


def _running_job_batch(app: LiteQueue) -> str | None:
    from litequeue.engine.context import current_job

    job = current_job()
    if job is None or job.app is not app:
        return None
    batch = job.batch
    return batch.id if batch is not None else None


def _callback(app: LiteQueue, spec: Any, batch_id: str, what: str) -> NewJob | None:
    """The callback job, ready to be written when the batch finishes: ``task`` or
    ``task.s(args...)``, called with the batch id first."""
    if spec is None:
        return None
    if isinstance(spec, TaskWrapper):
        task = spec.s(batch_id)
    elif isinstance(spec, Task):
        task = copy.copy(spec)
        task.args = (batch_id, *spec.args)
        task.id = new_job_id()  # the same signature may serve several batches
        task.revoke_id = f"r:{task.id}"
    else:
        raise ConfigurationError(f"{what} must be a task or a task signature (task.s(...)), not {spec!r}")
    job = job_row(app, task, None)
    if job.options is not None:
        job.options = replace(job.options, batch_id=None)
    return job


def job_batch(app: LiteQueue, job_id: str) -> Batch | None:
    """The batch job ``job_id`` is a member of."""
    from litequeue.ledger import queries

    row = queries.batch_of_job(app.storage.database, job_id)
    return Batch.attach(app, row[0], row[1]) if row else None


def results(app: LiteQueue, batch_id: str) -> list[Any]:
    """Each member's result, in enqueue order; None for a member that did not succeed (or
    whose result was already read with ``.get()``, which removes it, or pruned)."""
    from litequeue.base.states import JobStatus
    from litequeue.ledger import queries

    members = queries.batch_members(app.storage.database, batch_id)
    raw: dict[str, bytes] = {}
    ok = [m["id"] for m in members if m["status"] == JobStatus.SUCCEEDED.value]
    for start in range(0, len(ok), 500):
        raw.update(app.storage.peek_many(ok[start:start + 500]))
    return [app.serializer.deserialize(raw[m["id"]]) if m["id"] in raw else None for m in members]


def map_into(wrapper: TaskWrapper, it: Iterable[Any], batch: Batch) -> ResultGroup | None:
    """``task.map(iterable, batch=b)``: every job a member, all written in one transaction."""
    tasks = wrapper._apply(it)
    for task in tasks:
        task.with_options(batch=batch)
    with wrapper.huey.bulk(None):
        handles = [wrapper.huey.enqueue(task) for task in tasks]
    return ResultGroup(handles) if wrapper.huey.results else None
