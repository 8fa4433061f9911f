"""Job lists and one job's detail, the filters and facets of the list, and tags."""

from __future__ import annotations

from typing import Any

import peewee as pw

from litequeue.base.states import FINAL_VALUES, JobStatus
from litequeue.ledger.queries._common import JOB_FIELDS, NOT_SCHEDULED, dict_rows, iso, job_dict
from litequeue.ledger.queries.limits import held_reason
from litequeue.store.dialect import sql
from litequeue.store.job_indexes import OFF_PATH, OFF_PATH_SQL, RUNNING_SQL


def job_filter(status: str | None, queue: str | None, task: str | None,
               search: str | None, tag: str | None = None, retried: bool | None = None) -> tuple[list[str], list[Any]]:
    """WHERE terms and parameters shared by the job list and its counts. ``task`` matches
    the bare name and the module-qualified one (``send_receipt``, ``tasks.send_receipt``);
    ``retried``: only jobs retried since (True) or not (False)."""
    where: list[str] = []
    params: list[Any] = []
    if task and "." in task:
        where.append("task IN (?, ?)")
        params += [task, task.rsplit(".", 1)[1]]
        task = None
    if retried is not None:
        where.append("retried_as IS NOT NULL" if retried else "retried_as IS NULL")
    if status in OFF_PATH:
        where.append(OFF_PATH_SQL)  # the partial index's own term (litequeue.store.job_indexes)
    elif status == JobStatus.RUNNING.value:
        where.append(RUNNING_SQL)
    for column, value in (("status", status), ("queue", queue), ("task", task)):
        if value:
            where.append(f"{column} = ?")
            params.append(value)
    if tag:
        where.append("id IN (SELECT job_id FROM lq_job_tag WHERE tag = ?)")
        params.append(tag)
    if search:
        where.append("(id = ? OR args LIKE ? OR kwargs LIKE ? OR error LIKE ?)")
        like = f"%{search}%"
        params += [search, like, like, like]
    return where, params


def list_jobs(db: pw.Database, *, status: str | None = None, queue: str | None = None,
              task: str | None = None, search: str | None = None, before: int | None = None,
              limit: int = 50, tag: str | None = None, retried: bool | None = None) -> list[dict[str, Any]]:
    """Newest first, keyset-paginated: pass the last row's ``seq`` as ``before``."""
    where, params = job_filter(status, queue, task, search, tag, retried)
    if before is not None:
        where.append("seq < ?")
        params.append(before)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    rows = dict_rows(sql(db, f"SELECT {', '.join(JOB_FIELDS)} FROM lq_job{clause} "
                         "ORDER BY seq DESC LIMIT ?", [*params, limit]))
    return with_tags(db, [job_dict(r) for r in rows])


def get_job(db: pw.Database, job_id: str) -> dict[str, Any] | None:
    """Everything the ledger knows about one job: row, attempts, children, inbox file."""
    rows = dict_rows(sql(db, f"SELECT {', '.join(JOB_FIELDS)} FROM lq_job WHERE id = ?", [job_id]))
    if not rows:
        return None
    job = job_dict(rows[0])
    attempts = dict_rows(sql(db, "SELECT number, consumer_id, started_at, finished_at, outcome, error, "
                             "cpu_seconds, peak_rss_bytes, rss_scope "
                             "FROM lq_attempt WHERE job_id = ? ORDER BY number", [job_id]))
    for a in attempts:
        a["duration_s"] = (round(a["finished_at"] - a["started_at"], 6)
                           if a["finished_at"] is not None else None)
        a["worker"] = a.pop("consumer_id")
        a["started_at"], a["finished_at"] = iso(a["started_at"]), iso(a["finished_at"])
    job["attempt_list"] = attempts
    job["children"] = [r[0] for r in sql(db, "SELECT id FROM lq_job WHERE parent_id = ? ORDER BY seq",
                                         [job_id]).fetchall()]
    job["retries"] = [r[0] for r in sql(db, "SELECT id FROM lq_job WHERE retried_from = ? "
                                            "ORDER BY seq", [job_id]).fetchall()]
    files = dict_rows(sql(db, "SELECT inbox, name, path, size, sha256, state, taken_at, settled_at "
                          "FROM lq_inbox_file WHERE job_id = ?", [job_id]))
    for f in files:
        f["taken_at"], f["settled_at"] = iso(f["taken_at"]), iso(f["settled_at"])
    job["file"] = files[0] if files else None
    with_tags(db, [job])
    job["depends_on"] = [{"id": d, "outcome": o} for d, o in sql(
        db, "SELECT depends_on, outcome FROM lq_dependency WHERE job_id = ? ORDER BY depends_on", [job_id])]
    job["dependents"] = [r[0] for r in sql(db, "SELECT job_id FROM lq_dependency WHERE depends_on = ? "
                                               "ORDER BY job_id", [job_id]).fetchall()]
    job["held"] = held_reason(db, rows[0])
    return job


def failed_job_ids(db: pw.Database, *, queue: str | None = None, task: str | None = None,
                   search: str | None = None, tag: str | None = None) -> list[str]:
    """Failed jobs not retried yet (a retried one is followed by the job it was retried as)."""
    ids: list[str] = []
    before = None
    while True:
        page = list_jobs(db, status="failed", queue=queue, task=task, search=search,
                         before=before, limit=1000, tag=tag)
        ids.extend(j["id"] for j in page if not j["retried_as"])
        if len(page) < 1000:
            return ids
        before = page[-1]["seq"]


