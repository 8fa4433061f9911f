"""``litequeue stats`` and the Stats view, checked against a run whose durations the test
controls: tasks that sleep known times, fail, and are retried, run by a real consumer, on
SQLite and on PostgreSQL. The expected percentiles are computed here, independently, from the
raw attempt rows (continuous percentiles, as ``statistics.quantiles(method="inclusive")``)."""

from __future__ import annotations

import contextlib
import json
import math
import statistics
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Project, fresh_pg_database
from tests.web.conftest import start_web

TASKS = """
import os, time
from litequeue import LiteQueue

app = LiteQueue("stats")

@app.task()
def nap(seconds):
    time.sleep(seconds)

@app.task(retries=2, retry_delay=0)
def flaky(key):
    # fails on its first attempt, succeeds on its second
    marker = os.path.join(os.environ["MARKS"], key)
    if not os.path.exists(marker):
        open(marker, "w").close()
        raise RuntimeError("first attempt fails")
    return key

@app.task(queue="mail", retries=1, retry_delay=0)
def broken():
    raise ValueError("always")

@app.task()
def tick():
    return "tick"
"""

#: nap's sleeps: sorted, ranks 4 and 5 (p50) are 0.05 s runs; ranks 8 and 9 (p95) a 0.3 s
#: and the 0.8 s run.
NAPS = [0.05] * 6 + [0.3] * 3 + [0.8]
#: tick is due 3 s after it is enqueued: its wait counts from then, not from the enqueue.
TICK_DELAY = 3.0

ENQUEUE = f"""
import random, tasks
naps = {NAPS!r}
random.Random(7).shuffle(naps)
for s in naps:
    tasks.nap(s)
tasks.flaky("a"); tasks.flaky("b")
tasks.broken()
tasks.tick.schedule(delay={TICK_DELAY})
"""


def pg_database() -> contextlib.AbstractContextManager[str]:
    """A fresh PostgreSQL database for the module (like the ``pg_url`` fixture, longer-lived)."""
    return fresh_pg_database("lq_stats")


class Ran:
    """The project after the run, and the attempt rows read straight from its database."""

    def __init__(self, project: Project, attempts: list[dict[str, Any]]) -> None:
        self.project = project
        self.attempts = attempts

    def durations(self, task: str) -> list[float]:
        return sorted(a["finished_at"] - a["started_at"] for a in self.attempts if a["task"] == task)

    def stats(self, *args: str) -> dict[str, Any]:
        return self.project.cli_json("stats", "--json", *args)


def _attempt_rows(db: str) -> list[dict[str, Any]]:
    from litequeue.engine.storage import open_store
    from litequeue.store.dialect import sql

    store = open_store(db)
    try:
        cur = sql(store.database, "SELECT j.task, j.queue, j.enqueued_at, j.eta, a.number, a.started_at, "
                                  "a.finished_at, a.outcome FROM lq_attempt a JOIN lq_job j ON j.id = a.job_id")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    finally:
        store.database.close()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def ran(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ran]:
    project = Project(tmp_path_factory.mktemp(f"stats-{request.param}"))
    marks = project.root / "marks"
    marks.mkdir()
    project.extra_env["MARKS"] = str(marks)
    with contextlib.ExitStack() as stack:
        if request.param == "postgres":
            project.extra_env["LITEQUEUE_DB"] = stack.enter_context(pg_database())
        db = project.extra_env.get("LITEQUEUE_DB", str(project.db))
        project.write("tasks.py", TASKS)
        project.python(ENQUEUE)
        # One worker: the naps run one after another, so their waits differ too.
        project.start_consumer("tasks", "-w", "1")
        deadline = time.monotonic() + 60
        while True:
            attempts = _attempt_rows(db)
            if len(attempts) == len(NAPS) + 4 + 2 + 1 and all(a["finished_at"] for a in attempts):
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"the run did not finish: {attempts}")
            time.sleep(0.2)
        yield Ran(project, attempts)
        project.kill_all()


