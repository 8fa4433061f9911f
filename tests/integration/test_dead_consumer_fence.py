"""A consumer the others declared dead claims nothing until it carries on under a new id.

On PostgreSQL a consumer whose database session ended (a terminated backend, a restarted
server) is declared dead by the other consumers, which take its claims back. It notices
only at its next heartbeat, a second or more later; meanwhile its dispatcher must not claim
under the dead id: each such claim would be taken back again (counted as a crash of its
job, though no worker died) and its run's outcome dropped. Three of those and a job that
succeeded three times ends ``failed`` at the crash cap.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from litequeue.jobs import claim as claiming
from litequeue.runtime.supervisor import register_worker, release_stalled_claims
from litequeue.store.liveness import SessionLock
from tests.conftest import job_row, wait_for

A, B = "host-a:1:aaaaaa", "host-b:2:bbbbbb"


def registry(app: Any) -> dict[str, str]:
    return dict(app.storage.sql("SELECT id, status FROM lq_consumer").fetchall())


def holders(app: Any) -> list[Any]:
    return app.storage.sql("SELECT job_id, claimed_by, crashes FROM lq_ready ORDER BY id").fetchall()


@pytest.fixture
def two(pg_url: str) -> Any:
    """Two consumers' storages on one PostgreSQL database (own connections each), B alive."""
    from litequeue import LiteQueue

    apps = [LiteQueue("test", db=pg_url), LiteQueue("test", db=pg_url)]

    @apps[0].task()
    def work(n: int) -> int:
        return n

    b_lock = SessionLock(apps[1].storage.database, B)
    b_lock.acquire()
    register_worker(apps[1].storage, B, os.getpid(), None, None, 1, "thread")
    yield apps[0], apps[1], work
    b_lock.close()
    for app in apps:
        app.storage.close()


def declare_dead(b: Any, a: Any) -> None:
    """A registered with a lease but holds no session lock: B's supervisor pass declares it
    dead ("its database session ended"), exactly as after a terminated backend."""
    release_stalled_claims(b.storage, me=B)
    assert registry(a)[A] == "dead"


def test_a_consumer_declared_dead_claims_nothing_under_its_old_id(two: Any) -> None:
    a, b, work = two
    register_worker(a.storage, A, os.getpid(), None, None, 1, "thread")
    job_id = work(1).id
    declare_dead(b, a)
    # A's dispatcher has not noticed yet: its next round (ack and claim, one transaction).
    acked, claims = a.storage.ack_and_claim(A, [], None, 1)
    print(f"\nA's round after it was declared dead: claims={[(c.job_id, c.attempt) for c in claims or []]}")
    release_stalled_claims(b.storage, me=B)  # B's next pass
    job = job_row(a, job_id)
    print(f"job after B's next pass: status={job['status']} crashes={job['crashes']} "
          f"attempts={[x['outcome'] for x in job['attempt_list']]} queue={holders(a)}")
    assert claims is None  # fenced: nothing claimed, and the caller is told why
    assert (job["status"], job["crashes"], job["attempt_list"]) == ("queued", 0, [])
    assert holders(a) == [(job_id, None, 0)]
    assert a.storage.claim(A, None, 1) == []  # the storage API is fenced the same way
    # Under its new id (what the consumer does once its heartbeat tells it) it claims again.
    register_worker(a.storage, A + "2", os.getpid(), None, None, 1, "thread")
    (claim,) = a.storage.claim(A + "2", None, 1)
    assert claim.job_id == job_id


