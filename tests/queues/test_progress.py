"""Progress: a task's reports reach ``litequeue jobs show``; long CLI operations show a bar
on a terminal (a real pseudo-terminal here) and plain lines otherwise."""

from __future__ import annotations

import io
import os
import pty
import subprocess
import sys

from litequeue.cli.progress import progress
from tests.conftest import Project, wait_for

TASKS = """
import os, time
from litequeue import LiteQueue, current_job

app = LiteQueue("prog")

@app.task()
def steps(n, gate=None):
    job = current_job()
    # Reports closer than 0.5 s apart are thinned out (the last one always lands): report
    # half way once, then hold there so a reader can look.
    job.progress(n // 2, n, f"step {n // 2}")
    while gate and not os.path.exists(gate):
        time.sleep(0.02)
    for i in range(n // 2 + 1, n + 1):
        job.progress(i, n, f"step {i}")
    return n

@app.task()
def ok(n):
    return n
"""


def test_task_progress_reaches_jobs_show(project: Project) -> None:
    project.write("tasks.py", TASKS)
    gate = project.root / "gate"
    job_id = project.python(f"import tasks\nprint(tasks.steps(10, {str(gate)!r}).id)").stdout.strip()
    project.start_consumer("tasks", "-w", "1")

    def half() -> dict | None:
        job = project.cli_json("jobs", "show", job_id, "--json")
        return job if (job.get("progress") or {}).get("done") == 5 else None

    job = wait_for(half, what="progress 5/10 in the ledger")
    p = job["progress"]
    assert job["status"] == "running"
    assert (p["done"], p["total"], p["percent"], p["message"]) == (5, 10, 50.0, "step 5")
    assert p["eta_seconds"] >= 0
    text = project.cli("jobs", "show", job_id).stdout
    assert "progress:" in text and "5/10 (50.0%)" in text and "step 5" in text
    gate.write_text("go")
    project.wait_status("succeeded", 1)
    p = project.cli_json("jobs", "show", job_id, "--json")["progress"]
    assert (p["done"], p["total"], p["percent"], p["message"]) == (10, 10, 100.0, "step 10")


def test_plain_lines_when_not_a_terminal() -> None:
    out = io.StringIO()
    with progress("prune", 3000, file=out, interval=3600) as report:
        for done in range(0, 3001, 500):
            report(done)
    # A long interval: the first line and the last one only.
    assert out.getvalue().splitlines() == ["prune: 0/3000 (0%)", "prune: 3000/3000 (100%)"]
    out = io.StringIO()
    with progress("retry", None, file=out, interval=0) as report:
        report(10)
        report(20, 40)
        report(20, 40)
    assert out.getvalue().splitlines() == ["retry: 10", "retry: 20/40 (50%)"]
    out = io.StringIO()
    with progress("empty", 0, file=out) as report:
        report(0, 0)
    assert out.getvalue() == ""


def test_bar_on_a_terminal(project: Project) -> None:
    project.write("tasks.py", TASKS)
    project.python("import tasks\ntasks.app.enqueue_many([tasks.ok.s(i) for i in range(600)])")
    project.cli("run-consumer", "tasks", "--burst", "-w", "2")
    primary, secondary = pty.openpty()
    try:
        proc = subprocess.run([sys.executable, "-m", "litequeue", "prune", "--older-than", "0s",
                               "--batch", "100"], cwd=project.root, env=project.env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=secondary, timeout=60)
        os.close(secondary)
        secondary = -1
        chunks = []
        while True:
            try:
                data = os.read(primary, 65536)
            except OSError:  # EIO: the terminal's other side is closed and drained
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(primary)
        if secondary != -1:
            os.close(secondary)
    screen = b"".join(chunks).decode()
    assert proc.returncode == 0
    assert "deleted 600 job(s)" in proc.stdout.decode()
    assert "prune" in screen and "#" in screen and "600/600" in screen, screen
    assert "prune: 600/600 (100%)" not in screen, "plain lines on a terminal"
