"""``litequeue.contrib.django`` in a real Django project (tests/support/django_site), on a real
SQLite file and a real PostgreSQL database, every step a real process: ``manage.py shell``
enqueues inside ``transaction.atomic()``, ``manage.py run_consumer --burst`` runs the jobs.

- the queue in Django's default database: a rolled-back block leaves no job, a committed
  one runs once;
- the queue in a database of its own: the enqueue waits for Django's commit (on_commit);
- ``run_consumer`` takes ``litequeue run-consumer``'s options; ``manage.py litequeue`` the rest;
- a job whose Django connection the database dropped does not leave the next job on it.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, fresh_pg_database, pg_query, query_db

SITE = ROOT / "tests" / "support" / "django_site"


class Site:
    """The probe project on one database (``PROBE_DB``), run with manage.py."""

    def __init__(self, db: str, tmp: Path) -> None:
        self.db = db
        self.postgres = "://" in db
        self.env = dict(os.environ, PROBE_DB=db, PYTHONUNBUFFERED="1")
        self.env.pop("LITEQUEUE_DB", None)
        self.tmp = tmp
        key = "SERIAL PRIMARY KEY" if self.postgres else "INTEGER PRIMARY KEY"
        self.execute(f"CREATE TABLE probe_note (id {key}, text TEXT)")

    def execute(self, sql: str) -> None:
        if self.postgres:
            pg_query(self.db, sql) if sql.lstrip().upper().startswith("SELECT") else _pg_exec(self.db, sql)
        else:
            with sqlite3.connect(self.db) as conn:
                conn.execute(sql)

    def query(self, sql: str, db: str | None = None) -> list[tuple[Any, ...]]:
        return query_db(db or self.db, sql)

    def manage(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "manage.py", *args], cwd=SITE, env=self.env, capture_output=True,
                              text=True, timeout=timeout)
        if check:
            assert done.returncode == 0, f"manage.py {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n" \
                                         f"{done.stderr}"
        return done

    def shell(self, code: str) -> Any:
        """Run ``code`` in ``manage.py shell``; it prints one JSON line last."""
        out = self.manage("shell", "-c", textwrap.dedent(code)).stdout.strip().splitlines()
        return json.loads(out[-1])


def _pg_exec(url: str, sql: str) -> None:
    from tests.conftest import pg_connect

    conn = pg_connect(url)
    try:
        conn.autocommit = True
        conn.cursor().execute(sql)
    finally:
        conn.close()


@pytest.fixture(params=["sqlite", "postgres"])
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    if request.param == "postgres":
        with fresh_pg_database("lq_django", fsync=False) as url:
            yield Site(url, tmp_path)
        return
    yield Site(str(tmp_path / "site.sqlite3"), tmp_path)


ROLLBACK_THEN_COMMIT = """
import json
from django.db import transaction
from probe.tasks import note

class Rollback(Exception):
    pass

try:
    with transaction.atomic():
        note("rolled back")
        note.schedule(("rolled back later",), delay=60)
        raise Rollback
except Rollback:
    pass
with transaction.atomic():
    job = note("committed")
    with transaction.atomic():  # a savepoint
        inner = note("inner")
print(json.dumps([job.id, inner.id]))
"""


def test_in_the_default_database_a_rollback_leaves_no_job_and_a_commit_runs_once(site: Site) -> None:
    committed = site.shell(ROLLBACK_THEN_COMMIT)
    jobs = dict(site.query("SELECT id, status FROM lq_job"))
    assert jobs == dict.fromkeys(committed, "queued")
    assert site.query("SELECT COUNT(*) FROM lq_ready")[0][0] == 2
    assert site.query("SELECT COUNT(*) FROM lq_schedule")[0][0] == 0
    done = site.manage("run_consumer", "--burst")
    assert "2 thread worker" not in done.stderr and "1 thread worker(s)" in done.stderr  # LITEQUEUE["consumer"]
    rows = site.query("SELECT status, attempts FROM lq_job")
    assert rows == [("succeeded", 1), ("succeeded", 1)]
    assert sorted(r[0] for r in site.query("SELECT text FROM probe_note")) == ["committed", "inner"]
    assert site.query("SELECT COUNT(*) FROM lq_attempt")[0][0] == 2


DEFERRED = """
import json
from django.db import connection, transaction
from litequeue.contrib.django import queue
from probe.tasks import note

