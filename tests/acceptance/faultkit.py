"""Shared parts of the fault-injection suite: the tasks module, the side-effect log,
consumer kill/restart helpers and process checks read from /proc.

Every task writes one line ``JOB_ID ATTEMPT VALUE`` to the side-effect log as its *last*
action (one ``write`` on an ``O_APPEND`` descriptor, so lines are never torn). A line
therefore means "this attempt did the job's work"; comparing the log with ``lq_attempt``
tells duplicates (an attempt that did the work but whose ack was not committed) from
attempts killed before doing it.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import Project, wait_for

#: The tasks every fault scenario uses (``{side_log}`` is filled in per test).
TASKS = '''\
from __future__ import annotations

import os
import signal
import time

from litequeue import LiteQueue, current_job

app = LiteQueue("faults")
SIDE_LOG = {side_log!r}


def record(value: object) -> None:
    """The side effect: one un-torn line per attempt that did the work."""
    job = current_job()
    line = f"{{job.id}} {{job.attempt}} {{value}}\\n".encode()
    fd = os.open(SIDE_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


# The kill storms interrupt ~100 attempts at random: a high crash cap keeps an unlucky
# job from being failed by the cap, which scenario 4 tests on its own.
@app.task(crash_cap=50)
def work(i: int, seconds: float = 0.0) -> int:
    if seconds:
        time.sleep(seconds)
    record(i)  # last action: a line means the work was done
    return i


@app.task()
def plain(i: int) -> int:
    record(i)
    return i


@app.task(retries=2, retry_delay=0)
def flaky(i: int, seconds: float = 0.0) -> int:
    if seconds:
        time.sleep(seconds)
    if current_job().attempt == 1:
        raise RuntimeError("first attempt fails on purpose")
    record(i)
    return i


@app.task()
def suicide(i: int) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


@app.task(on_worker_death="fail")
def fragile(i: int) -> None:
    os.kill(os.getpid(), signal.SIGKILL)
'''


@dataclass
class SideLog:
    """The side-effect log: which (job, attempt) did the work, and with which value."""

    path: Path

    def lines(self) -> list[tuple[str, int, str]]:
        if not self.path.exists():
            return []
        out = []
        for raw in self.path.read_text().splitlines():
            job_id, attempt, value = raw.split(" ", 2)
            out.append((job_id, int(attempt), value))
        return out

    def values(self) -> Counter[str]:
        return Counter(value for _, _, value in self.lines())


@dataclass
class Ledger:
    """What the ledger says about every attempt, read through ``project.query``."""

    project: Project

    def attempts(self) -> dict[tuple[str, int], str]:
        return {(j, n): o for j, n, o in self.project.query(
            "SELECT job_id, number, outcome FROM lq_attempt")}

    def outcomes(self) -> Counter[str]:
        return Counter(self.attempts().values())

    def leftovers(self) -> tuple[int, int]:
        """Rows still in the ready queue and the schedule."""
        ready = self.project.query("SELECT COUNT(*) FROM lq_ready")
        sched = self.project.query("SELECT COUNT(*) FROM lq_schedule")
        return (ready[0][0] if ready else 0), (sched[0][0] if sched else 0)


@dataclass
class Accounting:
    """Duplicates and losses, checked exactly against the ledger."""

    jobs: int
    lines: int
    duplicates: int
    interrupted: int
    interrupted_with_work_done: int
    lost: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"jobs={self.jobs} duplicates={self.duplicates} interrupted={self.interrupted} "
                f"(work done before the kill: {self.interrupted_with_work_done}, "
                f"killed before doing it: {self.interrupted - self.interrupted_with_work_done}) "
                f"losses={len(self.lost)}")


def check_exactly_once_work(project: Project, side: SideLog, values: list[str]) -> Accounting:
    """Assert every job succeeded, none is lost, and every duplicate is an interrupted attempt.

    The exact equality: each job has one ``succeeded`` attempt, whose line is in the log; every
    other line belongs to an ``interrupted`` attempt (the work was done, the ack was not
    committed). So duplicates == interrupted attempts with a line, and duplicates <=
    interrupted (the rest were killed before their last action).
    """
    assert project.statuses() == {"succeeded": len(values)}
    assert Ledger(project).leftovers() == (0, 0)
    lines = side.lines()
    seen = Counter(value for _, _, value in lines)
    lost = [v for v in values if seen[v] == 0]
    assert not lost, f"{len(lost)} job(s) lost, e.g. {lost[:5]}"
    assert set(seen) == set(values), f"unexpected values in the side log: {set(seen) - set(values)}"
    per_attempt = Counter((j, n) for j, n, _ in lines)
    twice = [k for k, c in per_attempt.items() if c > 1]
    assert not twice, f"one attempt did the work twice: {twice[:5]}"
    attempts = Ledger(project).attempts()
    logged = {(j, n): attempts.get((j, n)) for j, n, _ in lines}
    odd = {k: o for k, o in logged.items() if o not in ("succeeded", "interrupted")}
    assert not odd, f"side-log lines from attempts the ledger does not show as ran: {list(odd.items())[:5]}"
    succeeded = {j for (j, _), o in attempts.items() if o == "succeeded"}
    assert len(succeeded) == len(values)
    assert sum(1 for o in attempts.values() if o == "succeeded") == len(values), "a job succeeded twice"
    assert all((j, n) in logged for (j, n), o in attempts.items() if o == "succeeded"), \
        "a succeeded attempt left no side effect"
    others = Counter(o for o in attempts.values() if o != "succeeded")
    assert set(others) <= {"interrupted"}, f"unexpected attempt outcomes: {others}"
    # The ledger's own count of crashes agrees with the interrupted attempts.
    crashes = project.query("SELECT COALESCE(SUM(crashes), 0), SUM(attempts) FROM lq_job")[0]
    interrupted = others["interrupted"]
    assert crashes[0] == interrupted
    assert crashes[1] == len(attempts), "lq_job.attempts disagrees with the lq_attempt rows"
    duplicates = len(lines) - len(values)
    with_work = sum(1 for o in logged.values() if o == "interrupted")
    assert duplicates == with_work <= interrupted
    return Accounting(len(values), len(lines), duplicates, interrupted, with_work, lost)


# -- processes ------------------------------------------------------------------------------

def proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, pgrp) of a live process from /proc, or None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = raw[raw.rindex(")") + 2:].split()
    return fields[0], int(fields[1]), int(fields[2])


def alive(pid: int) -> bool:
    """True if ``pid`` runs (a zombie waiting to be reaped has already died)."""
    stat = proc_stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


def children_of(pid: int) -> list[int]:
    """Live processes whose parent is ``pid``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = proc_stat(int(entry))
            if stat is not None and stat[1] == pid and stat[0] not in ("Z", "X"):
                found.append(int(entry))
    return found


