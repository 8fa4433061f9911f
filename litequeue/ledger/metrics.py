"""The ledger in Prometheus text format (exposition format 0.0.4), for ``/metrics``.

``litequeue_jobs_finished_total`` comes from ``lq_finished``; the histograms and the peak
memory gauge from ``lq_histogram``, which every ack adds to (litequeue.jobs.counters). All of
them survive pruning and only ever grow: Prometheus counters, read them with ``rate()``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence

import peewee as pw

from litequeue.base.histogram import BUCKETS
from litequeue.ledger import queries
from litequeue.store.dialect import sql

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: The histograms are read again at most this often (a few hundred rows: cheap, but a busy
#: scraper need not read them every time).
HISTOGRAM_MAX_AGE = 5.0


#: The histograms and peak memory the acks counted (litequeue.jobs.counters), summed over
#: the consumers' shards: a row per queue, task, kind and bucket, whatever the volume.
COUNTERS_SQL = ("SELECT kind, queue, task, bucket, SUM(n), SUM(total), MAX(total) FROM lq_histogram "
                "GROUP BY kind, queue, task, bucket")

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
    """Samples of ``duration`` and ``wait`` per queue, ``cpu`` per queue and task (histograms)
    and ``peak`` (the largest peak resident memory per queue, task and scope), from the
    counters the acks write."""
    counts: dict[tuple[str, ...], list[int]] = {}
    sums: dict[tuple[str, ...], float] = {}
    peaks: list[Sample] = []
    for kind, queue, task, bucket, n, total, largest in sql(db, COUNTERS_SQL).fetchall():
        if kind.startswith("peak:"):
            peaks.append(("", (("queue", queue), ("task", task), ("scope", kind[5:])), int(largest)))
            continue
        key = (kind, queue) if kind in ("duration", "wait") else (kind, queue, task)
        counts.setdefault(key, [0] * (len(BUCKETS) + 1))[min(int(bucket), len(BUCKETS))] += int(n)
        sums[key] = sums.get(key, 0.0) + float(total or 0.0)
    out: dict[str, list[Sample]] = {"duration": [], "wait": [], "cpu": []}
    for key, per_bucket in sorted(counts.items()):
        labels = (("queue", key[1]),) if len(key) == 2 else (("queue", key[1]), ("task", key[2]))
        _buckets(out[key[0]], labels, per_bucket, sums[key])
    # One row per (queue, task, scope) already: COUNTERS_SQL takes the largest of the shards'.
    out["peak"] = sorted(peaks, key=lambda s: tuple(str(v) for _, v in s[1]))
    return out


def _buckets(samples: list[Sample], labels: tuple[tuple[str, object], ...], per_bucket: list[int],
             total: float) -> None:
    running = 0
    for bound, n in zip((*map(repr, BUCKETS), "+Inf"), per_bucket, strict=True):
        running += n
        samples.append(("_bucket", (*labels, ("le", bound)), running))
    samples.append(("_sum", labels, round(total, 6)))
    samples.append(("_count", labels, running))


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
                     "Run time of the last attempt of jobs that ended succeeded or failed, counted by their ack.",
                     hist["duration"])
    lines += _family("litequeue_job_wait_seconds", "histogram",
                     "Time from due (enqueue or ETA) to first start, counted when the first attempt ends.",
                     hist["wait"])
    lines += _family("litequeue_attempt_cpu_seconds", "histogram",
                     "CPU time (user + system) of the attempts acked: the worker thread's, or the "
                     "worker process's.", hist["cpu"])
    lines += _family("litequeue_attempt_peak_rss_bytes", "gauge",
                     "Largest peak resident memory of an attempt acked; scope job: the worker "
                     "process's own (reset per attempt), consumer: the consumer process's while it ran.",
                     hist["peak"])
    alive = queries.consumers(db, alive_only=True)
    lines += _family("litequeue_consumers", "gauge", "Consumer processes alive (running or stopping).",
                     [("", (), len(alive))])
    lines += _family("litequeue_consumer_workers", "gauge", "Workers of the consumers alive.",
                     [("", (), sum(c["concurrency"] for c in alive))])
    return "\n".join(lines) + "\n"
