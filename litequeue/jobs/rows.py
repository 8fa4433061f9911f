"""The row writes every stage of a job's life shares: the ``IN (...)`` list, claimed rows
read back as :class:`Claim`, the event log, progress reports and the health probe's write.

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
                  suspect=crashes > 0, has_file=bool(has_file), crashes=crashes)
            for row_id, job_id, queue, priority, data, crash_cap, crashes, has_file
            in store.sql(query, params).fetchall()]


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
