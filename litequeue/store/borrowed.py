"""The application's own database connection, borrowed for litequeue's statements: what
``LiteQueue.using(connection)`` runs an enqueue on, inside the application's open transaction.

A :class:`Borrowed` runs litequeue's SQL (written with ``?``) on a sqlite3 or psycopg 3
connection, a peewee ``Database``, a SQLAlchemy ``Connection`` or ``Session``, or a Django
connection (SQLite or PostgreSQL); :meth:`Borrowed.savepoint` wraps one enqueue's statements in a savepoint of the
application's transaction (an enqueue that fails leaves that transaction as it was) and
never commits it. Where the connection is outside a transaction and its driver would not
open one (autocommit), the enqueue is a transaction of its own, committed at once, as any
statement there would be. :meth:`Borrowed.ring_after_commit` rings the consumers' doorbell
only once the application's transaction has committed (:mod:`litequeue.store.commit_watch`).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import peewee as pw

from litequeue.base.errors import ConfigurationError
from litequeue.store import commit_watch, dialect, faults
from litequeue.store.doorbell import CHANNEL, BellTarget, ring

log = logging.getLogger("litequeue.using")
_names = itertools.count(1)
#: Why a SQLite connection on another file cannot take part: the one line a refusal says.
OTHER_FILE = ("SQLite commits each database file on its own (even ATTACHed files are not committed "
              "together in WAL mode), so a job in another file cannot share the transaction")
KINDS = ("a sqlite3 or psycopg 3 connection, a peewee Database, a SQLAlchemy Connection or Session, "
         "or a Django connection")


class Borrowed:
    """litequeue's statements on a connection it does not own (see the module's docstring)."""

    kind = "connection"
    is_sqlite = True

    # -- what each kind of connection answers ---------------------------------------------

    def _exec(self, query: str, params: Sequence[Any] | None) -> Any:
        raise NotImplementedError

    def _many(self, query: str, rows: list[Sequence[Any]]) -> int:
        raise NotImplementedError

    def raw(self) -> Any:
        """The driver's connection (sqlite3 or psycopg) under this one."""
        raise NotImplementedError

    def autocommits(self) -> bool:
        """Outside a transaction, the driver commits each statement (opens no transaction)."""
        raw = self.raw()
        if self.is_sqlite:
            mode = getattr(raw, "autocommit", -1)
            return mode is True or (mode not in (True, False) and raw.isolation_level is None)
        return bool(raw.autocommit)

    def begin_statement(self) -> str | None:
        """What the driver sends to open the transaction an INSERT opens implicitly (None:
        the driver opens it by itself at the next statement)."""
        raw = self.raw()
        if self.is_sqlite:
            return f"BEGIN {raw.isolation_level or ''}".strip()
        return None

    def begin(self) -> None:
        """Before the first statement: the framework's idea of its transaction begins."""

    # -- common -------------------------------------------------------------------------

    def in_transaction(self) -> bool:
        raw = self.raw()
        if self.is_sqlite:
            return bool(raw.in_transaction)
        return raw.info.transaction_status != 0  # psycopg.pq.TransactionStatus.IDLE

    def _placeholders(self, query: str) -> str:
        return query if self.is_sqlite else dialect.format_style(query)

    def sql(self, query: str, params: Sequence[Any] = ()) -> Any:
        """One statement written with ``?``; returns the cursor (or result)."""
        if not params:
            return self._exec(query, None)
        return self._exec(self._placeholders(query), tuple(params))

    def many(self, query: str, rows: Iterable[Sequence[Any]]) -> int:
        rows = [tuple(r) for r in rows]
        if not rows:
            return 0
        return self._many(self._placeholders(query), rows)

    @contextlib.contextmanager
    def savepoint(self) -> Iterator[Borrowed]:
        """One enqueue's statements: in a savepoint of the application's transaction; on a
        connection outside a transaction in autocommit mode, a transaction of their own."""
        self.begin()
        own = False
        if not self.in_transaction():
            if self.autocommits():
                own = True
            elif (begin := self.begin_statement()) is not None:
                self._exec(begin, None)
        name = f"lq_enqueue_{next(_names)}"
        self._exec(("BEGIN IMMEDIATE" if self.is_sqlite else "BEGIN") if own else f"SAVEPOINT {name}", None)
        try:
            yield self
        except BaseException:
            with contextlib.suppress(Exception):
                self._exec("ROLLBACK" if own else f"ROLLBACK TO SAVEPOINT {name}", None)
                if not own:
                    self._exec(f"RELEASE SAVEPOINT {name}", None)
            raise
        self._exec("COMMIT" if own else f"RELEASE SAVEPOINT {name}", None)

    def ring_after_commit(self, bell: BellTarget, visible: Callable[[], bool]) -> None:
        """Ring the consumers' doorbell once the writes just made are committed.

        PostgreSQL: ``NOTIFY`` on this connection, which PostgreSQL delivers at the commit
        and drops at a rollback (of the transaction, or of a savepoint around it). SQLite:
        at once if nothing is open any more (the enqueue was its own transaction), else once
        the jobs can be read from another connection (``visible``), watched until the
        application's transaction ends."""
        if bell is None:
            return
        if not self.is_sqlite:
            self._exec(f"NOTIFY {CHANNEL}", None)
            return
        if not self.in_transaction():
            ring(bell)
            return
        raw = self.raw()
        commit_watch.watch(visible, lambda: _sqlite_open(raw), lambda: ring(bell))

    # -- checks -----------------------------------------------------------------------------

    def check_same_database(self, own: pw.Database, durability: str) -> None:
        """Refuse a connection that is not on the database holding the queue (one line)."""
        if self.is_sqlite != dialect.is_sqlite(own):
            theirs, ours = ("SQLite", "PostgreSQL") if self.is_sqlite else ("PostgreSQL", "SQLite")
            raise ConfigurationError(f"the connection is on {theirs} and the queue on {ours}: a transaction covers "
                                     "one database; pass a connection to the queue's database")
        if self.is_sqlite:
            self._check_same_file(own, durability)
            return
        probe = "SELECT current_database(), pg_postmaster_start_time()::text, inet_server_port()"
        theirs = tuple(self._exec(probe, None).fetchone())
        ours = tuple(dialect.sql(own, probe).fetchone())
        if theirs != ours:
            raise ConfigurationError(f"the connection is on database {theirs[0]!r} and the queue in {ours[0]!r} "
                                     "(or on another server): a transaction covers one database; pass a "
                                     "connection to the queue's database")

    def _check_same_file(self, own: pw.Database, durability: str) -> None:
        rows = self._exec("PRAGMA database_list", None).fetchall()
        theirs = next((r[2] for r in rows if r[1] == "main"), "") or ":memory:"
        ours = _sqlite_file(own)
        if theirs == ":memory:" or ours is None or not _same_file(theirs, ours):
            raise ConfigurationError(f"the connection is on {theirs} and the queue in {ours}: {OTHER_FILE}; "
                                     f"open the connection on {ours}, or give LiteQueue(db=...) the application's "
                                     "database")
        level = self._exec("PRAGMA synchronous", None).fetchone()[0]
        if durability == "full" and int(level) < 2:
            log.warning("the application's connection commits with PRAGMA synchronous=%s: a job enqueued through "
                        "it survives a crash of the process but not a power loss (durability='full' needs "
                        "synchronous=FULL on that connection)", level, extra={"action": "using"})


