"""Retention on real databases: ``prune`` (library and CLI), ``vacuum``, the auto-pruner,
and a database that stays bounded under a steady load."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from litequeue.base.durations import parse_duration
from litequeue.base.errors import ConfigurationError
from litequeue.engine.storage import LiteStorage, open_store
from litequeue.jobs.retention import (
    DAY,
    AutoPruner,
    page_stats,
    prune,
    prune_policy,
    vacuum,
)
from tests.conftest import BOTH_BACKENDS, Project

TASKS = """
import os
from litequeue import LiteQueue

app = LiteQueue("ret")

@app.task()
def work(n, pad=""):
    if n % 5 == 0:
        raise ValueError(f"bad {n}")
    return {"n": n, "pad": pad}

@app.task(queue="later")
def later(n):
    return n
"""


@pytest.fixture
def store(project: Project) -> Iterator[LiteStorage]:
    s = open_store(project.pg_url or str(project.db), create=True)
    yield s
    s.database.close()


def run_jobs(project: Project, n: int, pad: int = 0, start: int = 1) -> None:
    """Enqueue ``n`` jobs (every fifth fails) and run them with a real burst consumer."""
    project.python(f"import tasks\ntasks.app.enqueue_many([tasks.work.s(i, 'x' * {pad}) "
                   f"for i in range({start}, {start + n})])")
    project.cli("run-consumer", "tasks", "--burst", "-w", "4", timeout=120)


def age(project: Project, status: str, days: float, store: LiteStorage) -> None:
    """Make jobs look older (test setup: finished ``days`` ago)."""
    with store.write():
        store.sql("UPDATE lq_job SET finished_at = finished_at - ? WHERE status = ?", (days * DAY, status))


def counts(project: Project) -> dict[str, int]:
    return {t: project.query(f"SELECT COUNT(*) FROM {t}")[0][0]
            for t in ("lq_job", "lq_attempt", "lq_kv", "lq_event", "lq_periodic_run", "lq_consumer")}


def test_parse_duration() -> None:
    assert parse_duration("30s") == 30
    assert parse_duration("10m") == 600
    assert parse_duration("2h") == 7200
    assert parse_duration("1d") == DAY
    assert parse_duration("1h30m") == 5400
    assert parse_duration("1.5h") == 5400
    for bad in ("", "7", "1y", "m", "-1d", "1d2"):
        with pytest.raises(ValueError, match="e.g. 30s"):
            parse_duration(bad)


@BOTH_BACKENDS
def test_prune_deletes_old_finished_jobs_and_keeps_the_rest(project: Project, store: LiteStorage) -> None:
    project.write("tasks.py", TASKS)
    run_jobs(project, 20)  # 16 succeeded, 4 failed, each with an attempt and a stored result
    project.python("import tasks\nfor i in range(3): tasks.later.schedule((i,), delay=3600)\n"
                   "tasks.work(7)")  # 3 scheduled, 1 queued: never pruned
    project.cli("pause", "default")  # an event
    before = counts(project)
    finished_before = project.query("SELECT * FROM lq_finished ORDER BY queue, task, outcome")
    assert project.statuses() == {"succeeded": 16, "failed": 4, "scheduled": 3, "queued": 1}
    assert before["lq_kv"] >= 16

    dry = prune(store, 0, ["succeeded", "failed"], dry_run=True)
    assert (dry.jobs, dry.attempts, dry.results) == (20, 20, 20)  # a failure stores its error
    assert counts(project) == before, "a dry run deleted something"

    seen: list[tuple[int, int]] = []
    result = prune(store, 0, ["succeeded"], batch=6, progress=lambda d, t: seen.append((d, t)))
    assert (result.jobs, result.attempts, result.results) == (16, 16, 16)
    assert seen == [(0, 16), (6, 16), (12, 16), (16, 16)]
    assert project.statuses() == {"failed": 4, "scheduled": 3, "queued": 1}
    assert result.events == 1 and counts(project)["lq_event"] == 0
    left_attempts = project.query("SELECT COUNT(*) FROM lq_attempt a JOIN lq_job j ON j.id = a.job_id")[0][0]
    assert left_attempts == counts(project)["lq_attempt"] == 4, "attempts of pruned jobs left behind"
    assert project.query("SELECT * FROM lq_finished ORDER BY queue, task, outcome") == finished_before

    # Not old enough yet: nothing goes.
    assert prune(store, 3600, ["failed"]).jobs == 0
    age(project, "failed", 2, store)
    assert prune(store, DAY, ["failed"]).jobs == 4
    assert project.statuses() == {"scheduled": 3, "queued": 1}
    with pytest.raises(ConfigurationError, match="only finished jobs"):
        prune(store, 0, ["queued"])


@BOTH_BACKENDS
def test_policy_keeps_failed_longer_than_succeeded(project: Project, store: LiteStorage) -> None:
    project.write("tasks.py", TASKS)
    run_jobs(project, 10)  # 8 succeeded, 2 failed
    age(project, "succeeded", 8, store)
    age(project, "failed", 8, store)
    result = prune_policy(store, keep_succeeded_days=7, keep_failed_days=30)
    assert result.jobs == 8 and project.statuses() == {"failed": 2}
    age(project, "failed", 23, store)  # now 31 days old
    assert prune_policy(store, keep_succeeded_days=7, keep_failed_days=30).jobs == 2
    assert project.statuses() == {}


@BOTH_BACKENDS
def test_periodic_run_keys_are_kept_at_least_an_hour(project: Project, store: LiteStorage) -> None:
    project.write("tasks.py", TASKS)
    run_jobs(project, 1)
    now = time.time()
    with store.write():
        store.sql("INSERT INTO lq_periodic_run (task, slot, job_id, created_at) VALUES "
                  "('t', 'recent', 'a', ?), ('t', 'old', 'b', ?)", (now - 60, now - 7200))
    result = prune(store, 0, ["succeeded"])
    assert result.periodic_runs == 1
    assert [r[0] for r in project.query("SELECT slot FROM lq_periodic_run")] == ["recent"]


@BOTH_BACKENDS
def test_cli_prune(project: Project) -> None:
    project.write("tasks.py", TASKS)
    run_jobs(project, 1200)  # 960 succeeded, 240 failed
    dry = project.cli("prune", "--older-than", "0s", "--status", "succeeded", "--dry-run")
    assert "would delete 960 job(s), 960 attempt(s)" in dry.stdout
    assert project.statuses()["succeeded"] == 960
    out = project.cli("prune", "--older-than", "0s", "--status", "succeeded", "--batch", "500", "--json")
    data = __import__("json").loads(out.stdout)
    assert data["jobs"] == 960 and data["dry_run"] is False
    # stderr is not a terminal here: plain progress lines, the last one complete.
    assert out.stderr.strip().splitlines()[-1] == "prune: 960/960 (100%)"
    assert project.statuses() == {"failed": 240}
    # The default is the retention policy: 240 fresh failures stay.
    assert "deleted 0 job(s)" in project.cli("prune").stdout
    vac = project.cli("prune", "--older-than", "1s", "--vacuum")
    # SQLite tells the bytes it won back; PostgreSQL's VACUUM does not.
    assert "deleted 240 job(s)" in vac.stdout and ("vacuumed:" if project.backend == "sqlite" else "vacuumed\n") \
        in vac.stdout
    bad = project.cli("prune", "--older-than", "7", check=False)
    assert bad.returncode == 2 and "Error: Invalid value for '--older-than'" in bad.stderr
    bad = project.cli("prune", "--status", "running", check=False)
    assert bad.returncode == 2 and "only finished jobs" in bad.stderr


@BOTH_BACKENDS
def test_auto_pruner_takes_turns_and_works_off_a_backlog(project: Project, store: LiteStorage) -> None:
    project.write("tasks.py", TASKS)
    run_jobs(project, 50)  # 40 succeeded, 10 failed
    age(project, "succeeded", 8, store)
    first = AutoPruner(interval=600, batch=15, max_batches=1)
    other = AutoPruner(interval=600, batch=15, max_batches=1)
    # An hour on: the burst consumer's own auto-prune pass (just now) no longer counts.
    now = time.time() + 3600
    assert first.maybe_prune(store, now).jobs == 15
    assert first.backlog is True
    # The other consumer's pruner sees that a pass was taken and waits its interval.
    assert other.maybe_prune(store, now + 1) is None
    assert other.next_at == pytest.approx(now + 600)
    assert first.maybe_prune(store, now + 1).jobs == 15
    last = first.maybe_prune(store, now + 2)
    assert last.jobs == 10 and last.more is False and first.backlog is False
    assert first.maybe_prune(store, now + 3) is None, "pruned again before the interval"
    assert project.statuses() == {"failed": 10}
    age(project, "failed", 31, store)
    assert first.maybe_prune(store, now + 602).jobs == 10  # the interval counts from the last pass


def test_database_stays_bounded_under_a_steady_load(project: Project, store: LiteStorage) -> None:
    """Rounds of 200 jobs with 1 kB arguments and results: pruned after each round, the file
    stays flat (freed pages are reused); one round without a prune shows what growth looks like."""
    project.write("tasks.py", TASKS)
    pages = []
    for round_ in range(4):
        run_jobs(project, 200, pad=1000, start=round_ * 1000 + 1)
        prune(store, 0)
        pages.append(page_stats(store)["page_count"])
    # Two rounds without a prune (the first one fills the pages the last prune freed).
    run_jobs(project, 200, pad=1000, start=8001)
    run_jobs(project, 200, pad=1000, start=9001)
    unpruned = page_stats(store)["page_count"] - pages[3]
    assert unpruned > 100, f"a round without a prune should need 100+ pages of 4 kB: {unpruned}"
    # Pruned rounds reuse freed pages: what is left is B-tree slack, a page or two a round.
    assert pages[3] - pages[1] < unpruned / 20, f"the file kept growing though every round was pruned: {pages}"
    prune(store, 0)
    size_before, size_after = vacuum(store)
    assert size_before is not None and size_after is not None and size_after < size_before
    assert Path(project.db).stat().st_size == size_after
