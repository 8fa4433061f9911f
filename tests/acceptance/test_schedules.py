"""Schedules stored in the database, changed with the real CLI while two real consumers run
(issue 13): a schedule added fires at its next slot exactly once, stops after ``pause``,
and ``schedules run`` fires it at once; on SQLite and PostgreSQL.

The consumers' periodic clock is stepped a minute at a time through
``LITEQUEUE_TEST_CLOCK_OFFSET_FILE`` (seconds added to the scheduler's clock by the test
support in tests/support/clock.py), so the test does not wait for minute boundaries;
everything else runs on the real clock.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Project, pg_query, wait_for
from tests.support.clock import stepped_clock_env

TASKS = """
import os
from litequeue import LiteQueue

app = LiteQueue("clock")

@app.task()
def report(kind, n=0):
    fd = os.open(os.environ["SIDE_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, f"{kind} {n}\\n".encode())
    os.close(fd)
"""


class Backend:
    """The project's database, read directly (SQLite file or a fresh PostgreSQL database)."""

    def __init__(self, project: Project, url: str | None) -> None:
        self.project, self.url = project, url
        if url:
            project.extra_env["LITEQUEUE_DB"] = url

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if self.url is None:
            return self.project.query(sql, params)
        return pg_query(self.url, sql, params)

    def runs(self, name: str) -> list[tuple[str, str]]:
        """(slot, job status) of each run of stored schedule ``name``, oldest first."""
        return self.query("SELECT r.slot, j.status FROM lq_periodic_run r LEFT JOIN lq_job j ON j.id = r.job_id "
                          "WHERE r.task = ? ORDER BY r.id", (f"schedule:{name}",))


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, project: Project) -> Iterator[Backend]:
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    yield Backend(project, url)


def minute(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M")


def test_a_schedule_added_while_consumers_run_fires_once_pauses_and_runs_now(backend: Backend) -> None:
    project = backend.project
    project.write("tasks.py", TASKS)
    side = project.root / "side.log"
    clock = project.root / "clock-offset"
    project.extra_env.update(SIDE_LOG=str(side), LITEQUEUE_APP="tasks", **stepped_clock_env(project.root, clock))
    # The consumers' clock starts 2 s into a minute (M0): nearly a minute before the real
    # clock could move it on by itself.
    now = time.time()
    offset = 2 - now % 60
    clock.write_text(str(offset))
    m0 = dt.datetime.fromtimestamp(now + offset, dt.UTC).replace(second=0, microsecond=0)
    m1, m2 = m0 + dt.timedelta(minutes=1), m0 + dt.timedelta(minutes=2)
    project.cli("migrate")  # the schema exists before `status` asks
    consumers = [project.start_consumer("tasks", "-w", "2") for _ in range(2)]
    wait_for(lambda: len(project.cli_json("status", "--json")["consumers"]) == 2, 30, what="two consumers")

    # Due in M1 and M2 only: a consumer's first pass (M0) cannot fire it, whenever it comes.
    cron = f"{m1.minute},{m2.minute} * * * *"
    added = project.cli("schedules", "add", "report", "--cron", cron, "--task", "report",
                        "--kwargs", '{"kind": "cron"}', "--queue", "default", "--priority", "5")
    assert added.stdout.startswith("added schedule report: report at")
    # Every minute, named to sort after "report": a pass that fired it has decided "report" too.
    project.cli("schedules", "add", "zz-witness", "--cron", "* * * * *", "--task", "report",
                "--args", '["witness"]')
    listed = {s["name"]: s for s in project.cli_json("schedules", "list", "--json")}
    assert listed["report"]["enabled"] is True and listed["report"]["kwargs"] == {"kind": "cron"}
    assert listed["report"]["read_only"] is False

    clock.write_text(str(offset + 60))  # the consumers' clock reaches M1
    wait_for(lambda: backend.runs("report") == [(minute(m1), "succeeded")], 30, what="the run of M1 to succeed")
    wait_for(lambda: minute(m1) in dict(backend.runs("zz-witness")), 30, what="the witness of M1")
    assert side.read_text().split("\n").count("cron 0") == 1

    paused = project.cli("schedules", "pause", "report")
    assert paused.stdout.strip() == "paused schedule report"
    assert project.cli_json("schedules", "list", "--json")[0]["enabled"] is False
    clock.write_text(str(offset + 120))  # M2: due, but paused
    wait_for(lambda: minute(m2) in dict(backend.runs("zz-witness")), 30, what="the witness of M2")
    assert backend.runs("report") == [(minute(m1), "succeeded")], "a paused schedule fired"

    job_id = project.cli("schedules", "run", "report").stdout.strip()
    wait_for(lambda: backend.query("SELECT status FROM lq_job WHERE id = ?", (job_id,)) == [("succeeded",)], 30,
             what="the job of `schedules run` to succeed")
    runs = backend.runs("report")
    assert len(runs) == 2 and runs[0] == (minute(m1), "succeeded") and len(runs[1][0]) == 19  # a second, not a slot
    assert side.read_text().split("\n").count("cron 0") == 2
    job = project.cli_json("jobs", "show", job_id, "--json")
    assert (job["task"], job["queue"], job["priority"], job["kwargs"]) == ("report", "default", 5, {"kind": "cron"})
    for proc in consumers:
        proc.terminate()
    assert [proc.wait(30) for proc in consumers] == [0, 0]


def test_a_bad_schedule_is_one_line_and_stores_nothing(project: Project) -> None:
    project.write("tasks.py", TASKS)
    project.extra_env["LITEQUEUE_APP"] = "tasks"
    good = ["--cron", "*/5 * * * *", "--task", "report"]
    cases = {
        "bad cron expression '*/5 * * *': it needs 5 fields": ["--cron", "*/5 * * *", "--task", "report"],
        "bad cron expression '61 * * * *': 61 is not a valid input": ["--cron", "61 * * * *", "--task", "report"],
        "unknown timezone 'Mars/Olympus'": [*good, "--timezone", "Mars/Olympus"],
        "unknown task 'nope'; registered tasks: report": ["--cron", "*/5 * * * *", "--task", "nope"],
        "Invalid value for --args: must be a JSON list": [*good, "--args", '{"a": 1}'],
        "Invalid value for --kwargs: not valid JSON": [*good, "--kwargs", "{kind: 1}"],
    }
    for message, args in cases.items():
        proc = project.cli("schedules", "add", "nightly", *args, check=False)
        assert proc.returncode == 2, (args, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1 and message in proc.stderr, (args, proc.stderr)
    assert project.query("SELECT name FROM lq_periodic_schedule") == []
    missing = project.cli("schedules", "pause", "nightly", check=False)
    assert missing.returncode == 1 and "no schedule named 'nightly'" in missing.stderr
