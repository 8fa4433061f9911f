"""Firing a periodic slot: the ``@periodic_task`` tasks in code and the schedules stored in
the database that are due in one minute, each recorded once per (name, minute) and enqueued.

The consumer's scheduler (:mod:`litequeue.runtime.scheduler`) calls :func:`fire_slot` for
every minute it owes; ``app.fire_periodic(now)`` does too. Stored schedules are read afresh
for every slot (:func:`due`), so a change any process makes (:mod:`litequeue.schedules`)
counts from the next minute on. A run is recorded under its run key (a code task's
qualified name, ``schedule:NAME`` for a stored one) in ``lq_periodic_run`` in the
transaction that enqueues its job, so however many consumers fire a slot, it fires once.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from huey.api import Task

from litequeue.base.cron import Cron, parse
from litequeue.base.errors import ConfigurationError, UnknownTaskError
from litequeue.engine import huey_compat
from litequeue.engine.job_rows import job_row
from litequeue.ledger import queries
from litequeue.store.doorbell import ring
from litequeue.store.faults import is_transient

if TYPE_CHECKING:
    from litequeue.app import LiteQueue

log = logging.getLogger("litequeue.scheduler")
#: the logger of what concerns one stored schedule (its name, as before the move)
schedules_log = logging.getLogger("litequeue.schedules")
#: ``lq_periodic_run.task`` of a stored schedule's runs (a code schedule's is its task's name).
KEY_PREFIX = "schedule:"
#: In a scheduler's owed names: every stored schedule (their table could not be read).
ALL_STORED = KEY_PREFIX + "*"


def run_key(name: str) -> str:
    """The run key of the stored schedule ``name``."""
    return KEY_PREFIX + name


@functools.lru_cache(maxsize=256)
def cron_of(expression: str, timezone: str) -> Cron:
    """The parsed cron expression (cached: every slot reads every stored schedule)."""
    return parse(expression, timezone)


def build_task(lq: LiteQueue, row: dict[str, Any]) -> Task:
    """The task a stored schedule enqueues (raises UnknownTaskError if its task is gone)."""
    cls = lq.find_task(row["task"])
    task = cls(tuple(row["args"]), dict(row["kwargs"]), priority=row["priority"])
    if row["queue"]:
        task.queue = row["queue"]
    return task


def due(lq: LiteQueue, slot: dt.datetime) -> list[tuple[str, Callable[[], Task]]]:
    """(run key, task maker) of each enabled stored schedule of ``lq`` due in the minute
    ``slot`` (naive; UTC when ``lq.utc``, as Huey's periodic tasks get it)."""
    moment = slot.replace(tzinfo=dt.UTC) if lq.utc else slot.astimezone()
    out: list[tuple[str, Callable[[], Task]]] = []
    for row in queries.schedules(lq.storage.database, app=lq.name, enabled_only=True):
        try:
            cron = cron_of(row["cron"], row["timezone"])
        except ConfigurationError as exc:  # its zone left this host's tzdata, say: skip it alone
            schedules_log.error("schedule %s skipped: %s", row["name"], exc)
            continue
        if cron.matches(moment):
            out.append((run_key(row["name"]), functools.partial(build_task, lq, row)))
    return out


def fire_slot(huey: LiteQueue, slot: dt.datetime, names: set[str] | None = None,
              fired: list[str] | None = None) -> set[str]:
    """Record and enqueue the periodic tasks and stored schedules due in ``slot`` (``names``
    only, if given), each in its own transaction; returns the names still owed (a transient
    database error: retry them). A schedule failing for good is logged and skips no other.
    The names fired are appended to ``fired``."""
    key = slot.strftime("%Y-%m-%dT%H:%M")
    owed: set[str] = set()
    fired = [] if fired is None else fired
    registry = huey_compat.registry(huey)
    candidates: list[tuple[str, Callable[[], Any]]] = [
        (registry.task_to_string(type(task)), functools.partial(_same, task)) for task in huey.read_periodic(slot)]
    if names is None or any(n.startswith(KEY_PREFIX) for n in names):
        try:
            candidates += due(huey, slot)
        except Exception as exc:  # noqa: BLE001 - the code schedules must still fire
            if is_transient(exc):
                owed.add(ALL_STORED)
                log.warning("stored schedules for %s not read yet (%s); retrying", key, exc)
            else:
                log.exception("stored schedules for %s cannot be read; skipped", key)
    for name, make in candidates:
        if names is not None and name not in names and not (
                ALL_STORED in names and name.startswith(KEY_PREFIX)):
            continue
        try:
            if huey.storage.fire_periodic(name, key, job_row(huey, make(), None)):
                fired.append(name)
                log.info("periodic task %s fired for %s", name, key)
        except UnknownTaskError as exc:
            log.error("schedule %s for %s skipped: %s", name, key, exc)
        except Exception as exc:  # noqa: BLE001 - one task's failure must not skip the others
            if is_transient(exc):
                owed.add(name)
                log.warning("periodic task %s for %s not recorded yet (%s); retrying", name, key, exc)
            else:
                log.exception("periodic task %s for %s cannot be recorded; skipped", name, key)
    if fired:
        ring(huey.bell_target)
    return owed


def _same(task: Any) -> Any:
    return task
