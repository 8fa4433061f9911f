"""``litequeue jobs replay ID``: a job's task run again in the foreground with its stored
arguments; the ledger is left exactly as it was; problems with the job are one line and
exit 2; ``--pdb`` stops in the debugger where the task raised."""

from __future__ import annotations

import json
import subprocess
import sys

import pexpect
import pytest

from tests.conftest import BOTH_BACKENDS, Project

TASKS = """
from litequeue import LiteQueue, current_job

app = LiteQueue("shop")


@app.task()
def boom(order):
    local_thing = {"order": order, "why": "no stock"}
    raise ValueError(f"bad order {order}")


@app.task()
def add(a, b=0):
    return a + b


@app.task()
def whoami(n):
    job = current_job()
    job.progress(n, n, "all done")
    return {"id": job.id, "task": job.task, "queue": job.queue, "cancelled": job.cancelled}


@app.task(queue="later")
def later(text):
    return text.upper()
"""

SEED = """
import json
from tasks import add, boom, later, whoami
ids = {"boom": boom(7).id, "add": add(2, b=40).id, "whoami": whoami(3).id, "later": later("hello").id,
       "cancelled": add(1, b=1).id}
print(json.dumps(ids))
"""

#: A job whose argument is an instance of a class only the producer's __main__ had.
UNPICKLABLE = """
import json
from tasks import add

class Point:
    pass

print(json.dumps({"id": add(Point()).id}))
"""

TABLES = ("lq_job", "lq_attempt", "lq_ready", "lq_schedule", "lq_event", "lq_kv", "lq_finished")


@pytest.fixture
def seeded(project: Project) -> tuple[Project, dict[str, str]]:
    project.write("tasks.py", TASKS)
    ids = json.loads(project.python(SEED).stdout.strip().splitlines()[-1])
    project.cli("jobs", "cancel", ids["cancelled"])
    project.cli("run-consumer", "tasks", "--burst", "-Q", "default")
    return project, ids


def ledger_state(project: Project) -> dict[str, list[str]]:
    """Every row of the tables a run of a job writes to (payloads as bytes, comparable)."""
    def plain(row: tuple) -> str:
        return repr(tuple(bytes(v) if isinstance(v, memoryview) else v for v in row))
    return {table: sorted(map(plain, project.query(f"SELECT * FROM {table}"))) for table in TABLES}


def replay(project: Project, *args: str) -> subprocess.CompletedProcess[str]:
    return project.cli("jobs", "replay", *args, "--app", "tasks", check=False)


@BOTH_BACKENDS
def test_replay_runs_each_kind_of_job_and_writes_nothing(seeded: tuple[Project, dict[str, str]]) -> None:
    project, ids = seeded
    statuses = dict(project.query("SELECT id, status FROM lq_job"))
    assert [statuses[ids[k]] for k in ("boom", "add", "later", "cancelled")] == \
        ["failed", "succeeded", "queued", "cancelled"]
    before = ledger_state(project)
    assert before["lq_ready"]  # the queued job waits there

    failed = replay(project, ids["boom"])
    assert failed.returncode == 1 and failed.stdout == ""
    assert failed.stderr.rstrip().endswith("ValueError: bad order 7")
    frames = [line for line in failed.stderr.splitlines() if line.startswith('  File "')]
    assert frames and "tasks.py" in frames[0], failed.stderr  # the task's own frames, not litequeue's

    ok = replay(project, ids["add"])
    assert (ok.returncode, ok.stdout) == (0, "42\n"), ok.stderr
    assert replay(project, ids["later"]).stdout == "HELLO\n"  # queued, not run yet
    assert replay(project, ids["cancelled"]).stdout == "2\n"

    me = replay(project, ids["whoami"])
    assert json.loads(me.stdout.replace("'", '"').replace("False", "false")) == \
        {"id": ids["whoami"], "task": "whoami", "queue": "default", "cancelled": False}
    assert "progress 3/3 all done" in me.stderr

    assert ledger_state(project) == before


def test_problems_are_one_line_and_exit_2(seeded: tuple[Project, dict[str, str]]) -> None:
    project, ids = seeded
    unknown = replay(project, "01a24e76-0000-7000-8000-000000000000")
    assert unknown.returncode == 2
    assert unknown.stderr.splitlines() == ["Error: no job '01a24e76-0000-7000-8000-000000000000' in the ledger; "
                                           "see `litequeue jobs list`"]

    bad = json.loads(project.python(UNPICKLABLE).stdout.strip().splitlines()[-1])["id"]
    before = ledger_state(project)
    unpickled = replay(project, bad)
    assert unpickled.returncode == 2 and len(unpickled.stderr.splitlines()) == 1, unpickled.stderr
    assert "arguments cannot be unpickled" in unpickled.stderr and "Point" in unpickled.stderr

    project.write("tasks.py", TASKS.replace("def boom(order):", "def boom_renamed(order):"))
    gone = replay(project, ids["boom"])
    assert gone.returncode == 2 and len(gone.stderr.splitlines()) == 1, gone.stderr
    assert "task 'tasks.boom' no longer exists" in gone.stderr and "Traceback" not in gone.stderr

    no_app = project.cli("jobs", "replay", ids["add"], check=False)
    assert no_app.returncode == 2 and no_app.stderr.count("\n") == 1 and "APP" in no_app.stderr
    assert ledger_state(project) == before


def test_pdb_stops_where_the_task_raised(seeded: tuple[Project, dict[str, str]]) -> None:
    project, ids = seeded
    child = pexpect.spawn(sys.executable, ["-m", "litequeue", "jobs", "replay", ids["boom"], "--pdb", "--app", "tasks"],
                          cwd=str(project.root), env=project.env, encoding="utf-8", timeout=60)
    child.expect(r"\(Pdb\)")
    child.sendline("p local_thing")
    child.expect(r"\{'order': 7, 'why': 'no stock'\}")
    child.expect(r"\(Pdb\)")
    child.sendline("q")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1
