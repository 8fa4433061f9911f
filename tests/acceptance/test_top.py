"""``litequeue top``: ``--once`` frames from a real ledger with a real consumer (SQLite and
PostgreSQL), and the live view in a real pseudo-terminal: a job shows up running and then
finishes, ``p`` + ``y`` pauses the queue under the cursor as ``litequeue pause`` does, and
``q`` or Ctrl-C leave the terminal as it was."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest

from tests.conftest import BOTH_BACKENDS, Project, wait_for

TASKS = """
import os
import time

from litequeue import LiteQueue, current_job

app = LiteQueue("shop")


@app.task()
def slow(gate):
    job = current_job()
    job.progress(3, 10, "step 3")
    deadline = time.time() + 60
    while not os.path.exists(gate) and time.time() < deadline:
        time.sleep(0.05)
    job.progress(10, 10, "done")
    return "done"


@app.task()
def boom(x):
    raise ValueError(f"bad {x}\\nsecond line of the error")


@app.task(queue="reports")
def report(n):
    return n


@app.task(queue="mail")
def mail(n):
    return n
"""

ENQUEUE = """
import json, sys
from tasks import boom, mail, report, slow
ids = {}
what = sys.argv[1:] or ["boom", "reports", "mail"]
if "boom" in what:
    ids["boom"] = boom(1).id
if "reports" in what:
    ids["reports"] = [report(i).id for i in range(3)]
if "mail" in what:
    ids["mail"] = mail(1).id
