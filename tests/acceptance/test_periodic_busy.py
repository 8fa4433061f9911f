"""Issue 11, bug 3, end to end: a real consumer whose periodic slot comes while another
process holds the SQLite write lock past the busy timeout still fires that slot, once.
Takes up to about 70 s (it waits for the end of a minute)."""

from __future__ import annotations

import datetime as dt
import signal
import sqlite3
import time

import pytest

from tests.conftest import Project, wait_for

TASKS = """
import os
from litequeue import LiteQueue, crontab

app = LiteQueue("pbusy")

@app.periodic_task(crontab(minute="*"))
def tick():
    fd = os.open(os.environ["SIDE_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, b"tick\\n")
    os.close(fd)
"""


def slot_of(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M")


@pytest.mark.slow
@pytest.mark.clock
def test_a_slot_that_comes_while_the_database_is_locked_fires_once(project: Project) -> None:
    project.write("tasks.py", TASKS)
    side = project.root / "side.log"
    project.extra_env.update(LITEQUEUE_BUSY_TIMEOUT="1", SIDE_LOG=str(side))
    consumer = project.start_consumer("tasks", "-w", "2")
    wait_for(lambda: project.query("SELECT slot FROM lq_periodic_run"), 30, what="the first periodic run")

    # Take the write lock 3 s before the next minute and keep it 8 s into it (far past the
    # 1 s busy timeout; the consumer's threads take turns at it): the slot's first attempts
    # meet "database is locked".
    now = dt.datetime.now(dt.UTC)
    boundary = now.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    if (boundary - now).total_seconds() < 4:
        boundary += dt.timedelta(minutes=1)
    time.sleep((boundary - now).total_seconds() - 3)
    locker = sqlite3.connect(project.db, isolation_level=None, timeout=30)
    locker.execute("BEGIN IMMEDIATE")
    time.sleep(max(0.0, (boundary - dt.datetime.now(dt.UTC)).total_seconds() + 8))
    locker.execute("ROLLBACK")
    locker.close()

    slot = slot_of(boundary)
    run = wait_for(lambda: project.query("SELECT job_id FROM lq_periodic_run WHERE slot = ?", (slot,)), 20,
                   what=f"the periodic run of slot {slot}")
    wait_for(lambda: project.query("SELECT status FROM lq_job WHERE id = ?", (run[0][0],)) == [("succeeded",)],
             20, what="the slot's job to succeed")
    log = (project.root / "consumer-0.log").read_text()
    assert "not recorded yet" in log, "the lock never got in the slot's way: the test proved nothing"
    consumer.send_signal(signal.SIGTERM)
    assert consumer.wait(30) == 0
    runs = project.query("SELECT slot, COUNT(*) FROM lq_periodic_run GROUP BY slot ORDER BY slot")
    assert all(n == 1 for _, n in runs) and slot in [s for s, _ in runs]
    assert len(side.read_text().split()) == len(runs), "a slot's job ran twice or not at all"
