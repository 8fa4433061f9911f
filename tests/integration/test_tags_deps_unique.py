"""Tags, dependencies and unique jobs (issue 12), on a real SQLite file and a real PostgreSQL
database: written by the enqueue's transaction, resolved by the ack's, driven by the CLI."""

from __future__ import annotations

import json
import multiprocessing
import time
from typing import Any

import pytest

from litequeue.base.errors import DependencyError
from litequeue.base.states import AttemptOutcome, JobStatus
from litequeue.base.values import Finished
from litequeue.jobs import actions
from tests.conftest import Project, job_row, running_consumer, wait_job


@pytest.fixture
def app(make_app):
    app = make_app()

    @app.task()
    def work(n):
        if n < 0:
            raise ValueError(f"bad {n}")
        return n

    @app.task()
    def ocr(page):
        return page

    @app.task(unique=True, unique_for=30)
    def invoice(number):
        return number

    app.work, app.ocr, app.invoice = work, ocr, invoice
    return app


def db_target(app: Any) -> str:
    return str(app.db_target)


def cli(project: Project, app: Any, *args: str, check: bool = True):
    project.extra_env["LITEQUEUE_DB"] = db_target(app)
    return project.cli(*args, check=check)


def end(app: Any, job_ids: list[str], status: JobStatus = JobStatus.SUCCEEDED) -> None:
    """Claim and ack ``job_ids`` as a consumer would, ending each in ``status``."""
    outcome = {JobStatus.SUCCEEDED: AttemptOutcome.SUCCEEDED, JobStatus.FAILED: AttemptOutcome.FAILED}[status]
    claims = [c for c in app.storage.claim("tester", None, 1000) if c.job_id in job_ids]
    assert sorted(c.job_id for c in claims) == sorted(job_ids)
    now = time.time()
    acked = app.storage.ack("tester", [Finished(c, "work", status, outcome, now, now,
                                                error="bad" if status is JobStatus.FAILED else None)
                                       for c in claims])
    assert len(acked) == len(claims)
    app.storage.release("tester")  # claims of other jobs taken above go back


def statuses(app: Any, ids: list[str]) -> list[str]:
    return [job_row(app, i)["status"] for i in ids]


# -- tags -----------------------------------------------------------------------------------

def test_purge_by_tag_cancels_only_that_tags_queued_jobs(app, project):
    running = app.enqueue(app.ocr.s(9), tags=["site:acme"]).id
    assert [c.job_id for c in app.storage.claim("holder", None, 1)] == [running]
    acme = [app.enqueue(app.ocr.s(p), tags=["site:acme"]).id for p in range(3)]
    beta = [app.enqueue(app.ocr.s(p).with_tags("site:beta")).id for p in range(2)]
    untagged = app.ocr(7).id
    later = app.enqueue(app.ocr.s(8).with_options(tags=["site:acme"])).id

    dry = cli(project, app, "purge", "--tag", "site:acme", "--dry-run").stdout
    assert "tag site:acme: 4 queued job(s) would be dropped" in dry
    out = cli(project, app, "purge", "--tag", "site:acme", "-y").stdout
    assert "dropped 4 queued job(s)" in out, out
    assert statuses(app, [*acme, later]) == ["cancelled"] * 4
    assert job_row(app, acme[0])["error"] == "purged"
    assert job_row(app, running)["status"] == "running"
    assert statuses(app, [*beta, untagged]) == ["queued"] * 3
    # QUEUE and --tag together: only that tag's jobs in that queue.
    assert "0 queued job(s)" in cli(project, app, "purge", "other", "--tag", "site:beta", "--dry-run").stdout


