"""Counters written with the ack: jobs finished per minute (``lq_activity``) and the run,
wait and CPU time histograms with the largest peak memory (``lq_histogram``), kept in the
transaction that writes the outcome, so the overview and ``/metrics`` read a few hundred
rows whatever the volume, and the counts stay exact under kills (a killed ack wrote none
of them).

On PostgreSQL each consumer writes rows of its own (``shard``, from its holder id): rows
shared by every ack would make concurrent consumers wait on each other's row locks. On
SQLite writers take turns anyway: one shard. Readers sum over the shards.

Part of the job-state writer (:mod:`litequeue.jobs`): every function runs inside the
caller's write transaction.
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from litequeue.base.histogram import bucket_of
from litequeue.base.states import AttemptOutcome, JobStatus
from litequeue.base.values import Finished
from litequeue.jobs.rows import in_list
from litequeue.store.dialect import greatest

if TYPE_CHECKING:
    from litequeue.engine.storage import LiteStorage

#: The outcomes counted per minute in ``lq_activity``.
ACTIVITY = ("succeeded", "failed", "retrying")
#: PostgreSQL: how many rows of each counter the consumers spread their writes over.
SHARDS = 16
#: Outcomes whose run time ``litequeue_job_duration_seconds`` counts.
TIMED = (JobStatus.SUCCEEDED, JobStatus.FAILED)


def shard_of(store: LiteStorage, holder: str) -> int:
    """The counter rows ``holder`` writes: its own on PostgreSQL, the one on SQLite."""
    return 0 if store.is_sqlite else zlib.crc32(holder.encode()) % SHARDS


def count_activity(store: LiteStorage, done: Iterable[tuple[float, str, str, str]], shard: int = 0) -> None:
    """Count (finished at, queue, task, outcome) per minute in ``lq_activity``."""
    tally = Counter((int(at // 60) * 60, queue, task, outcome) for at, queue, task, outcome in done
                    if outcome in ACTIVITY)
    if tally:
        store.many("INSERT INTO lq_activity (minute, queue, task, outcome, shard, n) VALUES (?, ?, ?, ?, ?, ?) "
                   "ON CONFLICT (minute, queue, task, outcome, shard) DO UPDATE SET n = lq_activity.n + excluded.n",
                   [(*key, shard, n) for key, n in tally.items()])


def count_failed(store: LiteStorage, job_ids: Sequence[str], at: float) -> None:
    """:func:`count_activity` for jobs that ended ``failed`` at ``at`` outside an ack."""
    if job_ids:
        count_activity(store, [(at, queue, task, "failed") for queue, task in store.sql(
            f"SELECT queue, task FROM lq_job WHERE id IN {in_list(job_ids)}", list(job_ids)).fetchall()])


def count_acked(store: LiteStorage, acked: Sequence[Finished], shard: int) -> None:
    """Everything an ack counts: the per-minute activity and the histograms."""
    count_activity(store, [(i.finished_at, i.claim.queue, i.task, "retrying" if i.outcome is AttemptOutcome.RETRYING
                            else i.status.value) for i in acked], shard)
    sums: Counter[tuple[str, str, str, int]] = Counter()
    counts: Counter[tuple[str, str, str, int]] = Counter()
    peaks: dict[tuple[str, str, str, int], float] = {}

    def add(key: tuple[str, str, str, int], value: float) -> None:
        counts[key] += 1
        sums[key] += max(0.0, value)

    for i in acked:
        if i.outcome is AttemptOutcome.RELEASED:
            continue  # not due yet: no attempt was made
        queue, task = i.claim.queue, i.task
        if i.status in TIMED:
            add((queue, task, "duration", bucket_of(i.duration)), i.duration)
        if i.claim.attempt == 1 and i.claim.due_at:
            wait = max(0.0, i.started_at - i.claim.due_at)
            add((queue, task, "wait", bucket_of(wait)), wait)
        if i.usage is not None:
            add((queue, task, "cpu", bucket_of(i.usage.cpu_seconds)), i.usage.cpu_seconds)
            if i.usage.peak_rss_bytes is not None:
                key = (queue, task, f"peak:{i.usage.rss_scope}", 0)
                peaks[key] = max(peaks.get(key, 0.0), float(i.usage.peak_rss_bytes))
    if counts:
        store.many("INSERT INTO lq_histogram (queue, task, kind, bucket, shard, n, total) VALUES (?, ?, ?, ?, ?, ?, ?) "
                   "ON CONFLICT (queue, task, kind, bucket, shard) DO UPDATE SET n = lq_histogram.n + excluded.n, "
                   "total = lq_histogram.total + excluded.total",
                   [(*key, shard, n, sums[key]) for key, n in counts.items()])
    if peaks:
        store.many("INSERT INTO lq_histogram (queue, task, kind, bucket, shard, n, total) VALUES (?, ?, ?, ?, ?, 1, ?) "
                   "ON CONFLICT (queue, task, kind, bucket, shard) DO UPDATE SET n = lq_histogram.n + 1, "
                   f"total = {greatest(store.database, 'lq_histogram.total', 'excluded.total')}",
                   [(*key, shard, peak) for key, peak in peaks.items()])
