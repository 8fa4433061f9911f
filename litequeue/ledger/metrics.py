"""The ledger in Prometheus text format (exposition format 0.0.4), for ``/metrics``.

``litequeue_jobs_finished_total`` comes from ``lq_finished`` and survives pruning. The two
histograms are computed from the job rows the ledger still keeps, so pruning lowers them:
read them with ``rate()`` over windows shorter than the retention, or as a snapshot.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

import peewee as pw

from . import queries

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)

# Seconds a job ran (its last attempt) and waited from due (enqueue or ETA) to its first start.
DURATION = ("finished_at - started_at",
            "status IN ('succeeded', 'failed') AND started_at IS NOT NULL AND finished_at IS NOT NULL")
WAIT = ("started_at - CASE WHEN eta IS NOT NULL AND eta > enqueued_at THEN eta ELSE enqueued_at END",
        "started_at IS NOT NULL AND attempts = 1")


def label_value(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs: Sequence[tuple[str, object]]) -> str:
    if not pairs:
        return ""
    return "{" + ",".join(f'{k}="{label_value(v)}"' for k, v in pairs) + "}"


def _number(value: float) -> str:
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def _family(name: str, kind: str, text: str, samples: Iterable[tuple[str, Sequence[tuple[str, object]], float]]
            ) -> list[str]:
    lines = [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
    lines += [f"{name}{suffix}{_labels(labels)} {_number(value)}" for suffix, labels, value in samples]
    return lines


def _histogram(db: pw.Database, expression: str, where: str) -> list[tuple[str, Sequence[tuple[str, object]], float]]:
    buckets = ", ".join(f"SUM(CASE WHEN d <= {b!r} THEN 1 ELSE 0 END)" for b in BUCKETS)
    rows = queries.sql(db, f"SELECT queue, COUNT(*), SUM(d), {buckets} FROM (SELECT queue, "
                           f"CASE WHEN {expression} < 0 THEN 0 ELSE {expression} END AS d FROM lq_job "
                           f"WHERE {where}) t GROUP BY queue ORDER BY queue").fetchall()
    samples: list[tuple[str, Sequence[tuple[str, object]], float]] = []
    for queue, count, total, *cumulative in rows:
        for bound, n in zip(BUCKETS, cumulative, strict=True):
            samples.append(("_bucket", (("queue", queue), ("le", repr(bound))), n or 0))
        samples.append(("_bucket", (("queue", queue), ("le", "+Inf")), count))
        samples.append(("_sum", (("queue", queue),), round(total or 0.0, 6)))
        samples.append(("_count", (("queue", queue),), count))
    return samples


def render(db: pw.Database, now: float | None = None) -> str:
    """Every litequeue metric as Prometheus text; reads only (a read-only connection works)."""
    now = time.time() if now is None else now
    lines: list[str] = []
    finished = queries.finished_counters(db)
    lines += _family(
        "litequeue_jobs_finished_total", "counter",
        "Jobs that reached a final status, by queue, task and outcome (survives pruning).",
        (("", (("queue", r["queue"]), ("task", r["task"]), ("outcome", r["outcome"])), r["count"])
         for r in finished))
    summary = queries.queue_summary(db, now=now)
    # A queue whose jobs all finished keeps its series (at 0) instead of vanishing.
    for queue in {r["queue"] for r in finished} - set(summary):
        summary[queue] = {**{s.value: 0 for s in queries.COUNTED}, "oldest_queued_age_s": None, "paused": False}
    summary = dict(sorted(summary.items()))
    lines += _family(
        "litequeue_queue_depth", "gauge", "Jobs per queue in each unfinished status, and failed jobs kept.",
        (("", (("queue", q), ("status", s.value)), row[s.value])
         for q, row in summary.items() for s in queries.COUNTED))
    lines += _family(
        "litequeue_queue_oldest_age_seconds", "gauge",
        "Age of the oldest job waiting in the queue (0 when none waits).",
        (("", (("queue", q),), row["oldest_queued_age_s"] or 0) for q, row in summary.items()))
    lines += _family(
        "litequeue_queue_paused", "gauge", "1 while the queue is paused.",
        (("", (("queue", q),), int(row["paused"])) for q, row in summary.items()))
    lines += _family("litequeue_job_duration_seconds", "histogram",
                     "Run time of finished jobs the ledger still keeps (last attempt).",
                     _histogram(db, *DURATION))
    lines += _family("litequeue_job_wait_seconds", "histogram",
                     "Time from due (enqueue or ETA) to first start, of jobs the ledger still keeps.",
                     _histogram(db, *WAIT))
    alive = queries.consumers(db, alive_only=True)
    lines += _family("litequeue_consumers", "gauge", "Consumer processes alive (running or stopping).",
                     [("", (), len(alive))])
    lines += _family("litequeue_consumer_workers", "gauge", "Workers of the consumers alive.",
                     [("", (), sum(c["concurrency"] for c in alive))])
    return "\n".join(lines) + "\n"
