"""Fault injection: a database locked by another process, and poison messages
(issue 4, scenarios 6 and 7).

A write lock held for 10 s is waited out: enqueues wait and succeed, running jobs' acks and
retries wait and are kept. Past a low busy timeout an enqueue fails with a clear error and
writes nothing. A payload that cannot be unpickled and a task the consumer does not know
end ``failed`` with errors saying which, and the consumer carries on.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.acceptance.faultkit import Faults, LockHolder, Producer, say

LOCK_SECONDS = 10
FLAKY = 40
PLAIN = 100


@pytest.mark.clock
def test_write_lock_held_for_ten_seconds_is_waited_out(faults: Faults) -> None:
    # Flaky jobs fail their first attempt and are retried: acks and retry rows are due
    # while the lock is held.
    faults.enqueue(f"for i in range({FLAKY}): flaky(1000 + i, 0.3)")
    consumer = faults.project.start_consumer("tasks", "-w", "4")
    faults.wait_running_jobs(consumer)
    producer = Producer(faults.project, f"for i in range({PLAIN}): plain(i)\n"
                                        "print(json.dumps([start, time.time()]))")
    lock = LockHolder(faults.project, LOCK_SECONDS)
    producer.go()
    code, out, err = producer.result(timeout=LOCK_SECONDS + 60)
    released = lock.wait()
    assert code == 0, err
    started, ended = json.loads(out)
    assert lock.taken_at < started < released <= ended, "the enqueues did not wait for the lock"
    assert consumer.poll() is None, "the consumer died while the database was locked"
    faults.project.wait_status("succeeded", FLAKY + PLAIN, timeout=60)
    assert faults.project.statuses() == {"succeeded": FLAKY + PLAIN}
    assert faults.ledger.leftovers() == (0, 0)
    # Every job did its work exactly once: nothing was dropped or run twice by the wait.
    assert sorted(faults.side.values().items()) == sorted(
        {str(i): 1 for i in [*range(PLAIN), *range(1000, 1000 + FLAKY)]}.items())
    outcomes = faults.project.query(
        "SELECT a.number, a.outcome, COUNT(*) FROM lq_attempt a JOIN lq_job j ON j.id = a.job_id "
        "WHERE j.task = 'flaky' GROUP BY a.number, a.outcome ORDER BY a.number")
    assert outcomes == [(1, "retrying", FLAKY), (2, "succeeded", FLAKY)]
    # Some jobs finished running while the lock was held: their acks had to wait.
    waited = faults.project.query("SELECT COUNT(*) FROM lq_attempt WHERE finished_at BETWEEN ? AND ?",
                                  (lock.taken_at, released))[0][0]
    assert waited > 0, "no job finished while the database was locked; the scenario proved nothing"
    assert faults.stop(consumer) == 0
    say(f"6 write lock held {LOCK_SECONDS}s: {PLAIN} enqueues waited {released - started:.1f}s and succeeded, "
        f"{FLAKY} retried jobs succeeded, {waited} attempts acked after the lock, losses=0 duplicates=0")


def test_enqueue_past_a_low_busy_timeout_fails_clearly_and_writes_nothing(faults: Faults) -> None:
    faults.enqueue("pass")  # creates the database and its tables
    producer = Producer(faults.project, (
        "try:\n"
        "    plain(1)\n"
        "except litequeue.DatabaseBusyError as exc:\n"
        "    print(json.dumps({'error': str(exc), 'waited': time.time() - start}))\n"
        "else:\n"
        "    print(json.dumps({'error': None}))\n"), env={"LITEQUEUE_BUSY_TIMEOUT": "1"})
    lock = LockHolder(faults.project, 5)
    producer.go()
    code, out, err = producer.result()
    assert code == 0, err
    report = json.loads(out)
    assert report["error"] is not None, "the enqueue succeeded while another process held the lock"
    for words in ("locked", "busy_timeout", "nothing was written"):
        assert words in report["error"], report["error"]
    assert report["waited"] >= 0.9, "the enqueue did not wait for its busy timeout"
    lock.wait()
    assert faults.project.query("SELECT COUNT(*) FROM lq_job") == [(0,)]
    assert faults.ledger.leftovers() == (0, 0)
    say(f"6b busy timeout 1s: DatabaseBusyError after {report['waited']:.1f}s, nothing written")


def test_cli_enqueue_during_a_lock_past_its_busy_timeout_is_a_one_line_error(faults: Faults) -> None:
    """The app is opened while the lock is held (a producer starting up, like the CLI)."""
    faults.enqueue("pass")
    lock = LockHolder(faults.project, 5)
    proc = subprocess.run([sys.executable, "-m", "litequeue", "enqueue", "plain", "--args", "[1]",
                           "--app", "tasks"], cwd=faults.project.root, capture_output=True, text=True,
                          env=dict(faults.project.env, LITEQUEUE_BUSY_TIMEOUT="1"), timeout=60)
    lock.wait()
    assert proc.returncode != 0, "the enqueue succeeded while another process held the lock"
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "busy_timeout" in lines[0], proc.stderr
    assert faults.project.query("SELECT COUNT(*) FROM lq_job") == [(0,)]
    say(f"6c CLI enqueue past the busy timeout: {lines[0]}")


POISON = """\
from tasks import plain


class OnlyInMain:
    '''Defined in the producer's __main__: no consumer can unpickle it.'''


plain(OnlyInMain())
"""

UNKNOWN = """\
from litequeue import LiteQueue

app = LiteQueue("faults")


@app.task()
def ghost(i):
    return i


ghost(1)
"""


@pytest.mark.parametrize("worker_type", ["thread", "process"])
def test_poison_payload_and_unknown_task_fail_visibly_and_the_consumer_carries_on(
        faults: Faults, worker_type: str) -> None:
    consumer = faults.project.start_consumer("tasks", "-w", "2", "-k", worker_type)
    faults.consumer_id(consumer)
    for name, code in (("poison.py", POISON), ("unknown.py", UNKNOWN)):
        path = faults.project.write(name, code)
        subprocess.run([sys.executable, str(path)], cwd=faults.project.root, env=faults.project.env,
                       check=True, timeout=60)
    faults.project.wait_status("failed", 2)
    errors = dict(faults.project.query("SELECT task, error FROM lq_job WHERE status = 'failed'"))
    assert "payload cannot be unpickled" in errors["plain"], errors
    assert "OnlyInMain" in errors["plain"], errors
    assert "unknown task" in errors["ghost"] and "ghost" in errors["ghost"], errors
    assert consumer.poll() is None, "a poison message killed the consumer"
    faults.enqueue("plain(5)")
    faults.project.wait_status("succeeded", 1)
    assert faults.side.values() == {"5": 1}
    assert faults.project.statuses() == {"failed": 2, "succeeded": 1}
    assert faults.ledger.leftovers() == (0, 0)
    assert sorted(faults.ledger.outcomes().items()) == [("failed", 2), ("succeeded", 1)]
    assert faults.stop(consumer) == 0
    say(f"7 poison payload + unknown task ({worker_type}): both failed with their reason, "
        "the next job succeeded")


