"""Opening the one database that holds queue and ledger (a SQLite file or a database URL),
and checking that an existing one is a litequeue database of this code's schema.

Every error here is a :class:`DatabaseError` whose message says what to do.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
import urllib.parse
from pathlib import Path
from typing import Any

import peewee

from litequeue.base import defaults
from litequeue.base.errors import DatabaseError, DatabaseReadOnlyError, DatabaseUnreachableError
from litequeue.base.secrets import redact, redact_text
from litequeue.store import faults, migrations, outage

log = logging.getLogger("litequeue.db")
SYNCHRONOUS = {"full": "FULL", "fast": "NORMAL"}
#: URL schemes that name a PostgreSQL database.
POSTGRES_SCHEMES = frozenset({"postgresql", "postgres", "psycopg3"})


def database_target(target: str | os.PathLike[str] | None = None) -> str:
    """The database named by ``target``, else ``$LITEQUEUE_DB``, else ``./litequeue.db``."""
    if target is None:
        target = os.environ.get("LITEQUEUE_DB") or defaults.DB_PATH
    return os.fspath(target)


def is_url(target: str) -> bool:
    return "://" in target


def sqlite_path(target: str) -> str | None:
    """The file path of a SQLite target (a plain path or ``sqlite:///path``), else None."""
    if not is_url(target):
        return target
    if target.startswith("sqlite:///"):
        return target[len("sqlite:///") :].split("?", 1)[0] or None
    return None


def state_dir(target: str) -> Path | None:
    """Folder beside a SQLite file for lock files and doorbell sockets (None for servers)."""
    path = sqlite_path(target)
    if path is None or path == ":memory:":
        return None
    return Path(os.path.abspath(path) + ".lq")


def _check_sqlite_file(path: str, *, create: bool) -> None:
    folder = Path(os.path.abspath(path)).parent
    if not folder.is_dir():
        raise DatabaseError(
            f"cannot open database {path}: folder {folder} does not exist; "
            "create it or set LITEQUEUE_DB to a path in an existing folder"
        )
    exists = os.path.exists(path)
    if not exists and not create:
        raise DatabaseError(
            f"no litequeue database at {path}; enqueue a job or start a consumer first, "
            "or set LITEQUEUE_DB to the right file"
        )
    if create and not exists and not os.access(folder, os.W_OK):
        raise DatabaseReadOnlyError(
            f"cannot write database {path}: folder {folder} is read-only; "
            "make it writable or set LITEQUEUE_DB to a writable location"
        )
    if exists and not os.path.isfile(path):
        raise DatabaseError(f"{path} is a folder, not a database file; point LITEQUEUE_DB at a file")
    if exists and not _is_sqlite_file(path):
        raise DatabaseError(
            f"{path} is not a litequeue database (not a SQLite file); "
            "point LITEQUEUE_DB at a new or existing litequeue database"
        )


def _is_sqlite_file(path: str) -> bool:
    """Whether SQLite takes ``path`` as a database (an empty file is a new one).

    Asked of SQLite itself, never by reading the file with ``open()``: closing any other file
    descriptor on the database drops every POSIX lock this process holds on it (SQLite's own
    connections' too), and another process may then take itself for the last user and delete
    the -wal and -shm files under them ("file is not a database", "disk I/O error"). SQLite
    keeps its own descriptors open while a lock is held, so its check is safe."""
    try:
        probe = sqlite3.connect(f"file:{urllib.parse.quote(os.path.abspath(path))}?mode=ro", uri=True,
                                timeout=1)
    except sqlite3.Error:
        return True  # cannot open it to look: let the real open say why
    try:
        probe.execute("PRAGMA schema_version").fetchone()
    except sqlite3.DatabaseError as exc:
        return "not a database" not in str(exc)
    finally:
        probe.close()
    return True


class SqliteDatabase(peewee.SqliteDatabase):
    """peewee's SQLite database that can still read a WAL database on a read-only location.

    SQLite needs the ``-shm`` file to read a WAL database; on a read-only folder or mount
    where the last writer removed it, opening fails ("unable to open database file"). Then
    the file is opened as an immutable read-only snapshot: nothing can write it from here
    (a write fails "read-only" with the reason), and reads (status, jobs, the page) work.
    Each reconnect tries the normal way first, so writes work again once the location is
    writable."""

    def _connect(self) -> Any:
        try:
            return super()._connect()
        except sqlite3.OperationalError as exc:
            path = sqlite_path(self.database)
            if path is not None and path.startswith("file:"):
                path = path[len("file:"):].split("?", 1)[0]
            if path is None or not _snapshot_only(path, exc):
                raise
        params = {k: v for k, v in self.connect_params.items() if k != "uri"}
        conn = sqlite3.connect(f"file:{urllib.parse.quote(os.path.abspath(path))}?mode=ro&immutable=1",
                               uri=True, timeout=self._timeout, isolation_level=None, **params)
        try:
            self._add_conn_hooks(conn)
        except Exception:
            conn.close()
            raise
        return conn


class PostgresqlDatabase(peewee.PostgresqlDatabase):
    """peewee's PostgreSQL database (psycopg 3) that outlives its connections.

    A connection the server closed (its backend terminated, the server restarted) stays
    closed in psycopg, and peewee would hand it out forever. Here it is replaced by a new
    one at the next statement outside a transaction, or at the next ``BEGIN``; never in the
    middle of a transaction, whose statements must fail together."""

    #: How long a new connection is retried while the server cannot be reached (``busy_timeout``).
    retry_window: float = defaults.BUSY_TIMEOUT

    def _connect(self) -> Any:
        """A new connection; while the server is unreachable (restarting, refusing, the network
        away), retried with back-off for :attr:`retry_window`, then one line, no password."""
        deadline = time.monotonic() + self.retry_window
        delay = 0.05
        while True:
            try:
                conn = super()._connect()
            except Exception as exc:
                if faults.is_disconnect(exc):
                    outage.went_away(faults.location(self)[0], faults.first_line(exc))
                if not faults.is_disconnect(exc):  # the server said no: the URL or PG* settings
                    raise DatabaseUnreachableError(
                        f"cannot connect to the {faults.location(self)[0]}: {faults.first_line(exc)}; check "
                        "the URL (LITEQUEUE_DB) and the PG* environment variables") from None
                left = deadline - time.monotonic()
                if left <= 0:  # the whole window, not up to the last back-off short of it
                    name, _ = faults.location(self)
                    raise DatabaseUnreachableError(
                        f"cannot reach the {name} (retried for {self.retry_window:g}s): {faults.first_line(exc)}; "
                        "nothing was written; check that the server runs and the URL (LITEQUEUE_DB), or raise "
                        "busy_timeout (LITEQUEUE_BUSY_TIMEOUT)") from None
                if delay == 0.05:
                    log.debug("cannot reach the %s (%s); retrying for up to %gs", faults.location(self)[0],
                              faults.first_line(exc), self.retry_window, extra={"action": "reconnect"})
                time.sleep(min(delay, left))
                delay = min(delay * 2, 2.0)
            else:
                outage.came_back(faults.location(self)[0])
                outage.stamp(conn)
                return conn

    def _seen_failing(self, exc: BaseException) -> None:
        """A statement failed: a lost server is said once (see :mod:`litequeue.store.outage`)."""
        if faults.is_disconnect(exc):
            outage.went_away(faults.location(self)[0], faults.first_line(exc), conn=self._state.conn)

    def execute_sql(self, sql: str, params: Any = None) -> Any:
        try:
            return super().execute_sql(sql, params)
        except Exception as exc:
            self._seen_failing(exc)
            raise

    def commit(self) -> Any:
        try:
            return super().commit()
        except Exception as exc:
            self._seen_failing(exc)
            raise

    def _replace_lost_connection(self) -> None:
        conn = self._state.conn
        if conn is None or not getattr(conn, "closed", False):
            return
        with contextlib.suppress(Exception):
            conn.close()
        fresh = self._connect()
        self._initialize_connection(fresh)
        self._state.conn = fresh

    def connect(self, reuse_if_open: bool = False) -> bool:
        try:
            return super().connect(reuse_if_open)
        except peewee.DatabaseError as exc:  # peewee re-wraps what _connect raised: unwrap ours
            inner = exc.args[0] if exc.args else None
            if isinstance(inner, DatabaseUnreachableError):
                raise inner from None
            raise

    def cursor(self, named_cursor: Any = None) -> Any:
        if self.transaction_depth() == 0:
            self._replace_lost_connection()
        return super().cursor(named_cursor)

    def begin(self, isolation_level: Any = None) -> None:
        self._replace_lost_connection()
        super().begin(isolation_level)


def _snapshot_only(path: str, exc: BaseException) -> bool:
    """The file is there and readable, but SQLite cannot create its -shm next to it."""
    if "unable to open database file" not in str(exc).lower() or not os.path.isfile(path):
        return False
    if os.path.exists(path + "-shm") or not os.access(path, os.R_OK):
        return False
    return not os.access(os.path.dirname(os.path.abspath(path)) or ".", os.W_OK)


def own_target(db: peewee.Database) -> str:
    """The target (a path, or a URL without password) naming an application's own peewee
    database; SQLite's is switched to WAL, which lets consumers read while the app writes."""
    if isinstance(db, peewee.SqliteDatabase):
        if db.database != ":memory:" and str(db.execute_sql("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
            db.execute_sql("PRAGMA journal_mode=wal")
        return os.fspath(db.database)
    params = dict(getattr(db, "connect_params", {}))
    host = params.get("host") or ""
    port = f":{params['port']}" if params.get("port") else ""
    user = f"{params['user']}@" if params.get("user") else ""
    return f"postgresql://{user}{host}{port}/{db.database}"


def open_database(
    target: str | os.PathLike[str] | None = None,
    *,
    durability: str = defaults.DURABILITY,
    busy_timeout: float | None = None,
    readonly: bool = False,
    create: bool = True,
) -> peewee.Database:
    """Return a peewee database (one connection per thread) for ``target``.

    SQLite runs in WAL mode with ``synchronous=FULL`` (``durability="full"``) or
    ``NORMAL`` (``"fast"``). ``readonly`` opens the file with ``mode=ro`` so the reader
    can never take the write lock. Nothing is created when ``create`` is False.
    """
    name = database_target(target)
    if busy_timeout is None:
        busy_timeout = float(os.environ.get("LITEQUEUE_BUSY_TIMEOUT") or defaults.BUSY_TIMEOUT)
    if durability not in SYNCHRONOUS:
        raise DatabaseError(f"durability must be one of {', '.join(SYNCHRONOUS)}, not {durability!r}")
    path = sqlite_path(name)
    if path is None:
        return open_server_database(name, busy_timeout)
    if path != ":memory:":
        _check_sqlite_file(path, create=create and not readonly)
    pragmas: dict[str, object] = {
        "busy_timeout": int(busy_timeout * 1000),
        "foreign_keys": 0,
        "cache_size": -16000,
    }
    if readonly:
        db = SqliteDatabase(
            f"file:{os.path.abspath(path)}?mode=ro", uri=True, pragmas=pragmas,
            timeout=busy_timeout, check_same_thread=False,
        )
    else:
        pragmas.update(journal_mode="wal", synchronous=SYNCHRONOUS[durability])
        db = SqliteDatabase(
            path, pragmas=pragmas, timeout=busy_timeout, check_same_thread=False
        )
    # Switching a new file to WAL upgrades a read lock to a write lock, and SQLite answers
    # "locked" at once (no busy wait) when two processes race to do it: wait it out here.
    deadline = time.monotonic() + busy_timeout
    while True:
        try:
            db.connect(reuse_if_open=True)
            return db
        except (peewee.OperationalError, peewee.DatabaseError, sqlite3.Error) as exc:
            fault = faults.translate(exc, path)
            if isinstance(fault, DatabaseError) and not faults.is_busy(exc):
                raise fault from exc
            if not faults.is_busy(exc) or time.monotonic() >= deadline:
                raise DatabaseError(f"cannot open database {path}: {exc}; "
                                    "check the path and its permissions") from exc
            if not db.is_closed():
                db.close()
            time.sleep(0.01)


#: Why :func:`open_checked` refuses a database without the ledger's tables.
NOT_LITEQUEUE = ("{target} is not a litequeue database (no lq_meta table); "
                 "point LITEQUEUE_DB at a litequeue database")


def has_schema(db: peewee.Database) -> bool:
    """True when ``db`` holds a litequeue ledger (its ``lq_meta`` table)."""
    return "lq_meta" in db.get_tables()


def open_checked(
    target: str | os.PathLike[str] | None = None,
    *,
    readonly: bool = False,
    busy_timeout: float | None = None,
    current_schema: bool = True,
    not_litequeue: str | None = None,
) -> peewee.Database:
    """The existing database at ``target`` (nothing is created), checked to be a litequeue
    one: without the ledger's tables it is closed and refused with ``not_litequeue`` (by
    default :data:`NOT_LITEQUEUE`); with ``current_schema``, a schema other than this
    code's is refused too (``litequeue migrate`` brings an older one up to date)."""
    database = open_database(target, create=False, readonly=readonly, busy_timeout=busy_timeout)
    if not has_schema(database):
        database.close()
        raise DatabaseError(not_litequeue or NOT_LITEQUEUE.format(target=database.database))
    if current_schema:
        migrations.check(database)
    return database


def is_postgres_url(target: str) -> bool:
    return target.split("://", 1)[0].lower() in POSTGRES_SCHEMES


def open_server_database(url: str, retry_window: float = defaults.BUSY_TIMEOUT) -> peewee.Database:
    """A database server named by ``url``: PostgreSQL through psycopg 3 (``pip install
    'litequeue[postgres]'``). Whatever the URL leaves out (host, port, user, database,
    password, SSL mode) libpq takes from its environment variables (``PGHOST``,
    ``PGPASSFILE``, ``PGSSLMODE``, ...). The password never appears in a message."""
    from playhouse.db_url import connect as db_url_connect  # imports the drivers: only for URLs
    from playhouse.db_url import parse as db_url_parse

    shown = redact(url)
    if is_postgres_url(url):
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise DatabaseError(
                f"{shown} is a PostgreSQL database, and its driver is not installed: "
                "pip install 'litequeue[postgres]'") from None
        try:
            params = db_url_parse(url, unquote_password=True, unquote_user=True)
            name = params.pop("database", None) or os.environ.get("PGDATABASE")
            if not name:  # peewee would take the database as never initialized, at the first statement
                raise DatabaseError(f"database URL {shown} names no database (and PGDATABASE is not set); "
                                    "expected e.g. postgresql://user@host:5432/dbname")
            db = PostgresqlDatabase(name, prefer_psycopg3=True, **params)
            db.retry_window = retry_window
            return db
        except DatabaseError:
            raise
        except Exception as exc:  # noqa: BLE001 - db_url raises a mix of types
            raise DatabaseError(f"cannot use database URL {shown}: {redact_text(str(exc), url)}") from exc
    try:
        return db_url_connect(url)
    except Exception as exc:  # noqa: BLE001 - db_url raises a mix of types
        raise DatabaseError(
            f"cannot use database URL {shown}: {redact_text(str(exc), url)}; expected e.g. "
            "postgresql://user@host:5432/dbname or sqlite:///path/to/litequeue.db"
        ) from exc


