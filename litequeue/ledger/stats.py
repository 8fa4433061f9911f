"""Task statistics read from the ledger (``litequeue stats``, the page's Stats view): per task,
queue or hour, the runs, how jobs ended, retries, wait and run time percentiles, and what the
runs used (CPU time percentiles, the largest peak resident memory).

Read-only. Everything comes from ``lq_job`` and ``lq_attempt``, so the figures survive
restarts (and go with the rows ``prune`` deletes).

What is counted over a window ``[since, until)``:

* **runs**: attempts that *ended* in the window, whatever their outcome; a run's **run
  time** is the attempt's duration. **retries**: the runs that were a job's second or later
  attempt (a retry after an error, or a re-run after its worker died).
* **jobs**: jobs that *finished* in the window, by final status; the **success rate** is
  succeeded / (succeeded + failed) (cancelled and expired jobs are not in it).
* **wait time**: for each first attempt among the runs, from when the job was due (its ETA
  if it had one, else when it was enqueued) to that first start. A job retried with a delay
  has lost its original ETA in the ledger (the retry's replaced it): for such a job the
  enqueue time is used, so a wait for its ETA counts as waiting.
* **by hour**: runs by the hour (UTC) they ended, jobs by the hour they finished.

``lq_attempt`` has no time index (every ack would pay for one), so runs are found through
their jobs: the jobs finished in the window (the partial index on ``lq_job.finished_at``)
and the jobs still under way that have had an attempt (the ``status`` index). Any other job
finished before the window began, and so did its attempts.

Percentiles are the continuous kind (linear interpolation between the two nearest ranks:
PostgreSQL's ``percentile_cont``, numpy's default). On PostgreSQL the database computes them
with ``percentile_cont``, every grouping and the total in one query (``GROUPING SETS``).
SQLite has no percentile function, and numbering rows with window functions there cost
several times more than the rows themselves (measured: ~1 s per grouping at 100 000 runs);
so the runs are streamed once to Python, which groups them every way asked for and keeps
each group's values: all of them up to ``SAMPLE_LIMIT`` per group (exact), beyond that a
uniform random sample of that size (Algorithm R, seeded, so the same ledger gives the same
figures; the report says ``sampled``). Counts and maxima are always exact.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterable, Sequence
from typing import Any

import peewee as pw

from litequeue.base.durations import parse_duration
from litequeue.base.states import JobStatus
from litequeue.store.dialect import is_sqlite, sql, unindexed

from .queries import iso

#: What a report can be grouped by.
GROUPINGS = ("task", "queue", "hour")
PERCENTILES = (("p50", 0.5), ("p95", 0.95))
HOUR = 3600
#: SQLite: values kept per group for its percentiles; more are sampled down to this many.
SAMPLE_LIMIT = 100_000
#: Jobs still under way that may have finished attempts (waiting jobs have had none).
UNDER_WAY = (JobStatus.SCHEDULED.value, JobStatus.QUEUED.value, JobStatus.RUNNING.value,
             JobStatus.RETRYING.value)
ENDED = (JobStatus.SUCCEEDED.value, JobStatus.FAILED.value, JobStatus.CANCELLED.value,
         JobStatus.EXPIRED.value)
#: The longest window, in hours, a report by hour covers (a year).
MAX_HOURS = 24 * 366


def parse_since(text: str, option: str = "--since") -> float:
    """A window length (``30m``, ``24h``, ``7d``) in seconds; a ``ValueError`` says in one
    line what is wrong with it."""
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise ValueError(f"{option}: {exc}") from None
    if seconds <= 0:
        raise ValueError(f"{option}: the window must be longer than 0; e.g. 30m, 24h, 7d")
    if seconds > MAX_HOURS * HOUR:
        raise ValueError(f"{option}: {text} is longer than the {MAX_HOURS // 24}d a report covers; "
                         "use a shorter window")
    return seconds


def _hour(db: pw.Database, column: str) -> str:
    # PostgreSQL's CAST to integer rounds; SQLite's truncates (a floor for times after 1970).
    return f"CAST({column} / {HOUR} AS INTEGER)" if is_sqlite(db) else f"FLOOR({column} / {HOUR})"


def _filters(task: str | None, queue: str | None, prefix: str = "") -> tuple[str, list[Any]]:
    terms, params = "", []
    for column, value in (("task", task), ("queue", queue)):
        if value:
            terms += f" AND {prefix}{column} = ?"
            params.append(value)
    return terms, params


def _runs_source(db: pw.Database, since: float, until: float, task: str | None,
                 queue: str | None) -> tuple[str, list[Any]]:
    """A query of (task, queue, hour, number, run_s, wait_s, cpu_s, peak_rss): one row per
    run in the window."""
    extra, extra_params = _filters(task, queue)
    cols = "id, task, queue, enqueued_at, eta"
    marks = ", ".join("?" * len(UNDER_WAY))
    # Due: the ETA when there was one and it came before the first start (a later one is a
    # retry's ETA that replaced the original); clamped at 0 against clock steps.
    due = ("CASE WHEN j.eta IS NOT NULL AND j.eta > j.enqueued_at AND j.eta <= a.started_at "
           "THEN j.eta ELSE j.enqueued_at END")
    wait = f"a.started_at - ({due})"
    query = (
        f"SELECT j.task, j.queue, {_hour(db, 'a.finished_at')} AS hour, a.number, "
        "a.finished_at - a.started_at AS run_s, "
        f"CASE WHEN a.number = 1 THEN (CASE WHEN {wait} < 0 THEN 0 ELSE {wait} END) END AS wait_s, "
        "a.cpu_seconds AS cpu_s, a.peak_rss_bytes AS peak_rss "
        f"FROM (SELECT {cols} FROM lq_job WHERE finished_at >= ?{extra} "
        # A job under way has a ready or a schedule row: read those, not every status.
        f"UNION ALL SELECT {cols} FROM lq_job WHERE id IN (SELECT job_id FROM lq_ready UNION ALL "
        f"SELECT job_id FROM lq_schedule) AND status IN ({marks}) AND attempts > 0 "
        f"AND finished_at IS NULL{extra}) j "
        "JOIN lq_attempt a ON a.job_id = j.id WHERE a.finished_at >= ? AND a.finished_at < ?"
    )
    return query, [since, *extra_params, *UNDER_WAY, *extra_params, since, until]


# -- percentiles ------------------------------------------------------------------------------

def percentile(ordered: Sequence[float], p: float) -> float | None:
    """The continuous percentile ``p`` (0..1) of sorted values (``percentile_cont``)."""
    if not ordered:
        return None
    h = (len(ordered) - 1) * p
    lo = math.floor(h)
    if lo + 1 >= len(ordered):
        return ordered[lo]
    return ordered[lo] + (ordered[lo + 1] - ordered[lo]) * (h - lo)


class _Series:
    """One group's values of one measure: count and max exact, values sampled past the limit."""

    __slots__ = ("n", "top", "values", "rng")

    def __init__(self, rng: random.Random) -> None:
        self.n = 0
        self.top: float | None = None
        self.values: list[float] = []
        self.rng = rng

    def extend(self, values: list[float]) -> None:
        if not values:
            return
        top = max(values)
        if self.top is None or top > self.top:
            self.top = top
        room = SAMPLE_LIMIT - self.n
        self.n += len(values)
        if room >= len(values):
            self.values.extend(values)
            return
        self.values.extend(values[:max(0, room)])
        seen = self.n - len(values) + max(0, room)
        for value in values[max(0, room):]:
            seen += 1
            slot = self.rng.randrange(seen)
            if slot < SAMPLE_LIMIT:
                self.values[slot] = value

    def figures(self) -> dict[str, Any]:
        ordered = sorted(self.values)
        return _figures(self.n, self.top, [percentile(ordered, p) for _, p in PERCENTILES])


