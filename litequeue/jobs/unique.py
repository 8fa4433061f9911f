"""Unique keys: a job takes its key when it is enqueued, and its key is held ``unique_for``
seconds more once it has ended, then free.

Part of the job-state writer (:mod:`litequeue.jobs`); :mod:`litequeue.jobs.dependencies`
calls both in the enqueue's and the ending transition's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from litequeue.base.states import FINAL_VALUES
from litequeue.base.values import NewJob
from litequeue.jobs.rows import in_list

if TYPE_CHECKING:
    from litequeue.engine.storage import LiteStorage


def take_keys(store: LiteStorage, jobs: list[NewJob], now: float) -> set[str]:
    """Each job takes its unique key, unless a job holds it: one that has not ended, or
    ended less than its ``unique_for`` ago. An upsert on the key's primary key, so of
    any number of producers at once exactly one takes it (the others wait for its commit,
    then find it held). Returns the ids of the jobs not to write."""
    dropped: set[str] = set()
    holders: dict[str, str] = {}
    # In key order: two producers taking the same keys never wait for each other in a circle.
    for job in sorted(jobs, key=lambda j: str(j.options.unique_key if j.options else "")):
        assert job.options is not None and job.options.unique_key is not None
        key = job.options.unique_key
        holder = holders.get(key)
        if holder is None:
            took = store.sql(
                "INSERT INTO lq_unique (key, job_id, unique_for, held_until, created_at) VALUES (?, ?, ?, NULL, ?) "
                "ON CONFLICT (key) DO UPDATE SET job_id = excluded.job_id, unique_for = excluded.unique_for, "
                "held_until = NULL, created_at = excluded.created_at "
                "WHERE lq_unique.held_until IS NOT NULL AND lq_unique.held_until <= ? RETURNING job_id",
                (key, job.id, float(job.options.unique_for or 0.0), now, now)).fetchone()
            if took is not None:
                holders[key] = job.id
                continue
            holder = holders[key] = str(store.sql("SELECT job_id FROM lq_unique WHERE key = ?", (key,)).fetchone()[0])
        if holder == job.id:
            continue  # the holder itself, enqueued again under its id (a pipeline step's turn)
        dropped.add(job.id)
        if job.on_duplicate is not None:
            job.on_duplicate(holder)
    return dropped


def end_keys(store: LiteStorage, job_ids: Sequence[str], now: float) -> None:
    """``job_ids`` may just have ended for good: each one's unique key is held
    ``unique_for`` seconds more (``held_until``), then free."""
    store.sql("UPDATE lq_unique SET held_until = ? + unique_for WHERE held_until IS NULL "
              f"AND job_id IN {in_list(job_ids)} AND EXISTS (SELECT 1 FROM lq_job j "
              f"WHERE j.id = lq_unique.job_id AND j.status IN {in_list(FINAL_VALUES)})",
              (now, *job_ids, *FINAL_VALUES))