def _sqlite_open(raw: sqlite3.Connection) -> bool:
    try:
        return bool(raw.in_transaction)
    except sqlite3.ProgrammingError:  # closed: its transaction ended with it
        return False


def _sqlite_file(db: pw.Database) -> str | None:
    _, path = faults.location(db)
    if path is None or path in ("", ":memory:"):
        return None
    if path.startswith("file:"):
        path = path[len("file:"):].split("?", 1)[0]
    return os.path.abspath(path)


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


class SqliteConnection(Borrowed):
    kind = "sqlite3"

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def raw(self) -> sqlite3.Connection:
        return self.conn

    def _exec(self, query: str, params: Sequence[Any] | None) -> Any:
        return self.conn.execute(query, params or ())

    def _many(self, query: str, rows: list[Sequence[Any]]) -> int:
        return self.conn.executemany(query, rows).rowcount


class PsycopgConnection(Borrowed):
    kind = "psycopg"
    is_sqlite = False

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def raw(self) -> Any:
        return self.conn

    def _exec(self, query: str, params: Sequence[Any] | None) -> Any:
        return self.conn.execute(query, params) if params else self.conn.execute(query)

    def _many(self, query: str, rows: list[Sequence[Any]]) -> int:
        cur = self.conn.cursor()
        cur.executemany(query, rows)
        return cur.rowcount