class _Runs:
    __slots__ = ("runs", "retries", "run", "wait", "cpu", "peak")

    def __init__(self, rng: random.Random) -> None:
        self.runs = self.retries = 0
        self.run = _Series(rng)
        self.wait = _Series(rng)
        self.cpu = _Series(rng)
        self.peak: int | None = None

    def take(self, rows: list[tuple[Any, ...]]) -> None:
        """Rows of ``_runs_source``: (task, queue, hour, number, run_s, wait_s, cpu_s, peak_rss)."""
        self.runs += len(rows)
        self.retries += sum(1 for r in rows if r[3] > 1)
        self.run.extend([r[4] for r in rows])
        self.wait.extend([r[5] for r in rows if r[5] is not None])
        self.cpu.extend([r[6] for r in rows if r[6] is not None])
        peaks = [r[7] for r in rows if r[7] is not None]
        if peaks and (self.peak is None or max(peaks) > self.peak):
            self.peak = max(peaks)

    def figures(self) -> dict[str, Any]:
        return {"runs": self.runs, "retries": self.retries, "run_s": self.run.figures(),
                "wait_s": self.wait.figures(), "cpu_s": self.cpu.figures(), "peak_rss_bytes": self.peak}


def _figures(n: int, top: float | None, pcts: Iterable[float | None]) -> dict[str, Any]:
    out: dict[str, Any] = {"count": n}
    for (name, _), value in zip(PERCENTILES, pcts, strict=True):
        out[name] = None if value is None or not n else round(float(value), 6)
    out["max"] = None if top is None or not n else round(float(top), 6)
    return out


