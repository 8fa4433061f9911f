"""Schedules kept in the database: added, paused, resumed, removed and run while consumers
run, beside the ``@periodic_task`` schedules in code.

A stored schedule fires through the same door as a code one: the consumer's scheduler
(:func:`litequeue.runtime.periodic.fire_slot`) asks :func:`due` for the schedules due in a minute
and records each run under the unique key (``schedule:NAME``, minute) in
``lq_periodic_run`` before its job is enqueued, in one transaction, so however many
consumers run, a slot fires once. The scheduler reads the table afresh for every minute it
fires, so a change made by any process counts from the next minute on; every change still
rings the doorbell. Writes go through :mod:`litequeue.jobs.consumers`, reads through
:mod:`litequeue.ledger.queries`.

This module owns the changes and the listing; what firing needs (:func:`due`,
:func:`build_task`, :func:`run_key`, :func:`cron_of`) is the runtime's
(:mod:`litequeue.runtime.periodic`) and is re-exported here.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
import time
from typing import TYPE_CHECKING, Any

import peewee as pw
from huey.api import PeriodicTask

from litequeue.base import cron
from litequeue.base.cron import parse
from litequeue.base.errors import ConfigurationError, LiteQueueError, UnknownTaskError
from litequeue.engine import huey_compat
from litequeue.engine.job_rows import job_row
from litequeue.engine.storage import LiteStorage
from litequeue.jobs import consumers
from litequeue.jobs.rows import record_event
from litequeue.ledger import queries
from litequeue.runtime.periodic import ALL_STORED, KEY_PREFIX, build_task, cron_of, due, run_key
from litequeue.store.doorbell import bell_target, ring

if TYPE_CHECKING:
    from litequeue.app import LiteQueue

__all__ = ["ALL_STORED", "KEY_PREFIX", "NAME", "ScheduleNotFoundError", "add", "build_task", "code_next_run",
           "code_schedules", "cron_of", "due", "listing", "remove", "run_key", "run_now", "set_enabled"]

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/-]{0,199}")


class ScheduleNotFoundError(LiteQueueError):
    """No stored schedule has that name."""


def _bell(store: LiteStorage) -> None:
    ring(bell_target(store.database.database, store.database))


# -- changes -------------------------------------------------------------------------------

def add(lq: LiteQueue, name: str, cron: str, task: str, args: Any = (), kwargs: Any = None, *,
        queue: str | None = None, priority: int | None = None, timezone: str = "UTC",
        actor: str = "cli") -> dict[str, Any]:
    """Store a schedule of ``lq``'s ``task`` (checked against its registry). A bad name, cron
    expression, time zone, task, queue or argument raises :class:`ConfigurationError` and
    stores nothing; so does a name already taken. Returns the stored row."""
    if not NAME.fullmatch(name or ""):
        raise ConfigurationError(f"bad schedule name {name!r}: use letters, digits and . _ - : @ / "
                                 "(at most 200, starting with a letter or digit)")
    parsed = parse(cron, timezone)
    try:
        cls = lq.find_task(task)
    except UnknownTaskError as exc:
        raise ConfigurationError(str(exc)) from None
    if name in code_schedules(lq):
        raise ConfigurationError(f"{name!r} is a schedule defined in code (@periodic_task); pick another name")
    if queue is not None and (not queue or "," in queue):
        raise ConfigurationError(f"queue must be a non-empty name without commas, not {queue!r}")
    kwargs = {} if kwargs is None else kwargs
    if not isinstance(args, (list, tuple)) or not isinstance(kwargs, dict):
        raise ConfigurationError("args must be a list and kwargs an object (dict)")
    try:
        args_json, kwargs_json = json.dumps(list(args)), json.dumps(kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"schedule arguments must be JSON values: {exc}") from None
    row = {"name": name, "app": lq.name, "task": huey_compat.registry(lq).task_to_string(cls),
           "cron": parsed.expression, "timezone": timezone, "args": args_json, "kwargs": kwargs_json,
           "queue": queue, "priority": priority}
    store = lq.storage
    with store.write():
        if not consumers.add_schedule(store, row, time.time()):
            raise ConfigurationError(f"a schedule named {name!r} exists; "
                                     f"`litequeue schedules remove {name}` first to replace it")
        record_event(store, "schedule-add", detail=f"{name}: {parsed.expression} "
                     f"({timezone}) -> {row['task']}", actor=actor)
    _bell(store)
    return row


def set_enabled(store: LiteStorage, name: str, enabled: bool, actor: str = "cli") -> bool:
    """Pause or resume the stored schedule ``name``; False if it already was. A pause
    takes effect from the next minute a consumer fires (a run already enqueued stays)."""
    with store.write():
        changed = consumers.set_schedule_enabled(store, name, enabled, time.time())
        if changed:
            record_event(store, "schedule-resume" if enabled else "schedule-pause",
                         detail=name, actor=actor)
        elif not _exists(store.database, name):
            raise ScheduleNotFoundError(_missing(name))
    if changed:
        _bell(store)
    return changed


def remove(store: LiteStorage, name: str, actor: str = "cli") -> None:
    """Delete the stored schedule ``name`` (its past runs stay in the ledger)."""
    with store.write():
        if not consumers.remove_schedule(store, name):
            raise ScheduleNotFoundError(_missing(name))
        record_event(store, "schedule-remove", detail=name, actor=actor)
    _bell(store)


def run_now(lq: LiteQueue, name: str, store: LiteStorage | None = None, actor: str = "cli") -> str:
    """Enqueue one run of the schedule ``name`` (stored, or a code schedule's task name) now,
    paused or not, through ``store`` (default: the app's); returns the job id. The run is
    recorded as the schedule's last run."""
    store = lq.storage if store is None else store
    row = next((r for r in queries.schedules(store.database) if r["name"] == name), None)
    if row is not None:
        task, key = build_task(lq, row), run_key(name)
    else:
        code = code_schedules(lq)
        cls = code.get(name) or next((c for c in code.values() if c.__name__ == name), None)
        if cls is None:
            raise ScheduleNotFoundError(_missing(name, code=True))
        task, key = cls(), huey_compat.registry(lq).task_to_string(cls)
    slot = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    # A store opened without the app (the status page's) names the app the consumers serve.
    if not store.fire_periodic(key, slot, job_row(lq, task, None), app=lq.name):
        raise LiteQueueError(f"schedule {name!r} was already run at {slot}; try again in a second")
    with store.write():
        record_event(store, "schedule-run", job_id=task.id, detail=name, actor=actor)
    _bell(store)
    return str(task.id)


def _exists(db: pw.Database, name: str) -> bool:
    return any(r["name"] == name for r in queries.schedules(db))


def _missing(name: str, code: bool = False) -> str:
    where = "stored or in code" if code else "in the database (schedules in code, @periodic_task, are read-only)"
    return f"no schedule named {name!r} {where}; `litequeue schedules list` shows them"


# -- listing -------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1024)
def _next_run(expression: str, timezone: str, minute: int, horizon: int) -> float | None:
    # The same all minute long: a page reloaded every few seconds scans each schedule once
    # a minute (a rare one costs up to 31 days of minutes).
    return cron_of(expression, timezone).next_after(minute * 60.0, horizon)


def code_schedules(lq: LiteQueue) -> dict[str, type[PeriodicTask]]:
    """``@periodic_task`` tasks of ``lq`` by qualified name."""
    return {name: cls for name, cls in huey_compat.task_classes(lq).items()
            if isinstance(cls, type) and issubclass(cls, PeriodicTask)}


def code_cron(cls: type[PeriodicTask]) -> str | None:
    """The cron expression of a code schedule made with ``crontab(...)`` (read back from the
    values Huey's crontab keeps), or None for a hand-written ``validate_datetime``."""
    fn = getattr(cls.validate_datetime, "__func__", cls.validate_datetime)
    for cell in getattr(fn, "__closure__", None) or ():
        value = cell.cell_contents
        if isinstance(value, list) and len(value) == 5 and all(isinstance(v, list) for v in value):
            return cron.describe(value)
    return None


def code_next_run(cls: type[PeriodicTask], now: float, horizon: int) -> float | None:
    """The first minute after ``now`` that a code schedule accepts (Huey passes naive UTC)."""
    task = cls()
    start = dt.datetime.fromtimestamp(now, dt.UTC).replace(tzinfo=None, second=0, microsecond=0)
    for step in range(1, horizon + 1):
        moment = start + dt.timedelta(minutes=step)
        if task.validate_datetime(moment):
            return moment.replace(tzinfo=dt.UTC).timestamp()
    return None


def listing(db: pw.Database, lq: LiteQueue | None = None, now: float | None = None,
            horizon: int = 31 * 24 * 60) -> list[dict[str, Any]]:
    """Every schedule: the stored ones and, given the app, its code ones (``read_only``),
    with next run (ISO UTC, or None: paused or not within ``horizon`` minutes) and last run."""
    now = time.time() if now is None else now
    last = queries.periodic_last_runs(db)
    out = []
    for row in queries.schedules(db):
        try:
            nxt = _next_run(row["cron"], row["timezone"], int(now // 60), horizon) if row["enabled"] else None
        except ConfigurationError:
            nxt = None  # the scheduler logs why it skips it
        out.append({"name": row["name"], "kind": "stored", "read_only": False, "enabled": row["enabled"],
                    "task": row["task"], "cron": row["cron"], "timezone": row["timezone"],
                    "args": row["args"], "kwargs": row["kwargs"], "queue": row["queue"],
                    "priority": row["priority"], "app": row["app"], "next_run": queries.iso(nxt),
                    "last_run": last.get(run_key(row["name"]))})
    if lq is not None:
        for name, cls in sorted(code_schedules(lq).items()):
            out.append({"name": name, "kind": "code", "read_only": True, "enabled": True, "task": name,
                        "cron": code_cron(cls), "timezone": "UTC" if lq.utc else "local", "args": [], "kwargs": {},
                        "queue": getattr(cls, "queue", None), "priority": cls.default_priority,
                        "app": lq.name, "next_run": queries.iso(code_next_run(cls, now, horizon)),
                        "last_run": last.get(name)})
    return out