print(json.dumps(ids))
"""


@pytest.fixture
def shop(project: Project) -> Project:
    project.write("tasks.py", TASKS)
    project.write("enqueue.py", ENQUEUE)
    return project


def enqueue(project: Project, *what: str) -> dict:
    proc = subprocess.run([sys.executable, "enqueue.py", *what], cwd=project.root, env=project.env,
                          capture_output=True, text=True, timeout=60, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def enqueue_slow(project: Project, gate: Path) -> str:
    return project.cli("enqueue", "slow", "--args", json.dumps([str(gate)]), "--app", "tasks").stdout.strip()


def top_once(project: Project, columns: int = 80, lines: int = 24) -> list[str]:
    env = dict(project.env, COLUMNS=str(columns), LINES=str(lines))
    proc = subprocess.run([sys.executable, "-m", "litequeue", "top", "--once"], cwd=project.root, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "\x1b" not in proc.stdout, "escape codes in a frame written to a pipe"
    frame = proc.stdout.rstrip("\n").split("\n")
    assert len(frame) <= lines and max(map(len, frame)) <= columns, proc.stdout
    return frame


def row(frame: list[str], start: str) -> list[str]:
    found = [line for line in frame if line.startswith(start)]
    assert found, f"no line starting {start!r} in:\n" + "\n".join(frame)
    return found[0].split()


def progress_of(project: Project, job_id: str) -> float | None:
    rows = project.query("SELECT progress_done FROM lq_job WHERE id = ?", (job_id,))
    return rows[0][0] if rows else None


@BOTH_BACKENDS
def test_once_shows_queued_running_paused_and_failed_jobs(shop: Project) -> None:
    shop.cli("pause", "mail")
    ids = enqueue(shop)
    consumer = shop.start_consumer("tasks", "-w", "2", "-Q", "default")
    gate = shop.root / "gate"
    slow_id = enqueue_slow(shop, gate)
    wait_for(lambda: progress_of(shop, slow_id) == 3, 60, what="the slow job to report progress")
    shop.wait_status("failed", 1)
    frame = top_once(shop)
    text = "\n".join(frame)

    assert row(frame, "default")[1:7] == ["0", "0", "1", "0", "1", "2"]  # queued sched run retry fail in/m
    assert row(frame, "default")[7] == "1"  # out/m: the failed job
    assert row(frame, "mail")[1] == "1" and row(frame, "mail")[-1] == "paused"
    assert row(frame, "reports")[1] == "3" and row(frame, "reports")[-1] != "paused"
    assert "RUNNING 1" in text
    running = row(frame, slow_id[-8:])
    assert running[1] == "slow" and running[-2:] == ["███░░░░░░░", "30%"]
    assert f"{socket.gethostname()}:{consumer.pid}".startswith(running[2].rstrip("…"))
    assert "CONSUMERS 1" in text
    host = frame[frame.index("CONSUMERS 1") + 2].split()
    assert host[1:5] == [str(consumer.pid), "1/2", "thread", "default"], frame
    assert socket.gethostname().startswith(host[0].rstrip("…"))
    failure = next(line for line in frame if ids["boom"][-8:] in line)
    assert "boom" in failure and failure.endswith("ValueError: bad 1")
    assert "second line" not in text and "no consumer is running" not in text

    gate.touch()
    shop.wait_status("succeeded", 1)
    frame = top_once(shop)
    assert "no job is running" in frame and row(frame, "default")[3] == "0"


@BOTH_BACKENDS
def test_once_without_a_consumer_says_so(shop: Project) -> None:
    enqueue(shop, "reports")
    frame = top_once(shop)
    assert "no consumer is running" in frame and "no job is running" in frame
    assert row(frame, "reports")[1] == "3"


def test_once_fits_80x24_and_grows_with_the_terminal(shop: Project) -> None:
    shop.python("""
        from tasks import app
        for i in range(30):
            app.enqueue_by_name("report", [i], queue=f"queue-{i:02d}")
    """)
    small = top_once(shop, 80, 24)
    assert "QUEUES 30" in small and any(line.startswith("… ") and "more" in line for line in small)
    large = top_once(shop, 160, 60)
    assert sum(line.startswith("queue-") for line in large) == 30
    assert max(map(len, large)) > 80


def test_once_imports_no_huey_flask_or_engine(shop: Project) -> None:
    enqueue(shop, "reports")
    probe = ("import json, sys, litequeue.cli\n"
             "try:\n    litequeue.cli.main(['top', '--once'], prog_name='litequeue')\nexcept SystemExit:\n    pass\n"
             "heavy = ('huey', 'flask', 'watchdog', 'litequeue.engine', 'litequeue.runtime', 'litequeue.app')\n"
             "print(json.dumps([m for m in heavy if m in sys.modules]))")
    out = shop.python(probe).stdout
    assert "QUEUES 1" in out and json.loads(out.strip().splitlines()[-1]) == []


def spawn_top(project: Project, *args: str) -> tuple[pexpect.spawn, io.StringIO]:
    """``litequeue top`` in an 80x24 pseudo-terminal, between two ``stty -a`` of that terminal."""
    env = {k: v for k, v in project.env.items() if k not in ("COLUMNS", "LINES")}
    env["TERM"] = "xterm-256color"
    # ``trap :`` keeps the shell alive through Ctrl-C (a caught signal is reset for the child).
    script = 'trap : INT; stty -a > stty-before.txt; "$@"; rc=$?; stty -a > stty-after.txt; exit $rc'
    child = pexpect.spawn("sh", ["-c", script, "sh", sys.executable, "-m", "litequeue", "top", *args],
                          cwd=str(project.root), env=env, dimensions=(24, 80), encoding="utf-8", timeout=30)
    log = io.StringIO()
    child.logfile_read = log
    return child, log


def assert_terminal_restored(project: Project, child: pexpect.spawn, log: io.StringIO) -> None:
    child.expect(pexpect.EOF)
    child.close()
    assert (child.exitstatus, child.signalstatus) == (0, None), log.getvalue()[-2000:]
    out = log.getvalue()
    assert out.rindex("\x1b[?1049l") > out.rindex("\x1b[?1049h"), "the alternate screen was not left"
    assert out.rindex("\x1b[?25h") > out.rindex("\x1b[?25l"), "the cursor was not shown again"
    before = (project.root / "stty-before.txt").read_text()
    assert before and (project.root / "stty-after.txt").read_text() == before


def test_live_view_in_a_terminal_pause_and_quit(shop: Project) -> None:
    enqueue(shop, "reports")
    shop.start_consumer("tasks", "-w", "2", "-Q", "default")
    child, log = spawn_top(shop)
    child.expect("CONSUMERS 1")
    gate = shop.root / "gate"
    slow_id = enqueue_slow(shop, gate)
    child.expect(slow_id[-8:])  # running
    child.expect("30%")
    gate.touch()
    child.expect("no job is running")  # it finished
    assert shop.query("SELECT status FROM lq_job WHERE id = ?", (slow_id,)) == [("succeeded",)]

    child.send("\x1b[B")  # queues: default, reports
    child.send("p")
    child.expect(r"Pause queue reports\? \(y/n\)")
    child.send("y")
    child.expect("paused reports")
    assert [bool(p) for (p,) in shop.query("SELECT paused FROM lq_queue_state WHERE queue = 'reports'")] == [True]
    assert shop.query("SELECT action, queue, actor FROM lq_event") == [("pause", "reports", "cli")]
    assert "(paused)" in next(line for line in shop.cli("status").stdout.splitlines() if line.startswith("reports"))

    child.send("p")
    child.expect(r"Resume queue reports\? \(y/n\)")
    child.send("n")
    child.expect("resume of reports not done")
    assert [bool(p) for (p,) in shop.query("SELECT paused FROM lq_queue_state WHERE queue = 'reports'")] == [True]
    child.send("q")
    assert_terminal_restored(shop, child, log)


def test_ctrl_c_quits_and_restores_the_terminal(shop: Project) -> None:
    enqueue(shop, "reports")
    child, log = spawn_top(shop)
    child.expect("no consumer is running")
    child.sendintr()
    assert_terminal_restored(shop, child, log)


def test_without_a_terminal_top_says_to_use_once(shop: Project) -> None:
    enqueue(shop, "reports")
    proc = shop.cli("top", check=False)
    assert proc.returncode == 2 and "--once" in proc.stderr and "Traceback" not in proc.stderr
    assert os.path.exists(shop.db)