_KEY_INDEX = {"task": 0, "queue": 1, "hour": 2}


def _runs_in_python(db: pw.Database, source: str, params: list[Any],
                    groupings: Sequence[str]) -> tuple[dict[tuple[str, Any], dict[str, Any]], bool]:
    rng = random.Random(0)
    accs: dict[tuple[str, Any], _Runs] = {}
    total = accs[("", "")] = _Runs(rng)
    cursor = sql(db, source, params)
    while rows := cursor.fetchmany(10_000):
        total.take(rows)
        for g in groupings:
            i = _KEY_INDEX[g]
            buckets: dict[Any, list[tuple[Any, ...]]] = {}
            for row in rows:
                buckets.setdefault(row[i], []).append(row)
            for key, bucket in buckets.items():
                acc = accs.get((g, key))
                if acc is None:
                    acc = accs[(g, key)] = _Runs(rng)
                acc.take(bucket)
    return {k: a.figures() for k, a in accs.items()}, total.runs > SAMPLE_LIMIT


def _runs_in_postgres(db: pw.Database, source: str, params: list[Any],
                      groupings: Sequence[str]) -> dict[tuple[str, Any], dict[str, Any]]:
    pcs = ", ".join(f"percentile_cont({p}) WITHIN GROUP (ORDER BY {col})"
                    for col in ("run_s", "wait_s", "cpu_s") for _, p in PERCENTILES)
    sets = ", ".join([f"({g})" for g in groupings] + ["()"])
    keys = "".join(f"{g}, GROUPING({g}), " for g in groupings)
    rows = sql(db, f"SELECT {keys}COUNT(*), SUM(CASE WHEN number > 1 THEN 1 ELSE 0 END), MAX(run_s), "
                   f"COUNT(wait_s), MAX(wait_s), COUNT(cpu_s), MAX(cpu_s), MAX(peak_rss), {pcs} "
                   f"FROM ({source}) r GROUP BY GROUPING SETS ({sets})",
               params).fetchall()
    n_g, n_p = len(groupings), len(PERCENTILES)
    out = {}
    for row in rows:
        # GROUPING(g) is 0 in the rows of the set grouped by g; every one is 1 in the total.
        key = next(((g, row[2 * i]) for i, g in enumerate(groupings) if row[2 * i + 1] == 0), ("", ""))
        runs, retries, run_max, waits, wait_max, cpus, cpu_max, peak, *pcts = row[2 * n_g:]
        out[key] = {"runs": runs, "retries": int(retries or 0),
                    "run_s": _figures(runs, run_max, pcts[:n_p]),
                    "wait_s": _figures(waits, wait_max, pcts[n_p:2 * n_p]),
                    "cpu_s": _figures(cpus, cpu_max, pcts[2 * n_p:]),
                    "peak_rss_bytes": None if peak is None else int(peak)}
    return out


# -- jobs: how they ended ---------------------------------------------------------------------

