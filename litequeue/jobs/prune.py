"""The prune writes: finished jobs deleted with their attempts, results, flags, tags and
dependency rows; old history rows deleted; the shared auto-prune turn taken.

Part of the job-state writer (:mod:`litequeue.jobs`); :mod:`litequeue.jobs.retention`
chooses what to prune and opens the transactions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from litequeue.base.states import FINAL_VALUES
from litequeue.jobs.dependencies import forget_options
from litequeue.jobs.rows import in_list, record_event, recount, statuses

if TYPE_CHECKING:
    from litequeue.engine.storage import LiteStorage


def prune_jobs(store: LiteStorage, rows: Sequence[tuple[str, str]]) -> tuple[int, int, int]:
    """Delete finished jobs ``rows`` ((id, app) pairs, chosen by ``retention``), their
    attempts, results and flags. Returns (jobs, attempts, results) deleted."""
    ids = [(job_id,) for job_id, _ in rows]
    attempts = _count(store, "DELETE FROM lq_attempt WHERE job_id = ?", ids)
    kv = "DELETE FROM lq_kv WHERE queue = ? AND key = ?"
    results = _count(store, kv, [(app, job_id) for job_id, app in rows])
    # Cancel and revoke flags of a finished job are dead weight.
    _count(store, kv, [(app, f"{flag}:{job_id}") for job_id, app in rows for flag in ("cancel", "r")])
    seen = statuses(store, [i for (i,) in ids])
    jobs = _count(store, f"DELETE FROM lq_job WHERE id = ? AND status IN {in_list(FINAL_VALUES)}",
                  [(i, *FINAL_VALUES) for (i,) in ids])
    recount(store, seen, [i for (i,) in ids])
    forget_options(store, ids)
    return jobs, attempts, results


#: What may be discarded by hand: jobs that ended without succeeding.
DISCARDABLE = ("failed", "cancelled", "expired")


def discard(store: LiteStorage, job_ids: Sequence[str], actor: str) -> dict[str, str]:
    """Discard jobs by hand: a failed, cancelled or expired job is deleted from the ledger as
    a prune would delete it (attempts, result, flags, tags), and an event says who did it.
    Returns {id: "discarded" or why not}."""
    out: dict[str, str] = {}
    rows: list[tuple[str, str]] = []
    found = {}
    if job_ids:
        found = {r[0]: (r[1], r[2], r[3], r[4]) for r in store.sql(
            f"SELECT id, app, status, queue, task FROM lq_job WHERE id IN {in_list(list(job_ids))}",
            list(job_ids)).fetchall()}
    for job_id in job_ids:
        if job_id not in found:
            out[job_id] = "not in the ledger"
        elif found[job_id][1] not in DISCARDABLE:
            out[job_id] = f"not discarded: it is {found[job_id][1]} (only failed, cancelled or expired jobs are)"
        else:
            rows.append((job_id, found[job_id][0]))
            out[job_id] = "discarded"
    if rows:
        prune_jobs(store, rows)
        for job_id, _ in rows:
            app, status, queue, task = found[job_id]
            record_event(store, "discard", job_id=job_id, queue=queue, detail=f"{task}, was {status}", actor=actor)
    return out


def prune_rows(store: LiteStorage, table: str, condition: str, edge: float, batch: int) -> int:
    """Delete up to ``batch`` history rows of ``table`` (events, periodic-run keys, stopped
    consumers) matching ``condition`` (one ``?``, bound to ``edge``)."""
    return max(0, store.sql(f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} "
                            f"WHERE {condition} LIMIT ?)", (edge, batch)).rowcount)


def _count(store: LiteStorage, query: str, rows: Sequence[Sequence[Any]]) -> int:
    return max(0, store.many(query, rows)) if rows else 0


def take_prune_turn(store: LiteStorage, now: float, interval: float) -> bool:
    """Take the shared auto-prune turn (one consumer prunes per ``interval``)."""
    return store.sql(
        "INSERT INTO lq_meta (key, value) VALUES ('auto_prune_at', ?) ON CONFLICT (key) DO "
        # DOUBLE PRECISION, not REAL: on PostgreSQL REAL is 4 bytes, which rounds an epoch
        # to 128 s (SQLite reads either name as its 8-byte REAL).
        "UPDATE SET value = excluded.value WHERE CAST(lq_meta.value AS DOUBLE PRECISION) <= ?",
        (repr(now), now - interval)).rowcount == 1
