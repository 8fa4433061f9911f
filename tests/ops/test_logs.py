"""Logging: one line per job start and end, as text or JSON, to stderr or a file."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

from litequeue.base import logs

TASKS = """
from litequeue import LiteQueue
app = LiteQueue("logs")

@app.task(queue="mail")
def ok(x):
    return x

@app.task(queue="mail")
def bad(x):
    raise ValueError("no good")
"""


def run(project, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "litequeue", *args], cwd=project.root, env=project.env,
                          capture_output=True, text=True, timeout=60)


def enqueue_two(project) -> None:
    project.write("tasks.py", TASKS)
    project.python("import tasks; tasks.ok(1); tasks.bad(2)")


def test_json_lines_carry_the_job_facts(project):
    enqueue_two(project)
    proc = run(project, "--log-format", "json", "run-consumer", "--burst", "tasks")
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stderr.splitlines()]  # every line is one object
    for r in records:
        assert {"time", "level", "logger", "message"} <= set(r)
        assert r["time"].endswith("Z")
    starts = [r for r in records if r.get("action") == "start"]
    ends = {r["task"]: r for r in records if r.get("action") == "end"}
    assert len(starts) == 2 and set(ends) == {"ok", "bad"}
    for r in starts:
        assert r["queue"] == "mail" and r["attempt"] == 1 and r["job_id"] and r["logger"] == "litequeue.worker"
    assert ends["ok"]["outcome"] == "succeeded" and ends["bad"]["outcome"] == "failed"
    assert isinstance(ends["ok"]["duration"], float) and ends["ok"]["duration"] >= 0
    job_ids = {r[0] for r in project.query("SELECT id FROM lq_job")}
    assert {r["job_id"] for r in starts} == job_ids


def test_text_logfile_and_quiet(project, tmp_path):
    enqueue_two(project)
    logfile = tmp_path / "logs" / "lq.log"
    logfile.parent.mkdir()
    proc = run(project, "--logfile", str(logfile), "run-consumer", "--burst", "tasks")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    text = logfile.read_text()
    assert " INFO litequeue.worker: job " in text and "outcome=succeeded" in text and "outcome=failed" in text
    project.python("import tasks; tasks.ok(3)")
    proc = run(project, "-q", "run-consumer", "--burst", "tasks")
    assert proc.returncode == 0 and "job " not in proc.stderr
    proc = run(project, "--logfile", str(tmp_path / "missing" / "x.log"), "status")
    assert proc.returncode == 2 and proc.stderr.startswith("Error: cannot open log file")


def test_logfile_is_reopened_after_logrotate_moves_it(tmp_path):
    path = tmp_path / "lq.log"
    handler = logs.setup(logging.INFO, "json", path)
    try:
        log = logging.getLogger("litequeue.test")
        log.info("before", extra={"job_id": "j1"})
        path.rename(tmp_path / "lq.log.1")
        log.info("after", extra={"job_id": "j2"})
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            log.exception("failed")
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
    assert json.loads((tmp_path / "lq.log.1").read_text())["job_id"] == "j1"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0]["message"] == "after" and lines[0]["job_id"] == "j2"
    assert lines[1]["level"] == "error" and "RuntimeError: boom" in lines[1]["exc"]
