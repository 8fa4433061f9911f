"""``litequeue top`` reads each frame in time that does not grow with the ledger: on SQLite no
statement of a frame scans the jobs or attempts (checked with EXPLAIN QUERY PLAN, so it holds
at a million jobs as at ten), and the jobs-per-minute figures count what they should."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from litequeue import LiteQueue
from litequeue.cli.top import read_snapshot
from litequeue.ledger import queries
from litequeue.ledger.queries import activity
from litequeue.store.database import open_checked as open_ledger
from litequeue.store.dialect import sql


@pytest.fixture
def ledger(tmp_path: Path) -> Any:
    app = LiteQueue("reads", db=tmp_path / "lq.db")

    @app.task()
    def work(i: int) -> int:
        return i

    @app.task(queue="mail")
    def mail(i: int) -> int:
        return i

    app.enqueue_many([work.s(i) for i in range(300)] + [mail.s(i) for i in range(20)])
    now = time.time()
    s = app.storage
    with s.write():
        # 200 finished 2 hours ago (10 failed), 10 running, the rest queued; and 20 mail jobs an hour old.
        s.sql("UPDATE lq_job SET status = 'succeeded', started_at = ?, finished_at = ?, enqueued_at = ? "
              "WHERE queue = 'default' AND seq <= 200", (now - 7201, now - 7200, now - 7300))
        s.sql("UPDATE lq_job SET status = 'failed', error = 'ValueError: no\nmore' WHERE seq <= 10")
        s.sql("UPDATE lq_job SET status = 'running', started_at = ?, worker = 'h:1:ab/77' "
              "WHERE seq > 200 AND seq <= 210", (now - 3,))
        s.sql("UPDATE lq_job SET enqueued_at = ? WHERE queue = 'mail'", (now - 3600,))
        # Statuses set by hand, not by the job-state functions: counted again, as migration 10 does.
        s.sql("DELETE FROM lq_job_count")
        s.sql("INSERT INTO lq_job_count (queue, status, n) SELECT queue, status, COUNT(*) FROM lq_job "
              "GROUP BY queue, status")
    s.close()
    db = open_ledger(str(tmp_path / "lq.db"))
    yield db
    db.close()


def test_no_statement_of_a_frame_scans_the_jobs(ledger: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, tuple]] = []
    execute = ledger.execute_sql

    def record(query: str, params: Any = (), *args: Any, **kwargs: Any) -> Any:
        seen.append((query, tuple(params or ())))
        return execute(query, params, *args, **kwargs)

    monkeypatch.setattr(ledger, "execute_sql", record)
    read_snapshot(ledger, "lq.db")
    monkeypatch.undo()
    assert len(seen) >= 6
    for query, params in seen:
        plan = [row[-1] for row in sql(ledger, "EXPLAIN QUERY PLAN " + query, params).fetchall()]
        scans = [step for step in plan if re.match(r"SCAN (lq_job|lq_attempt)(\s|$)", step)]
        assert not scans, f"{query}\n{plan}"


def test_throughput_counts_the_last_minute_only(ledger: Any) -> None:
    now = time.time()
    flow = queries.queue_throughput(ledger, now=now)
    assert flow["default"]["in"] == 100 and flow["default"]["out"] == 0  # 200 were enqueued 2 h ago
    assert "mail" not in flow  # enqueued an hour ago, not finished
    assert queries.queue_throughput(ledger, now=now + 7200) == {}


def test_past_the_sample_a_rate_is_estimated_and_marked(ledger: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(activity, "THROUGHPUT_SAMPLE", 40)
    flow = queries.queue_throughput(ledger)
    assert flow["default"]["rate_estimated"] == ["in"] and flow["default"]["in"] >= 40


def test_the_snapshot(ledger: Any) -> None:
    snap = read_snapshot(ledger, "lq.db")
    assert snap.queues["default"]["queued"] == 90 and snap.queues["default"]["running"] == 10
    assert snap.queues["mail"]["queued"] == 20 and snap.running_total == 10
    assert {(j["consumer"], j["worker"]) for j in snap.running} == {("h:1", "pid 77")}
    assert len(snap.failures) == 10 and snap.failures[0]["error"].startswith("ValueError: no")
    assert snap.consumers == []