def matching_ids(db: pw.Database, *, status: str | None = None, queue: str | None = None,
                 task: str | None = None, search: str | None = None, tag: str | None = None,
                 retried: bool | None = None, limit: int = 100_000) -> list[str]:
    """The ids of every job the list shows with these filters ("all N matching"), newest first."""
    where, params = job_filter(status, queue, task, search, tag, retried)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    return [r[0] for r in sql(db, f"SELECT id FROM lq_job{clause} ORDER BY seq DESC LIMIT ?",
                              [*params, limit]).fetchall()]


def count_matching(db: pw.Database, *, status: str | None = None, queue: str | None = None,
                   task: str | None = None, search: str | None = None, tag: str | None = None) -> int:
    """How many jobs :func:`list_jobs` would list with these filters (all pages)."""
    where, params = job_filter(status, queue, task, search, tag)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    return int(sql(db, f"SELECT COUNT(*) FROM lq_job{clause}", params).fetchone()[0])


def _distinct(db: pw.Database, column: str, limit: int = 200) -> list[str]:
    # A loose index scan: one index seek per distinct value, so the filter menus stay fast
    # at hundreds of thousands of jobs (a plain DISTINCT reads the whole index).
    rows = sql(db, f"WITH RECURSIVE v(x, n) AS (SELECT MIN({column}), 1 FROM lq_job UNION ALL "
                   f"SELECT (SELECT MIN({column}) FROM lq_job WHERE {column} > v.x), n + 1 FROM v "
                   f"WHERE v.x IS NOT NULL AND n < ?) SELECT x FROM v WHERE x IS NOT NULL", [limit])
    return [r[0] for r in rows.fetchall()]


def job_facets(db: pw.Database) -> dict[str, list[str]]:
    """The queue and task names the ledger holds (at most 200 of each), sorted. On SQLite
    the queues come from the kept counts (the job row has no queue index)."""
    if "lq_job_count" in db.get_tables():
        queues = [r[0] for r in sql(db, "SELECT DISTINCT queue FROM lq_job_count WHERE n > 0 "
                                        "ORDER BY queue LIMIT 200").fetchall()]
    else:
        queues = _distinct(db, "queue")
    return {"queues": queues, "tasks": _distinct(db, "task")}


def with_tags(db: pw.Database, jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add each job's ``tags`` (a sorted list) to ``jobs``; one query."""
    for job in jobs:
        job["tags"] = []
    if jobs:
        by_id = {job["id"]: job for job in jobs}
        marks = ", ".join("?" * len(by_id))
        for job_id, tag in sql(db, f"SELECT job_id, tag FROM lq_job_tag WHERE job_id IN ({marks}) ORDER BY tag",
                               list(by_id)).fetchall():
            by_id[job_id]["tags"].append(tag)
    return jobs


def unfinished_ids_with_tag(db: pw.Database, tag: str) -> list[str]:
    """Jobs of ``tag`` that have not ended (what ``jobs cancel --tag`` cancels), oldest first."""
    return [r[0] for r in sql(db, "SELECT j.id FROM lq_job_tag t JOIN lq_job j ON j.id = t.job_id WHERE t.tag = ? "
                                  f"AND j.status NOT IN ({', '.join('?' * len(FINAL_VALUES))}) ORDER BY j.seq",
                              [tag, *FINAL_VALUES]).fetchall()]


def queued_count_with_tag(db: pw.Database, tag: str, queue: str | None = None) -> int:
    """Unclaimed, due jobs of ``tag`` (in ``queue``, if given): what ``purge --tag`` would drop."""
    extra, params = (" AND queue = ?", [queue]) if queue else ("", [])
    return int(sql(db, "SELECT COUNT(*) FROM lq_ready WHERE claimed_by IS NULL AND job_id IN "
                       f"(SELECT job_id FROM lq_job_tag WHERE tag = ?){extra}{NOT_SCHEDULED}",
                   [tag, *params]).fetchone()[0])


def tag_progress(db: pw.Database, prefix: str = "") -> dict[str, dict[str, dict[str, int]]]:
    """Per tag starting with ``prefix``, per task: jobs by status, ``done`` (succeeded) and
    ``total``: ``{"site:acme": {"ocr": {"done": 23, "total": 50, "failed": 1, ...}}}``."""
    like = prefix.replace("!", "!!").replace("%", "!%").replace("_", "!_") + "%"
    out: dict[str, dict[str, dict[str, int]]] = {}
    for tag, task, status, n in sql(
            db, "SELECT t.tag, j.task, j.status, COUNT(*) FROM lq_job_tag t JOIN lq_job j ON j.id = t.job_id "
                "WHERE t.tag LIKE ? ESCAPE '!' GROUP BY t.tag, j.task, j.status ORDER BY t.tag, j.task",
            [like]).fetchall():
        counts = out.setdefault(tag, {}).setdefault(task, {"done": 0, "total": 0})
        counts[status] = int(n)
        counts["total"] += int(n)
        if status == JobStatus.SUCCEEDED.value:
            counts["done"] = int(n)
    return out


def tag_facets(db: pw.Database, limit: int = 200) -> list[str]:
    """The tags the ledger holds (at most ``limit``), sorted: the page's filter menu."""
    return [r[0] for r in sql(db, "SELECT DISTINCT tag FROM lq_job_tag ORDER BY tag LIMIT ?", [limit]).fetchall()]


def job_payload(db: pw.Database, job_id: str) -> dict[str, Any] | None:
    """The stored payload of one job (Huey's pickled message, as bytes: not unpickled
    here) with its task, queue, status and attempts; None if the ledger has no such job
    (``litequeue jobs replay``)."""
    rows = dict_rows(sql(db, "SELECT id, app, task, queue, status, attempts, payload FROM lq_job WHERE id = ?",
                         [job_id]))
    if not rows:
        return None
    row = rows[0]
    row["payload"] = None if row["payload"] is None else bytes(row["payload"])
    return row