class PeeweeDatabase(Borrowed):
    """A peewee database: its own ``atomic()`` nests (a savepoint inside a transaction, else
    a transaction of its own, as peewee's autocommit connections do)."""

    kind = "peewee"

    def __init__(self, db: pw.Database) -> None:
        self.db = db
        self.is_sqlite = dialect.is_sqlite(db)

    def raw(self) -> Any:
        return self.db.connection()

    def in_transaction(self) -> bool:
        return self.db.in_transaction()

    def _exec(self, query: str, params: Sequence[Any] | None) -> Any:
        return self.db.execute_sql(query, params or ())

    def _many(self, query: str, rows: list[Sequence[Any]]) -> int:
        cur = self.db.cursor()
        cur.executemany(query, rows)
        return cur.rowcount

    @contextlib.contextmanager
    def savepoint(self) -> Iterator[Borrowed]:
        outer = self.db.in_transaction()
        txn = self.db.atomic("IMMEDIATE") if self.is_sqlite and not outer else self.db.atomic()
        with txn:
            yield self


class SqlAlchemyConnection(Borrowed):
    """A SQLAlchemy ``Connection`` (a ``Session``'s, for a session): statements go through
    ``exec_driver_sql``, so the transaction is SQLAlchemy's own and its ``commit()`` commits it."""

    kind = "sqlalchemy"

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.is_sqlite = conn.dialect.name == "sqlite"

    def raw(self) -> Any:
        return self.conn.connection.dbapi_connection

    def autocommits(self) -> bool:
        return self.conn.get_isolation_level() == "AUTOCOMMIT"

    def begin(self) -> None:
        if not self.conn.in_transaction():
            self.conn.begin()

    def _exec(self, query: str, params: Sequence[Any] | None) -> Any:
        return self.conn.exec_driver_sql(query, tuple(params)) if params else self.conn.exec_driver_sql(query)

    def _many(self, query: str, rows: list[Sequence[Any]]) -> int:
        return self.conn.exec_driver_sql(query, rows).rowcount


class DjangoConnection(Borrowed):
    """A Django database connection (``django.db.connection``, ``connections[alias]``) on
    SQLite or PostgreSQL: statements on its cursor (``%s`` placeholders on every backend,
    Django's SQLite cursor turns them into ``?``), so they run in the transaction its
    ``transaction.atomic()`` blocks opened, and Django's commit or rollback decides."""

    kind = "django"

    def __init__(self, conn: Any) -> None:
        if conn.vendor not in ("sqlite", "postgresql"):
            raise ConfigurationError(f"using() takes a Django connection on SQLite or PostgreSQL; this one is on "
                                     f"{conn.vendor}: enqueue after the commit (transaction.on_commit) instead")
        self.conn = conn
        self.is_sqlite = conn.vendor == "sqlite"

    def raw(self) -> Any:
        self.conn.ensure_connection()
        return self.conn.connection

    def autocommits(self) -> bool:
        # Django runs its connections in autocommit mode outside atomic(); inside one, the
        # transaction is open (SQLite: Django sent BEGIN) or opens at the next statement.
        self.conn.ensure_connection()
        return bool(self.conn.get_autocommit())

    def begin_statement(self) -> str | None:
        return None

    def _placeholders(self, query: str) -> str:
        return dialect.format_style(query)

    def _exec(self, query: str, params: Sequence[Any] | None) -> Any:
        cursor = self.conn.cursor()
        cursor.execute(query, params or None)
        return cursor

    def _many(self, query: str, rows: list[Sequence[Any]]) -> int:
        cursor = self.conn.cursor()
        cursor.executemany(query, rows)
        return int(cursor.rowcount)


def _is_django(connection: Any, module: str) -> bool:
    return module.startswith("django.") and hasattr(connection, "in_atomic_block") and hasattr(connection, "vendor")


def borrow(connection: Any) -> Borrowed:
    """The :class:`Borrowed` for ``connection``; anything else is refused in one line."""
    if isinstance(connection, Borrowed):
        return connection
    if isinstance(connection, sqlite3.Connection):
        return SqliteConnection(connection)
    if isinstance(connection, pw.Database):
        return PeeweeDatabase(connection)
    module = type(connection).__module__
    if (module == "psycopg" or module.startswith("psycopg.")) and hasattr(connection, "info"):
        return PsycopgConnection(connection)
    if module.startswith("sqlalchemy."):
        if hasattr(connection, "exec_driver_sql"):
            return SqlAlchemyConnection(connection)
        if hasattr(connection, "get_bind") and hasattr(connection, "connection"):  # a Session
            return SqlAlchemyConnection(connection.connection())
    if _is_django(connection, module):
        return DjangoConnection(connection)
    raise ConfigurationError(f"using() takes {KINDS}; got {type(connection).__module__}.{type(connection).__name__}")