seen = {}
class Rollback(Exception):
    pass

try:
    with transaction.atomic():
        note("rolled back")
        raise Rollback
except Rollback:
    pass
with transaction.atomic():
    job = note("after the commit")
    seen["inside"] = queue.storage.sql("SELECT COUNT(*) FROM lq_job").fetchone()[0]
seen["after"] = queue.storage.sql("SELECT COUNT(*) FROM lq_job").fetchone()[0]
seen["joins"] = queue.placement().joins
seen["job"] = job.id
print(json.dumps(seen))
"""


@pytest.mark.parametrize("site", ["sqlite"], indirect=True)
def test_a_queue_in_its_own_database_enqueues_after_the_commit(site: Site) -> None:
    queue_db = str(site.tmp / "queue.db")
    site.env["PROBE_QUEUE_DB"] = queue_db
    seen = site.shell(DEFERRED)
    assert seen["joins"] is None
    assert (seen["inside"], seen["after"]) == (0, 1)  # on_commit: nothing before the commit
    assert site.query("SELECT id, status FROM lq_job", queue_db) == [(seen["job"], "queued")]
    assert site.query("SELECT COUNT(*) FROM lq_job") == []  # nothing in Django's database
    site.manage("run_consumer", "--burst")
    assert site.query("SELECT status FROM lq_job", queue_db) == [("succeeded",)]
    assert site.query("SELECT text FROM probe_note") == [("after the commit",)]


@pytest.mark.parametrize("site", ["sqlite"], indirect=True)
def test_run_consumer_takes_run_consumers_options_and_litequeue_the_rest(site: Site) -> None:
    site.shell("""
        import json
        from probe.tasks import note, other_note
        print(json.dumps([note("default queue").id, other_note("other queue").id]))
    """)
    done = site.manage("run_consumer", "-Q", "other", "-k", "process", "-w", "2", "--burst")
    assert "2 process worker(s), queues: other" in done.stderr, done.stderr
    assert dict(site.query("SELECT queue, status FROM lq_job")) == {"default": "queued", "other": "succeeded"}
    listed = json.loads(site.manage("litequeue", "jobs", "list", "--json").stdout)
    assert sorted(j["status"] for j in listed) == ["queued", "succeeded"]
    helped = site.manage("run_consumer", "--help").stdout
    assert "-w, --workers" in helped and "--burst" in helped and "-Q, --queues" in helped
    bad = site.manage("run_consumer", "-w", "many", check=False)
    assert bad.returncode == 2 and "Invalid value for '-w' / '--workers'" in bad.stderr
    assert "Traceback" not in bad.stderr


@pytest.mark.parametrize("site", ["postgres"], indirect=True)
def test_a_job_never_runs_on_a_connection_the_database_dropped(site: Site) -> None:
    """The first job's Django connection is terminated by the server; the next job, on the
    same worker thread, queries through Django and succeeds on a fresh connection."""
    site.shell("""
        import json
        from litequeue.contrib.django import queue
        from probe.tasks import count_notes, drop_my_connection
        queue.enqueue(drop_my_connection.s().then(count_notes))
        print(json.dumps("enqueued"))
    """)
    site.manage("run_consumer", "--burst", "-w", "1")
    rows = site.query("SELECT task, status, error FROM lq_job ORDER BY enqueued_at")
    assert [(task, status) for task, status, _ in rows] == [("drop_my_connection", "succeeded"),
                                                            ("count_notes", "succeeded")], rows


def test_django_starts_while_the_queues_database_is_missing(tmp_path: Path) -> None:
    """The queue opens on first use, not as Django starts: ``manage.py check`` runs; the
    consumer says in one line what is wrong."""
    env = dict(os.environ, PROBE_DB=str(tmp_path / "no such folder" / "site.sqlite3"))
    env.pop("LITEQUEUE_DB", None)

    def manage(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "manage.py", *args], cwd=SITE, env=env, capture_output=True,
                              text=True, timeout=120)

    checked = manage("check")
    assert checked.returncode == 0 and "Traceback" not in checked.stderr, checked.stderr
    consumer = manage("run_consumer", "--burst")
    assert consumer.returncode != 0 and "Traceback" not in consumer.stderr
    assert consumer.stderr.strip().splitlines()[-1].startswith("Error: cannot open database "), consumer.stderr