def test_jobs_list_cancel_and_retry_by_tag(app, project):
    failed_acme = [app.enqueue(app.work.s(-i), tags=["site:acme", "nightly"]).id for i in (1, 2)]
    failed_beta = app.enqueue(app.work.s(-3), tags=["site:beta"]).id
    end(app, [*failed_acme, failed_beta], JobStatus.FAILED)
    waiting_acme = app.enqueue(app.work.s(5), tags=["site:acme"], depends_on=[app.work(6)]).id

    rows = json.loads(cli(project, app, "jobs", "list", "--tag", "site:acme", "--json").stdout)
    assert {r["id"] for r in rows} == {*failed_acme, waiting_acme}
    assert all("site:acme" in r["tags"] for r in rows)

    out = cli(project, app, "jobs", "retry", "--all-failed", "--tag", "site:acme").stdout
    mapping = dict(line.split(" -> ") for line in out.splitlines())
    assert set(mapping) == set(failed_acme)
    assert job_row(app, failed_beta)["retried_as"] is None
    for new in mapping.values():  # the retried job keeps the original's tags
        assert job_row(app, new)["tags"] == ["nightly", "site:acme"]

    out = cli(project, app, "jobs", "cancel", "--tag", "site:acme").stdout
    assert f"{waiting_acme}: cancelled" in out
    assert statuses(app, list(mapping.values())) == ["cancelled", "cancelled"]
    bad = cli(project, app, "jobs", "retry", "--tag", "site:acme", check=False)
    assert bad.returncode == 2 and "--tag goes with --all-failed" in bad.stderr


def test_status_by_tag_shows_progress_per_task(app, project):
    pages = [app.enqueue(app.ocr.s(p), tags=["site:acme"]).id for p in range(5)]
    fetch = app.enqueue(app.work.s(1), tags=["site:acme", "kind:fetch"]).id
    app.enqueue(app.ocr.s(1), tags=["site:beta"])
    end(app, [*pages[:3], fetch])
    end(app, [pages[3]], JobStatus.FAILED)

    out = cli(project, app, "status", "--by-tag", "site").stdout.splitlines()
    assert out == ["site:acme  ocr   3/5  (1 failed, 1 queued)",
                   "site:acme  work  1/1",
                   "site:beta  ocr   0/1  (1 queued)"], out
    data = json.loads(cli(project, app, "status", "--by-tag", "site:acme", "--json").stdout)
    assert data["tags"] == {"site:acme": {"ocr": {"done": 3, "total": 5, "succeeded": 3, "failed": 1, "queued": 1},
                                          "work": {"done": 1, "total": 1, "succeeded": 1}}}


def test_enqueue_cli_tags_and_task_default_tags(make_app, project):
    project.write("tasks.py", """
        from litequeue import LiteQueue
        app = LiteQueue("test")

        @app.task(tags=["kind:ocr"])
        def ocr(page):
            return page
    """)
    job_id = project.cli("enqueue", "ocr", "--args", "[1]", "--app", "tasks", "--tag", "site:acme",
                         "--tag", "batch:7").stdout.strip()
    job = project.cli_json("jobs", "show", job_id, "--json")
    assert job["tags"] == ["batch:7", "kind:ocr", "site:acme"]


# -- dependencies ---------------------------------------------------------------------------

def test_job_waits_for_every_dependency_then_runs_once(app):
    a, b = app.work(1), app.work(2)
    c = app.enqueue(app.work.s(3), depends_on=[a, b.id])
    assert job_row(app, c.id)["status"] == "waiting"
    assert app.storage.sql("SELECT COUNT(*) FROM lq_ready WHERE job_id = ?", (c.id,)).fetchone()[0] == 0
    end(app, [a.id])
    assert job_row(app, c.id)["status"] == "waiting"
    end(app, [b.id])
    assert job_row(app, c.id)["status"] == "queued"
    assert [d["outcome"] for d in job_row(app, c.id)["depends_on"]] == ["succeeded", "succeeded"]
    with running_consumer(app, workers=2):
        assert c.get(blocking=True, timeout=20) == 3
    assert app.storage.sql("SELECT COUNT(*) FROM lq_ready").fetchone()[0] == 0