def reference(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[round(p * 100) - 1]


def by_name(groups: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    return {g[key]: g for g in groups}


def test_counts_rates_and_retries_per_task(ran: Ran) -> None:
    data = ran.stats("--since", "1h")
    tasks = by_name(data["groups"], "task")
    assert set(tasks) == {"nap", "flaky", "broken", "tick"}
    nap, flaky, broken = tasks["nap"], tasks["flaky"], tasks["broken"]
    assert (nap["runs"], nap["retries"], nap["succeeded"], nap["failed"], nap["success_rate"]) == (10, 0, 10, 0, 1.0)
    # each flaky job: a failed first attempt, then a retry that succeeds
    assert (flaky["runs"], flaky["retries"], flaky["succeeded"], flaky["failed"]) == (4, 2, 2, 0)
    assert (broken["runs"], broken["retries"], broken["succeeded"], broken["failed"]) == (2, 1, 0, 1)
    assert broken["success_rate"] == 0.0
    total = data["total"]
    assert (total["runs"], total["retries"], total["succeeded"], total["failed"]) == (17, 3, 13, 1)
    assert total["success_rate"] == round(13 / 14, 4)
    queues = by_name(ran.stats("--since", "1h", "--by", "queue")["groups"], "queue")
    assert {q: (g["runs"], g["failed"]) for q, g in queues.items()} == {"default": (15, 0), "mail": (2, 1)}
    only = ran.stats("--since", "1h", "--task", "flaky")
    assert [g["task"] for g in only["groups"]] == ["flaky"] and only["total"]["runs"] == 4


def test_run_time_percentiles_fall_where_they_must(ran: Ran) -> None:
    run = by_name(ran.stats("--since", "1h")["groups"], "task")["nap"]["run_s"]
    durations = ran.durations("nap")
    assert run["count"] == 10
    # The sleeps put ranks 4 and 5 among the 0.05 s runs, and p95 between a 0.3 s run and
    # the 0.8 s one: 0.45 * (>= 0.3) + 0.55 * (>= 0.8).
    assert 0.05 <= run["p50"] < 0.3
    assert 0.575 <= run["p95"] <= run["max"]
    assert run["max"] >= 0.8 and run["max"] == pytest.approx(durations[-1], abs=1e-6)
    assert run["p50"] == pytest.approx(reference(durations, 0.5), abs=1e-6)
    assert run["p95"] == pytest.approx(reference(durations, 0.95), abs=1e-6)


def test_wait_counts_from_when_the_job_was_due(ran: Ran) -> None:
    tasks = by_name(ran.stats("--since", "1h")["groups"], "task")
    tick = next(a for a in ran.attempts if a["task"] == "tick")
    assert tick["eta"] is not None and tick["started_at"] - tick["enqueued_at"] >= TICK_DELAY
    # from the ETA, not from the enqueue (which was TICK_DELAY earlier)
    assert tasks["tick"]["wait_s"]["max"] == pytest.approx(tick["started_at"] - tick["eta"], abs=1e-6)
    firsts = sorted(a["started_at"] - a["enqueued_at"] for a in ran.attempts
                    if a["task"] == "nap" and a["number"] == 1)
    wait = tasks["nap"]["wait_s"]
    assert wait["count"] == 10
    assert wait["p50"] == pytest.approx(reference(firsts, 0.5), abs=1e-6)
    assert wait["p95"] == pytest.approx(reference(firsts, 0.95), abs=1e-6)
    assert wait["max"] == pytest.approx(firsts[-1], abs=1e-6)
    # one worker ran 2 s of naps in turn: the last one waited for the others
    assert wait["max"] >= sum(NAPS) - 0.8
    flaky_waits = tasks["flaky"]["wait_s"]
    assert flaky_waits["count"] == 2, "only first attempts have a wait"


def test_by_hour(ran: Ran) -> None:
    data = ran.stats("--since", "24h", "--by", "hour")
    hours = data["groups"]
    assert data["by"] == "hour" and len(hours) in (24, 25)
    starts = [h["hour"] for h in hours]
    assert starts == sorted(starts) and all(h.endswith(":00:00.000000Z") for h in starts)
    busy = [h for h in hours if h["runs"]]
    assert 1 <= len(busy) <= 2 and busy[-1] is hours[-1]  # the run was minutes ago
    assert sum(h["runs"] for h in hours) == 17
    assert sum(h["failed"] for h in hours) == 1 and sum(h["retries"] for h in hours) == 3
    if len(busy) == 1:
        assert busy[0]["run_s"] == data["total"]["run_s"]
    empty = hours[0]
    assert empty["runs"] == 0 and empty["run_s"] == {"count": 0, "p50": None, "p95": None, "max": None}


def test_json_shape(ran: Ran) -> None:
    data = ran.stats()
    assert set(data) == {"since", "until", "by", "window", "filters", "percentiles", "groups", "total"}
    assert data["window"] == "24h" and data["by"] == "task"
    assert data["filters"] == {"task": None, "queue": None}
    assert data["percentiles"]["sampled"] is False
    row = data["groups"][0]
    assert list(row) == ["task", "runs", "retries", "succeeded", "failed", "cancelled", "expired",
                         "success_rate", "wait_s", "run_s", "cpu_s", "peak_rss_bytes"]
    assert set(row["run_s"]) == set(row["wait_s"]) == {"count", "p50", "p95", "max"}


def test_the_table(ran: Ran) -> None:
    out = ran.project.cli("stats", "--since", "1h").stdout.splitlines()
    assert out[0].startswith("last 1h (")
    assert out[1].split()[:6] == ["TASK", "RUNS", "OK", "FAILED", "SUCCESS", "RETRIES"]
    rows = {line.split()[0]: line.split() for line in out[2:]}
    assert rows["broken"][1:6] == ["2", "0", "1", "0.0%", "1"]
    assert rows["TOTAL"][1:6] == ["17", "13", "1", "92.9%", "3"]


@pytest.mark.parametrize("since, says", [
    ("2x", "--since: '2x' is not a duration; use a number and a unit"),
    ("0s", "--since: the window must be longer than 0"),
    ("400d", "--since: 400d is longer than the 366d a report covers"),
])
def test_bad_since_is_one_line(ran: Ran, since: str, says: str) -> None:
    proc = ran.project.cli("stats", "--since", since, check=False)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith(f"Error: {says}"), proc.stderr


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_stats_page_and_api_over_http(ran: Ran) -> None:
    url = start_web(ran.project)
    status, body = _get(url + "api/stats?since=1h&by=task")
    assert status == 200
    api = json.loads(body)
    cli = ran.stats("--since", "1h")
    assert api["groups"] == cli["groups"] and api["total"] == cli["total"]
    assert api["window"] == "1h" and len(api["hourly"]) in (1, 2)
    assert sum(h["runs"] for h in api["hourly"]) == 17
    status, body = _get(url + "api/stats?since=1h&by=queue&task=broken")
    assert status == 200 and [(g["queue"], g["runs"]) for g in json.loads(body)["groups"]] == [("mail", 2)]
    status, body = _get(url + "api/stats?since=soon")
    assert status == 400 and "since: 'soon' is not a duration" in json.loads(body)["error"]
    status, body = _get(url + "api/stats?by=day")
    assert status == 400 and "by must be one of task, queue, hour" in json.loads(body)["error"]
    status, html = _get(url + "stats?since=24h")
    assert status == 200
    assert '<a href="/stats" class="active">Stats</a>' in html
    assert 'id="stats-chart"' in html and 'id="stats-p95"' in html and html.count('<g class="hour">') in (24, 25)
    for task in ("nap", "flaky", "broken", "tick"):
        assert f">{task}</a>" in html
    status, html = _get(url + "stats?since=5x")
    assert status == 400 and "is not a duration" in html


def test_percentiles_on_many_values() -> None:
    """The percentile helper against the reference on awkward sizes (1, 2, 20, 101 values)."""
    from litequeue.ledger.stats import percentile

    for n in (1, 2, 20, 101):
        values = sorted(math.sin(i) * 10 + 10 for i in range(n))
        for p in (0.5, 0.95):
            expected = values[0] if n == 1 else reference(values, p)
            assert percentile(values, p) == pytest.approx(expected, abs=1e-9)
    assert percentile([], 0.5) is None

