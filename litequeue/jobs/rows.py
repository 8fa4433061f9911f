"""The row writes every stage of a job's life shares: the ``IN (...)`` list, claimed rows
read back as :class:`Claim`, the counts per queue and status, the event log, progress
reports and the health probe's write.

Part of the job-state writer (:mod:`litequeue.jobs`): every function runs inside the
caller's write transaction.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from litequeue.base.values import Claim
from litequeue.store.dialect import marks

if TYPE_CHECKING:
    from litequeue.engine.storage import LiteStorage


def in_list(values: Sequence[Any]) -> str:
    """``(?, ?, ...)``: the placeholders of an ``IN`` list of ``values``."""
    return f"({marks(len(values))})"


def claim_rows(store: LiteStorage, query: str, params: Sequence[Any], now: float) -> list[Claim]:
    """Run a claiming ``UPDATE lq_ready ... RETURNING`` and read its rows as claims."""
    return [Claim(row_id, job_id, queue, priority, bytes(data), crash_cap, claimed_at=now,
                  suspect=crashes > 0, has_file=bool(has_file), crashes=crashes, due_at=enqueued_at or 0.0)
            for row_id, job_id, queue, priority, data, crash_cap, crashes, has_file, enqueued_at
            in store.sql(query, params).fetchall()]


#: (queue, status) of each job, as :func:`statuses` reads them before a change
Seen = dict[str, tuple[str, str]]


def statuses(store: LiteStorage, job_ids: Sequence[str]) -> Seen:
    """SQLite: {job id: (queue, status)} of those of ``job_ids`` in the ledger, read before
    a change so that :func:`recount` can write what it moved. Nothing on PostgreSQL (it
    counts with ``COUNT(*)``: a counter row every transaction updates would serialise its
    consumers)."""
    if not store.is_sqlite or not job_ids:
        return {}
    seen: Seen = {}
    ids = list(dict.fromkeys(job_ids))
    for i in range(0, len(ids), 500):
        part = ids[i:i + 500]
        seen.update((r[0], (r[1], r[2])) for r in store.sql(
            f"SELECT id, queue, status FROM lq_job WHERE id IN {in_list(part)}", part).fetchall())
    return seen


def recount(store: LiteStorage, before: Seen, job_ids: Sequence[str]) -> None:
    """SQLite: move ``job_ids`` in ``lq_job_count`` from where :func:`statuses` saw them
    (``before``) to where they are now (a job gone from the ledger leaves its count, a new
    one joins one), in the caller's transaction. What the per-row triggers of migration 1
    did, once per statement instead of once per row."""
    if not store.is_sqlite or not job_ids:
        return
    moves(store, before, statuses(store, job_ids))


def moves(store: LiteStorage, before: Seen, after: Seen) -> None:
    """Write the difference between two :func:`statuses` readings to ``lq_job_count``."""
    if not store.is_sqlite:
        return
    delta: dict[tuple[str, str], int] = {}
    for job_id in before.keys() | after.keys():
        old, new = before.get(job_id), after.get(job_id)
        if old == new:
            continue
        if old is not None:
            delta[old] = delta.get(old, 0) - 1
        if new is not None:
            delta[new] = delta.get(new, 0) + 1
    rows = [(queue, status, n) for (queue, status), n in delta.items() if n]
    if rows:
        store.many("INSERT INTO lq_job_count (queue, status, n) VALUES (?, ?, ?) "
                   "ON CONFLICT (queue, status) DO UPDATE SET n = n + excluded.n", rows)


def touch(store: Any) -> None:
    """A write that changes nothing but still takes the write lock and writes a page, so a
    read-only file, folder or filesystem fails here (``health``)."""
    store.sql("UPDATE lq_meta SET value = value WHERE key IN (SELECT key FROM lq_meta LIMIT 1)")


def record_progress(store: LiteStorage, job_id: str, done: float, total: float | None,
                    message: str | None) -> None:
    """A running job's progress report."""
    now = time.time()
    store.sql("UPDATE lq_job SET progress_done = ?, progress_total = ?, progress_message = ?, "
              "progress_at = ?, updated_at = ? WHERE id = ?", (done, total, message, now, now, job_id))


def record_event(store: LiteStorage, action: str, *, job_id: str | None = None,
                 queue: str | None = None, detail: str | None = None, actor: str = "cli") -> None:
    """An action a person or tool took (retry, cancel, pause, purge, prune) for the log."""
    store.sql("INSERT INTO lq_event (at, action, job_id, queue, detail, actor) VALUES (?, ?, ?, ?, ?, ?)",
              (time.time(), action, job_id, queue, detail, actor))
