"""The SQL helpers that adapt a statement to the database it runs on (SQLite or PostgreSQL).

Every statement in litequeue is written once, with ``?`` placeholders; :func:`param`
turns it into PostgreSQL's ``%s`` form when needed. The small differences shared by many
statements (row locks, the planner hint, integer rounding) are answered here.
Where a module does something only one database has (SQLite's counter triggers, file checks
and ``BEGIN IMMEDIATE``; PostgreSQL's advisory locks, ``pg_locks`` and planner estimates), it
tests which database it has itself (:func:`is_sqlite`, or ``LiteStorage.is_sqlite``): the
storage, the job writers (jobs/claim, jobs/limits, ...), retention, migrations, faults, the consumer
and the ledger's reads do.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import peewee as pw

_cache: dict[str, str] = {}


def is_sqlite(db: pw.Database) -> bool:
    return isinstance(db, pw.SqliteDatabase)


def param(db: pw.Database, query: str) -> str:
    """``query`` (written with ``?``) in the placeholder style of ``db``."""
    return query if is_sqlite(db) else format_style(query)


def format_style(query: str) -> str:
    """``query`` (written with ``?``) with ``%s`` placeholders (psycopg's, Django's)."""
    out = _cache.get(query)
    if out is None:
        out = _cache[query] = query.replace("%", "%%").replace("?", "%s")
    return out


def sql(db: pw.Database, query: str, params: Sequence[Any] = ()) -> Any:
    """Run one statement written with ``?`` placeholders; return the cursor."""
    return db.execute_sql(param(db, query), params)


def many(db: pw.Database, query: str, rows: Iterable[Sequence[Any]]) -> int:
    """Run ``query`` once per row (``executemany``); returns the rows it changed."""
    rows = list(rows)
    if not rows:
        return 0
    cur = db.cursor()
    cur.executemany(param(db, query), rows)
    return cur.rowcount


@contextlib.contextmanager
def pipelined(db: pw.Database) -> Iterator[None]:
    """PostgreSQL (psycopg 3): the statements run inside are sent without waiting for each
    one's answer (psycopg's pipeline mode) until one whose rows are read, which waits for
    them all: a run of writes costs one round trip instead of one each. The server still
    runs them in order, and an error still ends the transaction (raised at that read, or at
    the end). Inside, a write's ``rowcount`` is not known until then: only for writes whose
    counts nothing reads. Run it inside a transaction. SQLite, psycopg2: nothing changes."""
    conn = None if is_sqlite(db) else db.connection()
    if conn is None or not hasattr(conn, "pipeline"):
        yield
        return
    try:
        with conn.pipeline():
            yield
    except Exception as exc:
        if not type(exc).__module__.startswith("psycopg"):
            raise
        # Raised at a fetch or at the pipeline's end, not inside peewee's execute_sql: given
        # peewee's class for it, as execute_sql would have (faults.py reads those).
        seen = getattr(db, "_seen_failing", None)
        if seen is not None:
            seen(exc)
        with pw.__exception_wrapper__:
            raise


def skip_locked(db: pw.Database) -> str:
    """The row-lock clause of a claim query: SQLite has one writer, so none is needed."""
    return "" if is_sqlite(db) else " FOR UPDATE SKIP LOCKED"


def unindexed(db: pw.Database, column: str) -> str:
    """``+column`` on SQLite keeps the planner off that column's index."""
    return f"+{column}" if is_sqlite(db) else column


def floor_int(db: pw.Database, expr: str) -> str:
    """``expr`` rounded down to an integer: SQLite's CAST truncates, PostgreSQL's rounds."""
    return f"CAST({expr} AS INTEGER)" if is_sqlite(db) else f"CAST(FLOOR({expr}) AS BIGINT)"


def marks(n: int) -> str:
    """``?, ?, ?`` for an ``IN (...)`` list of ``n`` values."""
    return ", ".join("?" * n)


def greatest(db: pw.Database, a: str, b: str) -> str:
    """The larger of two SQL values: SQLite's two-argument ``MAX``, PostgreSQL's ``GREATEST``."""
    return f"MAX({a}, {b})" if is_sqlite(db) else f"GREATEST({a}, {b})"
