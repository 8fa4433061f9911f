"""Shared fixtures: real SQLite files in temp dirs, real consumer processes, real services.

Services (PostgreSQL, Redis) are required in CI (``CI=true``): a missing one fails there
and is skipped on a laptop.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
ROOT = Path(__file__).resolve().parent.parent


def require_service(name: str, reason: str) -> None:
    """Fail in CI, skip elsewhere, when a service the test needs is missing."""
    message = f"{name} is not available: {reason}"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.02,
             what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class Project:
    """A temp folder with a tasks module and a database, and ways to run litequeue on it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.db = root / "lq.db"
        #: set by ``use_postgres``: the database every process and ``query`` use instead
        self.pg_url: str | None = None
        self.procs: list[subprocess.Popen[str]] = []
        #: extra environment for every process this project starts
        self.extra_env: dict[str, str] = {}

    @property
    def backend(self) -> str:
        return "postgres" if self.pg_url else "sqlite"

    def use_postgres(self, url: str) -> None:
        """Run everything of this project on the PostgreSQL database ``url``."""
        self.pg_url = url

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["LITEQUEUE_DB"] = self.pg_url or str(self.db)
        env["PYTHONPATH"] = str(self.root)
        env["PYTHONUNBUFFERED"] = "1"
        env.update(self.extra_env)
        return env

    def write(self, name: str, code: str) -> Path:
        path = self.root / name
        path.write_text(textwrap.dedent(code))
        return path

    def cli(self, *args: str, check: bool = True, input: str | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run the real ``litequeue`` command."""
        proc = subprocess.run([sys.executable, "-m", "litequeue", *args], cwd=self.root, env=self.env,
                              capture_output=True, text=True, input=input, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"litequeue {' '.join(args)} exited {proc.returncode}:\n"
                                 f"{proc.stdout}\n{proc.stderr}")
        return proc

    def cli_json(self, *args: str) -> Any:
        return json.loads(self.cli(*args).stdout)

    def python(self, code: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=self.root,
                              env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"python exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        return proc

    def start_consumer(self, app: str = "tasks", *args: str, log: str | None = None) -> subprocess.Popen[str]:
        """Start ``litequeue run-consumer APP ARGS`` as a real process (in its own group)."""
        out = open(self.root / (log or f"consumer-{len(self.procs)}.log"), "a")  # noqa: SIM115
        proc = subprocess.Popen([sys.executable, "-m", "litequeue", "run-consumer", app, *args],
                                cwd=self.root, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True)
        self.procs.append(proc)
        return proc

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Read the database directly (a separate connection, like any other reader).
        ``?`` placeholders work on both backends."""
        return query_db(self.pg_url or self.db, sql, params)

    def statuses(self) -> dict[str, int]:
        return dict(self.query("SELECT status, COUNT(*) FROM lq_job GROUP BY status"))

    def wait_status(self, status: str, count: int, timeout: float = 30.0) -> None:
        try:
            wait_for(lambda: self.statuses().get(status, 0) >= count, timeout, what=f"{count} job(s) {status}")
        except AssertionError as exc:
            raise AssertionError(f"{exc} (statuses now: {self.statuses()})") from None

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(10)


def pg_connect(url: str) -> Any:
    """A connection to a test database with whichever driver is installed (psycopg2 or 3)."""
    try:
        import psycopg2 as driver
    except ImportError:
        import psycopg as driver  # type: ignore[no-redef]
    return driver.connect(url, connect_timeout=5)


def query_db(db: str | Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Read a database (a SQLite file or a PostgreSQL URL) on a connection of its own; a
    file or a table not created yet reads as empty. ``?`` placeholders work on both."""
    if "://" in str(db):
        return pg_query(str(db), sql, params)
    if not os.path.exists(db):
        return []
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return conn.execute(sql, params).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []
        raise
    finally:
        conn.close()


def pg_query(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """``Project.query`` on PostgreSQL: a fresh connection per read (no snapshot kept);
    a table not created yet reads as empty, as on SQLite."""
    conn = pg_connect(url)
    try:
        conn.autocommit = True
        cur = conn.cursor()
        try:
            cur.execute(sql.replace("%", "%%").replace("?", "%s"), params)
        except Exception as exc:
            if type(exc).__name__ == "UndefinedTable":  # psycopg2's and psycopg 3's
                return []
            raise
        return [tuple(float(v) if isinstance(v, Decimal) else v for v in row) for row in cur.fetchall()]
    finally:
        conn.close()


@pytest.fixture
def project(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Project]:
    """A project on SQLite; ``@pytest.mark.parametrize("project", ["sqlite", "postgres"],
    indirect=True)`` runs a test (and every fixture built on this one) on both backends."""
    p = Project(tmp_path)
    if getattr(request, "param", "sqlite") == "postgres":
        with fresh_pg_database(fsync=False) as url:
            p.use_postgres(url)
            try:
                yield p
            finally:
                p.kill_all()
        return
    yield p
    p.kill_all()


#: ``pytestmark = BOTH_BACKENDS`` (or the decorator) runs a ``project`` test on SQLite and PostgreSQL.
BOTH_BACKENDS = pytest.mark.parametrize("project", ["sqlite", "postgres"], indirect=True)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "lq.db"


@contextlib.contextmanager
def fresh_pg_database(prefix: str = "lq_test", *, fsync: bool = True) -> Iterator[str]:
    """A new PostgreSQL database (its URL), dropped afterwards. ``fsync=False``: commits
    without waiting for the disk, where durability is not under test."""
    try:
        import psycopg2
    except ImportError:
        require_service("PostgreSQL", "psycopg2 is not installed")
    name = f"{prefix}_{os.getpid()}_{int(time.time() * 1000) % 10**9}"
    try:
        admin = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="test",
                                 connect_timeout=3)
    except Exception as exc:  # noqa: BLE001
        require_service("PostgreSQL", str(exc))
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    if not fsync:
        admin.cursor().execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        admin.cursor().execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # a reconnecting straggler
        admin.close()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test (dropped afterwards)."""
    with fresh_pg_database() as url:
        yield url


@contextlib.contextmanager
def running_consumer(app: Any, **options: Any) -> Iterator[Any]:
    """Run a real LiteConsumer for ``app`` in a thread of this process (integration tier)."""
    consumer = app.create_consumer(**options)
    thread = threading.Thread(target=consumer.run, name="test-consumer", daemon=True)
    thread.start()
    try:
        yield consumer
    finally:
        consumer.stop(graceful=True)
        thread.join(30)
        assert not thread.is_alive(), "consumer did not stop"


@pytest.fixture(params=["sqlite", "postgres"])
def make_app(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[..., Any]:
    """Build a LiteQueue on a fresh database: a SQLite file in the test's temp dir, or a
    fresh PostgreSQL database (the same contract, checked on both backends)."""
    from litequeue import LiteQueue

    url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    apps: list[Any] = []

    def make(name: str = "test", **kwargs: Any) -> Any:
        kwargs.setdefault("db", url or tmp_path / f"{name}.db")
        app = LiteQueue(name, **kwargs)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.storage.close()


def job_row(app: Any, job_id: str) -> dict[str, Any]:
    from litequeue.ledger import queries

    job = queries.get_job(app.storage.database, job_id)
    assert job is not None, f"no ledger row for {job_id}"
    return job


def wait_job(app: Any, job_id: str, status: str, timeout: float = 20.0) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        job = job_row(app, job_id)
        return job if job["status"] == status else None

    try:
        return wait_for(check, timeout, what=f"job {job_id} to be {status}")
    except AssertionError:
        raise AssertionError(f"job {job_id} is {job_row(app, job_id)['status']}, expected {status}") from None
