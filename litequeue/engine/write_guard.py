"""The guard around every write transaction of a storage: no thread timeout inside it, no fork
during it, and its database faults translated into litequeue errors that say what happened."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from typing import Any

import peewee as pw

from litequeue.engine import interrupts
from litequeue.store import faults

#: Held by every write transaction of this process. A process forked while one of its
#: threads holds a SQLite write lock inherits SQLite's in-process lock bookkeeping with it
#: and can never write: forks (process workers) take this guard first.
FORK_GUARD = threading.RLock()


class WriteGuard:
    """Storage faults become litequeue errors that say what happened and where: locked past
    the busy timeout, disk full, read-only, file gone (see :mod:`litequeue.store.faults`).
    The failed statement's error always wins over the ROLLBACK that follows it."""

    def __init__(self, txn: Any, database: pw.Database | None = None) -> None:
        self.txn = txn
        self.database = database

    def __enter__(self) -> Any:
        interrupts.enter_write()  # a thread timeout waits until this write has ended
        FORK_GUARD.acquire()
        try:
            return self.txn.__enter__()
        except pw.OperationalError as exc:
            FORK_GUARD.release()
            interrupts.leave_write()
            raise _clear(exc, self.database) from exc
        except BaseException:
            FORK_GUARD.release()
            interrupts.leave_write()
            raise

    def __exit__(self, et: Any, ev: Any, tb: Any) -> Any:
        try:
            handled = self.txn.__exit__(et, ev, tb)
        except pw.DatabaseError as err:
            self._forget_broken_connection()
            if ev is None:  # the commit failed (and maybe the rollback after it)
                clear = _clear(err, self.database)
                raise clear from (None if clear is err else faults.primary(err))
            handled = False  # the rollback after a failed statement failed: the statement's error wins
        finally:
            FORK_GUARD.release()
            interrupts.leave_write()
        if _is_db_error(ev):
            clear = _clear(ev, self.database)
            if clear is not ev:
                raise clear from ev
        return handled

    def _forget_broken_connection(self) -> None:
        """A ROLLBACK that failed may leave the connection inside a transaction (then every
        later BEGIN fails): drop this thread's connection; the next use opens a fresh one."""
        db = self.database
        if db is None or db.transaction_depth() > 0:
            return
        conn = db._state.conn
        if conn is not None and (not isinstance(db, pw.SqliteDatabase) or conn.in_transaction):
            with contextlib.suppress(Exception):
                db.close()


def _is_db_error(exc: object) -> bool:
    """A driver's error (peewee wraps most, but ``many`` runs the raw cursor)."""
    return isinstance(exc, pw.DatabaseError | sqlite3.Error) or (
        isinstance(exc, Exception) and type(exc).__module__.startswith("psycopg"))


def _clear(exc: Exception, database: pw.Database | None = None) -> Exception:
    clear = faults.translate(exc, database if database is not None else "the database")
    return clear if isinstance(clear, Exception) else exc
