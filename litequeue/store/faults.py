"""What a database error means: passing (wait and retry) or deterministic (this input will
never be written), and which storage fault it is: disk full, read-only, locked, or the file
gone. The one place that reads drivers' error texts, codes and types, and that words the
one-line messages for those faults."""

from __future__ import annotations

import os
import sqlite3
from typing import Any

import peewee as pw

from litequeue.base.errors import (
    DatabaseBusyError,
    DatabaseFullError,
    DatabaseReadOnlyError,
    DatabaseReplacedError,
)
from litequeue.base.secrets import redact

_TRANSIENT_TEXTS = (
    "locked", "busy", "disk is full", "database or disk is full", "readonly database",
    "read-only", "server closed the connection", "connection already closed",
    "terminating connection", "could not connect", "connection refused", "ssl syscall",
    "the connection is lost", "connection not open", "could not serialize access",
    "deadlock detected", "disk i/o error", "unable to open database file",
)

FULL, READ_ONLY, LOCKED, GONE = "full", "read-only", "locked", "gone"
#: The database server closed the connection or cannot be reached (a terminated backend, a
#: restart, the network): the next statement opens a new connection (``db.PostgresqlDatabase``).
DISCONNECTED = "disconnected"
_DISCONNECT_TEXTS = (
    "terminating connection", "server closed the connection", "the connection is closed",
    "connection already closed", "consuming input failed", "could not connect", "connection refused",
    "connection failed", "the connection is lost", "ssl syscall", "connection not open",
    "the database system is shutting down", "the database system is starting up",
    "the database system is in recovery mode", "no connection to the server", "connection timed out",
    "cannot reach the database",
)

# SQLite result codes (sqlite3 exceptions carry them as ``sqlite_errorcode``).
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY, _SQLITE_FULL = 5, 6, 8, 13
_SQLITE_READONLY_DBMOVED = 8 | (4 << 8)
_FULL_TEXTS = ("database or disk is full", "disk is full", "no space left on device", "could not extend file",
               "disk quota exceeded")
_READ_ONLY_TEXTS = ("readonly database", "read-only transaction", "read-only file system")
_ROLLBACK_TEXTS = ("cannot rollback", "no transaction is active")

BUSY_MESSAGE = ("the database stayed locked by another process past the busy timeout; nothing was "
                "written: retry, or raise busy_timeout (LITEQUEUE_BUSY_TIMEOUT)")


def is_busy(exc: BaseException) -> bool:
    """SQLite's "database is locked"/"busy" (another writer holds the lock)."""
    if isinstance(exc, DatabaseBusyError):
        return True
    text = str(exc).lower()
    return "locked" in text or "busy" in text


#: The server answered, and said no: retrying the same connection will not help.
_REFUSED_TEXTS = ("does not support ssl", "authentication failed", "no pg_hba.conf entry", "does not exist",
                  "ssl was required", "invalid", "permission denied")


def is_disconnect(exc: BaseException) -> bool:
    """The database server closed this connection or cannot be reached (not SQLite)."""
    for item in _chain(exc):
        if isinstance(item, sqlite3.Error):
            return False
        text = str(item).lower()
        if any(t in text for t in _DISCONNECT_TEXTS):
            return not any(t in text for t in _REFUSED_TEXTS)
    return False


def first_line(exc: BaseException) -> str:
    """The first line of an error's text (drivers add DETAIL and HINT lines)."""
    text = str(exc).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__


