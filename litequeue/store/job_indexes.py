"""The job table's indexes on SQLite, each named with the read that needs it, and migration
10, which narrowed the row an enqueue, a claim and an ack write.

Before it, every enqueue wrote ``lq_job`` and five of its indexes (two remain), every claim and ack moved
the row in two status indexes (``commit_pages.py --by-btree``: about 5 of a claim's 14 pages
and 4 of an ack's 12). What an ordinary job does (enqueued ``queued``, claimed ``running``,
acked ``succeeded``) now writes the row, ``job_id`` and, while it runs, ``lq_job_running``;
the counts per queue and status are in ``lq_job_count``.

Each index of ``lq_job`` on SQLite and the read it serves:

* ``job_id`` (unique): every read and write of one job;
* ``job_task_seq`` (task, seq): the task names of the job list's filter menu
  (``job_facets``, a loose index scan: one seek per task) and ``jobs list --task``;
* ``lq_job_finished`` (partial, finished jobs): jobs finished in a window (stats, the
  overview's per-minute activity, ``processed``, retention);
* ``lq_job_running`` (partial, ``status = 'running'``): ``running_jobs`` and
  ``running_since`` (the Running page, ``top``, long-running jobs);
* ``lq_job_off_path`` (partial, the statuses of :data:`OFF_PATH`): ``jobs list --status
  failed`` (and retrying, scheduled, ...), ``jobs retry --all-failed`` (``failed_job_ids``);
* ``lq_job_parent``, ``lq_job_retried_from``, ``lq_job_batch`` (partial, non-NULL): a job's
  pipeline steps, its retries, a batch's members.

The queue names of the filter menu come from ``lq_job_count``. A list by ``--queue`` (and
by ``queued`` or ``succeeded``) walks ``seq`` (the rowid) backwards and stops at its page.
PostgreSQL keeps its indexes: its counts per queue and status read ``job_queue_status``.
"""

from __future__ import annotations

import peewee as pw

from litequeue.base.states import AttemptOutcome
from litequeue.base.states import JobStatus as S
from litequeue.store import dialect

#: The statuses an ordinary job never passes through: only those rows are in ``lq_job_off_path``.
OFF_PATH = ("cancelled", "expired", "failed", "retrying", "scheduled", "waiting")
#: The partial index's own ``WHERE`` term: a query must repeat it, word for word, for
#: SQLite's planner to use the index (it proves a partial index usable only from the same term).
OFF_PATH_SQL = "status IN ('" + "', '".join(OFF_PATH) + "')"
#: The same for ``lq_job_running``.
RUNNING_SQL = "status = 'running'"


def narrow_job_row(db: pw.Database) -> None:
    """Migration 10 (SQLite; nothing on PostgreSQL): three full indexes go, two partial
    ones come."""
    if not dialect.is_sqlite(db):
        return
    for name in ("job_status_seq", "job_queue_status", "job_queue_seq"):
        dialect.sql(db, f'DROP INDEX IF EXISTS "{name}"')
    dialect.sql(db, f"CREATE INDEX IF NOT EXISTS lq_job_running ON lq_job (status, started_at) WHERE {RUNNING_SQL}")
    dialect.sql(db, f"CREATE INDEX IF NOT EXISTS lq_job_off_path ON lq_job (status, seq) WHERE {OFF_PATH_SQL}")
    # The counts per (queue, status) are written by the job-state functions now
    # (litequeue.jobs.rows.recount), once per statement: no per-row trigger on the hot path.
    for trigger in ("lq_job_count_insert", "lq_job_count_update", "lq_job_count_delete"):
        dialect.sql(db, f"DROP TRIGGER IF EXISTS {trigger}")


#: SQLite: jobs that succeeded, failed and were retried, per minute, queue and task, written
#: by the acks (litequeue.jobs.rows.count_activity): the overview reads these, not the jobs.
ACTIVITY = (
    "CREATE TABLE IF NOT EXISTS lq_activity (minute INTEGER NOT NULL, queue TEXT NOT NULL, task TEXT NOT NULL, "
    "outcome TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (minute, queue, task, outcome)) WITHOUT ROWID",
    "INSERT INTO lq_activity SELECT CAST(finished_at / 60 AS INTEGER) * 60 AS m, queue, task, status, COUNT(*) "
    f"FROM lq_job WHERE finished_at IS NOT NULL AND status IN ('{S.SUCCEEDED}', '{S.FAILED}') "
    "GROUP BY m, queue, task, status",
    f"INSERT INTO lq_activity SELECT CAST(a.finished_at / 60 AS INTEGER) * 60 AS m, j.queue, j.task, '{S.RETRYING}', "
    f"COUNT(*) FROM lq_attempt a JOIN lq_job j ON j.id = a.job_id WHERE a.outcome = '{AttemptOutcome.RETRYING}' "
    "AND a.finished_at IS NOT NULL GROUP BY m, j.queue, j.task",
)
