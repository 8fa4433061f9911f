"""Enqueue in the application's own transaction (``with app.using(connection):``), on a real
SQLite file and a real PostgreSQL database, with each kind of connection an application has:
a job exists iff the application's transaction commits, and the doorbell rings after it."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from typing import Any

import peewee as pw
import pytest

from litequeue.base.errors import ConfigurationError, DependencyError
from litequeue.store import commit_watch
from litequeue.store.doorbell import make_doorbell
from tests.conftest import ROOT, running_consumer, wait_for, wait_job

KINDS = ["driver", "peewee", "sqlalchemy", "session"]
QUEUE_TABLES = ("lq_job", "lq_ready", "lq_schedule", "lq_batch", "lq_job_tag", "lq_unique")


class AppConnection:
    """One of the application's connections to the queue's database, and its transaction."""

    def __init__(self, kind: str, app: Any) -> None:
        self.kind = kind
        self.postgres = not app.storage.is_sqlite
        target = str(app.db_target)
        self.engine = None
        self.txn = None
        if kind == "driver":
            if self.postgres:
                import psycopg

                self.conn = psycopg.connect(target)
            else:
                self.conn = sqlite3.connect(target, timeout=30)
        elif kind == "peewee":
            if self.postgres:
                name = target.rsplit("/", 1)[1]
                self.conn = pw.PostgresqlDatabase(name, host="127.0.0.1", port=5432, user="postgres")
            else:
                self.conn = pw.SqliteDatabase(target, timeout=30)
        else:
            import sqlalchemy as sa
            from sqlalchemy.orm import Session

            url = target.replace("postgresql://", "postgresql+psycopg://") if self.postgres else f"sqlite:///{target}"
            self.engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
            self.conn = Session(self.engine) if kind == "session" else self.engine.connect()
        key = "SERIAL PRIMARY KEY" if self.postgres else "INTEGER PRIMARY KEY"
        self.execute(f"CREATE TABLE IF NOT EXISTS orders (id {key}, note TEXT)", own=True)

    def execute(self, sql: str, own: bool = False) -> None:
        """One of the application's own statements (``own``: committed at once)."""
        if self.kind == "peewee":
            if self.txn is None and not own:
                self.begin()
            self.conn.execute_sql(sql)
        elif self.kind == "session":
            import sqlalchemy as sa

            self.conn.execute(sa.text(sql))
        elif self.kind == "sqlalchemy":
            self.conn.exec_driver_sql(sql)
        else:
            self.conn.execute(sql)
        if own:
            self.commit()

    def begin(self) -> None:
        if self.kind == "peewee":
            self.txn = self.conn.atomic()
            self.txn.__enter__()

    def commit(self) -> None:
        if self.kind == "peewee":
            if self.txn is not None:
                self.txn.__exit__(None, None, None)
                self.txn = None
        else:
            self.conn.commit()

    def rollback(self) -> None:
        if self.kind == "peewee":
            if self.txn is not None:
                self.txn.__exit__(RuntimeError, RuntimeError("roll back"), None)
                self.txn = None
        else:
            self.conn.rollback()

    def close(self) -> None:
        self.conn.close()
        if self.engine is not None:
            self.engine.dispose()


@pytest.fixture(params=KINDS)
def appconn(request, app):
    conn = AppConnection(request.param, app)
    yield conn
    conn.close()


