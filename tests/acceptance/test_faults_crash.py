"""Fault injection: jobs that kill their own worker, and delayed jobs around a crash
(issue 4, scenarios 4 and 5).

A job whose worker died 3 times ends ``failed`` with the worker-died error and is never
re-run on its own; ``on_worker_death="fail"`` fails it at the first death; the other jobs
all succeed. Delayed jobs due while consumers are being killed all run.
"""

from __future__ import annotations

import subprocess
import time

from tests.acceptance.faultkit import Faults, check_exactly_once_work, say
from tests.conftest import wait_for

OTHERS = 30


def job_row(faults: Faults, task: str) -> tuple[str, str, int, int, str | None]:
    rows = faults.project.query(
        "SELECT id, status, attempts, crashes, error FROM lq_job WHERE task = ?", (task,))
    assert len(rows) == 1
    return rows[0]


def others_succeed_and_killer_stays_failed(faults: Faults, task: str, proc: subprocess.Popen[str],
                                           attempts: int) -> None:
    """The other jobs all succeed; jobs enqueued after the failure run, the failed one does not."""
    wait_for(lambda: not faults.unfinished(), 30, what="every job to finish")
    innocents = faults.project.query("SELECT task, error FROM lq_job WHERE status = 'failed' AND task != ?",
                                     (task,))
    assert not innocents, (f"{len(innocents)} job(s) that never killed anything failed with the "
                           f"killer: {innocents[:3]}")
    assert faults.project.statuses() == {"succeeded": OTHERS, "failed": 1}
    faults.enqueue(f"for i in range({OTHERS}, {OTHERS + 5}): plain(i)")
    faults.project.wait_status("succeeded", OTHERS + 5)
    assert proc.poll() is None, "the consumer died"
    job_id, status, tries, _, _ = job_row(faults, task)
    assert (status, tries) == ("failed", attempts), "a job failed at the crash cap was run again"
    assert sorted(faults.side.values()) == sorted(str(i) for i in range(OTHERS + 5))
    assert faults.project.statuses() == {"succeeded": OTHERS + 5, "failed": 1}
    outcomes = [o for (j, _), o in faults.ledger.attempts().items() if j == job_id]
    assert outcomes == ["interrupted"] * attempts


def test_job_killing_its_process_worker_fails_after_three_deaths(faults: Faults) -> None:
    faults.enqueue(f"suicide(0)\nfor i in range({OTHERS}): plain(i)")
    proc = faults.project.start_consumer("tasks", "-w", "4", "-k", "process")
    faults.project.wait_status("failed", 1)
    _, status, attempts, crashes, error = job_row(faults, "suicide")
    assert (status, attempts, crashes) == ("failed", 3, 3)
    assert error == "worker died while running this job (3 times)"
    others_succeed_and_killer_stays_failed(faults, "suicide", proc, 3)
    assert faults.stop(proc) == 0
    say(f"4 worker killed by its job (-k process): failed after {attempts} deaths, "
        f"{OTHERS + 5} other jobs succeeded, consumer kept running")


def test_job_killing_its_thread_consumer_fails_after_three_deaths(faults: Faults) -> None:
    """In thread mode the job kills the whole consumer: restart it each time, as systemd would."""
    faults.enqueue(f"suicide(0)\nfor i in range({OTHERS}): plain(i)")
    deaths = 0
    proc = faults.project.start_consumer("tasks", "-w", "4")
    while job_row(faults, "suicide")[1] != "failed":
        wait_for(lambda p=proc: p.poll() is not None or job_row(faults, "suicide")[1] == "failed",
                 30, what="the consumer to die or the job to fail")
        if proc.poll() is not None:
            assert proc.returncode == -9, f"the consumer exited {proc.returncode}, not by SIGKILL"
            deaths += 1
            assert deaths <= 3, "the job ran again after its third worker death"
            proc = faults.project.start_consumer("tasks", "-w", "4")
    _, status, attempts, crashes, error = job_row(faults, "suicide")
    assert deaths == 3
    assert (status, attempts, crashes) == ("failed", 3, 3)
    assert error == "worker died while running this job (3 times)"
    others_succeed_and_killer_stays_failed(faults, "suicide", proc, 3)
    innocent = faults.project.query("SELECT COUNT(*) FROM lq_attempt WHERE outcome = 'interrupted' "
                                    "AND job_id NOT IN (SELECT id FROM lq_job WHERE task = 'suicide')")
    assert faults.stop(proc) == 0
    say(f"4 job killing its thread consumer: {deaths} consumer deaths, failed after {attempts}; "
        f"{OTHERS + 5} other jobs succeeded ({innocent[0][0]} of their attempts interrupted with it)")


