"""Schema migrations on SQLite and PostgreSQL, through the real ``litequeue`` command.

The first-release databases are the checked-in dumps of databases made by the code at
commit 03a02f8 (tests/fixtures/make_first_release.py says how).
"""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from litequeue.store import migrations
from tests.conftest import Project, wait_for
from tests.fixtures import make_first_release

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"

#: The module the fixtures' jobs were made with.
TASKS = make_first_release.TASKS

FIRST_RELEASE_JOBS = {"succeeded": 3, "failed": 2, "queued": 5, "scheduled": 2}
TOO_NEW = f"the database has schema version 99, newer than this litequeue's version {migrations.VERSION}"


class Backend:
    """One database (a SQLite file or a fresh PostgreSQL database) under a project."""

    def __init__(self, kind: str, project: Project, url: str | None) -> None:
        self.kind, self.project, self.url = kind, project, url
        project.write("tasks.py", TASKS)
        if url:
            project.extra_env["LITEQUEUE_DB"] = url

    def _connect(self) -> Any:
        if self.kind == "sqlite":
            return sqlite3.connect(self.project.db, timeout=30)
        import psycopg2

        conn = psycopg2.connect(self.url)
        conn.autocommit = True
        return conn

    def execute(self, script: str) -> None:
        conn = self._connect()
        try:
            if self.kind == "sqlite":
                conn.executescript(script)
            else:
                conn.cursor().execute(script)
        finally:
            conn.close()

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        conn = self._connect()
        try:
            cur = conn.cursor()
            cur.execute(sql)
            return [tuple(bytes(v) if isinstance(v, memoryview) else v for v in r) for r in cur.fetchall()]
        finally:
            conn.close()

    def load_first_release(self) -> None:
        name = "first_release.sql" if self.kind == "sqlite" else "first_release.pg.sql"
        self.execute((FIXTURES / name).read_text())

    def columns(self, table: str) -> set[str]:
        if self.kind == "sqlite":
            return {r[1] for r in self.query(f"PRAGMA table_info({table})")}
        return {r[0] for r in self.query("SELECT column_name FROM information_schema.columns "
                                         f"WHERE table_name = '{table}'")}

    def indexes(self) -> set[str]:
        if self.kind == "sqlite":
            return {r[0] for r in self.query("SELECT name FROM sqlite_master WHERE type = 'index'")}
        return {r[0] for r in self.query("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")}

    def meta(self) -> dict[str, str]:
        return dict(self.query("SELECT key, value FROM lq_meta"))

    def fingerprint(self) -> Any:
        """What would show any write: the file's bytes and mtime (SQLite; no WAL left
        behind), or every litequeue table's rows and the schema (PostgreSQL)."""
        if self.kind == "sqlite":
            db = self.project.db
            wal = Path(f"{db}-wal")
            return (hashlib.sha256(db.read_bytes()).hexdigest(), db.stat().st_mtime_ns,
                    wal.stat().st_size if wal.exists() else 0)
        tables = [r[0] for r in self.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                                           "ORDER BY tablename")]
        rows = {t: sorted(map(repr, self.query(f'SELECT * FROM "{t}"'))) for t in tables}
        schema = self.query("SELECT table_name, column_name, data_type FROM information_schema.columns "
                            "WHERE table_schema = 'public' ORDER BY 1, 2")
        return rows, schema, sorted(self.indexes())

    def content(self) -> Any:
        """Schema and rows, not the file (opening a database switches it to WAL mode)."""
        if self.kind == "sqlite":
            conn = self._connect()
            try:
                return list(conn.iterdump())
            finally:
                conn.close()
        return self.fingerprint()

    def jobs(self) -> dict[str, str]:
        return dict(self.query("SELECT id, status FROM lq_job"))


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, project: Project) -> Iterator[Backend]:
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    yield Backend(request.param, project, url)