def test_a_claim_racing_the_declaration_is_taken_back_in_the_same_pass(two: Any) -> None:
    """A's round holds its consumer row while B's pass declares it dead: B waits for that
    round, then takes back what it claimed, in the same pass (not at its next one, which
    would count a second crash on each)."""
    a, b, work = two
    register_worker(a.storage, A, os.getpid(), None, None, 1, "thread")
    # A's claims from before, in flight when its session went.
    work(1)
    assert len(a.storage.claim(A, None, 1)) == 1
    work(2)
    entered, go = threading.Event(), threading.Event()
    result: dict[str, Any] = {}

    def a_round() -> None:
        # The transaction alone: storage.write() also takes this process's fork guard,
        # which would keep B's pass (another consumer, in this test the same process) out.
        with a.storage.atomic():
            result["fenced"] = claiming.holder_fenced(a.storage, A)
            entered.set()
            go.wait(10)
            result["claims"] = claiming.claim(a.storage, A, None, 5, (), fenced=False)

    thread = threading.Thread(target=a_round)
    thread.start()
    assert entered.wait(10)
    passing = threading.Thread(target=release_stalled_claims, args=(b.storage,), kwargs={"me": B})
    passing.start()
    time.sleep(0.5)  # B's pass is now waiting for A's round
    go.set()
    thread.join(10)
    passing.join(10)
    assert result["fenced"] is False and len(result["claims"]) == 1
    assert [row[1] for row in holders(a)] == [None, None]  # both taken back in that one pass
    assert registry(a)[A] == "dead"


def test_a_lost_session_of_a_living_consumer_is_no_worker_death(two: Any) -> None:
    """Same host, its process alive, only its database session gone: its claims go back
    (attempt interrupted) but count no crash; a consumer whose process is gone counts one,
    and a job whose consumer died crash_cap times ends failed."""
    a, b, work = two
    register_worker(a.storage, A, os.getpid(), None, None, 1, "thread")
    blip = work(1).id
    a.storage.claim(A, None, 1)
    declare_dead(b, a)
    job = job_row(a, blip)
    assert (job["status"], job["crashes"]) == ("queued", 0)
    assert [x["outcome"] for x in job["attempt_list"]] == ["interrupted"]
    for n in range(1, 4):  # a consumer process that really died with the job, three times
        killed = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        register_worker(a.storage, f"host-a:{killed.pid}:dead{n:02d}", killed.pid, None, None, 1, "thread")
        assert [c.job_id for c in a.storage.claim(f"host-a:{killed.pid}:dead{n:02d}", None, 1)] == [blip]
        killed.kill()
        if n < 3:  # not reaped yet: a zombie still answers kill(pid, 0), yet it is dead
            wait_for(lambda p=killed.pid: Path(f"/proc/{p}/stat").read_text().rpartition(")")[2].split()[0] == "Z",
                     10, what="the killed process to be a zombie")
        else:
            killed.wait()
        release_stalled_claims(b.storage, me=B)
        killed.wait()
        job = job_row(a, blip)
        assert job["crashes"] == n
    assert job["status"] == "failed"
    assert "worker died while running this job (3 times)" in job["error"]


def test_a_running_consumer_declared_dead_runs_the_next_job_under_a_new_id(two: Any) -> None:
    """The real consumer: declared dead by B (as liveness would, its row marked and its claims
    taken back), its dispatcher's next round claims nothing, and it carries on as a fresh
    consumer at once; the job enqueued meanwhile runs once, under the new id, no crash."""
    from tests.conftest import running_consumer, wait_job

    a, b, work = two
    with running_consumer(a, workers=2) as consumer:
        old = consumer.consumer_id
        wait_for(lambda: registry(a).get(old) == "running", 10, what="the consumer to register")
        with b.storage.write():
            from litequeue.jobs import consumers

            consumers.mark_dead(b.storage, old)
        job_id = work(5).id
        job = wait_job(a, job_id, "succeeded")
        assert consumer.consumer_id != old
        assert registry(a)[consumer.consumer_id] == "running"
    assert job["crashes"] == 0
    assert [(x["outcome"], x["worker"]) for x in job["attempt_list"]] == [("succeeded", consumer.consumer_id)]


def test_a_process_running_a_job_in_place_is_not_declared_dead_for_lack_of_a_session_lock(two: Any) -> None:
    """Huey's ``dequeue()`` then ``execute()`` in a plain process registers it like a
    consumer, but it holds no session lock: the others judge it by its heartbeat, as they
    did not (they declared it dead at once, and now it would then claim nothing)."""
    a, b, work = two
    job_id = work(3).id
    task = a.dequeue()
    assert task is not None and task.id == job_id
    release_stalled_claims(b.storage, me=B)
    assert [row[1] is not None for row in holders(a)] == [True]  # still its claim
    assert a.execute(task) == 3
    job = job_row(a, job_id)
    assert (job["status"], job["crashes"]) == ("succeeded", 0)
    assert [x["outcome"] for x in job["attempt_list"]] == ["succeeded"]
    work(4)
    release_stalled_claims(b.storage, me=B)
    assert a.execute(a.dequeue()) == 4


