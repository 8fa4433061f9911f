"""Schema migrations: numbered steps, the applied version recorded in the database.

The database records the last migration applied under ``lq_meta`` key ``schema_version``
(an integer, as text) and each migration under its own key ``migration:NNNN`` (when and
what), written in the same transaction as the migration itself. The first release stamped
``schema`` = ``litequeue/1`` and never changed it after later schema changes, so such a
database is version 0 here: migration 1 carries it forward, whichever of the first
release's schemas it has (that step is idempotent). The ``schema`` key is kept for tools
that read it.

:func:`apply` takes the write lock (``BEGIN IMMEDIATE`` on SQLite, a transaction-scoped
advisory lock on PostgreSQL), re-reads the version inside it and applies the next
migration, one transaction per migration: any number of processes may call it at once and
each migration runs once. A database newer than this code is refused
(:class:`SchemaTooNewError`) before anything is written.

How to add a migration (a later release adds a table or a column):

1. Write ``def _add_thing(db: pw.Database) -> None`` below, using :func:`_run` and
   :func:`_add_column` (SQL written once with ``?`` placeholders; ask
   ``dialect.is_sqlite(db)`` where the two databases differ). It runs inside the locked
   transaction: never commit in it.
2. Append ``Migration(N, "one line saying what it does", _add_thing)`` to
   :data:`MIGRATIONS` (N = the last number + 1). Never edit or renumber a released one:
   databases already recorded it.
3. Change the peewee models (``store/models.py``, ``LiteStorage.create_models``) to match.
   No query reads or writes through them (every statement is written out as SQL) and no
   table is made from them (tables are made here): ``LiteStorage.drop_tables`` is their
   only user, so a table they lack is left behind by it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import peewee as pw

from litequeue.base.errors import DatabaseBusyError, DatabaseError, SchemaOutOfDateError, SchemaTooNewError
from litequeue.store import counters_schema, dialect, job_indexes
from litequeue.store.faults import is_busy
from litequeue.store.job_indexes import narrow_job_row

#: What the first release wrote under ``lq_meta`` key ``schema`` (never bumped).
LEGACY_STAMP = "litequeue/1"
VERSION_KEY = "schema_version"
log = logging.getLogger("litequeue.migrations")

#: ``pg_advisory_xact_lock`` key of migrations ("lqmigrat" in ASCII).
PG_LOCK_KEY = 0x6C716D6967726174

#: False: a storage that finds an out-of-date database refuses it instead of migrating
#: (``--no-migrate``). The CLI sets it before importing the user's app.
auto_migrate = True


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    run: Callable[[pw.Database], None]


# -- helpers for migrations -----------------------------------------------------------

def _run(db: pw.Database, *statements: str) -> None:
    for statement in statements:
        dialect.sql(db, statement)


def _types(db: pw.Database) -> dict[str, str]:
    if dialect.is_sqlite(db):
        return {"auto": "INTEGER NOT NULL PRIMARY KEY", "blob": "BLOB", "real": "REAL", "bool": "INTEGER"}
    return {"auto": "SERIAL NOT NULL PRIMARY KEY", "blob": "BYTEA", "real": "DOUBLE PRECISION",
            "bool": "BOOLEAN"}


def _add_column(db: pw.Database, table: str, column: str, definition: str) -> None:
    """``ALTER TABLE ... ADD COLUMN`` unless the column is there already."""
    if column not in {c.name for c in db.get_columns(table)}:
        _run(db, f'ALTER TABLE "{table}" ADD COLUMN "{column}" {definition.format(**_types(db))}')


# -- migration 1: the first release's schema ---------------------------------------------

#: As the first release's peewee models created them (``{real}`` etc. differ per database).
_V1_TABLES = (
    'CREATE TABLE IF NOT EXISTS "lq_kv" ("queue" VARCHAR(255) NOT NULL, "key" VARCHAR(255) NOT NULL, '
    '"value" {blob} NOT NULL, PRIMARY KEY ("queue", "key"))',
    'CREATE TABLE IF NOT EXISTS "lq_schedule" ("id" {auto}, "app" VARCHAR(255) NOT NULL, '
    '"queue" VARCHAR(255) NOT NULL, "priority" INTEGER NOT NULL, "job_id" VARCHAR(255) NOT NULL, '
    '"data" {blob} NOT NULL, "eta" {real} NOT NULL, "crash_cap" INTEGER NOT NULL)',
    'CREATE TABLE IF NOT EXISTS "lq_ready" ("id" {auto}, "app" VARCHAR(255) NOT NULL, '
    '"queue" VARCHAR(255) NOT NULL, "priority" INTEGER NOT NULL, "job_id" VARCHAR(255) NOT NULL, '
    '"data" {blob} NOT NULL, "crash_cap" INTEGER NOT NULL, "crashes" INTEGER NOT NULL DEFAULT 0, '
    '"enqueued_at" {real} NOT NULL, "claimed_by" VARCHAR(255), "claimed_at" {real})',
    'CREATE TABLE IF NOT EXISTS "lq_counter" ("queue" VARCHAR(255) NOT NULL, "key" VARCHAR(255) NOT NULL, '
    '"value" INTEGER NOT NULL, PRIMARY KEY ("queue", "key"))',
    'CREATE TABLE IF NOT EXISTS "lq_meta" ("key" VARCHAR(255) NOT NULL PRIMARY KEY, "value" TEXT NOT NULL)',
    'CREATE TABLE IF NOT EXISTS "lq_job" ("seq" {auto}, "id" VARCHAR(255) NOT NULL, '
    '"app" VARCHAR(255) NOT NULL, "task" VARCHAR(255) NOT NULL, "queue" VARCHAR(255) NOT NULL, '
    '"priority" INTEGER NOT NULL, "status" VARCHAR(255) NOT NULL, "args" TEXT NOT NULL, '
    '"kwargs" TEXT NOT NULL, "payload" {blob}, "enqueued_at" {real} NOT NULL, "eta" {real}, '
    '"started_at" {real}, "finished_at" {real}, "updated_at" {real} NOT NULL, "attempts" INTEGER NOT NULL, '
    '"crash_cap" INTEGER NOT NULL, "crashes" INTEGER NOT NULL, "worker" VARCHAR(255), "error" TEXT, '
    '"traceback" TEXT, "result" TEXT, "parent_id" VARCHAR(255), "retried_from" VARCHAR(255), '
    '"progress_done" {real}, "progress_total" {real}, "progress_message" TEXT, "progress_at" {real})',
    'CREATE TABLE IF NOT EXISTS "lq_attempt" ("id" {auto}, "job_id" VARCHAR(255) NOT NULL, '
    '"number" INTEGER NOT NULL, "consumer_id" VARCHAR(255), "started_at" {real} NOT NULL, '
    '"finished_at" {real}, "outcome" VARCHAR(255) NOT NULL, "error" TEXT)',
    'CREATE TABLE IF NOT EXISTS "lq_consumer" ("id" VARCHAR(255) NOT NULL PRIMARY KEY, '
    '"hostname" VARCHAR(255) NOT NULL, "pid" INTEGER NOT NULL, "boot_id" VARCHAR(255) NOT NULL, '
    '"lock_path" TEXT, "queues" TEXT NOT NULL, "concurrency" INTEGER NOT NULL, '
    '"worker_type" VARCHAR(255) NOT NULL, "started_at" {real} NOT NULL, "heartbeat_at" {real} NOT NULL, '
    '"stopped_at" {real}, "status" VARCHAR(255) NOT NULL, "jobs_done" INTEGER NOT NULL DEFAULT 0)',
    'CREATE TABLE IF NOT EXISTS "lq_periodic_run" ("id" {auto}, "task" VARCHAR(255) NOT NULL, '
    '"slot" VARCHAR(255) NOT NULL, "job_id" VARCHAR(255) NOT NULL, "created_at" {real} NOT NULL)',
    'CREATE TABLE IF NOT EXISTS "lq_event" ("id" {auto}, "at" {real} NOT NULL, "action" VARCHAR(255) NOT NULL, '
    '"job_id" VARCHAR(255), "queue" VARCHAR(255), "detail" TEXT, "actor" VARCHAR(255))',
    'CREATE TABLE IF NOT EXISTS "lq_queue_state" ("queue" VARCHAR(255) NOT NULL PRIMARY KEY, '
    '"paused" {bool} NOT NULL, "paused_until" {real}, "updated_at" {real} NOT NULL)',
    'CREATE TABLE IF NOT EXISTS "lq_finished" ("queue" VARCHAR(255) NOT NULL, "task" VARCHAR(255) NOT NULL, '
    '"outcome" VARCHAR(255) NOT NULL, "count" INTEGER NOT NULL DEFAULT 0, '
    '"duration_sum" {real} NOT NULL DEFAULT 0, PRIMARY KEY ("queue", "task", "outcome"))',
    'CREATE TABLE IF NOT EXISTS "lq_inbox_file" ("id" {auto}, "job_id" VARCHAR(255), "inbox" TEXT NOT NULL, '
    '"name" TEXT NOT NULL, "path" TEXT NOT NULL, "size" INTEGER NOT NULL, "sha256" VARCHAR(255), '
    '"state" VARCHAR(255) NOT NULL, "token" VARCHAR(255), "taken_at" {real} NOT NULL, "settled_at" {real})',
)

#: Columns added to the first release's tables after some databases were made.
_V1_ADDED_COLUMNS = (
    ("lq_ready", "crashes", "INTEGER NOT NULL DEFAULT 0"),
    ("lq_consumer", "jobs_done", "INTEGER NOT NULL DEFAULT 0"),
    ("lq_inbox_file", "token", "VARCHAR(255)"),
)

_V1_INDEXES = (
    'CREATE INDEX IF NOT EXISTS "schedule_app_eta" ON "lq_schedule" ("app", "eta")',
    'CREATE UNIQUE INDEX IF NOT EXISTS "job_id" ON "lq_job" ("id")',
    'CREATE INDEX IF NOT EXISTS "job_status_seq" ON "lq_job" ("status", "seq")',
    'CREATE INDEX IF NOT EXISTS "job_queue_status" ON "lq_job" ("queue", "status")',
    'CREATE INDEX IF NOT EXISTS "job_queue_seq" ON "lq_job" ("queue", "seq")',
    'CREATE INDEX IF NOT EXISTS "job_task_seq" ON "lq_job" ("task", "seq")',
    'CREATE UNIQUE INDEX IF NOT EXISTS "attempt_job_id_number" ON "lq_attempt" ("job_id", "number")',
    'CREATE UNIQUE INDEX IF NOT EXISTS "periodicrun_task_slot" ON "lq_periodic_run" ("task", "slot")',
    'CREATE INDEX IF NOT EXISTS "inboxfile_job_id" ON "lq_inbox_file" ("job_id")',
    'CREATE INDEX IF NOT EXISTS "inboxfile_sha256" ON "lq_inbox_file" ("sha256")',
    'CREATE INDEX IF NOT EXISTS "inboxfile_token" ON "lq_inbox_file" ("token")',
    # Partial indexes: claim queries only ever look at unclaimed rows.
    "CREATE INDEX IF NOT EXISTS lq_ready_claim_q ON lq_ready (app, queue, priority DESC, id) "
    "WHERE claimed_by IS NULL",
    "CREATE INDEX IF NOT EXISTS lq_ready_claim_any ON lq_ready (app, priority DESC, id) WHERE claimed_by IS NULL",
    "CREATE INDEX IF NOT EXISTS lq_ready_claimed ON lq_ready (claimed_by) WHERE claimed_by IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS lq_ready_job ON lq_ready (job_id)",
    "CREATE INDEX IF NOT EXISTS lq_ready_oldest ON lq_ready (queue, enqueued_at) WHERE claimed_by IS NULL",
    "CREATE INDEX IF NOT EXISTS lq_schedule_job ON lq_schedule (job_id)",
    # The ledger's mostly-NULL columns: partial, so an enqueue writes no page for its NULLs.
    "CREATE INDEX IF NOT EXISTS lq_job_parent ON lq_job (parent_id) WHERE parent_id IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS lq_job_retried_from ON lq_job (retried_from) WHERE retried_from IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS lq_job_finished ON lq_job (finished_at) WHERE finished_at IS NOT NULL",
)

#: Full indexes the partial ones above replaced (written on every enqueue for nothing).
_V1_SUPERSEDED_INDEXES = ("job_parent_id", "job_finished_at")

#: SQLite: jobs per (queue, status), kept by triggers in the very transaction that changes a
#: job's status, whichever code path does it, so ``status`` reads a handful of rows instead
#: of counting a million. (PostgreSQL counts instead: counter rows updated by every
#: transaction would serialise its concurrent consumers.)
_V1_SQLITE_COUNTS = (
    "CREATE TABLE IF NOT EXISTS lq_job_count (queue TEXT NOT NULL, status TEXT NOT NULL, "
    "n INTEGER NOT NULL, PRIMARY KEY (queue, status)) WITHOUT ROWID",
    "CREATE TRIGGER IF NOT EXISTS lq_job_count_insert AFTER INSERT ON lq_job BEGIN "
    "INSERT INTO lq_job_count (queue, status, n) VALUES (NEW.queue, NEW.status, 1) "
    "ON CONFLICT (queue, status) DO UPDATE SET n = n + 1; END",
    "CREATE TRIGGER IF NOT EXISTS lq_job_count_update AFTER UPDATE OF status ON lq_job "
    "WHEN OLD.status IS NOT NEW.status BEGIN "
    "UPDATE lq_job_count SET n = n - 1 WHERE queue = OLD.queue AND status = OLD.status; "
    "INSERT INTO lq_job_count (queue, status, n) VALUES (NEW.queue, NEW.status, 1) "
    "ON CONFLICT (queue, status) DO UPDATE SET n = n + 1; END",
    "CREATE TRIGGER IF NOT EXISTS lq_job_count_delete AFTER DELETE ON lq_job BEGIN "
    "UPDATE lq_job_count SET n = n - 1 WHERE queue = OLD.queue AND status = OLD.status; END",
    # Counted again from the jobs: a database may have jobs from before the triggers existed.
    "DELETE FROM lq_job_count",
    "INSERT INTO lq_job_count (queue, status, n) SELECT queue, status, COUNT(*) FROM lq_job "
    "GROUP BY queue, status",
)


def _first_release(db: pw.Database) -> None:
    types = _types(db)
    _run(db, *(ddl.format(**types) for ddl in _V1_TABLES))
    for table, column, definition in _V1_ADDED_COLUMNS:
        _add_column(db, table, column, definition)
    _run(db, *(f'DROP INDEX IF EXISTS "{name}"' for name in _V1_SUPERSEDED_INDEXES))
    _run(db, *_V1_INDEXES)
    if dialect.is_sqlite(db):
        _run(db, *_V1_SQLITE_COUNTS)
    else:
        # Before PostgreSQL support settled, times were single precision (seconds lost).
        rows = dialect.sql(db, "SELECT table_name, column_name FROM information_schema.columns "
                               "WHERE table_schema = current_schema() AND table_name LIKE 'lq!_%' ESCAPE '!' "
                               "AND data_type = 'real'").fetchall()
        _run(db, *(f'ALTER TABLE "{t}" ALTER COLUMN "{c}" TYPE DOUBLE PRECISION' for t, c in rows))
    _run(db, f"INSERT INTO lq_meta (key, value) VALUES ('schema', '{LEGACY_STAMP}') ON CONFLICT (key) DO NOTHING")


#: Every migration, in order. Append new ones; never change a released one.
# -- migration 2: one home for state changes ---------------------------------------------

def _file_flag_and_retried_as(db: pw.Database) -> None:
    """``has_file`` on queue, schedule and ledger rows (plugins' files: the inbox), and
    ``retried_as`` on the ledger (a job is retried once)."""
    for table in ("lq_ready", "lq_schedule", "lq_job"):
        _add_column(db, table, "has_file", "INTEGER NOT NULL DEFAULT 0")
    _add_column(db, "lq_job", "retried_as", "VARCHAR(255)")
    # Jobs the inbox made before the flag existed: their file rows say so.
    for table, column in (("lq_job", "id"), ("lq_ready", "job_id"), ("lq_schedule", "job_id")):
        _run(db, f"UPDATE {table} SET has_file = 1 WHERE {column} IN "
                 "(SELECT job_id FROM lq_inbox_file WHERE job_id IS NOT NULL)")
    # A job already retried (before retries were marked) keeps --all-failed from retrying it again.
    _run(db, "UPDATE lq_job SET retried_as = (SELECT MAX(r.id) FROM lq_job r WHERE r.retried_from = lq_job.id) "
             "WHERE retried_as IS NULL AND EXISTS (SELECT 1 FROM lq_job r WHERE r.retried_from = lq_job.id)")


# -- migration 3: batches -------------------------------------------------------------------

def _batches(db: pw.Database) -> None:
    """``lq_batch`` (a group of jobs with a fan-in callback) and ``lq_job.batch_id``."""
    _run(db, (
        'CREATE TABLE IF NOT EXISTS "lq_batch" ("id" VARCHAR(255) NOT NULL PRIMARY KEY, '
        '"app" VARCHAR(255) NOT NULL, "name" TEXT NOT NULL, "parent_id" VARCHAR(255), '
        '"total" INTEGER NOT NULL DEFAULT 0, "succeeded" INTEGER NOT NULL DEFAULT 0, '
        '"failed" INTEGER NOT NULL DEFAULT 0, "sealed" INTEGER NOT NULL DEFAULT 0, '
        '"on_complete_id" VARCHAR(255), "on_complete_payload" {blob}, "on_complete_meta" TEXT, '
        '"on_failure_id" VARCHAR(255), "on_failure_payload" {blob}, "on_failure_meta" TEXT, '
        '"created_at" {real} NOT NULL, "sealed_at" {real}, "finished_at" {real}, '
        '"completed_at" {real}, "failure_fired_at" {real})').format(**_types(db)))
    _add_column(db, "lq_job", "batch_id", "VARCHAR(255)")
    _run(db,
         "CREATE INDEX IF NOT EXISTS lq_job_batch ON lq_job (batch_id, seq) WHERE batch_id IS NOT NULL",
         "CREATE INDEX IF NOT EXISTS lq_batch_parent ON lq_batch (parent_id) WHERE parent_id IS NOT NULL",
         "CREATE INDEX IF NOT EXISTS lq_batch_on_complete ON lq_batch (on_complete_id) "
         "WHERE on_complete_id IS NOT NULL",
         "CREATE INDEX IF NOT EXISTS lq_batch_created ON lq_batch (created_at)")


# -- migration 4: tags, dependencies, unique keys -------------------------------------------

_V4_TABLES = (
    # A job's tags; (tag, job_id) is the way in: list, count, cancel, retry and purge by tag.
    'CREATE TABLE IF NOT EXISTS "lq_job_tag" ("tag" VARCHAR(255) NOT NULL, "job_id" VARCHAR(255) NOT NULL, '
    'PRIMARY KEY ("tag", "job_id"))',
    # One row per (dependent, dependency); ``outcome`` is the dependency's final status once
    # it is counted (each dependency is counted once).
    'CREATE TABLE IF NOT EXISTS "lq_dependency" ("job_id" VARCHAR(255) NOT NULL, '
    '"depends_on" VARCHAR(255) NOT NULL, "outcome" VARCHAR(255), PRIMARY KEY ("job_id", "depends_on"))',
    # A waiting dependent: how many dependencies it still waits for (decremented in place, so
    # two dependencies acked at once by two consumers cannot both miss the last one).
    'CREATE TABLE IF NOT EXISTS "lq_dependency_wait" ("job_id" VARCHAR(255) NOT NULL PRIMARY KEY, '
    '"remaining" INTEGER NOT NULL, "run_anyway" INTEGER NOT NULL DEFAULT 0)',
    # A unique key and the job holding it; ``held_until`` is NULL while the job has not
    # ended, then its end + unique_for: only then may another job take the key.
    'CREATE TABLE IF NOT EXISTS "lq_unique" ("key" VARCHAR(255) NOT NULL PRIMARY KEY, '
    '"job_id" VARCHAR(255) NOT NULL, "unique_for" {real} NOT NULL, "held_until" {real}, '
    '"created_at" {real} NOT NULL)',
)
_V4_INDEXES = (
    "CREATE INDEX IF NOT EXISTS lq_job_tag_job ON lq_job_tag (job_id)",
    "CREATE INDEX IF NOT EXISTS lq_dependency_open ON lq_dependency (depends_on) WHERE outcome IS NULL",
    "CREATE INDEX IF NOT EXISTS lq_unique_held ON lq_unique (job_id) WHERE held_until IS NULL",
)


def _tags_dependencies_unique(db: pw.Database) -> None:
    types = _types(db)
    _run(db, *(ddl.format(**types) for ddl in _V4_TABLES))
    _run(db, *_V4_INDEXES)


# -- migration 5: schedules kept in the database -----------------------------------------------

def _schedules(db: pw.Database) -> None:
    """``lq_periodic_schedule``: cron schedules added with ``litequeue schedules add`` (their
    runs are keyed in ``lq_periodic_run`` as ``schedule:NAME``, like code schedules)."""
    _run(db, (
        'CREATE TABLE IF NOT EXISTS "lq_periodic_schedule" ("name" VARCHAR(255) NOT NULL PRIMARY KEY, '
        '"app" VARCHAR(255) NOT NULL, "task" VARCHAR(255) NOT NULL, "cron" VARCHAR(255) NOT NULL, '
        '"timezone" VARCHAR(255) NOT NULL, "args" TEXT NOT NULL, "kwargs" TEXT NOT NULL, '
        '"queue" VARCHAR(255), "priority" INTEGER, "enabled" INTEGER NOT NULL DEFAULT 1, '
        '"created_at" {real} NOT NULL, "updated_at" {real} NOT NULL)').format(**_types(db)))


# -- migration 6: concurrency limits and circuit breakers ------------------------------------

def _limits_and_breakers(db: pw.Database) -> None:
    """``lq_limit`` (each app's concurrency limits, published by its consumers: what
    ``status`` shows, and on PostgreSQL the row a claim locks to count running jobs) and
    ``lq_breaker`` (each breaker's state, shared by every consumer)."""
    types = _types(db)
    _run(db, (
        'CREATE TABLE IF NOT EXISTS "lq_limit" ("app" VARCHAR(255) NOT NULL, "scope" VARCHAR(16) NOT NULL, '
        '"name" VARCHAR(255) NOT NULL, "concurrency" INTEGER, "timeout" {real}, "updated_at" {real} NOT NULL, '
        'PRIMARY KEY ("app", "scope", "name"))').format(**types), (
        'CREATE TABLE IF NOT EXISTS "lq_breaker" ("app" VARCHAR(255) NOT NULL, "task" VARCHAR(255) NOT NULL, '
        '"state" VARCHAR(16) NOT NULL DEFAULT \'closed\', "failures" INTEGER NOT NULL, "window_s" {real} NOT NULL, '
        '"cooldown_s" {real} NOT NULL, "recent" TEXT NOT NULL DEFAULT \'[]\', "opened_at" {real}, '
        '"trial_at" {real}, "trial_job" VARCHAR(255), "changed_at" {real} NOT NULL, '
        'PRIMARY KEY ("app", "task"))').format(**types))


# -- migration 7: the lease a consumer is judged by ------------------------------------------

def _consumer_lease(db: pw.Database) -> None:
    """Each consumer records the heartbeat lease others judge it by (``--lease``); on
    PostgreSQL a consumer with a lease also holds a session advisory lock."""
    _add_column(db, "lq_consumer", "lease", "{real}")


# -- migration 8 (the status page's; renumbered at merge if 8 and 9 land first) -------------

def _consumer_requests(db: pw.Database) -> None:
    """``lq_consumer.requested``: what someone asked a consumer to do (``quiet``: take no new
    jobs, finish the running ones; ``stop``: stop gracefully, as on SIGTERM), read with its
    heartbeat; ``obeyed``: what the consumer has done about it."""
    _add_column(db, "lq_consumer", "requested", "VARCHAR(16)")
    _add_column(db, "lq_consumer", "obeyed", "VARCHAR(16)")


# -- migration 9: what each attempt used, and the trace a job belongs to ---------------------

def _attempt_usage_and_trace(db: pw.Database) -> None:
    """``lq_attempt.cpu_seconds``, ``peak_rss_bytes`` and ``rss_scope`` (``job`` in a process
    worker, ``consumer`` in a thread worker): what the attempt used, written by its ack.
    ``lq_job.trace``: the W3C ``traceparent`` of the span that enqueued the job, read back
    when it is claimed (docs/tracing.md)."""
    _add_column(db, "lq_attempt", "cpu_seconds", "{real}")
    _add_column(db, "lq_attempt", "peak_rss_bytes", "BIGINT")
    _add_column(db, "lq_attempt", "rss_scope", "VARCHAR(16)")
    _add_column(db, "lq_job", "trace", "VARCHAR(64)")


# -- migration 10: a narrower job row (litequeue/store/job_indexes.py) --------------------

def _narrow_job_row(db: pw.Database) -> None:
    narrow_job_row(db)
    if dialect.is_sqlite(db):
        _run(db, *_V1_SQLITE_COUNTS[-2:])  # counted again, as the triggers left them
        _run(db, *job_indexes.ACTIVITY)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "the first release's schema (tables, indexes, SQLite job counts), completing "
                 "databases stamped litequeue/1", _first_release),
    Migration(2, "has_file on queue, schedule and ledger rows (plugin files); retried_as on jobs "
                 "(a job is retried once)", _file_flag_and_retried_as),
    Migration(3, "batches: lq_batch (members, counters, fan-in callbacks) and lq_job.batch_id", _batches),
    Migration(4, "job tags, job dependencies and unique job keys (lq_job_tag, lq_dependency, "
                 "lq_dependency_wait, lq_unique)", _tags_dependencies_unique),
    Migration(5, "schedules kept in the database (lq_periodic_schedule)", _schedules),
    Migration(6, "concurrency limits and circuit breakers (lq_limit, lq_breaker)", _limits_and_breakers),
    Migration(7, "lq_consumer.lease: the heartbeat lease a consumer is judged by (--lease)", _consumer_lease),
    Migration(8, "lq_consumer.requested and obeyed: Quiet and Stop asked of a consumer from the status page",
              _consumer_requests),
    Migration(9, "lq_attempt.cpu_seconds, peak_rss_bytes and rss_scope (what an attempt used); "
                 "lq_job.trace (the traceparent of its enqueue)", _attempt_usage_and_trace),
    Migration(10, "a narrower job row on SQLite: three full lq_job indexes replaced by partial ones "
                  "(running jobs; jobs off the success path); the job counts written without triggers; "
                  "per-minute activity counts (lq_activity)",
              _narrow_job_row),
    Migration(11, "counters written with the ack on SQLite and PostgreSQL: lq_activity per consumer shard, "
                  "lq_histogram (run, wait and CPU time; peak memory)", counters_schema.counters),
)

