"""The counters the acks write: the per-minute activity counts (``lq_activity``: succeeded,
failed and retried jobs per minute, queue and task) and the histograms of ``/metrics``
(``lq_histogram``), equal to what the ledger holds, and what the overview's reads return
(issue 23). On SQLite here; on PostgreSQL in tests/acceptance/test_pg_failover.py's kills."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from litequeue import LiteQueue
from litequeue.ledger import queries
from tests.conftest import running_consumer, wait_job

#: The ledger's own answer: jobs by the minute they finished, and retried attempts by theirs.
#: ({minute} is the minute of a time column: SQLite's CAST truncates, PostgreSQL's rounds.)
LEDGER_ACTIVITY = (
    "SELECT {minute}(finished_at) * 60, queue, task, status, COUNT(*) FROM lq_job "
    "WHERE finished_at IS NOT NULL AND status IN ('succeeded', 'failed') GROUP BY 1, 2, 3, 4 "
    "UNION ALL SELECT {minute}(a.finished_at) * 60, j.queue, j.task, 'retrying', COUNT(*) "
    "FROM lq_attempt a JOIN lq_job j ON j.id = a.job_id WHERE a.outcome = 'retrying' "
    "AND a.finished_at IS NOT NULL GROUP BY 1, 2, 3")


def activity_matches_ledger(query: Callable[[str], list[tuple[Any, ...]]],
                            postgres: bool = False) -> dict[tuple[Any, ...], int]:
    """Assert that ``lq_activity`` holds exactly the ledger's counts (summed over the
    consumers' shards); return them."""
    kept = {tuple(r[:4]): int(r[4]) for r in query(
        "SELECT minute, queue, task, outcome, SUM(n) FROM lq_activity GROUP BY minute, queue, task, outcome") if r[4]}
    minute = "CAST(FLOOR({0} / 60) AS BIGINT)" if postgres else "CAST({0} / 60 AS INTEGER)"
    ledger = LEDGER_ACTIVITY.replace("{minute}(finished_at)", minute.format("finished_at")).replace(
        "{minute}(a.finished_at)", minute.format("a.finished_at"))
    real = {tuple(r[:4]): int(r[4]) for r in query(ledger)}
    assert kept == real
    return kept


#: The attempts an ack ended that ran to an outcome, by what the histograms count of them.
LEDGER_TIMED = (
    "SELECT j.queue, j.task, COUNT(*) FROM lq_job j JOIN lq_attempt a ON a.job_id = j.id AND a.number = j.attempts "
    "WHERE j.status IN ('succeeded', 'failed') AND a.outcome IN ('succeeded', 'failed', 'timeout') GROUP BY 1, 2")
LEDGER_MEASURED = ("SELECT j.queue, j.task, COUNT(*) FROM lq_attempt a JOIN lq_job j ON j.id = a.job_id "
                   "WHERE a.cpu_seconds IS NOT NULL GROUP BY 1, 2")


def histograms_match_ledger(query: Callable[[str], list[tuple[Any, ...]]]) -> dict[tuple[Any, ...], int]:
    """Assert that ``lq_histogram`` counted the run time of every job that ran to its end
    and the CPU time of every attempt measured, as the ledger holds them; return the run
    time counts."""
    def kept(kind: str) -> dict[tuple[Any, ...], int]:
        return {(q, t): int(n) for q, t, n in query(
            f"SELECT queue, task, SUM(n) FROM lq_histogram WHERE kind = '{kind}' GROUP BY queue, task")}

    timed = kept("duration")
    assert timed == {(q, t): int(n) for q, t, n in query(LEDGER_TIMED)}
    assert kept("cpu") == {(q, t): int(n) for q, t, n in query(LEDGER_MEASURED)}
    return timed


def test_acks_count_each_outcome_per_minute_queue_and_task(tmp_path):
    app = LiteQueue("activity", db=tmp_path / "activity.db")

    @app.task(queue="a", retries=1, retry_delay=0)
    def flaky(n: int) -> int:
        if n % 3 == 0:
            raise ValueError(n)
        return n

    @app.task(queue="b")
    def fine(n: int) -> int:
        return n

    runs = [flaky(n) for n in range(9)] + [fine(n) for n in range(5)]
    with running_consumer(app, workers=2):
        for i, r in enumerate(runs):
            wait_job(app, r.id, "failed" if i < 9 and i % 3 == 0 else "succeeded")
    kept = activity_matches_ledger(lambda q: app.storage.sql(q).fetchall())
    by_outcome: dict[tuple[str, str, str], int] = {}
    for (_, queue, task, outcome), n in kept.items():
        by_outcome[(queue, task.rsplit(".", 1)[-1], outcome)] = by_outcome.get((queue, task.rsplit(".", 1)[-1],
                                                                                  outcome), 0) + n
    assert by_outcome == {("a", "flaky", "succeeded"): 6, ("a", "flaky", "failed"): 3,
                          ("a", "flaky", "retrying"): 3, ("b", "fine", "succeeded"): 5}
    # The overview's reads come from the counts, and say what the ledger says.
    db = app.storage.database
    since = time.time() - 3600
    assert queries.finished_since(db, since) == {"succeeded": 11, "failed": 3}
    minutes = queries.recent_activity(db, 60)
    assert sum(m["succeeded"] for m in minutes) == 11 and sum(m["failed"] for m in minutes) == 3
    assert queries.processed(db, since)["since"] == 14
    assert sum(histograms_match_ledger(lambda q: app.storage.sql(q).fetchall()).values()) == 11 + 3


def test_a_job_failed_outside_an_ack_is_counted(tmp_path):
    """A payload that cannot run ends failed (fail_unrunnable), counted like an ack's."""
    app = LiteQueue("activity", db=tmp_path / "activity.db")

    @app.task()
    def gone() -> None:
        return None

    job = gone()
    with app.storage.write():
        app.storage.sql("UPDATE lq_ready SET data = ? WHERE job_id = ?", (b"not a pickle", job.id))
    with running_consumer(app, workers=1):
        wait_job(app, job.id, "failed")
    assert activity_matches_ledger(lambda q: app.storage.sql(q).fetchall())
