"""The fuzz suite's Hypothesis profiles and its seeded queue.

``ci`` (loaded when ``CI=true``) is derandomized: the same examples every run, so it never
flakes; ``dev`` (elsewhere) draws new ones each run. Neither keeps an example database on disk
(every input that found a bug stays in the tests as an explicit ``@example``). The number of
examples per test is set where the test is, so the whole suite stays under ~90 s on one core.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from tests.conftest import IN_CI, Project

_COMMON = dict(deadline=None, database=None, print_blob=True,
               suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                      HealthCheck.data_too_large, HealthCheck.filter_too_much])
settings.register_profile("ci", derandomize=True, **_COMMON)
settings.register_profile("dev", **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if IN_CI else "dev"))

TASKS = """
from litequeue import LiteQueue

app = LiteQueue("fuzz")

@app.task(queue="mail")
def hello(x=None, **kw):
    return {"x": x}

@app.task()
def boom(x=None):
    raise ValueError(f"bad {x}")
"""

SEED = """
import json
from fuzz_tasks import app, boom, hello
ids = {"ok": hello(1).id, "failed": boom(2).id}
print(json.dumps(ids))
"""


class Seeded:
    """A project whose database holds a succeeded, a failed and a queued job (by role in ``ids``)."""

    def __init__(self, project: Project, ids: dict[str, str]) -> None:
        self.project = project
        self.ids = ids

    @property
    def db(self) -> str:
        return str(self.project.db)

    def jobs(self) -> dict[str, tuple[object, ...]]:
        """Every job's state, to see that nothing changed that was not asked for."""
        rows = self.project.query("SELECT id, status, queue, task, priority, attempts, finished_at FROM lq_job")
        return {row[0]: tuple(row[1:]) for row in rows}

    def ready(self) -> list[tuple[object, ...]]:
        return sorted(self.project.query("SELECT job_id, queue, claimed_by FROM lq_ready"))


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    project = Project(tmp_path_factory.mktemp("fuzz"))
    project.write("fuzz_tasks.py", TASKS)  # one name per module: in-process runs share sys.modules
    ids = json.loads(project.python(SEED).stdout.strip().splitlines()[-1])
    project.cli("run-consumer", "fuzz_tasks", "--burst", "-w", "1")
    ids["queued"] = project.cli("enqueue", "hello", "--args", "[3]", "--app", "fuzz_tasks").stdout.strip()
    yield Seeded(project, ids)
    project.kill_all()


@pytest.fixture(autouse=True)
def _environment_restored(tmp_path, monkeypatch) -> Iterator[None]:
    """The CLI run in-process exports ``--db``, ``--durability`` and ``--busy-timeout`` to
    ``os.environ`` for the library (litequeue/cli/root.py): without this, a fuzzed database
    path leaked into every later test of the same pytest worker ("schema version 0")."""
    saved = dict(os.environ)
    monkeypatch.chdir(tmp_path)  # a command run with no --db opens ./litequeue.db: never the checkout's
    yield
    os.environ.clear()
    os.environ.update(saved)
