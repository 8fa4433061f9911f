"""Where the page gets its data: read-only connections, opened lazily, and the dicts each
page and its JSON twin are built from (one function per page, used by both)."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from typing import Any

import peewee as pw

from litequeue import schedules
from litequeue.base.errors import LiteQueueError
from litequeue.base.states import JobStatus
from litequeue.engine.storage import LiteStorage, open_store
from litequeue.ledger import queries
from litequeue.store.database import is_url, open_checked
from litequeue.store.file_identity import FileIdentity

from .periodic import NextRuns, task_queue
from .settings import WebSettings

STATUSES = [s.value for s in JobStatus]
#: How long the page tries to reach a database server that is away before it answers 503
#: (a request must not hang for the whole busy timeout while the server restarts).
SERVER_CONNECT_WINDOW = 2.0
log = logging.getLogger("litequeue.web")


class BadRequest(LiteQueueError):
    """A query parameter is wrong; the message names it."""


class Databases:
    """One read-only database for the page (reopened after a failure) and short-lived
    writable stores for actions."""

    def __init__(self, settings: WebSettings) -> None:
        self.settings = settings
        self._reader: pw.Database | None = None
        self._identity: FileIdentity | None = None
        self._lock = threading.Lock()

    def reader(self) -> pw.Database:
        """A read-only connection to the ledger; raises DatabaseError saying what is wrong."""
        with self._lock:
            message = self._identity.check() if self._reader is not None and self._identity else None
            if message is not None:
                # Someone deleted the file or renamed another over it: read the one there now.
                log.error("%s; the status page reopens the file now at that path", message)
                self._close_reader()
            if self._reader is None:
                window = SERVER_CONNECT_WINDOW if is_url(str(self.settings.db)) else None
                db = open_checked(self.settings.db, readonly=True, current_schema=False, busy_timeout=window,
                                  not_litequeue=f"{self.settings.db} is not a litequeue database yet (no ledger "
                                                "tables); enqueue a job or start a consumer first")
                self._identity = FileIdentity.of(db)
                self._reader = db
            return self._reader

    def forget_reader(self) -> None:
        """Drop the reader after an error so the next request opens a fresh one."""
        with self._lock:
            self._close_reader()

    def _close_reader(self) -> None:
        if self._reader is not None:
            try:
                self._reader.close()
            except Exception:  # noqa: BLE001 - a broken connection may fail to close too
                pass
            self._reader = None

    def store(self) -> LiteStorage:
        """A writable store for one action; close it with ``store.database.close()``."""
        return open_store(self.settings.db)


def parse_filters(args: dict[str, str]) -> dict[str, Any]:
    """The job list's filters from query or form fields; BadRequest names a wrong one."""
    status = args.get("status") or None
    if status is not None and status not in STATUSES:
        raise BadRequest(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
    after = args.get("after") or None
    if after is not None:
        try:
            after_seq: int | None = int(after)
        except ValueError:
            raise BadRequest(f"after must be a job's seq number (an integer), not {after!r}") from None
        if not 0 <= after_seq < 2**63:  # the database's integers: a bigger one is no seq (and overflows)
            raise BadRequest(f"after must be a job's seq number (0 or more, below 2**63), not {after!r}")
    else:
        after_seq = None
    retried = args.get("retried") or None
    if retried not in (None, "yes", "no"):
        raise BadRequest(f"retried must be yes or no, not {retried!r}")
    return {"status": status, "queue": args.get("queue") or None, "task": args.get("task") or None,
            "q": (args.get("q") or "").strip() or None, "after": after_seq,
            "tag": (args.get("tag") or "").strip() or None, "retried": retried}


def retried_flag(f: dict[str, Any]) -> bool | None:
    return None if f.get("retried") is None else f["retried"] == "yes"


def query_args(f: dict[str, Any]) -> dict[str, str]:
    """The filters as query-string arguments (empty ones left out)."""
    return {k: str(f[k]) for k in ("status", "queue", "task", "q", "tag", "retried") if f.get(k)}


def overview_queues(db: pw.Database, now: float | None = None) -> dict[str, dict[str, Any]]:
    """Every queue the ledger knows with its counts; ``failed_open`` leaves out failed jobs
    retried since."""
    now = time.time() if now is None else now
    summary = queries.queue_summary(db, now=now)
    for queue in queries.job_facets(db)["queues"]:
        summary.setdefault(queue, {**{s.value: 0 for s in queries.COUNTED}, "oldest_queued_age_s": None,
                                   "paused": False, "paused_until": None})
    retried = queries.retried_failed(db)
    waiting = dict(queries.counted_by_queue(db, JobStatus.WAITING.value))
    for name, q in summary.items():
        # A failed job retried since needs nobody: the Failed count leaves it out.
        q["failed_retried"] = retried.get(name, 0)
        q["failed_open"] = max(0, q["failed"] - q["failed_retried"])
        q["waiting"] = waiting.get(name, 0)
    return dict(sorted(summary.items()))


def overview(db: pw.Database, now: float | None = None) -> dict[str, Any]:
    """Totals and cards, queues, consumers alive, jobs per minute over the last hour, inbox
    counts and the latest actions."""
    now = time.time() if now is None else now
    summary = overview_queues(db, now)
    day = dt.datetime.fromtimestamp(now, dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    totals = {s: sum(q[s] for q in summary.values())
              for s in ("scheduled", "queued", "running", "retrying", "failed", "failed_open", "waiting")}
    return {"now": queries.iso(now), "totals": totals, "processed": queries.processed(db, day),
            "day_start": queries.iso(day), "queues": summary,
            "consumers": queries.consumers(db, alive_only=True),
            "activity": queries.recent_activity(db, 60, now=now),
            "inbox": queries.inbox_counts(db), "events": queries.recent_events(db, 10),
            "limits": [lim for lim in queries.concurrency_limits(db) if lim["concurrency"] is not None],
            "breakers": queries.breakers(db, now=now), "rate_limited": queries.rate_limited(db)}


def job_list(db: pw.Database, args: dict[str, str], page_size: int) -> dict[str, Any]:
    """One page of jobs, newest first; ``next_after`` is the ``after`` of the next page."""
    f = parse_filters(args)
    retried = retried_flag(f)
    jobs = queries.list_jobs(db, status=f["status"], queue=f["queue"], task=f["task"], search=f["q"],
                             before=f["after"], limit=page_size + 1, tag=f["tag"], retried=retried)
    more = len(jobs) > page_size
    jobs = jobs[:page_size]
    total, capped = job_total(db, f)
    first = 1
    if f["after"] is not None:  # the rows newer than this page: where it starts in the total
        newer, _ = queries.count_capped(db, *_newer(f))
        first = newer + 1
    return {"filters": f, "jobs": jobs, "next_after": jobs[-1]["seq"] if more else None,
            "total": total, "total_capped": capped, "first": first, "args": query_args(f)}


def _newer(f: dict[str, Any]) -> tuple[list[str], list[Any]]:
    where, params = queries.job_filter(f["status"], f["queue"], f["task"], f["q"], f["tag"], retried_flag(f))
    return [*where, "seq >= ?"], [*params, f["after"]]


def job_total(db: pw.Database, f: dict[str, Any]) -> tuple[int, bool]:
    """(jobs matching the filters, whether the count stopped at the cap): exact from SQLite's
    kept counts for a status or queue filter, else counted up to ``COUNT_CAP``."""
    if not (f["task"] or f["q"] or f["tag"]):
        exact = queries.counted(db, f["status"], f["queue"])
        if exact is not None and not f.get("retried"):
            return exact, False
        if exact is not None and f["status"] == JobStatus.FAILED.value:
            # Failed and (not) retried since: the kept count less (or just) the retried ones.
            retried = queries.retried_failed(db)
            n = retried.get(f["queue"], 0) if f["queue"] else sum(retried.values())
            return (exact - n if f["retried"] == "no" else n), False
    return queries.count_capped(db, *queries.job_filter(f["status"], f["queue"], f["task"], f["q"], f["tag"],
                                                         retried_flag(f)))


def periodic(db: pw.Database, next_runs: NextRuns | None, now: float | None = None) -> dict[str, Any]:
    """Periodic tasks in code: last run (from the ledger) and, with the user's app, the next
    run; the schedules stored in the database (``litequeue schedules add``)."""
    last = queries.periodic_last_runs(db)
    tasks: dict[str, dict[str, Any]] = {}
    if next_runs is not None:
        for entry in next_runs.upcoming(now):
            tasks[entry["task"]] = {**entry, "last_run": last.get(entry["task"])}
    for name, run in last.items():
        tasks.setdefault(name, {"task": name, "queue": None, "next_run": None, "last_run": run})
    # Stored schedules' runs are keyed schedule:NAME: they are listed with the schedules.
    code = [t for name, t in sorted(tasks.items()) if not name.startswith(schedules.KEY_PREFIX)]
    stored = schedules.listing(db, now=now)
    paused = {q for q, until in queries.paused_rows(db) if until is None or until > (now or time.time())}
    for s in stored:
        # No queue of its own: the task's (known with the app).
        s["queue_own"] = s["queue"] is None
        if s["queue"] is None and next_runs is not None:
            s["queue"] = task_queue(next_runs.app, s["task"])
    for entry in [*stored, *code]:
        entry["queue_paused"] = entry.get("queue") in paused
    return {"tasks": code, "schedules": stored,
            "runs": queries.periodic_runs(db, 100), "knows_schedule": next_runs is not None}
