"""Issue 13, concurrency limits: ``@app.task(concurrency=2)`` holds across every consumer on
the database (checked from the jobs' own log of start and end times), a SIGKILLed
consumer's slot comes back with its claim, and ``[queues.NAME] concurrency`` / ``timeout``
in the config file limit a queue. SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Project, wait_for

TASKS = """
import os, time
from litequeue import LiteQueue, current_job
app = LiteQueue("limits")

def note(what, n):
    fd = os.open(os.environ["SIDE_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, f"{what} {n} {os.getpid()} {time.time():.6f}\\n".encode())
    os.close(fd)

@app.task(concurrency=2)
def slow(n):
    note("start", n)
    time.sleep(30 if n == -1 and current_job().attempt == 1 else 0.2)
    note("end", n)

@app.task(queue="ocr")
def ocr(n):
    note("start", n)
    try:
        for _ in range(300 if n == -1 else 1):
            time.sleep(0.1)
    finally:
        note("end", n)  # the timeout interrupts the sleep
"""


def _peak(log: Path, killed: dict[int, float]) -> tuple[int, list[tuple[float, int]]]:
    """The most jobs running at once, from the side log; a job of a killed consumer ends
    when its consumer was killed. Also returns the running count after each change."""
    events: list[tuple[float, int]] = []
    open_: dict[tuple[str, str], float] = {}
    for line in log.read_text().splitlines():
        what, n, pid, at = line.split()
        key = (n, pid)
        if what == "start":
            open_[key] = float(at)
            events.append((float(at), 1))
        else:
            open_.pop(key, None)
            events.append((float(at), -1))
    for (_, pid), _started in open_.items():
        if int(pid) in killed:
            events.append((killed[int(pid)], -1))
    events.sort(key=lambda e: (e[0], e[1]))  # an end before a start at the same instant
    running, peak, curve = 0, 0, []
    for at, step in events:
        running += step
        peak = max(peak, running)
        curve.append((at, running))
    return peak, curve


@pytest.fixture(params=["sqlite", "postgres"])
def limits_project(request: pytest.FixtureRequest, project: Project) -> Project:
    project.write("tasks.py", TASKS)
    project.extra_env["SIDE_LOG"] = str(project.root / "side.log")
    if request.param == "postgres":
        project.extra_env["LITEQUEUE_DB"] = request.getfixturevalue("pg_url")
    return project


def _succeeded(project: Project) -> int:
    return len(project.cli_json("jobs", "list", "--status", "succeeded", "--limit", "1000", "--json"))


def test_task_limit_holds_across_three_consumers_and_a_killed_one_leaks_no_slot(limits_project: Project):
    project = limits_project
    log = project.root / "side.log"
    # One job that hangs: the consumer running it is SIGKILLed with the job's slot.
    project.python("import tasks; tasks.slow(-1); tasks.slow.map(range(50))")
    consumers = [project.start_consumer("tasks", "-w", "8", "--shutdown-timeout", "1") for _ in range(3)]
    wait_for(lambda: any(line.startswith("start -1 ") for line in (log.read_text().splitlines()
                                                                  if log.exists() else [])),
             60, what="the hanging job to start")
    pid = int(next(line for line in log.read_text().splitlines() if line.startswith("start -1 ")).split()[2])
    victim = next(p for p in consumers if p.pid == pid)
    status = project.cli_json("status", "--json")
    [limit] = [lim for lim in status["limits"] if lim["name"] == "slow"]
    assert limit["concurrency"] == 2 and 1 <= limit["running"] <= 2
    os.killpg(victim.pid, signal.SIGKILL)
    killed_at = time.time()
    victim.wait(10)
    # The 50 short jobs and the hung one (taken back and run again, briefly this time) ...
    wait_for(lambda: _succeeded(project) == 51, 120, what="the 51 jobs to succeed")
    peak, curve = _peak(log, {pid: killed_at})
    assert peak == 2, f"at most 2 at once, saw {peak}"
    # ... and after the kill two ran at once again: the dead consumer's slot came back.
    assert any(at > killed_at and running == 2 for at, running in curve), "the killed consumer's slot leaked"
    status = project.cli_json("status", "--json")
    [limit] = [lim for lim in status["limits"] if lim["name"] == "slow"]
    assert limit["running"] <= 2
    text = project.cli("status").stdout
    assert "concurrency limits (running / limit):" in text and "task slow" in text
    for p in consumers:
        if p is not victim:
            p.terminate()
            p.wait(30)


def test_queue_limit_and_timeout_from_the_config_file(limits_project: Project):
    project = limits_project
    log = project.root / "side.log"
    project.write("litequeue.toml", '[queues.ocr]\nconcurrency = 1\ntimeout = "1s"\n')
    project.python("import tasks; tasks.ocr(-1); tasks.ocr.map(range(8))")
    consumer = project.start_consumer("tasks", "-w", "4", "--shutdown-timeout", "1")
    wait_for(lambda: _succeeded(project) == 8, 60, what="the ocr jobs to succeed")
    # The hanging one hit the queue's timeout (its task sets none) and failed.
    failed = wait_for(lambda: project.cli_json("jobs", "list", "--status", "failed", "--json"), 30,
                      what="the hanging job to fail")
    assert "timed out after 1.0s" in failed[0]["error"]
    peak, _ = _peak(log, {})
    assert peak == 1
    limits = project.cli_json("status", "--json")["limits"]
    assert [(lim["name"], lim["concurrency"], lim["timeout"]) for lim in limits if lim["scope"] == "queue"] == [
        ("ocr", 1, 1.0)]
    consumer.terminate()
    assert consumer.wait(30) == 0


def test_bad_queue_settings_are_one_line_errors(project: Project):
    project.write("tasks.py", TASKS)
    project.write("litequeue.toml", "[queues.ocr]\nconcurrency = 0\n")
    out = project.cli("status", check=False)
    assert out.returncode == 2
    assert out.stderr.startswith("Error: ") and len(out.stderr.strip().splitlines()) == 1
    assert out.stderr.strip().endswith("litequeue.toml: [queues.ocr] concurrency must be a whole number "
                                       "of 1 or more, not 0")
    project.write("litequeue.toml", "[queues.ocr]\nlimit = 3\n")
    out = project.cli("status", check=False)
    assert out.returncode == 2 and "unknown key 'limit'; known keys: concurrency, timeout" in out.stderr


def _claimer(db: str, me: int, n: int, rounds: int, marks: str, out: Any) -> None:
    """One of the racing claimers (a forked process with its own connection)."""
    from litequeue import LiteQueue

    app = LiteQueue("limits", db=db)

    @app.task(concurrency=1)
    def one(n):
        return n

    def mark_and_wait(name: str) -> None:
        Path(marks, f"{name}-{me}").touch()
        while len(list(Path(marks).glob(f"{name}-*"))) < n:
            time.sleep(0.002)

    app.storage.paused_queues()  # connected
    got = []
    for k in range(rounds):
        mark_and_wait(f"ready{k}")  # every claimer is here: they claim at the same moment
        got.append(len(app.storage.claim(f"h{k}-{me}", None, 1)))
        mark_and_wait(f"claimed{k}")  # every claimer has claimed: the slot comes back
        app.storage.release(f"h{k}-{me}")
        mark_and_wait(f"released{k}")
    out.put(got)


def test_claims_at_the_same_moment_never_exceed_the_limit_on_postgres(tmp_path: Path, pg_url: str):
    """Five processes, each on its own connection, claim at the same moment, four times: only
    one job of a task limited to one is ever claimed at once, thanks to the advisory lock
    (without it, several get through each time: SKIP LOCKED claims run side by side and each
    counts before the others commit). SQLite has one writer: claims cannot interleave there,
    and the test above checks its limit."""
    import multiprocessing

    from litequeue import LiteQueue

    app = LiteQueue("limits", db=pg_url)

    @app.task(concurrency=1)
    def one(n):
        return n

    one.map(range(20))
    app.storage.close()
    rounds, claimers = 4, 5
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    procs = [ctx.Process(target=_claimer, args=(pg_url, i, claimers, rounds, str(tmp_path), out))
             for i in range(claimers)]
    for p in procs:
        p.start()
    counts = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(10)
    per_round = [sum(c[k] for c in counts) for k in range(rounds)]
    assert per_round == [1] * rounds, f"claims per round of a task limited to 1: {per_round}"
