"""Bug 2: a live consumer wrongly judged dead must not overwrite the outcome of a job that
was recovered and finished elsewhere, nor write its follow-up rows twice.

Consumer A runs a slow first attempt; its lock file is removed, so consumer B judges A
dead, recovers the job and runs a quick second attempt that succeeds and enqueues the
pipeline's next step. When A's attempt ends, its ack is fenced: dropped and logged."""

from __future__ import annotations

import os
import time

from tests.conftest import Project, wait_for

TASKS = """
import os, time
from litequeue import LiteQueue, current_job

app = LiteQueue("fence")

def log(line):
    with open(os.environ["SIDE_LOG"], "a") as fh:
        fh.write(line + "\\n")

@app.task()
def slow():
    attempt = current_job().attempt
    log(f"slow attempt {attempt} pid {os.getpid()}")
    time.sleep(4.0 if attempt == 1 else 0.2)
    log(f"slow attempt {attempt} done")
    return attempt

@app.task()
def after(value):
    log(f"after {value}")
"""


def test_a_consumer_presumed_dead_cannot_ack(project: Project):
    project.write("tasks.py", TASKS)
    side = project.root / "side.log"
    project.extra_env["SIDE_LOG"] = str(side)
    project.python("import tasks; tasks.app.enqueue(tasks.slow.s().then(tasks.after))")
    a = project.start_consumer("tasks:app", "-w", "1", log="a.log")
    wait_for(lambda: side.exists() and "slow attempt 1" in side.read_text(), 20, what="attempt 1 to start")
    (lock_path,) = project.query("SELECT lock_path FROM lq_consumer WHERE pid = ?", (a.pid,))[0]
    os.unlink(lock_path)  # A is alive, but now looks dead to everyone else
    project.start_consumer("tasks:app", "-w", "1", log="b.log")
    wait_for(lambda: "after 2" in side.read_text(), 20, what="B to finish the job and its next step")
    wait_for(lambda: "slow attempt 1 done" in side.read_text(), 20, what="A's stale attempt to end")
    time.sleep(2.0)  # whatever A's ack would write, and run, has happened by now
    lines = side.read_text().split("\n")
    assert lines.count("after 2") == 1 and "after 1" not in lines  # the next step ran once
    assert "claim was taken over" in (project.root / "a.log").read_text()
    jobs = dict(project.query("SELECT task, status FROM lq_job"))
    assert jobs == {"slow": "succeeded", "after": "succeeded"}
    outcomes = [r[0] for r in project.query("SELECT outcome FROM lq_attempt a JOIN lq_job j ON j.id = a.job_id "
                                            "WHERE j.task = 'slow' ORDER BY number")]
    assert outcomes == ["interrupted", "succeeded"]
    assert project.query("SELECT COUNT(*) FROM lq_ready")[0][0] == 0
    assert a.poll() is None  # A carries on
