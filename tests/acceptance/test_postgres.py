"""The same code on PostgreSQL: consumers (as on many hosts) share one database."""

from __future__ import annotations

import os
import signal

from tests.conftest import Project, wait_for

TASKS = """
import os, time
from litequeue import LiteQueue
app = LiteQueue("pgshop")

@app.task()
def log_run(n):
    if n == -1:
        time.sleep(30)
    fd = os.open(os.environ["SIDE_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, f"{n}\\n".encode())
    os.close(fd)
"""


def test_two_consumers_on_postgres_share_the_work_and_recover_a_dead_one(project: Project, pg_url: str):
    project.write("tasks.py", TASKS)
    log = project.root / "side.log"
    project.extra_env.update(LITEQUEUE_DB=pg_url, SIDE_LOG=str(log))
    project.python("import tasks; tasks.log_run.map(range(300)); tasks.log_run(-1)")
    first = project.start_consumer("tasks", "-w", "4", "--shutdown-timeout", "1")
    second = project.start_consumer("tasks", "-w", "4", "--shutdown-timeout", "1")

    def ledger(status: str) -> int:
        proc = project.cli("jobs", "list", "--status", status, "--limit", "1000", "--json")
        import json

        return len(json.loads(proc.stdout))

    wait_for(lambda: ledger("succeeded") == 300, 60, what="300 jobs on PostgreSQL")
    runs = log.read_text().split()
    assert sorted(map(int, runs)) == list(range(300))
    # The sleeping job runs on one of them: kill that one; the other takes the job back.
    running = project.cli_json("jobs", "list", "--status", "running", "--json")
    assert len(running) == 1
    victim = first if str(first.pid) in running[0]["worker"] else second
    survivor = second if victim is first else first
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait(10)
    job_id = running[0]["id"]
    wait_for(lambda: project.cli_json("jobs", "show", job_id, "--json")["attempts"] == 2, 20,
             what="the dead consumer's job to be taken back")
    job = project.cli_json("jobs", "show", job_id, "--json")
    assert job["attempt_list"][0]["outcome"] == "interrupted"
    survivor.terminate()
    assert survivor.wait(30) == 0
    # Stopped with the job unfinished: it went back to the queue, not lost.
    assert project.cli_json("jobs", "show", job_id, "--json")["status"] == "queued"
