"""``status`` on PostgreSQL counts each queue and status exactly up to a bound, then shows the
server's estimate, marked as one (a million queued jobs are never counted one by one)."""

from __future__ import annotations

import pytest

from litequeue import LiteQueue
from litequeue.ledger import queries
from litequeue.ledger.queries import queues as queue_counts


def test_counts_past_the_bound_are_estimates_marked_as_such(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    app = LiteQueue("counts", db=pg_url)

    @app.task(queue="big")
    def work(i: int) -> None:
        return None

    @app.task(queue="small")
    def other(i: int) -> None:
        return None

    try:
        app.enqueue_many([work.s(i) for i in range(300)] + [other.s(i) for i in range(5)])
        monkeypatch.setattr(queue_counts, "EXACT_UP_TO", 50)
        summary = queries.queue_summary(app.storage.database)
        assert summary["small"]["queued"] == 5 and "estimated" not in summary["small"]
        assert summary["big"]["estimated"] == ["queued"]
        assert summary["big"]["queued"] > 50  # before ANALYZE: a page sample; never below the bound
        app.storage.sql("ANALYZE lq_job")
        summary = queries.queue_summary(app.storage.database)
        assert summary["big"]["estimated"] == ["queued"]
        assert 250 <= summary["big"]["queued"] <= 350  # the planner's estimate from fresh statistics
        monkeypatch.setattr(queue_counts, "EXACT_UP_TO", 10_000)
        assert queries.queue_summary(app.storage.database)["big"]["queued"] == 300  # exact below the bound
    finally:
        app.storage.close()
