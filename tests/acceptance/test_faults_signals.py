"""Fault injection: stop signals (issue 4, scenario 9).

SIGTERM and SIGINT stop taking jobs, let the running job finish, and exit 0; a second
signal stops at once, exits 0, and hands the running job back to the queue (its attempt
``interrupted``).
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.acceptance.faultkit import Faults, say, signal_pending
from tests.conftest import wait_for


def job(faults: Faults, value: int) -> tuple[str, str, int]:
    """The job ``work(value, ...)``, found by its arguments' preview."""
    rows = faults.project.query("SELECT id, status, attempts FROM lq_job WHERE args LIKE ?", (f"[{value},%",))
    assert len(rows) == 1, rows
    return rows[0]


@pytest.mark.parametrize("worker_type", ["thread", "process"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stop_signal_lets_the_running_job_finish_and_exits_0(faults: Faults, sig: int, worker_type: str) -> None:
    faults.enqueue("work(1, 3)\nwork(2, 0)")  # with one worker, job 2 waits behind job 1
    consumer = faults.project.start_consumer("tasks", "-w", "1", "-k", worker_type)
    faults.wait_ready(consumer)
    faults.project.wait_status("running", 1)
    signalled = time.time()
    code = faults.stop(consumer, sig)
    stopped = time.time()
    assert code == 0, faults.consumer_log(consumer)
    first, second = job(faults, 1), job(faults, 2)
    assert first[1:] == ("succeeded", 1), "the running job did not finish"
    assert second[1:] == ("queued", 0), "the consumer took a job after the stop signal"
    finished = faults.project.query("SELECT finished_at FROM lq_job WHERE id = ?", (first[0],))[0][0]
    assert signalled < finished < stopped
    assert faults.side.values() == {"1": 1}
    assert faults.project.query("SELECT status FROM lq_consumer") == [("stopped",)]
    assert faults.project.query("SELECT COUNT(*) FROM lq_ready WHERE claimed_by IS NOT NULL") == [(0,)]
    say(f"9 {signal.Signals(sig).name} ({worker_type}): the 3 s job succeeded, exit 0 after "
        f"{stopped - signalled:.1f}s, the queued job was left for later")


@pytest.mark.parametrize("worker_type", ["thread", "process"])
def test_second_sigterm_stops_at_once_and_hands_the_job_back(faults: Faults, worker_type: str) -> None:
    faults.enqueue("work(1, 60)")
    consumer = faults.project.start_consumer("tasks", "-w", "1", "-k", worker_type)
    cid = faults.wait_ready(consumer)
    faults.project.wait_status("running", 1)
    os.killpg(consumer.pid, signal.SIGTERM)
    # Two signals sent together may merge into one: wait until the kernel delivered the
    # first, then for one more heartbeat (the consumer's main loop has handled it by then).
    wait_for(lambda: not signal_pending(consumer.pid, signal.SIGTERM), 5, what="the first SIGTERM delivered")
    delivered = time.time()
    wait_for(lambda: faults.heartbeat(cid) > delivered, 5, what="a heartbeat after the first SIGTERM")
    assert consumer.poll() is None, "the consumer exited on the first SIGTERM with its job still running"
    signalled = time.time()
    os.killpg(consumer.pid, signal.SIGTERM)
    code = consumer.wait(15)  # the job would run for another ~60 s
    stopped = time.time()
    assert code == 0, faults.consumer_log(consumer)
    job_id, status, attempts = job(faults, 1)
    assert (status, attempts) == ("queued", 1)
    assert list(faults.ledger.attempts().values()) == ["interrupted"]
    assert faults.project.query("SELECT claimed_by FROM lq_ready") == [(None,)]
    assert faults.side.values() == {}
    say(f"9 second SIGTERM ({worker_type}): exit 0 {stopped - signalled:.1f}s later, job {job_id[:8]} back in "
        "queued, its attempt interrupted")
