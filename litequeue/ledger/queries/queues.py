"""Counts per queue and status (exact on SQLite; on PostgreSQL exact up to a bound, then the
server's estimate), and each queue's ready, due, paused and purgeable rows."""

from __future__ import annotations

import json
import time
from typing import Any

import peewee as pw

from litequeue.base.states import JobStatus
from litequeue.ledger.queries._common import COUNTED, NOT_SCHEDULED, iso
from litequeue.store.dialect import sql


def queue_summary(db: pw.Database, now: float | None = None) -> dict[str, dict[str, Any]]:
    """Per queue: counts of scheduled, queued, running, retrying and failed jobs, the age of
    the oldest queued job, and whether the queue is paused."""
    now = time.time() if now is None else now
    marks = ", ".join("?" * len(COUNTED))
    out: dict[str, dict[str, Any]] = {}

    def entry(queue: str) -> dict[str, Any]:
        if queue not in out:
            out[queue] = {s.value: 0 for s in COUNTED}
            out[queue].update(oldest_queued_age_s=None, paused=False, paused_until=None)
        return out[queue]

    counted = [s.value for s in COUNTED]
    if "lq_job_count" in db.get_tables():  # SQLite: counts kept by litequeue.jobs (rows.recount)
        query = f"SELECT queue, status, n FROM lq_job_count WHERE status IN ({marks}) AND n != 0"
        rows = [(*row, False) for row in sql(db, query, counted).fetchall()]
    else:
        rows = server_counts(db, counted)
    for queue, status, n, estimated in rows:
        entry(queue)[status] = n
        if estimated:
            entry(queue).setdefault("estimated", []).append(status)
    ready = [r[0] for r in sql(db, "SELECT DISTINCT queue FROM lq_job_count WHERE status IN "
                                   f"('{JobStatus.QUEUED}', '{JobStatus.RETRYING}') AND n > 0").fetchall()] \
        if "lq_job_count" in db.get_tables() else list(out)
    for queue in ready:  # one index seek per queue (the partial index on unclaimed rows)
        oldest = sql(db, "SELECT MIN(enqueued_at) FROM lq_ready WHERE queue = ? AND claimed_by IS NULL",
                     [queue]).fetchone()[0]
        if oldest is not None:
            entry(queue)["oldest_queued_age_s"] = round(max(0.0, now - oldest), 3)
    for queue, paused, until in sql(db, "SELECT queue, paused, paused_until FROM lq_queue_state"):
        if paused and (until is None or until > now):
            e = entry(queue)
            e["paused"] = True
            e["paused_until"] = iso(until)
    return dict(sorted(out.items()))


#: Up to this many jobs of one queue and status are counted exactly on a database server;
#: beyond it the count is the planner's estimate (marked ``estimated``), never a full count.
EXACT_UP_TO = 1_000


def server_counts(db: pw.Database, statuses: list[str]) -> list[tuple[str, str, int, bool]]:
    """(queue, status, count, estimated) of each queue with jobs in ``statuses``, on
    PostgreSQL, in time that does not grow with the queue: one statement finds the queues by
    a skip scan of the (queue, status) index and counts each (queue, status) up to
    :data:`EXACT_UP_TO`; a count that reaches it is replaced by the planner's estimate (from
    the table's statistics, which autovacuum keeps fresh), or, before there are any, by a
    count over a sample of its pages (:data:`SAMPLE_PAGES`). No counter row that every writer would update."""
    rows = sql(db, (
        "WITH RECURSIVE q AS (SELECT MIN(queue) AS queue FROM lq_job UNION ALL "
        "SELECT (SELECT MIN(queue) FROM lq_job WHERE queue > q.queue) FROM q WHERE q.queue IS NOT NULL) "
        "SELECT q.queue, s.status, (SELECT COUNT(*) FROM (SELECT 1 FROM lq_job j WHERE j.queue = q.queue "
        "AND j.status = s.status LIMIT ?) t) "
        f"FROM q CROSS JOIN (VALUES {', '.join(['(CAST(? AS VARCHAR))'] * len(statuses))}) AS s (status) "
        "WHERE q.queue IS NOT NULL"), (EXACT_UP_TO + 1, *statuses)).fetchall()
    out: list[tuple[str, str, int, bool]] = []
    for queue, status, n in rows:
        if n > EXACT_UP_TO:
            estimate = planner_rows(db, queue, status)
            if estimate < n:  # no statistics yet (autovacuum has not analyzed): a page sample
                estimate = sampled_rows(db, queue, status)
            out.append((queue, status, max(estimate, n), True))
        elif n:
            out.append((queue, status, n, False))
    return out


def planner_rows(db: pw.Database, queue: str, status: str) -> int:
    """PostgreSQL's estimate of the jobs of ``queue`` in ``status`` (no rows are read)."""
    plan = sql(db, "EXPLAIN (FORMAT JSON) SELECT 1 FROM lq_job WHERE queue = ? AND status = ?",
               (queue, status)).fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


#: Pages a sampled count reads (at least 1% of the table, all of a small one).
SAMPLE_PAGES = 300


def sampled_rows(db: pw.Database, queue: str, status: str) -> int:
    """The jobs of ``queue`` in ``status`` counted in a sample of the table's pages."""
    pages = sql(db, "SELECT pg_relation_size('lq_job') / current_setting('block_size')::int").fetchone()[0]
    percent = min(100.0, max(1.0, 100.0 * SAMPLE_PAGES / max(1, pages)))
    n = sql(db, f"SELECT COUNT(*) FROM lq_job TABLESAMPLE SYSTEM ({percent:.3f}) WHERE queue = ? AND status = ?",
            (queue, status)).fetchone()[0]
    return int(n * 100 / percent)


def ready_by_queue(db: pw.Database) -> list[tuple[str, int, float]]:
    """(queue, unclaimed jobs, oldest enqueue time) per queue."""
    return sql(db, "SELECT queue, COUNT(*), MIN(enqueued_at) FROM lq_ready WHERE claimed_by IS NULL "
                   "GROUP BY queue").fetchall()


def due_by_queue(db: pw.Database, now: float) -> list[tuple[str, int]]:
    """(queue, scheduled jobs already due) per queue."""
    return sql(db, "SELECT queue, COUNT(*) FROM lq_schedule WHERE eta <= ? GROUP BY queue", [now]).fetchall()


def paused_rows(db: pw.Database) -> list[tuple[str, float | None]]:
    """(queue, paused_until) of queues marked paused (an expired ``paused_until`` is not)."""
    return sql(db, "SELECT queue, paused_until FROM lq_queue_state WHERE paused = ?", [True]).fetchall()


def queued_count(db: pw.Database, queue: str) -> int:
    """Unclaimed jobs in ``queue`` that are due (what ``purge`` would drop)."""
    return int(sql(db, f"SELECT COUNT(*) FROM lq_ready WHERE queue = ? AND claimed_by IS NULL{NOT_SCHEDULED}",
                   [queue]).fetchone()[0])
