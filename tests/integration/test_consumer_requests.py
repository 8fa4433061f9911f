"""Quiet and Stop asked of a real consumer process through its registry row: quiet finishes
the running job and claims nothing new; stop ends the process gracefully, as SIGTERM does."""

from __future__ import annotations

import time

from litequeue.engine.storage import open_store
from litequeue.jobs import actions
from tests.conftest import Project, wait_for

TASKS = """
import os, time
from litequeue import LiteQueue

app = LiteQueue("shop")
HERE = os.path.dirname(os.path.abspath(__file__))

@app.task()
def slow(n):
    while not os.path.exists(os.path.join(HERE, f"go-{n}")):
        time.sleep(0.02)
    return n
"""


def consumer_id(project: Project) -> str:
    wait_for(lambda: project.query("SELECT id FROM lq_consumer WHERE status = 'running'"), 30, what="a consumer")
    return project.query("SELECT id FROM lq_consumer WHERE status = 'running'")[0][0]


def ask(project: Project, cid: str, what: str) -> list[str]:
    store = open_store(str(project.db))
    try:
        return actions.ask_consumers(store, [cid], what, actor="test")
    finally:
        store.database.close()


def test_quiet_finishes_the_running_job_and_takes_no_new_one(project: Project) -> None:
    project.write("tasks.py", TASKS)
    project.python("from tasks import slow\nslow(1)")
    proc = project.start_consumer("tasks", "-w", "2")
    cid = consumer_id(project)
    project.wait_status("running", 1)
    assert ask(project, cid, "quiet") == [cid]
    asked = time.monotonic()
    wait_for(lambda: project.query("SELECT obeyed FROM lq_consumer WHERE id = ?", (cid,)) == [("quiet",)], 5,
             what="the consumer obeying quiet")
    assert time.monotonic() - asked < 2.5  # a supervisor pass is one second
    project.python("from tasks import slow\nslow(2)")
    (project.root / "go-1").write_text("")
    project.wait_status("succeeded", 1)
    time.sleep(1.5)  # an observation window: a quiet consumer must not take job 2
    assert project.statuses().get("queued") == 1
    assert proc.poll() is None  # quiet is not stop
    assert ask(project, cid, "quiet") == []  # asked already: nothing new recorded
    assert project.query("SELECT action, detail, actor FROM lq_event") == [("quiet", f"consumer {cid}", "test")]


def test_stop_is_a_graceful_stop_within_a_second(project: Project) -> None:
    project.write("tasks.py", TASKS)
    project.python("from tasks import slow\nslow(1)")
    proc = project.start_consumer("tasks", "-w", "1")
    cid = consumer_id(project)
    project.wait_status("running", 1)
    assert ask(project, cid, "stop") == [cid]
    wait_for(lambda: project.query("SELECT status FROM lq_consumer WHERE id = ?", (cid,)) == [("stopping",)], 5,
             what="the consumer stopping")
    assert proc.poll() is None  # graceful: it waits for its running job
    (project.root / "go-1").write_text("")
    assert proc.wait(20) == 0
    assert project.statuses() == {"succeeded": 1}
    assert project.query("SELECT status, obeyed FROM lq_consumer WHERE id = ?", (cid,)) == [("stopped", "stop")]
