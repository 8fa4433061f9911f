"""The ledger in Prometheus text format (exposition format 0.0.4), for ``/metrics``.

``litequeue_jobs_finished_total`` comes from ``lq_finished`` and survives pruning. The
histograms (and the peak memory gauge) are computed from the job and attempt rows the ledger
still keeps, so pruning lowers them: read them with ``rate()`` over windows shorter than the
retention, or as a snapshot.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence

import peewee as pw

from litequeue.base.states import JobStatus
from litequeue.ledger import queries
from litequeue.store.dialect import sql

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)

#: Histograms need a scan of the job table, so they are recomputed at most this often.
HISTOGRAM_MAX_AGE = 15.0


def _bucket(column: str) -> str:
    return "CASE " + " ".join(f"WHEN {column} <= {b!r} THEN {i}" for i, b in enumerate(BUCKETS)) + \
        f" ELSE {len(BUCKETS)} END"


def _clamp(column: str) -> str:
    return f"CASE WHEN {column} < 0 THEN 0 ELSE {column} END"


# One scan for both histograms: duration is how long a finished job's last attempt ran; wait
# is how long a job waited from due (enqueue, or its ETA) to its first start. MATERIALIZED
# keeps SQLite from re-evaluating the expressions once per bucket.
HISTOGRAM_SQL = f"""WITH t AS MATERIALIZED (SELECT queue,
  CASE WHEN status IN ('{JobStatus.SUCCEEDED}', '{JobStatus.FAILED}') AND finished_at IS NOT NULL
       THEN finished_at - started_at END AS dur,
  CASE WHEN attempts = 1 THEN started_at - CASE WHEN eta IS NOT NULL AND eta > enqueued_at THEN eta
       ELSE enqueued_at END END AS wait
  FROM lq_job WHERE started_at IS NOT NULL)
SELECT 'duration', queue, {_bucket('dur')} AS b, COUNT(*), SUM({_clamp('dur')}) FROM t WHERE dur IS NOT NULL
  GROUP BY queue, b
UNION ALL
SELECT 'wait', queue, {_bucket('wait')} AS b, COUNT(*), SUM({_clamp('wait')}) FROM t WHERE wait IS NOT NULL
  GROUP BY queue, b"""

# What the attempts the ledger keeps used: CPU time per (queue, task) in the same buckets, and
# the largest peak resident memory per (queue, task, scope). Attempts not measured (before
# migration 9, or killed) are left out.
USAGE_SQL = f"""WITH t AS MATERIALIZED (SELECT j.queue, j.task, a.cpu_seconds AS cpu, a.peak_rss_bytes AS peak,
  a.rss_scope AS scope FROM lq_attempt a JOIN lq_job j ON j.id = a.job_id
  WHERE a.cpu_seconds IS NOT NULL OR a.peak_rss_bytes IS NOT NULL)
SELECT 'cpu', queue, task, '', {_bucket('cpu')} AS b, COUNT(*), SUM({_clamp('cpu')}) FROM t WHERE cpu IS NOT NULL
  GROUP BY queue, task, b
