"""``with app.using(django_connection):`` inside ``transaction.atomic()``, on a real SQLite
file and a real PostgreSQL database: a job exists iff Django's transaction commits, the
doorbell rings only after the commit, and a committed job runs once.

Django is configured in this process with no database of its own (``settings.configure``);
each test adds an alias on the queue's database to ``django.db.connections`` and drops it."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest

from litequeue.base.errors import ConfigurationError
from litequeue.store import commit_watch
from tests.conftest import running_consumer, wait_for, wait_job
from tests.integration.test_using import QUEUE_TABLES, counts, orders

_aliases = itertools.count(1)


def _django() -> Any:
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(DATABASES={}, INSTALLED_APPS=[], USE_TZ=True)
        django.setup()
    return django


def _settings_for(target: str) -> dict[str, Any]:
    if "://" not in target:
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": target}
    name = target.rsplit("/", 1)[1]
    return {"ENGINE": "django.db.backends.postgresql", "NAME": name, "HOST": "127.0.0.1", "PORT": "5432",
            "USER": "postgres"}


def add_alias(target: str) -> str:
    _django()
    from django.db import connections

    alias = f"lq_test_{next(_aliases)}"
    filled = connections.configure_settings({"default": {"ENGINE": "django.db.backends.dummy"},
                                             alias: _settings_for(target)})
    connections.settings[alias] = filled[alias]
    return alias


def drop_alias(alias: str) -> None:
    from django.db import connections

    connections[alias].close()
    del connections[alias]
    del connections.settings[alias]


@pytest.fixture
def alias(app) -> Iterator[str]:
    """A Django connection alias on the queue's database, with the application's table."""
    name = add_alias(str(app.db_target))
    from django.db import connections

    key = "INTEGER PRIMARY KEY" if app.storage.is_sqlite else "SERIAL PRIMARY KEY"
    with connections[name].cursor() as cur:
        cur.execute(f"CREATE TABLE IF NOT EXISTS orders (id {key}, note TEXT)")
    yield name
    drop_alias(name)


class Rollback(Exception):
    pass


def test_rollback_leaves_no_job_row_no_ledger_row_no_doorbell(app, alias, bell):
    from django.db import connections, transaction

    conn = connections[alias]
    with pytest.raises(Rollback), transaction.atomic(using=alias):
        with conn.cursor() as cur:
            cur.execute("INSERT INTO orders (note) VALUES ('order 1')")
        with app.using(conn):
            ids = [app.work(1).id, *app.enqueue_many([app.work.s(n) for n in range(3)])]
            ids.append(app.work.schedule((5,), delay=60).id)
        assert len(ids) == 5 and counts(app)["lq_job"] == 0  # nobody else sees them before the commit
        raise Rollback
    assert counts(app) == dict.fromkeys(QUEUE_TABLES, 0)
    assert app.storage.sql("SELECT COUNT(*) FROM lq_attempt").fetchone()[0] == 0
    assert orders(app) == 0
    assert not bell.wait(0.3), "the doorbell rang for a rolled-back transaction"
    assert wait_for(lambda: commit_watch.pending() == 0, 5, what="the commit watch to drop the rolled-back jobs")


def test_commit_rings_after_it_and_the_job_runs_once(app, alias, bell):
    from django.db import connections, transaction

    conn = connections[alias]
    with transaction.atomic(using=alias):
        with conn.cursor() as cur:
            cur.execute("INSERT INTO orders (note) VALUES ('order 2')")
        with app.using(conn):
            job_id = app.work(42).id
        assert not bell.wait(0.3), "the doorbell rang before the commit"
        assert app.storage.sql("SELECT COUNT(*) FROM lq_job").fetchone()[0] == 0
    assert bell.wait(10), "the doorbell did not ring after the commit"
    assert orders(app) == 1
    assert app.storage.sql("SELECT status FROM lq_job WHERE id = ?", (job_id,)).fetchone()[0] == "queued"
    with running_consumer(app, workers=2):
        job = wait_job(app, job_id, "succeeded")
    assert job["attempts"] == 1
    assert app.storage.sql("SELECT COUNT(*) FROM lq_attempt WHERE job_id = ?", (job_id,)).fetchone()[0] == 1
    assert app.storage.sql("SELECT COUNT(*) FROM lq_job").fetchone()[0] == 1


def test_a_rolled_back_inner_atomic_drops_only_its_jobs(app, alias):
    from django.db import connections, transaction

    conn = connections[alias]
    with transaction.atomic(using=alias):
        with conn.cursor() as cur:
            cur.execute("INSERT INTO orders (note) VALUES ('outer')")
        with pytest.raises(Rollback), transaction.atomic(using=alias):
            with app.using(conn):
                dropped = app.work(1).id
            raise Rollback
        with app.using(conn):
            kept = app.work(2).id
    ids = {r[0] for r in app.storage.sql("SELECT id FROM lq_job").fetchall()}
    assert ids == {kept} and dropped not in ids


def test_outside_atomic_the_enqueue_commits_at_once(app, alias, bell):
    from django.db import connections

    with app.using(connections[alias]):
        job_id = app.work(1).id
    assert bell.wait(10)
    assert app.storage.sql("SELECT status FROM lq_job WHERE id = ?", (job_id,)).fetchone()[0] == "queued"
    assert not connections[alias].in_atomic_block and connections[alias].get_autocommit()


@pytest.mark.parametrize("make_app", ["sqlite"], indirect=True)
def test_a_django_connection_on_another_sqlite_file_is_refused_in_one_line(app, tmp_path):
    other = tmp_path / "app.db"
    sqlite3.connect(other).close()
    name = add_alias(str(other))
    try:
        from django.db import connections, transaction

        with pytest.raises(ConfigurationError) as info, transaction.atomic(using=name), \
                app.using(connections[name]):
            app.work(1)
        assert "\n" not in str(info.value) and "SQLite commits each database file on its own" in str(info.value)
        assert counts(app)["lq_job"] == 0
    finally:
        drop_alias(name)


@pytest.mark.parametrize("make_app", ["sqlite"], indirect=True)
def test_a_borrowed_connection_kept_is_checked_again_on_another_queue(app, alias, make_app):
    """The Django integration keeps one Borrowed per connection, checked once: a queue on
    another file still refuses it."""
    from django.db import connections, transaction

    from litequeue.store.borrowed import borrow

    kept = borrow(connections[alias])
    other = make_app("elsewhere")
    other.storage  # noqa: B018
    with transaction.atomic(using=alias):
        with app.using(kept):
            app.work(1)
        with app.using(kept):  # checked already: not again
            app.work(2)
        with pytest.raises(ConfigurationError, match="SQLite commits each database file on its own"):
            with other.using(kept):
                pass
    assert counts(app)["lq_job"] == 2 and counts(other)["lq_job"] == 0
