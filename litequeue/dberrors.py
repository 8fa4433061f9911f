"""What a database error means: passing (wait and retry) or deterministic (this input will
never be written). The one place that reads drivers' error texts and types."""

from __future__ import annotations

import peewee as pw

from .errors import DatabaseBusyError

_TRANSIENT_TEXTS = (
    "locked", "busy", "disk is full", "database or disk is full", "readonly database",
    "read-only", "server closed the connection", "connection already closed",
    "terminating connection", "could not connect", "connection refused", "ssl syscall",
    "the connection is lost", "connection not open", "could not serialize access",
    "deadlock detected", "disk i/o error", "unable to open database file",
)


def is_busy(exc: BaseException) -> bool:
    """SQLite's "database is locked"/"busy" (another writer holds the lock)."""
    if isinstance(exc, DatabaseBusyError):
        return True
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def is_transient(exc: BaseException) -> bool:
    """True when the same statement may succeed later: busy or locked, connection lost,
    disk full, read-only for now. False for errors the input itself causes (a value the
    database refuses, a constraint, a bug): retrying those would wedge the caller."""
    if isinstance(exc, DatabaseBusyError | pw.InterfaceError):
        return True
    if isinstance(exc, pw.IntegrityError | pw.DataError | pw.ProgrammingError):
        return False
    if isinstance(exc, pw.OperationalError):
        return True
    text = str(exc).lower()
    return any(t in text for t in _TRANSIENT_TEXTS)