def test_on_worker_death_fail_fails_at_the_first_death(faults: Faults) -> None:
    faults.enqueue(f"fragile(0)\nfor i in range({OTHERS}): plain(i)")
    proc = faults.project.start_consumer("tasks", "-w", "4", "-k", "process")
    faults.project.wait_status("failed", 1)
    _, status, attempts, crashes, error = job_row(faults, "fragile")
    assert (status, attempts, crashes) == ("failed", 1, 1)
    assert error == "worker died while running this job (1 time)"
    others_succeed_and_killer_stays_failed(faults, "fragile", proc, 1)
    assert faults.stop(proc) == 0
    say("4 on_worker_death='fail': failed after the first death, never re-run")


def test_delayed_jobs_survive_kills_around_their_due_time(faults: Faults) -> None:
    jobs = 200
    proc = faults.project.start_consumer("tasks", "-w", "4")
    faults.consumer_id(proc)
    # Each job works 20 ms once due, so kills after the due time also land on running jobs.
    # Due 3 s out: the first kills land before, even on a loaded machine.
    faults.enqueue(f"for i in range({jobs}): work.schedule(args=(i, 0.02), delay=3)")
    first_due, last_due = faults.project.query("SELECT MIN(eta), MAX(eta) FROM lq_job")[0]
    # Kill the consumer at random moments from before the last job is due until after
    # it is, and on until every job has run; restart it each time.
    while len(faults.kill_times) < 6 or (len(faults.kill_times) < 20 and (
            time.time() < last_due + 0.5 or faults.unfinished())):
        time.sleep(faults.rng.uniform(0.05, 0.4))  # the fault's random moment
        faults.kill_times.append(time.time())
        faults.kill_group(proc)
        proc = faults.project.start_consumer("tasks", "-w", "4")
        faults.consumer_id(proc)
    kills = len(faults.kill_times)
    assert min(faults.kill_times) < last_due and max(faults.kill_times) > first_due, "no kill around the due time"
    faults.project.wait_status("succeeded", jobs)
    assert faults.stop(proc) == 0
    acct = check_exactly_once_work(faults.project, faults.side, [str(i) for i in range(jobs)])
    early = faults.project.query(
        "SELECT COUNT(*) FROM lq_attempt a JOIN lq_job j ON j.id = a.job_id WHERE a.started_at < j.eta")
    assert early == [(0,)], "a delayed job ran before it was due"
    say(f"5 delayed jobs (due over {last_due - first_due:.1f}s), kills around their due time: kills={kills} "
        f"{acct.summary()} seed={faults.seed}")


def test_claims_of_a_vanished_worker_process_are_recovered(faults: Faults) -> None:
    """A worker process that died between the consumer's look at its workers and Huey's
    restart of them left its claim held by a pid no worker has: the job stayed ``running``
    until the consumer restarted. Any claim of this consumer held by a pid that is not one
    of its live workers is now recovered at the next health check."""
    from litequeue.engine.storage import open_store
    from litequeue.store.liveness import holder_of

    proc = faults.project.start_consumer("tasks", "-w", "2", "-k", "process", "-Q", "default")
    consumer_id = faults.wait_ready(proc)
    # A job in a queue this consumer does not serve: only the orphan below takes it.
    job_id = faults.project.cli("enqueue", "plain", "--args", "[2]", "-q", "side", "--app", "tasks").stdout.strip()
    (app,) = faults.project.query("SELECT app FROM lq_job WHERE id = ?", (job_id,))[0]
    store = open_store(str(faults.project.db), app=app)
    try:
        orphan = holder_of(consumer_id, 999_999)  # a worker pid that is gone
        claims = store.claim(orphan, ["side"], 1)
        assert [c.job_id for c in claims] == [job_id]
    finally:
        store.database.close()
    wait_for(lambda: faults.project.query("SELECT status FROM lq_job WHERE id = ?", (job_id,))[0][0] == "queued",
             15, what="the orphaned claim to be recovered")
    attempts = faults.project.query("SELECT outcome FROM lq_attempt WHERE job_id = ?", (job_id,))
    assert [a[0] for a in attempts] == ["interrupted"]
    assert faults.project.query("SELECT claimed_by FROM lq_ready WHERE job_id = ?", (job_id,)) == [(None,)]
    assert faults.stop(proc) == 0