#: The schema version this code needs and writes.
VERSION = MIGRATIONS[-1].version
assert [m.version for m in MIGRATIONS] == list(range(1, VERSION + 1)), "migrations are numbered 1, 2, 3..."


# -- reading the version ------------------------------------------------------------------

def current_version(database: pw.Database) -> int:
    """The schema version recorded in ``database``; 0 for an empty database or one stamped
    by the first release (``litequeue/1``). Reads only."""
    if not database.table_exists("lq_meta"):
        return 0
    row = dialect.sql(database, "SELECT value FROM lq_meta WHERE key = ?", (VERSION_KEY,)).fetchone()
    if row is None:
        return 0
    try:
        return int(row[0])
    except ValueError:
        raise DatabaseError(f"lq_meta.{VERSION_KEY} is {row[0]!r}, not a number: this database was not "
                            "written by litequeue; point LITEQUEUE_DB at a litequeue database") from None


def pending(database: pw.Database) -> list[Migration]:
    """Migrations ``database`` lacks (raises :class:`SchemaTooNewError` for a newer one)."""
    version = current_version(database)
    _refuse_newer(version)
    return [m for m in MIGRATIONS if m.version > version]


def _refuse_newer(version: int) -> None:
    if version > VERSION:
        raise SchemaTooNewError(
            f"the database has schema version {version}, newer than this litequeue's version {VERSION}: "
            "upgrade litequeue to use it (nothing was written)")


