"""``litequeue health`` and ``doctor`` tell the truth about a setup broken for real."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BOTH_BACKENDS, require_service, wait_for

TASKS = """
import time
from litequeue import LiteQueue
app = LiteQueue("health")

@app.task(queue="mail")
def hello(x):
    return x

@app.task(queue="mail")
def slow(seconds):
    time.sleep(seconds)

@app.task(queue="mail")
def bad():
    raise ValueError("broken on purpose")
"""


def health(project, *args: str, prefix: list[str] | None = None) -> tuple[int, dict[str, Any]]:
    proc = subprocess.run([*(prefix or []), sys.executable, "-m", "litequeue", "health", "--json", *args],
                          cwd=project.root, env=project.env, capture_output=True, text=True, timeout=60)
    assert proc.returncode in (0, 1, 2), proc.stderr
    report = json.loads(proc.stdout)
    assert proc.returncode == {"healthy": 0, "degraded": 1, "unhealthy": 2}[report["status"]]
    return proc.returncode, report


def doctor(project, *args: str) -> tuple[int, list[dict[str, str]]]:
    proc = project.cli("doctor", "--json", *args, check=False)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)["findings"]


def live_consumers(project) -> int:
    return project.query("SELECT COUNT(*) FROM lq_consumer WHERE status = 'running'")[0][0]


def reasons(report: dict[str, Any]) -> str:
    return "\n".join(report["reasons"])


@BOTH_BACKENDS
def test_empty_queue_is_healthy_and_text_output(project):
    project.write("tasks.py", TASKS)
    project.python("import tasks; tasks.app.storage")  # creates the database
    project.cli("enqueue", "--app", "tasks", "hello", "--args", "[1]")
    project.cli("run-consumer", "--burst", "tasks")
    code, report = health(project)
    assert code == 0 and report["reasons"] == [] and report["checks"]["database"]["writable"] is True
    proc = project.cli("health")
    assert proc.stdout == "healthy\n"


@BOTH_BACKENDS
def test_no_consumer_then_wrong_consumer_then_stuck_then_killed(project):
    project.write("tasks.py", TASKS)
    project.python("import tasks; tasks.slow(60); tasks.hello(1)")
    code, report = health(project)
    assert code == 2
    assert "queue 'mail': 2 queued job(s) and no live consumer serves it" in reasons(report)
    text = project.cli("health", check=False)
    assert text.returncode == 2 and text.stdout.startswith("unhealthy\n- unhealthy: queue 'mail'")

    other = project.start_consumer("tasks", "-Q", "other")
    wait_for(lambda: live_consumers(project) == 1, what="the 'other' consumer")
    code, report = health(project)
    assert code == 2 and "queue 'mail'" in reasons(report)  # it does not serve 'mail'

    mail = project.start_consumer("tasks", "-Q", "mail", "-w", "1")
    project.wait_status("running", 1)
    code, report = health(project)
    assert code == 0, report  # served; hello waits behind slow, but not for long yet
    code, report = health(project, "--max-queued-age", "0")
    assert code == 1 and "queue 'mail': the oldest queued job has waited" in reasons(report)
    code, report = health(project, "--max-running-age", "0")
    slow_id = project.query("SELECT id FROM lq_job WHERE task = 'slow'")[0][0]
    assert code == 1 and f"job {slow_id} (slow, queue 'mail') has been running for" in reasons(report)

    # a hung consumer: alive (its lock is held) but no heartbeat
    os.killpg(mail.pid, signal.SIGSTOP)
    try:
        wait_for(lambda: "no heartbeat" in reasons(health(project, "--max-heartbeat-age", "1")[1]), 30,
                 what="health to notice the silent consumer")
    finally:
        os.killpg(mail.pid, signal.SIGCONT)

    other.terminate()
    assert other.wait(30) == 0
    os.killpg(mail.pid, signal.SIGKILL)  # dies holding the claim on 'slow'
    mail.wait(10)
    code, report = health(project)
    assert code == 2
    assert "queue 'mail': 1 queued, 1 orphaned job(s) and no live consumer serves it" in reasons(report)

    code, findings = doctor(project, "--db", project.pg_url or str(project.db))
    assert code == 1
    messages = {(f["level"], f["topic"]): f["message"] for f in findings}
    assert "stale consumer" in messages[("warn", "consumers")]
    assert "1 job(s) claimed by" in messages[("fail", "claims")]
    assert "they run again as soon as a consumer starts" in messages[("fail", "claims")]

    # a new consumer recovers the claim, and everything is healthy again once the queue drains
    project.cli("jobs", "cancel", slow_id)
    project.start_consumer("tasks", "-Q", "mail")
    project.wait_status("succeeded", 1)
    wait_for(lambda: health(project)[0] == 0, 30, what="healthy again")


@BOTH_BACKENDS
def test_failure_rate(project):
    project.write("tasks.py", TASKS)
    project.python("import tasks; [tasks.bad() for _ in range(3)]; tasks.hello(1)")
    project.cli("run-consumer", "--burst", "tasks")
    code, report = health(project)
    assert code == 1 and "3 of 4 jobs finished in the last hour failed (75% > 20%)" in reasons(report)
    assert report["checks"]["last_hour"] == {"succeeded": 1, "failed": 3, "failure_rate": 0.75}
    assert health(project, "--max-failure-rate", "0.8")[0] == 0


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder outside pytest's private temp root (0700), so a process without
    privileges can reach it."""
    folder = Path(tempfile.mkdtemp(prefix="lq-health-"))
    folder.chmod(0o755)
    yield folder
    for path in [folder, *folder.rglob("*")]:
        path.chmod(stat.S_IRWXU)
    shutil.rmtree(folder)


def unprivileged() -> list[str]:
    """A command prefix under which file modes apply: root without its capabilities (root
    ignores modes otherwise), nothing for another user."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        require_service("setpriv", "needed to drop root's capabilities so file modes apply")
    return [setpriv, "--bounding-set=-all", "--inh-caps=-all"]


@pytest.mark.parametrize("what", ["file", "file and folder"])
def test_unwritable_database_is_unhealthy(project, shared_dir, what):
    project.write("tasks.py", TASKS)
    project.db = shared_dir / "lq.db"
    project.python("import tasks; tasks.hello(1)")
    prefix = unprivileged()
    assert health(project, "--max-queued-age", "600", prefix=prefix)[1]["checks"]["database"]["writable"]
    project.db.chmod(0o444)
    for extra in shared_dir.glob("lq.db-*"):
        extra.chmod(0o444)
    if what == "file and folder":
        shared_dir.chmod(0o555)
    probe = subprocess.run([*prefix, "sh", "-c", f"echo x >> {project.db}"], capture_output=True)
    assert probe.returncode != 0, "the database is still writable: the test would prove nothing"
    code, report = health(project, prefix=prefix)
    assert code == 2
    assert report["checks"]["database"]["writable"] is False
    assert report["reasons"][0].startswith("unhealthy: database: ")
    assert f"database is read-only: {project.db} (" in report["reasons"][0]


def test_missing_or_wrong_database_is_unhealthy(project, tmp_path):
    project.db = tmp_path / "nothing-here.db"
    code, report = health(project)
    assert code == 2 and "no litequeue database at" in reasons(report)
    project.db = tmp_path / "a-folder.db"
    project.db.mkdir()
    code, report = health(project)
    assert code == 2 and "is a folder, not a database file" in reasons(report)
    project.db = tmp_path / "text.db"
    project.db.write_text("not sqlite at all, just some text in a file")
    code, report = health(project)
    assert code == 2 and "not a litequeue database" in reasons(report)