def statuses(jobs: dict[str, str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for status in jobs.values():
        out[status] = out.get(status, 0) + 1
    return out


def test_a_first_release_database_is_upgraded_in_place_and_runs(backend: Backend) -> None:
    project = backend.project
    backend.load_first_release()
    before = backend.jobs()
    assert statuses(before) == FIRST_RELEASE_JOBS
    assert migrations.LEGACY_STAMP in backend.meta().values()

    out = project.cli("migrate").stdout
    assert out.startswith("applied 1: ")
    assert backend.jobs() == before, "every job kept, with its status"
    assert backend.meta()["schema_version"] == str(migrations.VERSION)
    listed = project.cli_json("jobs", "list", "--limit", "100", "--json")
    assert {j["id"] for j in listed} == set(before)

    # The fixtures' jobs finished long ago: retention would prune them as soon as the
    # consumer's first prune came round (about a second in), so it is off here.
    project.cli("run-consumer", "tasks", "--burst", "-w", "2", "--prune-every", "0", timeout=120)
    after = backend.jobs()
    assert statuses(after) == {"succeeded": 3 + 5, "failed": 2, "scheduled": 2}
    results = dict(backend.query("SELECT task, COUNT(*) FROM lq_job WHERE status = 'succeeded' GROUP BY task"))
    assert results == {"add": 7, "send": 1}

    failed = sorted(j for j, s in after.items() if s == "failed")[0]
    project.cli("jobs", "retry", failed)
    project.cli("run-consumer", "tasks", "--burst", "--prune-every", "0", timeout=120)
    retried = backend.query(f"SELECT status, error FROM lq_job WHERE retried_from = '{failed}'")
    assert len(retried) == 1 and retried[0][0] == "failed" and "first release failure" in retried[0][1]
    status = project.cli_json("status", "--json")
    assert status["queues"], status
    if backend.kind == "sqlite":
        # The per-queue counts the status reads were backfilled and kept since.
        kept = {(q, s): n for q, s, n in backend.query("SELECT queue, status, n FROM lq_job_count") if n}
        real = {(q, s): n for q, s, n in backend.query("SELECT queue, status, COUNT(*) FROM lq_job "
                                                       "GROUP BY queue, status")}
        assert kept == real


def _strip_to_an_earlier_first_release(backend: Backend) -> None:
    """Take away what was added to the schema after the first databases stamped
    litequeue/1 were made, and put back the full indexes those had."""
    common = [
        'DROP INDEX "inboxfile_token"', 'DROP INDEX "job_queue_seq"', "DROP INDEX lq_job_parent",
        "DROP INDEX lq_job_retried_from", "DROP INDEX lq_job_finished",
        'ALTER TABLE lq_ready DROP COLUMN crashes', 'ALTER TABLE lq_inbox_file DROP COLUMN token',
        'ALTER TABLE lq_consumer DROP COLUMN jobs_done',
        'CREATE INDEX "job_parent_id" ON "lq_job" ("parent_id")',
        'CREATE INDEX "job_finished_at" ON "lq_job" ("finished_at")',
    ]
    if backend.kind == "sqlite":
        common += ["DROP TRIGGER lq_job_count_insert", "DROP TRIGGER lq_job_count_update",
                   "DROP TRIGGER lq_job_count_delete", "DROP TABLE lq_job_count"]
    else:
        common += ["ALTER TABLE lq_job ALTER COLUMN enqueued_at TYPE REAL",
                   "ALTER TABLE lq_schedule ALTER COLUMN eta TYPE REAL"]
    backend.execute(";\n".join(common) + ";")


def test_an_earlier_litequeue_1_database_is_completed_when_a_consumer_starts(backend: Backend) -> None:
    project = backend.project
    backend.load_first_release()
    _strip_to_an_earlier_first_release(backend)
    before = backend.jobs()
    assert "crashes" not in backend.columns("lq_ready")

    project.cli("run-consumer", "tasks", "--burst", "--prune-every", "0", timeout=120)
    assert "crashes" in backend.columns("lq_ready")
    assert "jobs_done" in backend.columns("lq_consumer")
    assert "token" in backend.columns("lq_inbox_file")
    indexes = backend.indexes()
    assert {"inboxfile_token", "lq_job_parent", "lq_job_retried_from", "lq_job_finished"} <= indexes
    # Migration 10 narrows the job row on SQLite: the full status, queue and task indexes go.
    full = {"job_queue_seq", "job_status_seq", "job_queue_status"}
    if backend.kind == "sqlite":
        assert not full & indexes and {"job_task_seq", "lq_job_running", "lq_job_off_path"} <= indexes
    else:
        assert full <= indexes
    assert not {"job_parent_id", "job_finished_at"} & indexes
    after = backend.jobs()
    assert set(after) == set(before)
    assert statuses(after) == {"succeeded": 8, "failed": 2, "scheduled": 2}
    if backend.kind == "sqlite":
        kept = {(q, s): n for q, s, n in backend.query("SELECT queue, status, n FROM lq_job_count") if n}
        assert kept == {("default", "succeeded"): 7, ("mail", "succeeded"): 1, ("default", "failed"): 2,
                        ("default", "scheduled"): 2}
    else:
        kinds = dict(backend.query("SELECT table_name || '.' || column_name, data_type FROM "
                                   "information_schema.columns WHERE column_name IN ('enqueued_at', 'eta') "
                                   "AND table_name IN ('lq_job', 'lq_schedule')"))
        assert set(kinds.values()) == {"double precision"}, kinds


def test_migrate_twice_applies_once(backend: Backend) -> None:
    project = backend.project
    assert project.cli("migrate").stdout.startswith("applied 1: ")
    meta = backend.meta()
    assert project.cli("migrate").stdout.strip() == f"schema is up to date (version {migrations.VERSION})"
    assert project.cli("migrate", "--dry-run").stdout.strip() == \
        f"schema is up to date (version {migrations.VERSION})"
    assert backend.meta() == meta


@pytest.mark.parametrize("start", ["fresh", "first_release"])
def test_three_concurrent_migrates_apply_each_migration_once(backend: Backend, start: str) -> None:
    project = backend.project
    if start == "first_release":
        backend.load_first_release()
    # The test holds the migration lock until all three have read the old version, so
    # they really race for it.
    holder = backend._connect()
    if backend.kind == "sqlite":
        holder.isolation_level = None
        holder.execute("PRAGMA journal_mode=wal")
        holder.execute("BEGIN IMMEDIATE")
    else:
        holder.cursor().execute("SELECT pg_advisory_lock(%s)", (migrations.PG_LOCK_KEY,))
    logs = [project.root / f"migrate-{i}.err" for i in range(3)]
    procs = [subprocess.Popen([sys.executable, "-m", "litequeue", "-v", "migrate"], cwd=project.root,
                              env=project.env, stdout=subprocess.PIPE, stderr=log.open("w"), text=True)
             for log in logs]
    try:
        wait_for(lambda: all(f"applying {migrations.VERSION} migration(s)" in log.read_text() for log in logs), 60,
                 what="three migrate processes waiting for the lock")
    finally:
        if backend.kind == "sqlite":
            holder.execute("COMMIT")
        holder.close()
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [log.read_text() for log in logs]
    applied = [o for o in outs if o.startswith("applied 1: ")]
    assert len(applied) == 1, outs
    meta = backend.meta()
    assert sorted(k for k in meta if k.startswith("migration:")) == \
        [f"migration:{v:04d}" for v in range(1, migrations.VERSION + 1)]
    assert meta["schema_version"] == str(migrations.VERSION)
    assert "crashes" in backend.columns("lq_ready")
    if start == "first_release":
        assert statuses(backend.jobs()) == FIRST_RELEASE_JOBS


def test_a_newer_database_is_refused_by_every_command_and_left_untouched(backend: Backend) -> None:
    project = backend.project
    project.cli("migrate")
    project.python("import tasks; tasks.add(1, 2); tasks.boom('x')")
    project.cli("run-consumer", "tasks", "--burst", timeout=120)
    backend.execute("UPDATE lq_meta SET value = '99' WHERE key = 'schema_version'")
    if backend.kind == "sqlite":
        backend.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    job = backend.query("SELECT id FROM lq_job WHERE status = 'failed'")[0][0]
    inbox = project.root / "inbox"
    inbox.mkdir()
    (inbox / "a.txt").write_text("x")
    before = backend.fingerprint()
    commands = [
        ["migrate"], ["migrate", "--dry-run"], ["status"], ["jobs", "list"], ["jobs", "show", job],
        ["jobs", "retry", job], ["jobs", "cancel", job], ["enqueue", "tasks.add", "--args", "[1, 2]", "--app", "tasks"],
        ["tasks", "tasks"], ["pause", "default"], ["resume", "default"], ["purge", "default", "-y"],
        ["prune"], ["run-consumer", "tasks", "--burst"], ["run-consumer", "tasks", "--burst", "--no-migrate"],
        ["serve-web", "--port", "0"], ["serve-web", "tasks", "--port", "0", "--no-migrate"],
        ["watch-inbox", str(inbox), "--rule", "*.txt=tasks.add", "--app", "tasks", "--oneshot"],
    ]
    for args in commands:
        proc = project.cli(*args, check=False)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert proc.stderr.strip().splitlines() == [f"Error: {TOO_NEW}: upgrade litequeue to use it "
                                                    "(nothing was written)"], (args, proc.stderr)
    health = project.cli("health", check=False)
    assert health.returncode == 2 and TOO_NEW in health.stdout, health.stdout
    doctor = project.cli("doctor", check=False)
    assert doctor.returncode == 1 and "newer than this litequeue" in doctor.stdout, doctor.stdout
    assert backend.fingerprint() == before
    assert (inbox / "a.txt").exists()


def test_dry_run_writes_nothing(backend: Backend) -> None:
    project = backend.project
    backend.load_first_release()
    before = backend.fingerprint()
    out = project.cli("migrate", "--dry-run").stdout
    assert out.startswith("would apply 1: ")
    assert backend.fingerprint() == before
    assert "schema_version" not in backend.meta()


def test_no_migrate_refuses_an_old_database(backend: Backend) -> None:
    project = backend.project
    backend.load_first_release()
    before = backend.content()
    need = (f"Error: the database has schema version 0, this litequeue needs version {migrations.VERSION}: "
            "run `litequeue migrate` (or start a consumer without --no-migrate)")
    for args in (["run-consumer", "tasks", "--burst", "--no-migrate"], ["status"], ["jobs", "list"]):
        proc = project.cli(*args, check=False)
        assert proc.returncode == 1, (args, proc.stdout, proc.stderr)
        assert proc.stderr.strip().splitlines() == [need], (args, proc.stderr)
    assert backend.content() == before
    assert statuses(backend.jobs()) == FIRST_RELEASE_JOBS


def test_the_first_release_code_made_the_fixtures() -> None:
    """The fixtures hold the first release's stamp and no trace of migrations."""
    for name in ("first_release.sql", "first_release.pg.sql"):
        text = (FIXTURES / name).read_text()
        assert "'schema', 'litequeue/1'" in text.replace("','", "', '")
        assert "schema_version" not in text and "migration:" not in text