def check(database: pw.Database) -> None:
    """Refuse a database whose schema is not this code's, without writing anything."""
    version = current_version(database)
    _refuse_newer(version)
    if version < VERSION:
        raise SchemaOutOfDateError(
            f"the database has schema version {version}, this litequeue needs version {VERSION}: "
            "run `litequeue migrate` (or start a consumer without --no-migrate)")


def ensure(database: pw.Database) -> None:
    """Bring ``database`` to this code's schema: nothing to do (one read, no lock) when it
    is current; migrate it when older, unless :data:`auto_migrate` is off; refuse a newer one."""
    version = current_version(database)
    if version == VERSION:
        return
    _refuse_newer(version)
    if not auto_migrate:
        check(database)
    apply(database)


# -- applying ---------------------------------------------------------------------------

def apply(database: pw.Database, dry_run: bool = False) -> list[str]:
    """Apply every pending migration; returns a line for each one applied (or, with
    ``dry_run``, each one that would be, writing nothing)."""
    if dry_run:
        return [f"would apply {m.version}: {m.description}" for m in pending(database)]
    todo = pending(database)  # refuses a newer database before taking any lock
    if todo:
        # Upgrading a database people already use is news; making a new one is not.
        existing = database.table_exists("lq_meta")
        log.log(logging.INFO if existing else logging.DEBUG,
                "schema version %d, this litequeue's is %d: applying %d migration(s)",
                todo[0].version - 1, VERSION, len(todo))
    done: list[str] = []
    while True:
        with _locked(database):
            # Inside the lock: another process may have applied it while we waited.
            version = current_version(database)
            _refuse_newer(version)
            if version >= VERSION:
                return done
            step = MIGRATIONS[version]
            step.run(database)
            _record(database, step)
        done.append(f"applied {step.version}: {step.description}")