def test_dependencies_acked_at_once_by_parallel_workers_release_each_dependent_once(app):
    """Two dependencies acked in two concurrent transactions: the count is decremented in
    place, so neither misses the last one and the dependent is queued exactly once."""
    pairs = [(app.work(i), app.work(i + 100)) for i in range(40)]
    after = [app.enqueue(app.work.s(1000 + i), depends_on=list(pair)) for i, pair in enumerate(pairs)]
    with running_consumer(app, workers=8):
        for job in after:
            wait_job(app, job.id, "succeeded", timeout=60)
    assert all(job_row(app, j.id)["attempts"] == 1 for j in after)


def test_failed_dependency_cancels_dependents_with_the_reason_and_cascades(app):
    bad = app.work(-1)
    good = app.work(1)
    child = app.enqueue(app.work.s(2), depends_on=[bad, good])
    grandchild = app.enqueue(app.work.s(3), depends_on=[child])
    anyway = app.enqueue(app.work.s(4), depends_on=[bad], on_dependency_failure="run")
    with running_consumer(app, workers=2):
        wait_job(app, child.id, "cancelled")
        wait_job(app, grandchild.id, "cancelled")
        assert anyway.get(blocking=True, timeout=20) == 4
    assert job_row(app, bad.id)["status"] == "failed"
    assert job_row(app, child.id)["error"] == f"cancelled: dependency {bad.id} failed"
    assert job_row(app, grandchild.id)["error"] == f"cancelled: dependency {child.id} cancelled"
    assert job_row(app, anyway.id)["status"] == "succeeded"


def test_dependency_that_ended_before_the_enqueue_counts(app):
    ok, bad = app.work(1), app.work(-1)
    end(app, [ok.id])
    end(app, [bad.id], JobStatus.FAILED)
    assert job_row(app, app.enqueue(app.work.s(2), depends_on=[ok]).id)["status"] == "queued"
    doomed = app.enqueue(app.work.s(3), depends_on=[ok, bad]).id
    assert job_row(app, doomed)["status"] == "cancelled"
    assert job_row(app, doomed)["error"] == f"cancelled: dependency {bad.id} failed"
    assert job_row(app, app.enqueue(app.work.s(4), depends_on=[bad], on_dependency_failure="run").id
                   )["status"] == "queued"


def test_cancel_of_a_dependency_or_a_waiting_dependent(app, project):
    a = app.work(1)
    b = app.enqueue(app.work.s(2), depends_on=[a])
    c = app.enqueue(app.work.s(3), depends_on=[b])
    out = cli(project, app, "jobs", "cancel", b.id).stdout
    assert out.strip() == f"{b.id}: cancelled"
    assert statuses(app, [a.id, b.id, c.id]) == ["queued", "cancelled", "cancelled"]
    assert job_row(app, c.id)["error"] == f"cancelled: dependency {b.id} cancelled"
    end(app, [a.id])  # b stays cancelled: nothing is queued for it
    assert statuses(app, [b.id, c.id]) == ["cancelled", "cancelled"]
    assert app.storage.sql("SELECT COUNT(*) FROM lq_ready").fetchone()[0] == 0


def test_unknown_dependency_and_cycle_are_refused_and_nothing_is_written(app):
    before = app.storage.sql("SELECT COUNT(*) FROM lq_job").fetchone()[0]
    with pytest.raises(DependencyError, match="depends on no-such-job, which is not a job"):
        app.enqueue(app.work.s(1), depends_on=["no-such-job"])

    def with_id(task: Any, job_id: str) -> Any:
        task.id, task.revoke_id = job_id, f"r:{job_id}"
        return task

    with pytest.raises(DependencyError, match="would wait for itself"):
        app.enqueue(with_id(app.work.s(1), "self-loop"), depends_on=["self-loop"])
    with pytest.raises(DependencyError, match="cycle"):
        with app.bulk(None):
            app.enqueue(with_id(app.work.s(1), "job-a"), depends_on=["job-b"])
            app.enqueue(with_id(app.work.s(2), "job-b"), depends_on=["job-a"])
    assert app.storage.sql("SELECT COUNT(*) FROM lq_job").fetchone()[0] == before
    assert app.storage.sql("SELECT COUNT(*) FROM lq_dependency").fetchone()[0] == 0
    # In one block, in order, without a cycle: fine.
    with app.bulk(None):
        app.enqueue(with_id(app.work.s(1), "job-c"))
        app.enqueue(with_id(app.work.s(2), "job-d"), depends_on=["job-c"])
    assert statuses(app, ["job-c", "job-d"]) == ["queued", "waiting"]


