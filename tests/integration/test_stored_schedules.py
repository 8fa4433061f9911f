"""Schedules stored in the database fire through the scheduler's slot mechanism: once per
slot however many consumers try, on their zone's wall clock, never while paused; on SQLite
and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from litequeue import schedules
from litequeue.base.errors import ConfigurationError


def slot(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)  # naive UTC, as Huey hands slots over


def declare(app: Any) -> None:
    @app.task(queue="reports")
    def report(kind: str, n: int = 0) -> str:
        return kind


def test_a_stored_schedule_fires_once_per_slot_on_its_zone_clock(make_app: Callable[..., Any]) -> None:
    first = make_app("sched")
    declare(first)
    schedules.add(first, "berlin-nine", "0 9 * * *", "report", ["sales"], {"n": 2}, priority=7,
                  timezone="Europe/Berlin")
    schedules.add(first, "every-minute", "* * * * *", "report", ["tick"])
    # A second consumer of the same app on the same database (another process, another host).
    second = make_app("sched", db=first.db_target)
    declare(second)

    assert sorted(first.fire_periodic(slot("2026-01-15T08:00"))) == ["schedule:berlin-nine", "schedule:every-minute"]
    assert second.fire_periodic(slot("2026-01-15T08:00")) == []  # that slot fired already
    assert first.fire_periodic(slot("2026-01-15T09:00")) == ["schedule:every-minute"]  # 10:00 in Berlin
    assert second.fire_periodic(slot("2026-07-15T07:00")) == ["schedule:berlin-nine", "schedule:every-minute"]

    assert schedules.set_enabled(second.storage, "every-minute", False) is True
    assert schedules.set_enabled(second.storage, "every-minute", False) is False
    assert first.fire_periodic(slot("2026-07-15T07:01")) == []
    schedules.set_enabled(first.storage, "every-minute", True)
    assert first.fire_periodic(slot("2026-07-15T07:02")) == ["schedule:every-minute"]
    schedules.remove(first.storage, "every-minute")
    assert first.fire_periodic(slot("2026-07-15T07:03")) == []

    rows = first.storage.sql("SELECT j.task, j.queue, j.priority, j.args, j.kwargs, j.status FROM lq_periodic_run r "
                             "JOIN lq_job j ON j.id = r.job_id WHERE r.task = 'schedule:berlin-nine'").fetchall()
    assert len(rows) == 2
    assert all(tuple(r[:3]) == ("report", "reports", 7) and r[5] == "queued" for r in rows)
    listed = {s["name"]: s for s in schedules.listing(first.storage.database, first)}
    assert listed["berlin-nine"]["last_run"]["slot"] == "2026-07-15T07:00"
    assert listed["berlin-nine"]["last_run"]["runs"] == 2


def test_a_schedule_whose_task_is_gone_skips_alone(make_app: Callable[..., Any]) -> None:
    app = make_app("gone")
    declare(app)

    @app.task()
    def other() -> None:
        pass

    schedules.add(app, "a-gone", "* * * * *", "other")
    schedules.add(app, "b-kept", "* * * * *", "report", ["x"])
    # The code no longer has the task (a deploy renamed it): the schedule is logged, not fired.
    app.storage.sql("UPDATE lq_periodic_schedule SET task = 'tasks.renamed' WHERE name = 'a-gone'")
    assert app.fire_periodic(slot("2026-01-15T08:00")) == ["schedule:b-kept"]


def test_nothing_is_stored_on_a_mistake(make_app: Callable[..., Any]) -> None:
    app = make_app("bad")
    declare(app)
    for kwargs in ({"cron": "0 9 * *"}, {"timezone": "Nowhere/City"}, {"task": "nope"}, {"name": "two words"},
                   {"args": {"not": "a list"}}, {"kwargs": {"when": dt.date(2026, 1, 1)}}):
        call = {"name": "nightly", "cron": "0 2 * * *", "task": "report", **kwargs}
        with pytest.raises(ConfigurationError):
            schedules.add(app, call.pop("name"), call.pop("cron"), call.pop("task"), **call)
    assert schedules.listing(app.storage.database) == []
    schedules.add(app, "nightly", "0 2 * * *", "report", ["x"])
    with pytest.raises(ConfigurationError, match="a schedule named 'nightly' exists"):
        schedules.add(app, "nightly", "0 3 * * *", "report", ["y"])
    assert [s["cron"] for s in schedules.listing(app.storage.database)] == ["0 2 * * *"]