UNION ALL
SELECT 'peak', queue, task, scope, 0, COUNT(*), MAX(peak) FROM t WHERE peak IS NOT NULL GROUP BY queue, task, scope"""

Sample = tuple[str, Sequence[tuple[str, object]], float]


class HistogramCache:
    """Histogram samples, recomputed at most every ``max_age`` seconds (thread-safe)."""

    def __init__(self, max_age: float = HISTOGRAM_MAX_AGE) -> None:
        self.max_age = max_age
        self._at = float("-inf")
        self._value: dict[str, list[Sample]] = {}
        self._lock = threading.Lock()

    def get(self, db: pw.Database, now: float) -> dict[str, list[Sample]]:
        with self._lock:
            if now - self._at >= self.max_age or now < self._at:
                self._value = histograms(db)
                self._at = now
            return self._value


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


def _family(name: str, kind: str, text: str, samples: Iterable[Sample]) -> list[str]:
    lines = [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
    lines += [f"{name}{suffix}{_labels(labels)} {_number(value)}" for suffix, labels, value in samples]
    return lines


def histograms(db: pw.Database) -> dict[str, list[Sample]]:
    """Samples of ``duration`` and ``wait`` per queue, from the job rows the ledger keeps."""
    counts: dict[tuple[str, str], list[int]] = {}
    sums: dict[tuple[str, str], float] = {}
    for kind, queue, bucket, n, total in sql(db, HISTOGRAM_SQL).fetchall():
        key = (kind, queue)
        counts.setdefault(key, [0] * (len(BUCKETS) + 1))[int(bucket)] += n
        sums[key] = sums.get(key, 0.0) + (total or 0.0)
    out: dict[str, list[Sample]] = {"duration": [], "wait": []}
    for (kind, queue), per_bucket in sorted(counts.items()):
        _buckets(out[kind], (("queue", queue),), per_bucket, sums[(kind, queue)])
    out.update(usage(db))
    return out


def _buckets(samples: list[Sample], labels: tuple[tuple[str, object], ...], per_bucket: list[int],
             total: float) -> None:
    running = 0
    for bound, n in zip((*map(repr, BUCKETS), "+Inf"), per_bucket, strict=True):
        running += n
        samples.append(("_bucket", (*labels, ("le", bound)), running))
    samples.append(("_sum", labels, round(total, 6)))
    samples.append(("_count", labels, running))


def usage(db: pw.Database) -> dict[str, list[Sample]]:
    """Samples of ``cpu`` (a histogram per queue and task) and ``peak`` (the largest peak
    resident memory per queue, task and scope), from the attempts the ledger keeps."""
    counts: dict[tuple[str, str], list[int]] = {}
    sums: dict[tuple[str, str], float] = {}
    peaks: list[Sample] = []
    for kind, queue, task, scope, bucket, n, value in sql(db, USAGE_SQL).fetchall():
        if kind == "peak":
            peaks.append(("", (("queue", queue), ("task", task), ("scope", scope)), int(value)))
            continue
        counts.setdefault((queue, task), [0] * (len(BUCKETS) + 1))[int(bucket)] += n
        sums[(queue, task)] = sums.get((queue, task), 0.0) + (value or 0.0)
    cpu: list[Sample] = []
    for (queue, task), per_bucket in sorted(counts.items()):
        _buckets(cpu, (("queue", queue), ("task", task)), per_bucket, sums[(queue, task)])
    return {"cpu": cpu, "peak": sorted(peaks, key=lambda s: tuple(str(v) for _, v in s[1]))}


def render(db: pw.Database, now: float | None = None, cache: HistogramCache | None = None) -> str:
    """Every litequeue metric as Prometheus text; reads only (a read-only connection works).
    With ``cache`` the histograms may be up to ``cache.max_age`` seconds old."""
    now = time.time() if now is None else now
    hist = cache.get(db, now) if cache is not None else histograms(db)
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
                     hist["duration"])
    lines += _family("litequeue_job_wait_seconds", "histogram",
                     "Time from due (enqueue or ETA) to first start, of jobs the ledger still keeps.",
                     hist["wait"])
    lines += _family("litequeue_attempt_cpu_seconds", "histogram",
                     "CPU time (user + system) of the attempts the ledger keeps: the worker thread's, or the "
                     "worker process's.", hist["cpu"])
    lines += _family("litequeue_attempt_peak_rss_bytes", "gauge",
                     "Largest peak resident memory of an attempt the ledger keeps; scope job: the worker "
                     "process's own (reset per attempt), consumer: the consumer process's while it ran.",
                     hist["peak"])
    alive = queries.consumers(db, alive_only=True)
    lines += _family("litequeue_consumers", "gauge", "Consumer processes alive (running or stopping).",
                     [("", (), len(alive))])
    lines += _family("litequeue_consumer_workers", "gauge", "Workers of the consumers alive.",
                     [("", (), sum(c["concurrency"] for c in alive))])
    return "\n".join(lines) + "\n"