def _job_counts(db: pw.Database, since: float, until: float, task: str | None, queue: str | None,
                groupings: Sequence[str]) -> dict[tuple[str, Any], dict[str, int]]:
    extra, extra_params = _filters(task, queue)
    marks = ", ".join("?" * len(ENDED))
    rows = sql(db, f"SELECT task, queue, {_hour(db, 'finished_at')} AS hour, status, COUNT(*) FROM lq_job "
                   f"WHERE finished_at >= ? AND finished_at < ? AND {unindexed(db, 'status')} IN ({marks}){extra} "
                   f"GROUP BY task, queue, {_hour(db, 'finished_at')}, status",
               [since, until, *ENDED, *extra_params]).fetchall()
    out: dict[tuple[str, Any], dict[str, int]] = {}
    for row in rows:
        status, n = row[3], row[4]
        for key in [("", ""), *((g, row[_KEY_INDEX[g]]) for g in groupings)]:
            out.setdefault(key, dict.fromkeys(ENDED, 0))[status] += n
    return out


# -- the report -------------------------------------------------------------------------------

def _row(runs: dict[str, Any] | None, jobs: dict[str, int] | None) -> dict[str, Any]:
    if runs is None:
        none = _figures(0, None, [None] * len(PERCENTILES))
        runs = {"runs": 0, "retries": 0, "run_s": none, "wait_s": none, "cpu_s": none, "peak_rss_bytes": None}
    jobs = jobs or dict.fromkeys(ENDED, 0)
    done = jobs[JobStatus.SUCCEEDED.value] + jobs[JobStatus.FAILED.value]
    return {"runs": runs["runs"], "retries": runs["retries"], **jobs,
            "success_rate": round(jobs[JobStatus.SUCCEEDED.value] / done, 4) if done else None,
            "wait_s": runs["wait_s"], "run_s": runs["run_s"], "cpu_s": runs["cpu_s"],
            "peak_rss_bytes": runs["peak_rss_bytes"]}


def report(db: pw.Database, *, since: float, until: float | None = None, by: Sequence[str] = ("task",),
           task: str | None = None, queue: str | None = None) -> dict[str, Any]:
    """The statistics of the window ``[since, until)`` (``until``: now), grouped each way in
    ``by`` (``task``, ``queue``, ``hour``) and in ``total``. ``groups[g]`` lists the groups:
    for hours every hour of the window, oldest first, empty ones included; for tasks and
    queues those with a run or a finished job, by name."""
    wrong = [g for g in by if g not in GROUPINGS]
    if wrong:
        raise ValueError(f"cannot group by {wrong[0]!r}; use one of {', '.join(GROUPINGS)}")
    until = time.time() if until is None else until
    source, params = _runs_source(db, since, until, task, queue)
    sampled = False
    if is_sqlite(db):
        runs, sampled = _runs_in_python(db, source, params, by)
    else:
        runs = _runs_in_postgres(db, source, params, by)
    jobs = _job_counts(db, since, until, task, queue, by)
    groups: dict[str, list[dict[str, Any]]] = {}
    for g in by:
        if g == "hour":
            runs = {(k[0], int(k[1])) if k[0] == "hour" else k: v for k, v in runs.items()}
            jobs = {(k[0], int(k[1])) if k[0] == "hour" else k: v for k, v in jobs.items()}
            first, last = int(since // HOUR), int(max(since, until - 1e-6) // HOUR)
            keys: list[Any] = list(range(first, last + 1))
        else:
            keys = sorted({k[1] for k in (*runs, *jobs) if k[0] == g})
        groups[g] = [{g: iso(key * HOUR) if g == "hour" else key, **_row(runs.get((g, key)), jobs.get((g, key)))}
                     for key in keys]
    return {"since": iso(since), "until": iso(until), "filters": {"task": task, "queue": queue},
            "percentiles": {"method": "continuous (linear interpolation, as percentile_cont)",
                            "sampled": sampled},
            "groups": groups, "total": _row(runs.get(("", "")), jobs.get(("", "")))}


def task_stats(db: pw.Database, *, since: float, until: float | None = None, by: str = "task",
               task: str | None = None, queue: str | None = None) -> dict[str, Any]:
    """:func:`report` grouped one way: ``groups`` is that grouping's list (what
    ``litequeue stats --json`` prints)."""
    out = report(db, since=since, until=until, by=(by,), task=task, queue=queue)
    return {**out, "by": by, "groups": out["groups"][by]}
