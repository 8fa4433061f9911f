"""A crawl pipeline through real consumer processes (``-w 8``), on SQLite and PostgreSQL:
one fetch job adds 200 page jobs to its own batch as it "discovers" them, and one assemble
job fans them in. It runs exactly once, after all 200, and reads their 200 results; also
with the consumer SIGKILLed 5 times at random moments. And a batch where 3 of 200 fail."""

from __future__ import annotations

import json
import os
import random
import signal
import time
from collections import Counter
from typing import Any

import pytest

from tests.acceptance.faultkit import say
from tests.conftest import Project, pg_query, wait_for

pytestmark = pytest.mark.timeout(240)

PAGES = 200

TASKS = """
import json, os, time
from litequeue import LiteQueue, current_job

app = LiteQueue("crawler")
SIDE_LOG = os.environ["SIDE_LOG"]
FAIL = {int(n) for n in os.environ.get("FAIL_PAGES", "").split(",") if n}


def record(kind, value):
    # one un-torn line per attempt that did the work, as its last action
    job = current_job()
    fd = os.open(SIDE_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{kind} {job.id} {job.attempt} {value}\\n".encode())
    finally:
        os.close(fd)


@app.task(crash_cap=50)
def fetch(site, pages):
    batch = current_job().batch
    for n in range(pages):  # "discovered" one by one, added to the batch this job is in
        if n % 50 == 0:
            time.sleep(float(os.environ.get("FETCH_SECONDS") or 0) / 4)  # reading the site
        batch.add(page.s(site, n))
    record("fetch", site)
    return pages


@app.task(crash_cap=50)
def page(site, n):
    time.sleep(float(os.environ.get("PAGE_SECONDS") or 0))
    if n in FAIL:
        raise ValueError(f"page {n} of {site} is broken")
    record("page", n)
    return {"site": site, "page": n, "words": n * 3}


@app.task(crash_cap=50)
def assemble(batch_id, site):
    results = app.batch_results(batch_id)
    pages = [r["page"] if r else None for r in results if not isinstance(r, int)]
    record("assemble", json.dumps({"members": len(results), "pages": pages}))
    return {"site": site, "pages": len(pages), "words": sum(r["words"] for r in results if isinstance(r, dict))}


@app.task(crash_cap=50)
def report(batch_id):
    record("report", batch_id)
    return batch_id
"""


class Crawl:
    """The project, its ledger (SQLite file or PostgreSQL database) and the side log."""

    def __init__(self, project: Project, pg_url: str | None) -> None:
        self.project = project
        self.pg_url = pg_url
        self.side = project.root / "side.log"
        project.write("tasks.py", TASKS)
        project.extra_env.update(SIDE_LOG=str(self.side))
        if pg_url:
            project.extra_env.update(LITEQUEUE_DB=pg_url)

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if self.pg_url is None:
            return self.project.query(sql, params)
        return pg_query(self.pg_url, sql, params)

    def side_lines(self) -> list[tuple[str, str, int, str]]:
        if not self.side.exists():
            return []
        return [(k, j, int(a), v) for k, j, a, v in (line.split(" ", 3) for line in self.side.read_text().splitlines())]

    def open_batch(self, producer: str) -> str:
        return self.project.python("from tasks import *\n" + producer).stdout.strip()

    def show(self, batch_id: str) -> dict[str, Any]:
        return self.project.cli_json("batches", "show", batch_id, "--json")

    def wait_done(self, batch_id: str, timeout: float = 120) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            view = self.show(batch_id)
            return view if view["state"] in ("succeeded", "failed") else None
        return wait_for(done, timeout, interval=0.3, what=f"batch {batch_id} to complete")

    def attempts(self, task: str) -> Counter[str]:
        return Counter(o for (o,) in self.query(
            "SELECT a.outcome FROM lq_attempt a JOIN lq_job j ON j.id = a.job_id WHERE j.task = ?", (task,)))


CRAWL = f"""
with app.batch("crawl acme", on_complete=assemble.s("acme"), on_failure=report) as b:
    fetch("acme", {PAGES})
print(b.id)
"""


@pytest.fixture(params=["sqlite", "postgres"])
def crawl(request: pytest.FixtureRequest, project: Project) -> Crawl:
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    return Crawl(project, url)


def check_exactly_once(c: Crawl, batch_id: str) -> dict[str, Any]:
    """The fan-in happened once, after every page, over all 200 results; nothing lost."""
    view = c.show(batch_id)
    assert view["state"] == "succeeded", view
    # fetch + 200 pages, each counted once: the pages fetch added were written once, even
    # if fetch ran more than once
    assert (view["total"], view["succeeded"], view["failed"]) == (PAGES + 1, PAGES + 1, 0), view
    assert (view["running"], view["queued"], view["percent"]) == (0, 0, 100.0)
    tasks = dict(c.query("SELECT task, COUNT(*) FROM lq_job GROUP BY task"))
    assert tasks == {"fetch": 1, "page": PAGES, "assemble": 1}, tasks  # assemble enqueued exactly once
    assert dict(c.query("SELECT status, COUNT(*) FROM lq_job GROUP BY status")) == {"succeeded": PAGES + 2}
    pages = sorted(int(a) for (a,) in c.query("SELECT args FROM lq_job WHERE task = 'page'")
                   for a in [json.loads(a)[1]])
    assert pages == list(range(PAGES))
    assert c.query("SELECT COUNT(*) FROM lq_ready")[0][0] == 0
    assert c.query("SELECT COUNT(*) FROM lq_schedule")[0][0] == 0
    # assemble: one success; any other line in the side log belongs to an interrupted attempt
    outcomes = c.attempts("assemble")
    assert outcomes["succeeded"] == 1 and set(outcomes) <= {"succeeded", "interrupted"}, outcomes
    runs = [json.loads(v) for k, _, _, v in c.side_lines() if k == "assemble"]
    assert 1 <= len(runs) <= 1 + outcomes["interrupted"]
    assert runs[-1] == {"members": PAGES + 1, "pages": list(range(PAGES))}  # all 200, in order
    # after all 200: its first attempt started after the last page finished
    first_start = c.query("SELECT MIN(a.started_at) FROM lq_attempt a JOIN lq_job j ON j.id = a.job_id "
                          "WHERE j.task = 'assemble'")[0][0]
    last_page = c.query("SELECT MAX(finished_at) FROM lq_job WHERE task = 'page'")[0][0]
    assert first_start >= last_page
    seen = Counter(int(v) for k, _, _, v in c.side_lines() if k == "page")
    assert set(seen) == set(range(PAGES)), "a page's work is missing"
    result = c.query("SELECT result FROM lq_job WHERE task = 'assemble'")[0][0]
    assert json.loads(result) == {"site": "acme", "pages": PAGES, "words": 3 * sum(range(PAGES))}
    return view