def blocked_or_done(app: Any, thread: threading.Thread) -> bool:
    """Is a session of this database waiting for a row lock (or has ``thread`` finished,
    never having had to wait)?"""
    return not thread.is_alive() or app.storage.sql(
        "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock'").fetchone()[0] > 0


def test_a_start_written_while_the_declaration_runs_is_interrupted_with_the_rest(two: Any) -> None:
    """A worker began a job claimed ahead; A's next round writes its start while B's pass
    declares A dead. B's pass waits for that round, then takes the claim back with its
    attempt ``interrupted``: it did not, and the attempt stayed ``running`` for ever beside
    a second run elsewhere (a job run twice with one attempt in its ledger)."""
    a, b, work = two
    register_worker(a.storage, A, os.getpid(), None, None, 1, "thread")
    job_id = work(1).id
    _, (ahead,) = a.storage.ack_and_claim(A, [], None, 1, start_first=0)
    assert ahead.pending_start
    entered, go = threading.Event(), threading.Event()

    def a_round() -> None:  # the round alone, as above: no fork guard
        with a.storage.atomic():
            claiming.record_starts(a.storage, A, [(ahead, time.time())])
            entered.set()
            go.wait(10)

    thread = threading.Thread(target=a_round)
    thread.start()
    assert entered.wait(10)
    passing = threading.Thread(target=release_stalled_claims, args=(b.storage,), kwargs={"me": B})
    passing.start()
    wait_for(lambda: blocked_or_done(a, passing), 10, what="B's pass to wait for A's round")
    go.set()
    thread.join(10)
    passing.join(10)
    job = job_row(a, job_id)
    assert registry(a)[A] == "dead"
    assert holders(a) == [(job_id, None, 1)]  # taken back (the row counts it: it fences A's ack)
    assert (job["status"], job["crashes"], [x["outcome"] for x in job["attempt_list"]]) == (
        "queued", 0, ["interrupted"])


def test_a_start_written_after_the_declaration_took_the_claim_is_not_written(two: Any) -> None:
    """The other order: B's pass has taken A's claim back (not yet committed) when A's
    round writes the start. A's round waits for B's pass, then finds the claim no longer
    its own and writes nothing. It wrote the start (it read the claim before B's pass
    committed): the job ``running`` and its attempt ``running`` for ever, with the job back
    in the queue for another consumer to run as a second attempt."""
    from litequeue.jobs import consumers, recover

    a, b, work = two
    register_worker(a.storage, A, os.getpid(), None, None, 1, "thread")
    job_id = work(1).id
    _, (ahead,) = a.storage.ack_and_claim(A, [], None, 1, start_first=0)
    entered, go = threading.Event(), threading.Event()
    result: dict[str, Any] = {}

    def b_pass() -> None:  # B's pass (release_stalled_claims), held open before its commit
        with b.storage.atomic():
            consumers.mark_dead(b.storage, A)
            result["back"] = recover.recover(b.storage, A, "interrupted: its database session ended",
                                             crashed=False)
            entered.set()
            go.wait(10)

    def a_round() -> None:
        with a.storage.atomic():
            result["started"] = claiming.record_starts(a.storage, A, [(ahead, time.time())])

    passing = threading.Thread(target=b_pass)
    passing.start()
    assert entered.wait(10)
    thread = threading.Thread(target=a_round)
    thread.start()
    wait_for(lambda: blocked_or_done(a, thread), 10, what="A's round to wait for B's pass")
    go.set()
    passing.join(10)
    thread.join(10)
    job = job_row(a, job_id)
    print(f"\nA's start after B's pass took the claim: recorded={len(result['started'])}, job={job['status']}, "
          f"attempts={[x['outcome'] for x in job['attempt_list']]}")
    assert result["back"] == (1, 0) and result["started"] == []
    assert holders(a) == [(job_id, None, 1)]
    assert (job["status"], job["attempt_list"]) == ("queued", [])
