"""Fault injection: consumers SIGKILLed while they run jobs (issue 4, scenarios 1 to 3).

No job is lost, every duplicate run is an interrupted attempt, process workers die with
their consumer, and a dead consumer's job runs again within 2 s of a new consumer starting.
"""

from __future__ import annotations

import time

import pytest

from tests.acceptance.faultkit import Faults, alive, check_exactly_once_work, children_of, say
from tests.conftest import wait_for
from tests.integration.test_activity_counts import activity_matches_ledger, histograms_match_ledger

JOBS = 2000
KILLS = 20
#: Long enough that 20 kills at 50-500 ms land while jobs remain, short enough for ~30 s.
JOB_SECONDS = 0.02


def run_storm(faults: Faults, *args: str, main_only: bool = False, beside: int = 0,
              job_seconds: float = JOB_SECONDS, jobs: int = JOBS) -> str:
    """Kill and restart one consumer ``KILLS`` times while ``beside`` other consumers (``-w 2``)
    work on the same database all along."""
    values = [str(i) for i in range(jobs)]
    faults.enqueue(f"app.enqueue_many([work.s(i, {job_seconds}) for i in range({jobs})])")
    assert faults.project.statuses() == {"queued": jobs}
    steady = [faults.project.start_consumer("tasks", "-w", "2", *args) for _ in range(beside)]
    hits = faults.storm(KILLS, "-w", "4", *args, main_only=main_only)
    assert hits == KILLS, f"only {hits} of {KILLS} kills landed while jobs remained"
    assert all(p.poll() is None for p in steady), "a consumer beside the killed one exited"
    last = faults.project.start_consumer("tasks", "-w", "4", *args)
    faults.project.wait_status("succeeded", jobs, timeout=90)
    for proc in [last, *steady]:
        assert faults.stop(proc) == 0
    acct = check_exactly_once_work(faults.project, faults.side, values)
    # The kills really interrupted running jobs (else the test proves nothing).
    assert acct.interrupted > 0
    # The counters the acks wrote agree with the ledger, on SQLite and PostgreSQL.
    counted = activity_matches_ledger(faults.project.query, postgres=bool(faults.project.pg_url))
    assert sum(n for key, n in counted.items() if key[3] == "succeeded") == jobs
    assert sum(histograms_match_ledger(faults.project.query).values()) == jobs
    return f"kills={hits} {acct.summary()} seed={faults.seed}"


def test_sigkill_storm_threads_loses_nothing(faults: Faults) -> None:
    summary = run_storm(faults)
    say(f"1 SIGKILL storm, -w 4 threads: {summary}")


@pytest.mark.parametrize("project", ["postgres"], indirect=True)
def test_sigkill_storm_beside_two_consumers_on_postgres_loses_nothing(faults: Faults) -> None:
    """Three consumers on one PostgreSQL database (as on three hosts), one of them killed
    and restarted 20 times. The jobs are longer than on SQLite so that 20 kills still land
    while the two others drain; half as many (20 kills take about 15 s, in which the two
    others run about 400 of them)."""
    summary = run_storm(faults, beside=2, job_seconds=0.15, jobs=1000)
    say(f"1pg SIGKILL storm on PostgreSQL, 1 of 3 consumers killed, -w 4 threads: {summary}")


def test_sigkill_storm_processes_loses_nothing_and_leaves_no_orphans(faults: Faults) -> None:
    summary = run_storm(faults, "-k", "process", main_only=True)
    say(f"2 SIGKILL storm, -k process -w 4 (main pid only, no orphan left): {summary}")


@pytest.mark.parametrize("worker_type", ["thread", "process"])
def test_killed_job_runs_again_within_two_seconds_of_a_new_consumer(faults: Faults, worker_type: str) -> None:
    faults.enqueue("work(7, 3600)")  # runs until killed
    first = faults.project.start_consumer("tasks", "-w", "2", "-k", worker_type)
    faults.project.wait_status("running", 1)
    faults.kill_group(first)
    assert faults.ledger.attempts() == {next(iter(faults.ledger.attempts())): "running"}
    start = time.time()
    second = faults.project.start_consumer("tasks", "-w", "2", "-k", worker_type)
    rows = wait_for(lambda: faults.project.query(
        "SELECT started_at FROM lq_attempt WHERE number = 2"), 10, what="a second attempt")
    delay = rows[0][0] - start
    assert faults.project.statuses() == {"running": 1}
    assert sorted(faults.ledger.attempts().values()) == ["interrupted", "running"]
    assert delay < 2.0, f"the killed job ran again only {delay:.2f}s after the new consumer started"
    faults.kill_group(second)
    say(f"3 killed job running again ({worker_type}): {delay:.2f}s after a new consumer started")


def test_running_consumer_takes_over_a_dead_consumers_job_within_two_seconds(faults: Faults) -> None:
    """A consumer already running notices a dead one at once (its lock file is free)."""
    survivor = faults.project.start_consumer("tasks", "-w", "1")
    faults.consumer_id(survivor)
    faults.enqueue("work(1, 3600)")  # keeps the survivor's only worker busy
    faults.project.wait_status("running", 1)
    victim = faults.project.start_consumer("tasks", "-w", "1")
    faults.consumer_id(victim)
    faults.enqueue("work(2, 3600)")
    faults.project.wait_status("running", 2)
    victim_job = faults.project.query(
        "SELECT j.id FROM lq_job j JOIN lq_consumer c ON c.id = j.worker WHERE c.pid = ?", (victim.pid,))
    assert len(victim_job) == 1
    # The survivor's worker is busy: what is measured is its supervisor handing the
    # victim's job back to the queue, not running it.
    killed_at = time.time()
    faults.kill_group(victim)
    rows = wait_for(lambda: faults.project.query(
        "SELECT outcome, finished_at FROM lq_attempt WHERE job_id = ? AND number = 1 "
        "AND outcome = 'interrupted'", (victim_job[0][0],)), 10, what="the dead consumer's job back")
    delay = rows[0][1] - killed_at
    assert faults.project.query("SELECT status FROM lq_job WHERE id = ?", (victim_job[0][0],)) == [("queued",)]
    assert alive(survivor.pid) and not children_of(victim.pid)
    assert delay < 2.0, f"the dead consumer's job went back to the queue only after {delay:.2f}s"
    faults.kill_group(survivor)
    say(f"3b dead consumer's job back in the queue {delay:.2f}s after the kill (noticed by a running consumer)")
