"""Connecting to PostgreSQL: the driver (psycopg 3) named when missing, libpq's environment
honoured, a password in the URL never shown, producers retrying a lost server for their
window and then saying so in one line."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

import pytest

from tests.conftest import Project, wait_for
from tests.web.conftest import start_web

SECRET = "s3cr3t-Pa55"
TASKS = """
from litequeue import LiteQueue
app = LiteQueue("conn")

@app.task()
def hello(x=1):
    return x
"""


def with_password(pg_url: str) -> str:
    return pg_url.replace("postgresql://postgres@", f"postgresql://postgres:{SECRET}@")  # trust auth: ignored


@pytest.fixture
def conn_project(project: Project, pg_url: str) -> Project:
    project.write("tasks.py", TASKS)
    project.extra_env.update(LITEQUEUE_DB=with_password(pg_url), LITEQUEUE_APP="tasks:app")
    return project


def test_a_postgres_url_without_the_driver_is_one_line_naming_the_extra(conn_project: Project) -> None:
    proc = conn_project.python("""
        import sys
        sys.modules["psycopg"] = None  # as if installed without the [postgres] extra
        sys.argv = ["litequeue", "status"]
        from litequeue.cli import run
        run()
    """, check=False)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "is a PostgreSQL database, and its driver is not installed: pip install 'litequeue[postgres]'" in lines[0]
    assert SECRET not in proc.stderr and ":***@" in lines[0]


def test_libpq_environment_variables_fill_in_what_the_url_leaves_out(project: Project, pg_url: str) -> None:
    project.write("tasks.py", TASKS)
    name = pg_url.rsplit("/", 1)[-1]
    project.extra_env.update(LITEQUEUE_DB=f"postgresql:///{name}", LITEQUEUE_APP="tasks:app",
                             PGHOST="127.0.0.1", PGPORT="5432", PGUSER="postgres", PGAPPNAME="lq-env-test")
    job_id = project.cli("enqueue", "hello").stdout.strip()
    assert project.cli_json("jobs", "show", job_id, "--json")["status"] == "queued"
    # PGSSLMODE reaches libpq: this server has no SSL, so requiring it must fail (one line).
    project.extra_env["PGSSLMODE"] = "require"
    project.extra_env["LITEQUEUE_BUSY_TIMEOUT"] = "0.5"
    proc = project.cli("status", check=False)
    assert proc.returncode != 0
    assert "server does not support SSL, but SSL was required" in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_a_password_in_the_url_is_never_shown(conn_project: Project) -> None:
    project = conn_project
    project.cli("enqueue", "hello")
    consumer = project.start_consumer("tasks:app", "--burst", log="consumer.log")
    assert consumer.wait(60) == 0
    log = (project.root / "consumer.log").read_text()
    assert "database: postgresql://postgres:***@127.0.0.1:5432/" in log, log
    outputs = {"consumer log": log}
    for args in (("status",), ("status", "--json"), ("doctor",), ("doctor", "--json"), ("health",),
                 ("jobs", "list", "--json")):
        proc = project.cli(*args, check=False)
        outputs[" ".join(args)] = proc.stdout + proc.stderr
    assert "***" in outputs["doctor"], outputs["doctor"]
    url = start_web(project)
    for path in ("", "api/overview", "jobs", "api/jobs", "consumers", "healthz"):
        try:
            with urllib.request.urlopen(url + path, timeout=10) as r:
                outputs[f"page /{path}"] = r.read().decode()
        except urllib.error.HTTPError as exc:
            outputs[f"page /{path}"] = exc.read().decode()
    web_log = next(project.root.glob("web-*.log")).read_text()
    outputs["serve-web log"] = web_log
    leaked = [where for where, text in outputs.items() if SECRET in text]
    assert not leaked, leaked
    # An unreachable server with a password in the URL: the error does not carry it either.
    project.extra_env.update(LITEQUEUE_DB=f"postgresql://postgres:{SECRET}@127.0.0.1:1/nowhere",
                             LITEQUEUE_BUSY_TIMEOUT="0.5")
    proc = project.cli("status", check=False)
    assert proc.returncode != 0 and SECRET not in proc.stderr and "127.0.0.1:1" in proc.stderr, proc.stderr


def test_a_producer_waits_out_its_retry_window_then_fails_in_one_line(conn_project: Project) -> None:
    project = conn_project
    project.extra_env.update(LITEQUEUE_DB="postgresql://postgres@127.0.0.1:1/nowhere", LITEQUEUE_BUSY_TIMEOUT="1.5")
    started = time.monotonic()
    proc = project.cli("enqueue", "hello", check=False)
    waited = time.monotonic() - started
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("Error: cannot reach the database nowhere on 127.0.0.1:1 (retried for 1.5s):"), lines[0]
    assert waited >= 1.5
    # The Python API: the same error, a DatabaseError (here already where the app opens the database).
    proc = project.python("""
        from litequeue import DatabaseError
        try:
            import tasks
            tasks.hello()
        except DatabaseError as exc:
            print("DatabaseError:", exc)
    """)
    assert proc.stdout.startswith("DatabaseError: cannot reach the database nowhere on 127.0.0.1:1"), proc.stdout


def test_a_producer_rides_out_a_terminated_backend(pg_url: str) -> None:
    """Its connection killed between two enqueues: the second one reconnects and succeeds."""
    import psycopg

    from litequeue import LiteQueue

    app = LiteQueue("conn", db=pg_url)

    @app.task()
    def hello() -> None:
        return None

    try:
        hello()
        pid = app.storage.sql("SELECT pg_backend_pid()").fetchone()[0]
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            wait_for(lambda: not admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone(),
                     10, what="the backend to go")
        hello()
        assert app.storage.sql("SELECT COUNT(*) FROM lq_job").fetchone()[0] == 2
        assert app.storage.sql("SELECT pg_backend_pid()").fetchone()[0] != pid
    finally:
        app.storage.close()