def is_transient(exc: BaseException) -> bool:
    """True when the same statement may succeed later: busy or locked, connection lost,
    disk full, read-only for now. False for errors the input itself causes (a value the
    database refuses, a constraint, a bug): retrying those would wedge the caller."""
    if isinstance(exc, DatabaseBusyError | DatabaseFullError | DatabaseReadOnlyError | pw.InterfaceError):
        return True
    if isinstance(exc, pw.IntegrityError | pw.DataError | pw.ProgrammingError):
        return False
    if isinstance(exc, pw.OperationalError):
        return True
    text = str(exc).lower()
    return any(t in text for t in _TRANSIENT_TEXTS)


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and the driver errors it wraps (peewee keeps the driver's as args[0])."""
    out: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        item = todo.pop(0)
        if item is None or any(item is seen for seen in out) or len(out) > 8:
            continue
        out.append(item)
        if item.args and isinstance(item.args[0], BaseException):
            todo.append(item.args[0])
        todo.append(item.__cause__)
    return out


def _is_rollback_failure(exc: BaseException) -> bool:
    return any(t in str(exc).lower() for t in _ROLLBACK_TEXTS)


def primary(exc: BaseException) -> BaseException:
    """The statement's own error when ``exc`` is the failed rollback that followed it.

    SQLite rolls a transaction back by itself on SQLITE_FULL (and on some I/O errors); the
    ROLLBACK peewee then issues fails with "cannot rollback - no transaction is active",
    and that error would otherwise replace the one that says what happened."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 8 and _is_rollback_failure(current):
        current = current.__context__
        seen += 1
    return current if current is not None else exc


def kind(exc: BaseException) -> str | None:
    """FULL, READ_ONLY, LOCKED or GONE for those storage faults, else None."""
    if isinstance(exc, DatabaseFullError):
        return FULL
    if isinstance(exc, DatabaseReadOnlyError):
        return READ_ONLY
    if isinstance(exc, DatabaseBusyError):
        return LOCKED
    if isinstance(exc, DatabaseReplacedError):
        return GONE
    for item in _chain(exc):
        code = getattr(item, "sqlite_errorcode", None)
        if isinstance(item, sqlite3.Error) and code is not None:
            if code == _SQLITE_READONLY_DBMOVED:
                return GONE
            if code & 0xFF == _SQLITE_FULL:
                return FULL
            if code & 0xFF == _SQLITE_READONLY:
                return READ_ONLY
            if code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED):
                return LOCKED
    if is_disconnect(exc):
        return DISCONNECTED
    text = str(exc).lower()
    if any(t in text for t in _FULL_TEXTS):
        return FULL
    if any(t in text for t in _READ_ONLY_TEXTS):
        return READ_ONLY
    if "locked" in text or "busy" in text:
        return LOCKED
    return None


# -- where the database is, and the one-line messages ---------------------------------------

def location(database: Any) -> tuple[str, str | None]:
    """(what to call the database in a message, its file path or None for a server)."""
    name = str(getattr(database, "database", database))
    if isinstance(database, pw.SqliteDatabase) or not isinstance(database, pw.Database):
        path = name[len("file:"):].split("?", 1)[0] if name.startswith("file:") else name
        if "://" not in path:
            return path, path
    if isinstance(database, pw.Database):
        params = getattr(database, "connect_params", {}) or {}
        host = params.get("host") or "localhost"
        port = f":{params['port']}" if params.get("port") else ""
        return f"database {name} on {host}{port}", None
    return str(redact(name)), None


def free_bytes(path: str) -> int | None:
    """Bytes an unprivileged writer may still use on the filesystem holding ``path``."""
    try:
        st = os.statvfs(os.path.dirname(os.path.abspath(path)) or ".")
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def free_text(path: str | None) -> str:
    free = free_bytes(path) if path else None
    if free is None:
        return "free space unknown" + (": a server database" if path is None else "")
    return f"{free / 1e6:.1f} MB free on its filesystem"


def read_only_reason(path: str | None, exc: BaseException | None = None) -> str:
    """Why writes to ``path`` are refused, in a few words."""
    if path is None:
        first = str(exc).strip().splitlines()[0] if exc is not None and str(exc).strip() else ""
        return f"the server refused the write: {first}" if first else "the server refuses writes"
    folder = os.path.dirname(os.path.abspath(path)) or "."
    try:
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return "its filesystem is mounted read-only"
    except OSError:
        pass
    if os.path.exists(path) and not os.access(path, os.W_OK):
        return f"the file is not writable by this user (uid {os.geteuid()})"
    if not os.access(folder, os.W_OK):
        return f"its folder {folder} is not writable by this user (uid {os.geteuid()}); SQLite needs it " \
               "for the -wal and -shm files"
    return f"SQLite refused the write: {exc}" if exc is not None else "SQLite refuses writes"


def full_message(name: str, path: str | None) -> str:
    return f"database or disk is full: {name} ({free_text(path)}); nothing was written; free some space there"


def read_only_message(name: str, path: str | None, exc: BaseException | None = None) -> str:
    return (f"database is read-only: {name} ({read_only_reason(path, exc)}); nothing was written; make it "
            "writable, or set LITEQUEUE_DB to a writable location")


def replaced_message(name: str) -> str:
    return (f"database file {name} was deleted or replaced while this process had it open; nothing was "
            "written; restart this process to use the file now at that path")


def translate(exc: BaseException, database: Any) -> BaseException:
    """The litequeue error for a storage fault (with the database's path and what to do),
    or the statement's own error unchanged. Never the rollback that followed it."""
    exc = primary(exc)
    which = kind(exc)
    if isinstance(exc, DatabaseFullError | DatabaseReadOnlyError | DatabaseBusyError | DatabaseReplacedError):
        return exc
    name, path = location(database)
    if which is None and path is not None and "disk i/o error" in str(exc).lower():
        if not os.path.exists(path):  # the -wal went with it: see replaced.py
            which = GONE
        free = free_bytes(path)
        # SQLite reports ENOSPC while growing the -shm (or a WAL frame) as an I/O error.
        if free is not None and free < 1_000_000:
            which = FULL
    if which == FULL:
        return DatabaseFullError(full_message(name, path), name)
    if which == READ_ONLY:
        return DatabaseReadOnlyError(read_only_message(name, path, exc), name)
    if which == GONE:
        return DatabaseReplacedError(replaced_message(name))
    if which == LOCKED:
        return DatabaseBusyError(BUSY_MESSAGE)
    return exc


def from_os_error(exc: OSError, database: Any) -> BaseException:
    """A file operation beside the database (its lock files) failed: the same faults."""
    import errno

    name, path = location(database)
    if exc.errno == errno.ENOSPC:
        return DatabaseFullError(full_message(name, path), name)
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return DatabaseReadOnlyError(read_only_message(name, path, exc), name)
    return exc


def probe(path: str | None) -> tuple[Any, ...]:
    """A cheap look at what decides whether writes can work again (free megabytes,
    permissions, read-only mount): a change is worth an early retry."""
    if path is None:
        return ()
    free = free_bytes(path)
    folder = os.path.dirname(os.path.abspath(path)) or "."
    try:
        ro = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        ro = None
    return (None if free is None else free // 1_000_000, ro, os.access(path, os.W_OK),
            os.access(folder, os.W_OK))
