"""The per-(queue, status) counts `status` reads are kept by triggers: after every kind of
transition they must equal a real COUNT over the ledger."""

from __future__ import annotations

import time

from litequeue import LiteQueue
from litequeue.jobs import actions, retention
from tests.conftest import running_consumer, wait_job


def assert_counts_match(app) -> None:
    store = app.storage
    kept = {(q, s): n for q, s, n in store.sql("SELECT queue, status, n FROM lq_job_count").fetchall() if n}
    real = {(q, s): n for q, s, n in store.sql(
        "SELECT queue, status, COUNT(*) FROM lq_job GROUP BY queue, status").fetchall()}
    assert kept == real


def test_counts_follow_every_transition(tmp_path):
    # SQLite only: on PostgreSQL `status` counts with COUNT(*) (no trigger-kept table).
    app = LiteQueue("counts", db=tmp_path / "counts.db")

    @app.task(queue="a", retries=1, retry_delay=0.05)
    def flaky(n):
        if n % 3 == 0:
            raise ValueError(n)

    @app.task(queue="b")
    def later(n):
        return n

    runs = {n: flaky(n) for n in range(9)}
    app.enqueue(later.s(1).then(later, 2))  # its second step is `waiting`
    delayed = later.schedule(args=(5,), delay=30)
    for n in range(3):
        later(n)
    assert_counts_match(app)
    actions.cancel_jobs(app.storage, [delayed.id])
    with running_consumer(app, workers=2, queues=["a"]):
        for n, r in runs.items():
            wait_job(app, r.id, "failed" if n % 3 == 0 else "succeeded")
    assert_counts_match(app)
    actions.purge_queues(app.storage, ["b"])  # the pipeline's first step and three more
    assert_counts_match(app)
    retried = actions.retry_jobs(app.storage, [r.id for n, r in runs.items() if n % 3 == 0])
    assert len(retried) == 3
    assert_counts_match(app)
    with running_consumer(app, workers=2):
        for new in retried.values():
            wait_job(app, new, "failed")
    assert_counts_match(app)
    retention.prune(app.storage, 0, now=time.time() + 1)
    assert_counts_match(app)


def test_no_trigger_keeps_the_counts(tmp_path):
    """Issue 23: the counts are written by the job-state functions in litequeue/jobs/, in
    the transaction of each change, not by a per-row trigger on the hot path."""
    app = LiteQueue("counts", db=tmp_path / "counts.db")
    triggers = app.storage.sql("SELECT name FROM sqlite_master WHERE type = 'trigger' "
                               "AND tbl_name = 'lq_job'").fetchall()
    assert triggers == []