def _record(database: pw.Database, step: Migration) -> None:
    # A plain INSERT: a migration recorded twice fails (and rolls back) instead of passing.
    dialect.sql(database, "INSERT INTO lq_meta (key, value) VALUES (?, ?)",
                (f"migration:{step.version:04d}",
                 json.dumps({"applied_at": time.time(), "description": step.description})))
    dialect.sql(database, "INSERT INTO lq_meta (key, value) VALUES (?, ?) ON CONFLICT (key) "
                          "DO UPDATE SET value = excluded.value", (VERSION_KEY, str(step.version)))


@contextmanager
def _locked(database: pw.Database) -> Iterator[None]:
    """One write transaction holding the migration lock: ``BEGIN IMMEDIATE`` on SQLite
    (the busy timeout waits out other writers), an advisory lock on PostgreSQL."""
    try:
        with database.atomic("IMMEDIATE") if dialect.is_sqlite(database) else database.atomic():
            if not dialect.is_sqlite(database):
                dialect.sql(database, "SELECT pg_advisory_xact_lock(?)", (PG_LOCK_KEY,))
            yield
    except pw.OperationalError as exc:
        if is_busy(exc):
            raise DatabaseBusyError("the database stayed locked by another process past the busy timeout; "
                                    "no migration was applied: retry, or raise busy_timeout "
                                    "(LITEQUEUE_BUSY_TIMEOUT)") from exc
        raise


def applied(database: pw.Database) -> list[tuple[int, str]]:
    """(version, what was recorded) of each migration recorded in ``database``."""
    if not database.table_exists("lq_meta"):
        return []
    rows = dialect.sql(database, "SELECT key, value FROM lq_meta WHERE key LIKE 'migration:%' "
                                 "ORDER BY key").fetchall()
    return [(int(k.split(":", 1)[1]), v) for k, v in rows]