def counts(app: Any) -> dict[str, int]:
    """Rows of the queue's tables, read on litequeue's own connection (a new read each time)."""
    return {t: app.storage.sql(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in QUEUE_TABLES}


def orders(app: Any) -> int:
    return app.storage.sql("SELECT COUNT(*) FROM orders").fetchone()[0]


def enqueue_everything(app: Any, appconn: AppConnection) -> list[str]:
    """What an application does in one transaction: its row, then jobs of every kind."""
    appconn.begin()
    appconn.execute("INSERT INTO orders (note) VALUES ('order 1')")
    with app.using(appconn.conn):
        ids = [app.work(1).id, app.charge(2).id, app.invoice(7).id]
        app.invoice(7)  # the same unique key: not a second job
        ids += app.enqueue_many([app.work.s(n) for n in range(3)])
        with app.batch("order 1") as batch:
            ids += [r.id for r in batch.add(app.work.s(10), app.work.s(11))]
        ids.append(app.work.schedule((5,), delay=60).id)
    return ids


def test_rollback_leaves_no_queue_row_no_ledger_row_no_doorbell(app, appconn, bell):
    enqueue_everything(app, appconn)
    assert counts(app)["lq_job"] == 0  # not visible to anyone else before the commit
    appconn.rollback()
    assert counts(app) == dict.fromkeys(QUEUE_TABLES, 0)
    assert orders(app) == 0
    assert not bell.wait(0.3), "the doorbell rang for a rolled-back transaction"
    assert wait_for(lambda: commit_watch.pending() == 0, 5, what="the commit watch to drop the rolled-back jobs")


def test_commit_writes_every_job_and_rings_only_after_it(app, appconn, bell):
    ids = enqueue_everything(app, appconn)
    assert not bell.wait(0.3), "the doorbell rang before the commit"
    appconn.commit()
    assert bell.wait(10), "the doorbell did not ring after the commit"
    c = counts(app)
    assert c["lq_job"] == len(ids) == 9 and c["lq_ready"] + c["lq_schedule"] == 9
    assert c["lq_batch"] == 1 and c["lq_job_tag"] == 1 and c["lq_unique"] == 1
    assert orders(app) == 1


def test_committed_job_runs_once_and_is_never_claimed_before_the_commit(app, appconn):
    with running_consumer(app, workers=2):
        # The consumer registers (a write) before the application's transaction takes the lock.
        wait_for(lambda: app.storage.sql("SELECT COUNT(*) FROM lq_consumer WHERE status = 'running'").fetchone()[0],
                 30, what="the consumer to register")
        appconn.begin()
        appconn.execute("INSERT INTO orders (note) VALUES ('order 2')")
        with app.using(appconn.conn):
            job_id = app.work(42).id
        time.sleep(0.5)  # the consumer polls and is woken meanwhile; it must not see the job
        assert app.storage.sql("SELECT COUNT(*) FROM lq_job WHERE id = ?", (job_id,)).fetchone()[0] == 0
        appconn.commit()
        job = wait_job(app, job_id, "succeeded")
    assert job["attempts"] == 1
    assert app.storage.sql("SELECT COUNT(*) FROM lq_attempt WHERE job_id = ?", (job_id,)).fetchone()[0] == 1


def test_rolled_back_savepoint_drops_only_its_jobs(app, appconn):
    if appconn.kind in ("sqlalchemy", "session"):
        inner = appconn.conn.begin_nested()
    else:
        appconn.begin()
        appconn.execute("INSERT INTO orders (note) VALUES ('outer')")
        if appconn.kind == "peewee":
            inner = appconn.conn.atomic()
            inner.__enter__()
        else:
            appconn.execute("SAVEPOINT app_sp")
    with app.using(appconn.conn):
        dropped = app.work(1).id
    if appconn.kind in ("sqlalchemy", "session"):
        inner.rollback()
    elif appconn.kind == "peewee":
        inner.__exit__(RuntimeError, RuntimeError("inner"), None)
    else:
        appconn.execute("ROLLBACK TO SAVEPOINT app_sp")
    with app.using(appconn.conn):
        kept = app.work(2).id
    appconn.commit()
    ids = {r[0] for r in app.storage.sql("SELECT id FROM lq_job").fetchall()}
    assert ids == {kept} and dropped not in ids


def test_a_failed_enqueue_leaves_the_application_transaction_usable(app, appconn):
    appconn.begin()
    appconn.execute("INSERT INTO orders (note) VALUES ('before')")
    with app.using(appconn.conn):
        good = app.work(1).id
        with pytest.raises(DependencyError):
            app.enqueue(app.work.s(2), depends_on=["no-such-job"])
    appconn.execute("INSERT INTO orders (note) VALUES ('after')")
    appconn.commit()
    assert orders(app) == 2
    assert [r[0] for r in app.storage.sql("SELECT id FROM lq_job").fetchall()] == [good]


def test_depends_on_a_job_of_the_same_open_transaction(app, appconn):
    appconn.begin()
    appconn.execute("INSERT INTO orders (note) VALUES ('x')")
    with app.using(appconn.conn):
        first = app.work(1).id
        second = app.enqueue(app.work.s(2), depends_on=[first]).id
    appconn.commit()
    status = dict(app.storage.sql("SELECT id, status FROM lq_job").fetchall())
    assert status == {first: "queued", second: "waiting"}


@pytest.mark.parametrize("make_app", ["sqlite"], indirect=True)
def test_a_connection_on_another_sqlite_file_is_refused_in_one_line(app, tmp_path):
    other = sqlite3.connect(tmp_path / "app.db")
    with pytest.raises(ConfigurationError) as info, app.using(other):
        app.work(1)
    message = str(info.value)
    assert "\n" not in message and "SQLite commits each database file on its own" in message
    assert counts(app)["lq_job"] == 0
    with pytest.raises(ConfigurationError, match="using\\(\\) takes a sqlite3 or psycopg 3 connection"):
        with app.using(object()):
            pass


@pytest.mark.parametrize("make_app", ["postgres"], indirect=True)
def test_a_connection_to_another_postgres_database_is_refused(app, tmp_path):
    import psycopg

    from tests.conftest import fresh_pg_database

    with fresh_pg_database("lq_other") as url, psycopg.connect(url) as other:
        with pytest.raises(ConfigurationError, match="a transaction covers one database"), app.using(other):
            app.work(1)
    with pytest.raises(ConfigurationError, match="the connection is on SQLite and the queue on PostgreSQL"):
        with app.using(sqlite3.connect(tmp_path / "x.db")):
            pass


def test_an_autocommit_connection_outside_a_transaction_commits_the_enqueue_at_once(app, bell):
    if app.storage.is_sqlite:
        conn: Any = sqlite3.connect(app.db_target, isolation_level=None)
    else:
        import psycopg

        conn = psycopg.connect(str(app.db_target), autocommit=True)
    with conn:
        with app.using(conn):
            job_id = app.work(1).id
        assert bell.wait(10)
        assert app.storage.sql("SELECT status FROM lq_job WHERE id = ?", (job_id,)).fetchone()[0] == "queued"
        if not app.storage.is_sqlite:  # psycopg's own transaction block, on an autocommit connection
            with conn.transaction() as tx, app.using(conn):
                app.work(2)
                raise_rollback(tx)
            assert counts(app)["lq_job"] == 1


def raise_rollback(tx: Any) -> None:
    import psycopg

    raise psycopg.Rollback(tx)


def test_a_litequeue_on_the_applications_peewee_database_joins_its_atomic_blocks(make_app, tmp_path, request):
    """No ``using``: a LiteQueue built on the app's own peewee database writes in its atomic()."""
    probe = make_app("probe")
    if probe.storage.is_sqlite:
        db: pw.Database = pw.SqliteDatabase(tmp_path / "app.db", timeout=30)
    else:
        db = pw.PostgresqlDatabase(str(probe.db_target).rsplit("/", 1)[1], host="127.0.0.1", port=5432,
                                   user="postgres")
    app = make_app("own", db=db)

    @app.task()
    def work(n):
        return n

    bell = make_doorbell(app.bell_target, "own-listener")
    try:
        with db.atomic() as txn:
            work(1)
            txn.rollback()
        assert app.storage.sql("SELECT COUNT(*) FROM lq_job").fetchone()[0] == 0
        assert not bell.wait(0.3)
        with db.atomic():
            job_id = work(2).id
            assert not bell.wait(0.3), "rang inside the application's transaction"
        assert bell.wait(10)
        with running_consumer(app, workers=1):
            assert wait_job(app, job_id, "succeeded")["attempts"] == 1
    finally:
        bell.close()


APP_SCRIPT = """
import os, sys, time, sqlite3
from litequeue import LiteQueue
app = LiteQueue("shop", db=os.environ["QUEUE_DB"])

@app.task()
def work(n):
    return n

app.storage
kind = sys.argv[1]
if kind == "peewee":
    import peewee as pw
    target = os.environ["QUEUE_DB"]
    if "://" in target:
        conn = pw.PostgresqlDatabase(target.rsplit("/", 1)[1], host="127.0.0.1", port=5432, user="postgres")
    else:
        conn = pw.SqliteDatabase(target)
    txn = conn.atomic()
    txn.__enter__()
elif "://" in os.environ["QUEUE_DB"]:
    import psycopg
    conn = psycopg.connect(os.environ["QUEUE_DB"])
else:
    conn = sqlite3.connect(os.environ["QUEUE_DB"])
with app.using(conn):
    ids = [work(n).id for n in range(3)] + app.enqueue_many([work.s(n) for n in range(10)])
print("enqueued", flush=True)
time.sleep(600)
"""


@pytest.mark.parametrize("kind", ["driver", "peewee"])
def test_the_application_killed_between_enqueue_and_commit_leaves_no_job(app, kind, tmp_path):
    script = tmp_path / "producer.py"
    script.write_text(textwrap.dedent(APP_SCRIPT))
    env = dict(os.environ, QUEUE_DB=str(app.db_target), PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, str(script), kind], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "enqueued"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert counts(app) == dict.fromkeys(QUEUE_TABLES, 0)
    job_id = app.work(1).id  # the killed transaction's locks are gone: the queue writes again
    with running_consumer(app, workers=1):
        wait_job(app, job_id, "succeeded")
    assert counts(app)["lq_job"] == 1