def test_crawl_fans_in_exactly_once(crawl: Crawl) -> None:
    batch_id = crawl.open_batch(CRAWL)
    crawl.project.start_consumer("tasks", "-w", "8")
    view = crawl.wait_done(batch_id)
    check_exactly_once(crawl, batch_id)
    assert crawl.attempts("page") == {"succeeded": PAGES}
    say(f"crawl: {view['total']} members, assemble once, {view['started']} .. {view['finished']}")


def test_crawl_survives_five_sigkills(crawl: Crawl) -> None:
    """SIGKILL the consumer (its whole process group) at 5 random moments during the run,
    restarting it each time; then let one finish. The first kill lands while fetch is
    adding pages (it takes 0.5 s), the others while pages run."""
    seed = int(os.environ.get("LITEQUEUE_FAULT_SEED") or time.time_ns() % 1_000_000)
    rng = random.Random(seed)
    crawl.project.extra_env.update(PAGE_SECONDS="0.1", FETCH_SECONDS="0.5")
    batch_id = crawl.open_batch(CRAWL)
    kills = []
    for n in range(5):
        before = crawl.query("SELECT COUNT(*) FROM lq_attempt")[0][0]
        proc = crawl.project.start_consumer("tasks", "-w", "8")
        wait_for(lambda b=before: crawl.query("SELECT COUNT(*) FROM lq_attempt")[0][0] > b, 30,
                 what="the restarted consumer to start a job")
        if n > 0:
            wait_for(lambda: crawl.query("SELECT status FROM lq_job WHERE task = 'fetch'") == [("succeeded",)],
                     30, what="fetch to have added the pages")
        time.sleep(rng.uniform(0.05, 0.4 if n == 0 else 0.6))  # the random moment
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        state = crawl.show(batch_id)  # as the kill left it
        kills.append(state)
        assert state["state"] in ("open", "running"), f"the run was over before kill {len(kills)}"
    crawl.project.start_consumer("tasks", "-w", "8")
    view = crawl.wait_done(batch_id)
    check_exactly_once(crawl, batch_id)
    outcomes = Counter(o for (o,) in crawl.query("SELECT outcome FROM lq_attempt"))
    assert outcomes["interrupted"] >= 2, outcomes  # the kills hit running jobs
    assert crawl.attempts("fetch") == {"interrupted": 1, "succeeded": 1}  # killed while adding pages
    done_at_kills = [k["succeeded"] + k["failed"] for k in kills]
    page_lines = sum(1 for k, *_ in crawl.side_lines() if k == "page")
    jobs = dict(crawl.query("SELECT task, COUNT(*) FROM lq_job GROUP BY task"))
    say(f"crawl under SIGKILL (seed {seed}): kills=5 at {done_at_kills} of {view['total']} members done; "
        f"attempts {dict(outcomes)} (fetch {dict(crawl.attempts('fetch'))}); "
        f"page work done {page_lines} times for {PAGES} pages "
        f"(repeats = interrupted attempts); jobs {jobs}")
    say("batches show --json: " + json.dumps(view))


def test_three_of_two_hundred_fail_on_failure_runs_once(crawl: Crawl) -> None:
    crawl.project.extra_env["FAIL_PAGES"] = "13,101,187"
    batch_id = crawl.open_batch(f"""
with app.batch("pages of acme", on_complete=assemble.s("acme"), on_failure=report) as b:
    page.map([("acme", n) for n in range({PAGES})], batch=b)
print(b.id)
""")
    crawl.project.start_consumer("tasks", "-w", "8")
    view = crawl.wait_done(batch_id)
    wait_for(lambda: crawl.show(batch_id)["on_failure"]["status"] == "succeeded", 30, what="on_failure to run")
    view = crawl.show(batch_id)
    assert view["state"] == "failed"
    assert (view["succeeded"], view["total"], view["failed"]) == (197, 200, 3)
    text = crawl.project.cli("batches", "show", batch_id).stdout
    assert "197 of 200 succeeded, 3 failed" in text
    assert [v for k, _, _, v in crawl.side_lines() if k == "report"] == [batch_id]  # once
    tasks = dict(crawl.query("SELECT task, COUNT(*) FROM lq_job GROUP BY task"))
    assert tasks == {"page": 200, "assemble": 1, "report": 1}
    (runs,) = [json.loads(v) for k, _, _, v in crawl.side_lines() if k == "assemble"]
    assert runs["pages"] == [None if n in (13, 101, 187) else n for n in range(PAGES)]
    listing = crawl.project.cli_json("batches", "list", "--json")
    assert [b["id"] for b in listing] == [batch_id]
