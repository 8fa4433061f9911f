"""The Dispatcher's rounds on a real SQLite file: grouped acks, claim-ahead, suspects, close."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import peewee
import pytest

from litequeue import LiteQueue
from litequeue.base.states import AttemptOutcome, JobStatus
from litequeue.base.values import Claim, Finished
from litequeue.runtime import dispatcher as pool
from litequeue.runtime.dispatcher import SHORT_JOB_SAMPLE, Dispatcher
from litequeue.store.doorbell import Doorbell
from tests.conftest import wait_for

HOLDER = "unit-consumer"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[LiteQueue]:
    app = LiteQueue("unit", db=tmp_path / "lq.db", durability="fast")

    @app.task(name="job")
    def job(i: int) -> int:
        return i

    app.job = job  # type: ignore[attr-defined]
    yield app
    app.storage.close()


@pytest.fixture
def make(app: LiteQueue) -> Iterator[Any]:
    made: list[tuple[Dispatcher, Doorbell]] = []

    def make(workers: int, window: float = 0.002, start: bool = True) -> Dispatcher:
        bell = Doorbell(None, "dispatcher")
        d = Dispatcher(app.storage, HOLDER, None, bell, set, [], None, threading.Event(),
                       workers=workers, window=window)
        made.append((d, bell))
        if start:
            d.start()
        return d

    yield make
    for d, bell in made:
        d.close()
        bell.close()


def finish(claim: Claim, seconds: float = 0.0001) -> Finished:
    now = time.time()
    return Finished(claim, "job", JobStatus.SUCCEEDED, AttemptOutcome.SUCCEEDED, now - seconds, now)


def claimed(app: LiteQueue) -> int:
    return app.storage.sql("SELECT COUNT(*) FROM lq_ready WHERE claimed_by = ?", (HOLDER,)).fetchone()[0]


def ledger(app: LiteQueue, status: str) -> list[tuple[str, float]]:
    return app.storage.sql("SELECT id, updated_at FROM lq_job WHERE status = ?", (status,)).fetchall()


def test_acks_of_jobs_finishing_together_share_one_commit(app, make) -> None:
    app.job.map(range(4))
    d = make(workers=4, window=5.0)
    claims = []
    for _ in range(4):
        claim = d.get(5)
        assert claim is not None
        claims.append(claim)
    for claim in claims:  # one by one: the round waits (within the window) for the rest
        d.put(finish(claim))
        time.sleep(0.02)
    wait_for(lambda: d.done == 4, 5, what="4 acks")
    done = ledger(app, "succeeded")
    assert len(done) == 4
    assert len({updated for _, updated in done}) == 1, f"acks were split over commits: {done}"
    assert claimed(app) == 0


def run_jobs(d: Dispatcher, n: int, seconds: float) -> int:
    """Run ``n`` jobs through ``d`` as one worker; returns the most claims seen waiting."""
    most = 0
    for _ in range(n):
        claim = d.get(5)
        assert claim is not None
        most = max(most, len(d.buffer))
        d.put(finish(claim, seconds))
    return most


def test_claims_ahead_only_while_jobs_are_short(app, make) -> None:
    app.job.map(range(200))
    short = make(workers=2)
    assert run_jobs(short, SHORT_JOB_SAMPLE + 30, 0.0001) > 0, "short jobs were never claimed ahead"
    short.close()
    app.storage.release(HOLDER)
    long = make(workers=2)
    assert run_jobs(long, SHORT_JOB_SAMPLE + 30, 1.0) == 0, "a long job's claim was claimed ahead"
    assert claimed(app) <= 1


def test_a_suspect_job_runs_alone(app, make) -> None:
    suspect_id = app.job(0).id
    app.storage.claim("dead-consumer", None, 1)
    assert app.storage.recover("dead-consumer") == (1, 0)  # a worker died on it once
    app.job.map(range(1, 4))
    d = make(workers=4, start=False)
    got: list[Claim | None] = []
    lock = threading.Lock()

    def worker() -> None:
        claim = d.get(5)
        with lock:
            got.append(claim)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    wait_for(lambda: d.idle == 4, 5, what="4 idle workers")
    d.start()
    wait_for(lambda: got, 5, what="the first claim")
    time.sleep(0.2)
    assert [c.job_id for c in got if c] == [suspect_id] and got[0].suspect
    assert claimed(app) == 1, "other jobs were claimed while the suspect ran"
    d.put(finish(got[0]))  # type: ignore[arg-type]
    for t in threads:
        t.join(5)
    assert sorted(c.job_id for c in got if c) == sorted(r[0] for r in app.storage.sql(
        "SELECT id FROM lq_job").fetchall())


def until_claimed_ahead(d: Dispatcher) -> Claim:
    """Run jobs as one worker until a round has claimed ahead of it; return the job in hand."""
    run_jobs(d, SHORT_JOB_SAMPLE + 2, 0.0001)
    for _ in range(50):
        claim = d.get(5)
        assert claim is not None
        if d.buffer:
            return claim
        d.put(finish(claim))
        wait_for(lambda: not d.pending, 5, what="the round")
    raise AssertionError("nothing was claimed ahead")


def test_close_commits_handed_in_acks_and_returns_unstarted_claims(app, make) -> None:
    app.job.map(range(100))
    d = make(workers=2)
    claim = until_claimed_ahead(d)
    d.put(finish(claim))
    left = d.close()
    assert left and all(c.job_id != claim.job_id for c in left)
    assert claim.job_id in {j for j, _ in ledger(app, "succeeded")}, "a handed-in ack was not committed"
    assert claimed(app) == len(left)  # still ours: the consumer hands them back
    assert len(ledger(app, "succeeded")) == d.done


def test_a_row_claimed_again_stays_held_when_its_earlier_claim_ack_is_dropped(app, make, monkeypatch) -> None:
    """The others took this consumer's claim (presumed dead) and it claimed the same queue
    row again while the earlier run's ack was in the round: dropping that ack must not
    forget the new claim, or the next lost connection hands back a job a worker is running
    (its attempt erased, the job run again)."""
    app.job(1)
    d = make(workers=1, start=False)
    _, [first] = d._round([], 1, None)
    assert app.storage.recover(HOLDER, reason="interrupted: its database session ended") == (1, 0)
    ran = finish(first)
    acked, [again] = d._round([ran], 1, None)  # the earlier run's ack (dropped), and the row again
    assert acked == [] and again.row_id == first.row_id and again.attempt == 2
    d._settle([ran], acked)

    def lost(*args: Any, **kwargs: Any) -> Any:
        raise peewee.OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(pool, "commit_round", lost)
    with pytest.raises(peewee.OperationalError):
        d._round([], 1, None)
    monkeypatch.undo()
    d._round([], 0, None)  # reconnected: claims a lost commit may have made go back first
    assert claimed(app) == 1, "the claim a worker runs was handed back as a stray"
    assert app.storage.sql("SELECT number, outcome FROM lq_attempt ORDER BY number").fetchall() == [
        (1, "interrupted"), (2, "running")]


# -- the prefetch: claims taken ahead are not running until a worker begins them ---------------

def job_row(app: LiteQueue, job_id: str) -> tuple[str, float | None, int]:
    return app.storage.sql("SELECT status, started_at, attempts FROM lq_job WHERE id = ?", (job_id,)).fetchone()


def attempts_of(app: LiteQueue, job_id: str) -> list[tuple[int, str, float]]:
    return app.storage.sql("SELECT number, outcome, started_at FROM lq_attempt WHERE job_id = ? ORDER BY number",
                           (job_id,)).fetchall()


def counts_match_ledger(app: LiteQueue) -> None:
    kept = dict(app.storage.sql("SELECT status, SUM(n) FROM lq_job_count WHERE n != 0 GROUP BY status").fetchall())
    real = dict(app.storage.sql("SELECT status, COUNT(*) FROM lq_job GROUP BY status").fetchall())
    assert kept == real


def claim_ahead(app: LiteQueue, limit: int, start_first: int) -> list[Claim]:
    _, claims = app.storage.ack_and_claim(HOLDER, [], None, limit, start_first=start_first)
    assert claims is not None
    return claims


def test_a_claim_taken_ahead_stays_queued_with_no_attempt(app) -> None:
    app.job.map(range(4))
    claims = claim_ahead(app, 4, start_first=1)
    first, ahead = claims[0], claims[1:]
    assert not first.pending_start and job_row(app, first.job_id)[0] == "running"
    for c in ahead:
        assert c.pending_start and c.attempt == 1
        assert job_row(app, c.job_id) == ("queued", None, 0)
        assert attempts_of(app, c.job_id) == []
    assert claimed(app) == 4  # all four are held: a crash recovers them like any claim
    counts_match_ledger(app)


def test_the_round_after_a_worker_takes_one_writes_its_start(app, make) -> None:
    app.job.map(range(100))
    d = make(workers=2)
    d.put(finish(until_claimed_ahead(d)))
    wait_for(lambda: not d.pending, 5, what="the round")
    assert d.buffer and all(c.pending_start for c in d.buffer), "nothing was claimed ahead"
    waiting = d.buffer[0]
    assert job_row(app, waiting.job_id)[0] == "queued"
    time.sleep(0.05)
    taken = d.get(5)
    assert taken is waiting and taken.started_at >= time.time() - 1
    wait_for(lambda: job_row(app, taken.job_id)[0] == "running", 5, what="its start written")
    status, started_at, attempts = job_row(app, taken.job_id)
    assert started_at == pytest.approx(taken.started_at) and attempts == 1
    assert attempts_of(app, taken.job_id) == [(1, "running", pytest.approx(taken.started_at))]
    d.put(finish(taken))
    wait_for(lambda: job_row(app, taken.job_id)[0] == "succeeded", 5, what="its ack")
    assert [o for _, o, _ in attempts_of(app, taken.job_id)] == ["succeeded"]
    counts_match_ledger(app)


def test_one_begun_and_ended_between_rounds_gets_its_start_from_its_ack(app) -> None:
    app.job.map(range(3))
    claims = claim_ahead(app, 3, start_first=0)
    began = time.time() - 0.5
    c = claims[1]
    c.started_at = began
    done = Finished(c, "job", JobStatus.SUCCEEDED, AttemptOutcome.SUCCEEDED, began, began + 0.1)
    assert app.storage.ack(HOLDER, [done]) == [done]
    assert job_row(app, c.job_id) == ("succeeded", pytest.approx(began), 1)
    assert attempts_of(app, c.job_id) == [(1, "succeeded", pytest.approx(began))]
    counts_match_ledger(app)


def test_claims_taken_ahead_go_back_uncounted_at_a_stop_and_at_a_crash(app) -> None:
    app.job.map(range(6))
    claim_ahead(app, 3, start_first=0)
    assert app.storage.release(HOLDER) == 3  # SIGTERM: back at once, no attempt was made
    assert app.storage.sql("SELECT COUNT(*) FROM lq_attempt").fetchone()[0] == 0
    claim_ahead(app, 6, start_first=0)
    assert app.storage.recover(HOLDER) == (6, 0)  # SIGKILL: none counts as a crash
    rows = app.storage.sql("SELECT status, attempts, crashes FROM lq_job").fetchall()
    assert rows == [("queued", 0, 0)] * 6
    counts_match_ledger(app)


def test_a_cancel_of_a_claim_taken_ahead_asks_it_to_stop(app) -> None:
    from litequeue.jobs.actions import cancel_jobs

    app.job.map(range(2))
    c = claim_ahead(app, 2, start_first=0)[0]
    outcome = cancel_jobs(app.storage, [c.job_id])
    assert outcome[c.job_id].startswith("cancel requested"), outcome
    assert job_row(app, c.job_id)[0] == "queued"  # not ended behind the back of the worker about to run it


def test_a_higher_priority_job_claimed_later_goes_before_the_buffer(app, make) -> None:
    app.job.map(range(4))
    d = make(workers=2, start=False)
    with d.cond:
        d._fill(claim_ahead(app, 4, start_first=0))
    urgent = app.job.s(99)
    urgent.priority = 10
    app.enqueue(urgent)
    with d.cond:
        d._fill(claim_ahead(app, 1, start_first=0))
    order = [c.priority for c in d.buffer]
    assert order == [10, 0, 0, 0, 0] and d.buffer[0].job_id == urgent.id
