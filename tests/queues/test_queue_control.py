"""Pause, resume and purge through the real CLI, against real consumer processes."""

from __future__ import annotations

import time

from tests.conftest import Project, wait_for

TASKS = """
import os, time
from litequeue import LiteQueue

app = LiteQueue("ctl")

@app.task(queue="mail")
def send(n):
    return n

@app.task(queue="other")
def ping():
    return "pong"

@app.task(queue="mail")
def hold(path):
    while not os.path.exists(path):
        time.sleep(0.02)
    return "held"
"""


def enqueue(project: Project, code: str) -> None:
    project.python("import tasks\n" + code)


def status_of(project: Project, task: str) -> dict[str, int]:
    return dict(project.query("SELECT status, COUNT(*) FROM lq_job WHERE task = ? GROUP BY status", (task,)))


def test_paused_queue_runs_nothing_until_resumed(project: Project) -> None:
    project.write("tasks.py", TASKS)
    enqueue(project, "pass")  # creates the database
    out = project.cli("pause", "mail").stdout
    assert "paused mail until" in out
    project.start_consumer("tasks", "-w", "2")
    wait_for(lambda: project.query("SELECT 1 FROM lq_consumer WHERE status = 'running'"), what="consumer up")
    enqueue(project, "for i in range(3): tasks.send(i)\ntasks.ping()")
    # The other queue's job proves the consumer is taking jobs while mail waits.
    wait_for(lambda: status_of(project, "ping").get("succeeded") == 1, what="ping ran")
    project.wait_status("succeeded", 1)
    assert status_of(project, "send") == {"queued": 3}
    status = project.cli_json("status", "--json")
    assert status["queues"]["mail"]["paused"] is True
    assert "resumed mail" in project.cli("resume", "mail").stdout
    wait_for(lambda: status_of(project, "send").get("succeeded") == 3, what="mail jobs ran after resume")
    events = [r[0] for r in project.query("SELECT action FROM lq_event WHERE queue = 'mail' ORDER BY id")]
    assert events == ["pause", "resume"]
    assert "other was not paused" in project.cli("resume", "other").stdout


def test_pause_for_a_while_resumes_by_itself(project: Project) -> None:
    project.write("tasks.py", TASKS)
    enqueue(project, "pass")
    project.start_consumer("tasks", "-w", "2")
    wait_for(lambda: project.query("SELECT 1 FROM lq_consumer WHERE status = 'running'"), what="consumer up")
    paused_at = time.time()
    out = project.cli("pause", "mail", "--for", "2s").stdout
    assert "for 2s (until" in out
    until = project.query("SELECT paused_until FROM lq_queue_state WHERE queue = 'mail'")[0][0]
    assert paused_at + 2 <= until <= time.time() + 2
    # The consumer reads pauses once a second: let it see this one (the pause shows in its log).
    wait_for(lambda: "paused queues: mail" in (project.root / "consumer-0.log").read_text(),
             what="consumer saw the pause")
    enqueue(project, "for i in range(3): tasks.send(i)\ntasks.ping()")
    wait_for(lambda: status_of(project, "ping").get("succeeded") == 1, what="ping ran")
    wait_for(lambda: status_of(project, "send").get("succeeded") == 3, timeout=15,
             what="mail jobs ran once the pause ended")
    started = [r[0] for r in project.query("SELECT started_at FROM lq_job WHERE task = 'send'")]
    assert min(started) >= until, "a job of the paused queue started before the pause ended"
    assert project.cli_json("status", "--json")["queues"].get("mail", {}).get("paused") in (None, False)


def test_bad_duration_is_a_one_line_error(project: Project) -> None:
    project.write("tasks.py", TASKS)
    enqueue(project, "pass")
    for bad in ("10x", "soon", "-5m", "0s"):
        proc = project.cli("pause", "mail", "--for", bad, check=False)
        assert proc.returncode == 2, proc.stderr
        errors = [line for line in proc.stderr.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1 and "--for" in errors[0], proc.stderr
        assert "Traceback" not in proc.stderr
    assert project.query("SELECT COUNT(*) FROM lq_queue_state")[0][0] == 0


def test_purge_drops_only_queued_jobs(project: Project) -> None:
    project.write("tasks.py", TASKS)
    hold = project.root / "release"
    enqueue(project, f"tasks.hold({str(hold)!r})")
    project.start_consumer("tasks", "-w", "1", "-Q", "mail")
    wait_for(lambda: status_of(project, "hold").get("running") == 1, what="hold running")
    enqueue(project, "for i in range(5): tasks.send(i)\n"
                     "tasks.send.schedule((99,), delay=3600)\ntasks.ping()")
    dry = project.cli("purge", "mail", "--dry-run").stdout
    assert "mail: 5 queued job(s) would be dropped" in dry
    declined = project.cli("purge", "mail", check=False, input="n\n")
    assert declined.returncode == 1 and "Drop 5 queued job(s)" in declined.stderr
    assert status_of(project, "send") == {"queued": 5, "scheduled": 1}
    out = project.cli("purge", "mail", "other", "-y")
    assert "mail: dropped 5 queued job(s)" in out.stdout and "other: dropped 1" in out.stdout
    assert "purge: 6/6 (100%)" in out.stderr
    assert status_of(project, "send") == {"cancelled": 5, "scheduled": 1}
    errors = {r[0] for r in project.query("SELECT error FROM lq_job WHERE status = 'cancelled'")}
    assert errors == {"purged"}
    assert status_of(project, "hold") == {"running": 1}, "purge must not touch a running job"
    hold.write_text("go")
    wait_for(lambda: status_of(project, "hold").get("succeeded") == 1, what="held job finished")
    detail = project.query("SELECT queue, detail FROM lq_event WHERE action = 'purge' ORDER BY id")
    assert detail == [("mail", "5 job(s)"), ("other", "1 job(s)")]
    again = project.cli("purge", "mail", "-y").stdout
    assert "mail: 0 queued job(s)" in again