def test_pipelines_and_dependencies_together(app):
    head = app.work(1)
    pipe = app.work.s(2).then(app.work)  # the step gets the result: work(2)
    app.enqueue(pipe.with_options(depends_on=[head]))
    assert statuses(app, [pipe.id, pipe.on_complete.id]) == ["waiting", "waiting"]
    with running_consumer(app, workers=2):
        wait_job(app, pipe.on_complete.id, "succeeded")
    assert job_row(app, pipe.on_complete.id)["result"] == 2


# -- unique jobs ----------------------------------------------------------------------------

def test_unique_key_returns_the_existing_job_until_it_ended_plus_unique_for(app):
    first = app.enqueue(app.work.s(1), unique_key="invoice:42", unique_for=1.0)
    again = app.enqueue(app.work.s(2), unique_key="invoice:42", unique_for=1.0)
    assert again.id == first.id
    assert app.storage.sql("SELECT COUNT(*) FROM lq_job").fetchone()[0] == 1
    end(app, [first.id])
    assert app.enqueue(app.work.s(3), unique_key="invoice:42").id == first.id  # within unique_for
    held_until = app.storage.sql("SELECT held_until FROM lq_unique").fetchone()[0]
    while time.time() <= held_until:
        time.sleep(0.05)
    later = app.enqueue(app.work.s(4), unique_key="invoice:42")
    assert later.id != first.id
    assert job_row(app, later.id)["status"] == "queued"


def test_unique_task_keys_on_name_and_arguments(app):
    a, b, c = app.invoice(1), app.invoice(1), app.invoice(2)
    assert a.id == b.id != c.id
    app.storage.claim("holder", None, 10)  # running: still held
    assert app.invoice(1).id == a.id
    assert app.storage.sql("SELECT COUNT(*) FROM lq_job").fetchone()[0] == 2
    # However the job ends (here: purged), its key is held unique_for seconds from then.
    app.storage.release("holder")
    actions.purge_queues(app.storage, ["default"])
    held_until = app.storage.sql("SELECT held_until FROM lq_unique WHERE job_id = ?", (a.id,)).fetchone()[0]
    assert held_until is not None and held_until > time.time() + 20
    assert app.invoice(1).id == a.id


def _enqueue_unique(db: str, barrier: Any, out: Any) -> None:
    from litequeue import LiteQueue

    app = LiteQueue("test", db=db)

    @app.task()
    def work(n):
        return n

    app.storage  # noqa: B018  (open the database before the start line)
    barrier.wait(60)
    out.put(app.enqueue(work.s(1), unique_key="one-key").id)


def test_fifty_producer_processes_one_unique_key_make_one_job(app):
    ctx = multiprocessing.get_context("fork")
    barrier, out = ctx.Barrier(50), ctx.Queue()
    app.storage.close()  # nothing open in the parent while it forks
    procs = [ctx.Process(target=_enqueue_unique, args=(db_target(app), barrier, out)) for _ in range(50)]
    for p in procs:
        p.start()
    ids = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert len(set(ids)) == 1
    rows = app.storage.sql("SELECT id, status FROM lq_job").fetchall()
    assert rows == [(ids[0], "queued")]
    assert app.storage.sql("SELECT COUNT(*) FROM lq_ready").fetchone()[0] == 1