def signal_pending(pid: int, sig: int) -> bool:
    """True while ``sig`` sent to ``pid`` has not been delivered yet (from /proc)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    masks = [int(line.split()[1], 16) for line in status.splitlines()
             if line.startswith(("SigPnd:", "ShdPnd:"))]
    return any(mask & (1 << (sig - 1)) for mask in masks)


def group_members(pgid: int) -> list[int]:
    """Live processes in process group ``pgid``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = proc_stat(int(entry))
            if stat is not None and stat[2] == pgid and stat[0] not in ("Z", "X"):
                found.append(int(entry))
    return found


class Faults:
    """Start, watch and kill real consumers of one project."""

    def __init__(self, project: Project, seed: int) -> None:
        self.project = project
        self.rng = random.Random(seed)
        self.seed = seed
        self.kill_times: list[float] = []
        self.side = SideLog(project.root / "side-effects.log")
        self.ledger = Ledger(project)
        project.write("tasks.py", TASKS.format(side_log=str(self.side.path)))

    def enqueue(self, code: str, timeout: float = 120) -> str:
        """Run producer ``code`` (with ``from tasks import *`` done) in its own process."""
        return self.project.python("from tasks import *\n" + code, timeout=timeout).stdout

    def consumer_id(self, proc: subprocess.Popen[str], timeout: float = 20.0) -> str:
        """The id the consumer ``proc`` registered under (waits for it to register)."""
        def find() -> str | None:
            rows = self.project.query("SELECT id FROM lq_consumer WHERE pid = ? ORDER BY started_at DESC",
                                      (proc.pid,))
            return rows[0][0] if rows else None
        return wait_for(find, timeout, what=f"consumer pid {proc.pid} to register")

    def attempts_by(self, consumer_id: str) -> int:
        rows = self.project.query(
            "SELECT COUNT(*) FROM lq_attempt WHERE consumer_id = ? OR consumer_id LIKE ?",
            (consumer_id, consumer_id + "/%"))
        return rows[0][0] if rows else 0

    def wait_running_jobs(self, proc: subprocess.Popen[str], timeout: float = 20.0) -> str:
        """Wait until ``proc`` has started at least one job; return its consumer id."""
        cid = self.consumer_id(proc, timeout)
        wait_for(lambda: self.attempts_by(cid) > 0 or proc.poll() is not None, timeout,
                 what=f"consumer {cid} to start a job")
        assert proc.poll() is None, f"consumer exited {proc.returncode}: {self.consumer_log(proc)}"
        return cid

    def unfinished(self) -> int:
        rows = self.project.query(
            "SELECT COUNT(*) FROM lq_job WHERE status NOT IN ('succeeded', 'failed', 'cancelled', 'expired')")
        return rows[0][0] if rows else 0

    def consumer_log(self, proc: subprocess.Popen[str]) -> str:
        index = self.project.procs.index(proc)
        path = self.project.root / f"consumer-{index}.log"
        return path.read_text()[-3000:] if path.exists() else ""

    def kill_group(self, proc: subprocess.Popen[str]) -> None:
        """SIGKILL the consumer and every process of its group (the OOM killer's way)."""
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)

    def storm(self, kills: int, *args: str, main_only: bool = False,
              gap: tuple[float, float] = (0.05, 0.5), after_first_job: bool = True) -> int:
        """Start a consumer, let it run for a random ``gap``, SIGKILL it; ``kills`` times.

        The gap starts once the consumer ran its first job (``after_first_job``) or once it
        registered. With ``main_only`` only the consumer's main process is killed
        (``os.kill``) and its worker processes must then die with it. Stops early when no
        job is left; returns how many kills hit a consumer that still had jobs to do.
        """
        hits = 0
        for _ in range(kills):
            if not self.unfinished():
                break
            proc = self.project.start_consumer("tasks", *args)
            if after_first_job:
                self.wait_running_jobs(proc)
            else:
                self.consumer_id(proc)
            time.sleep(self.rng.uniform(*gap))  # the fault's random moment, not a wait for a state
            if self.unfinished():
                hits += 1
            self.kill_times.append(time.time())
            if main_only:
                self.kill_main_only(proc)
            else:
                self.kill_group(proc)
        return hits

    def kill_main_only(self, proc: subprocess.Popen[str]) -> None:
        """SIGKILL only the consumer's main process; its worker processes must die with it."""
        workers = children_of(proc.pid)
        assert workers, f"consumer {proc.pid} has no worker process to outlive it"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        wait_for(lambda: not any(alive(p) for p in workers), 3.0,
                 what=f"worker processes {workers} to die with their consumer")
        wait_for(lambda: not group_members(proc.pid), 3.0,
                 what=f"every process of consumer group {proc.pid} to die")

    def wait_ready(self, proc: subprocess.Popen[str], timeout: float = 20.0) -> str:
        """Wait until the consumer is fully started (its signal handlers are installed).

        Huey installs them last, after starting workers; the supervisor, started after
        that, writes the first heartbeat (a SIGTERM before then kills it with -15).
        """
        cid = self.consumer_id(proc, timeout)
        wait_for(lambda: self.project.query(
            "SELECT 1 FROM lq_consumer WHERE id = ? AND heartbeat_at > started_at", (cid,)),
            timeout, what=f"consumer {cid} to write its first heartbeat")
        return cid

    def heartbeat(self, consumer_id: str) -> float:
        return self.project.query("SELECT heartbeat_at FROM lq_consumer WHERE id = ?", (consumer_id,))[0][0]

    def stop(self, proc: subprocess.Popen[str], sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Stop a consumer gracefully; returns its exit code."""
        self.wait_ready(proc)
        os.killpg(proc.pid, sig)
        return proc.wait(timeout)


def say(line: str) -> None:
    """One summary line per scenario (visible with ``pytest -s``)."""
    sys.stdout.write(f"\n[faults] {line}\n")
    sys.stdout.flush()


# -- another process holding the database ---------------------------------------------------

HOLD_LOCK = """\
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print(time.time(), flush=True)
time.sleep(float(sys.argv[2]))
conn.rollback()
print(time.time(), flush=True)
"""


class LockHolder:
    """A process holding the database write lock (``BEGIN IMMEDIATE``) for ``seconds``."""

    def __init__(self, project: Project, seconds: float) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(project.db), str(seconds)],
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.taken_at = float(self.proc.stdout.readline())  # blocks until the lock is held
        self.released_at: float | None = None

    def wait(self, timeout: float = 60) -> float:
        """Wait for the lock to be released; returns when it was."""
        assert self.proc.stdout is not None
        self.released_at = float(self.proc.stdout.readline())
        assert self.proc.wait(timeout) == 0
        return self.released_at


class Producer:
    """A producer process that imports its app, says ``ready``, and runs its enqueues only
    when told (so the app is opened before, and the enqueues during, a lock)."""

    def __init__(self, project: Project, body: str, env: dict[str, str] | None = None,
                 script: str = "producer.py") -> None:
        code = ("import json, sys, time\nfrom tasks import *\nimport litequeue\n"
                "print('ready', flush=True)\nsys.stdin.readline()\nstart = time.time()\n"
                + body + "\n")
        path = project.write(script, code)
        self.proc = subprocess.Popen([sys.executable, str(path)], cwd=project.root,
                                     env=dict(project.env, **(env or {})), text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if line.strip() != "ready":
            _, err = self.proc.communicate(timeout=30)
            raise AssertionError(f"producer failed to start: {line}{err}")

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def result(self, timeout: float = 60) -> tuple[int, str, str]:
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out, err
