"""Issue 11, bug 3: a periodic slot whose record meets a busy (or failing) database is not
lost: it fires, once, when the database lets it; one task failing skips no other task."""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from pathlib import Path

from huey import crontab

from litequeue import LiteQueue
from litequeue.runtime.scheduler import LiteScheduler


def utc_minute() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, second=0, microsecond=0)


def minutes(first: dt.datetime, last: dt.datetime) -> list[str]:
    out = []
    while first <= last:
        out.append(first.strftime("%Y-%m-%dT%H:%M"))
        first += dt.timedelta(minutes=1)
    return out


def make(tmp_path: Path) -> tuple[LiteQueue, LiteScheduler]:
    app = LiteQueue("per", db=tmp_path / "lq.db", busy_timeout=0.1, durability="fast")

    @app.periodic_task(crontab(minute="*"), name="tick")
    def tick() -> None:
        pass

    @app.periodic_task(crontab(minute="*"), name="tock")
    def tock() -> None:
        pass

    stop = threading.Event()
    stop.set()  # a pass returns at once instead of sleeping until the next one
    return app, LiteScheduler(app, stop, None, True)


def runs(app: LiteQueue) -> list[tuple[str, str]]:
    rows = app.storage.sql("SELECT task, slot FROM lq_periodic_run").fetchall()
    return sorted((task.rsplit(".", 1)[-1], slot) for task, slot in rows)


def test_a_slot_met_by_a_locked_database_fires_once_the_lock_is_gone(tmp_path: Path) -> None:
    app, scheduler = make(tmp_path)
    locker = sqlite3.connect(tmp_path / "lq.db", isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")  # another process holds the write lock past the busy timeout
    first = utc_minute()
    scheduler.loop()
    scheduler.loop()
    assert runs(app) == []
    locker.execute("ROLLBACK")
    scheduler.loop()
    scheduler.loop()  # a later pass in the same minute fires nothing twice
    last = utc_minute()
    expected = sorted((task, slot) for slot in minutes(first, last) for task in ("tick", "tock"))
    assert runs(app) == expected
    assert app.storage.sql("SELECT COUNT(*) FROM lq_ready").fetchone()[0] == len(expected)
    app.storage.close()


def test_one_task_failing_to_record_skips_no_other_task(tmp_path: Path) -> None:
    app, scheduler = make(tmp_path)
    # A real error of the database for one task's record only (a trigger failing at run
    # time for that task), then fixed.
    app.storage.sql("CREATE TRIGGER broken BEFORE INSERT ON lq_periodic_run WHEN NEW.task LIKE '%.tick' "
                    "BEGIN SELECT abs(-9223372036854775807 - 1); END")
    first = utc_minute()
    scheduler.loop()
    assert ("tock", first.strftime("%Y-%m-%dT%H:%M")) in runs(app), "tick's failure skipped tock"
    assert [r for r in runs(app) if r[0] == "tick"] == []
    app.storage.sql("DROP TRIGGER broken")
    scheduler.loop()
    last = utc_minute()
    expected = sorted((task, slot) for slot in minutes(first, last) for task in ("tick", "tock"))
    assert runs(app) == expected
    app.storage.close()


def test_slots_owed_across_a_minute_boundary_fire_once_each(tmp_path: Path) -> None:
    app, scheduler = make(tmp_path)
    t0 = dt.datetime(2030, 1, 1, 10, 5, 58)
    locker = sqlite3.connect(tmp_path / "lq.db", isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")
    scheduler.fire_periodic(t0)
    scheduler.fire_periodic(t0 + dt.timedelta(seconds=4))  # the next minute, still locked
    assert runs(app) == []
    locker.execute("ROLLBACK")
    scheduler.fire_periodic(t0 + dt.timedelta(seconds=6))
    scheduler.fire_periodic(t0 + dt.timedelta(seconds=30))
    assert runs(app) == [("tick", "2030-01-01T10:05"), ("tick", "2030-01-01T10:06"),
                         ("tock", "2030-01-01T10:05"), ("tock", "2030-01-01T10:06")]
    assert scheduler.owed == {}
    app.storage.close()
