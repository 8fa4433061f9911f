"""Open the one database that holds queue and ledger: a SQLite file or a database URL.

Every error here is a :class:`DatabaseError` whose message says what to do.
"""

from __future__ import annotations

import os
import sqlite3
import time
import urllib.parse
from pathlib import Path
from typing import Any

import peewee

from . import dberrors, defaults
from .errors import DatabaseError, DatabaseReadOnlyError

SYNCHRONOUS = {"full": "FULL", "fast": "NORMAL"}


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
    if exists:
        try:
            with open(path, "rb") as fh:
                head = fh.read(16)
        except OSError as exc:
            raise DatabaseError(f"cannot read database {path}: {exc.strerror}; check its permissions") from None
        if head and head != b"SQLite format 3\x00":
            raise DatabaseError(
                f"{path} is not a litequeue database (not a SQLite file); "
                "point LITEQUEUE_DB at a new or existing litequeue database"
            )


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


def _snapshot_only(path: str, exc: BaseException) -> bool:
    """The file is there and readable, but SQLite cannot create its -shm next to it."""
    if "unable to open database file" not in str(exc).lower() or not os.path.isfile(path):
        return False
    if os.path.exists(path + "-shm") or not os.access(path, os.R_OK):
        return False
    return not os.access(os.path.dirname(os.path.abspath(path)) or ".", os.W_OK)


def open_database(
    target: str | os.PathLike[str] | None = None,
    *,
    durability: str = defaults.DURABILITY,
    busy_timeout: float = defaults.BUSY_TIMEOUT,
    readonly: bool = False,
    create: bool = True,
) -> peewee.Database:
    """Return a peewee database (one connection per thread) for ``target``.

    SQLite runs in WAL mode with ``synchronous=FULL`` (``durability="full"``) or
    ``NORMAL`` (``"fast"``). ``readonly`` opens the file with ``mode=ro`` so the reader
    can never take the write lock. Nothing is created when ``create`` is False.
    """
    name = database_target(target)
    if durability not in SYNCHRONOUS:
        raise DatabaseError(f"durability must be one of {', '.join(SYNCHRONOUS)}, not {durability!r}")
    path = sqlite_path(name)
    if path is None:
        try:
            from playhouse.db_url import connect as db_url_connect  # imports the drivers: only for URLs

            return db_url_connect(name)
        except Exception as exc:  # noqa: BLE001 - db_url raises a mix of types
            raise DatabaseError(
                f"cannot use database URL {name!r}: {exc}; expected e.g. "
                "postgresql://user@host:5432/dbname or sqlite:///path/to/litequeue.db"
            ) from exc
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
            fault = dberrors.translate(exc, path)
            if isinstance(fault, DatabaseError) and not is_busy_error(exc):
                raise fault from exc
            if not is_busy_error(exc) or time.monotonic() >= deadline:
                raise DatabaseError(f"cannot open database {path}: {exc}; "
                                    "check the path and its permissions") from exc
            if not db.is_closed():
                db.close()
            time.sleep(0.01)


def is_busy_error(exc: BaseException) -> bool:
    """True for SQLite's "database is locked"/"busy" errors (waited out, never fatal)."""
    text = str(exc).lower()
    return "locked" in text or "busy" in text
