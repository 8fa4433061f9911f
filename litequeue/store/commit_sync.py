"""Commits that need not wait for the disk: a round that only claims jobs (and writes the
starts of claims taken ahead) acknowledges nothing.

Why it loses nothing: the database's log is written in order (SQLite's WAL file, PostgreSQL's
WAL). Such a commit is on disk as soon as any later commit that does wait for the disk is:
the enqueue of the next job, or the ack of this very job, which is written after its claim.
A power cut before that takes back only claims and starts of jobs that have not finished,
and a job claimed by a consumer that died is handed back and runs again anyway. An enqueue,
an ack, a cancel or anything else that ends a job still waits for the disk
(``durability="full"``). What it saves is one fsync between an enqueue and the start of its
job, after an idle spell the slowest part of a pickup (``benchmarks/run.py``, pickup p50).

SQLite: ``PRAGMA synchronous=NORMAL`` on this connection just before the transaction (SQLite
refuses it inside one), then back to the connection's own level once it ended; PostgreSQL:
``SET LOCAL synchronous_commit TO OFF`` (the server puts it back at the commit). Nothing
changes under ``durability="fast"``, which never waits for the disk on SQLite.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import peewee as pw

#: SQLite's ``synchronous`` levels, by the name the connection's pragmas give.
_WAITS = ("FULL", "EXTRA", 2, 3, "2", "3")


class NoDiskWait:
    """Called around one write transaction (:func:`relaxed`): :meth:`before` its ``BEGIN``,
    :meth:`inside` it (after the ``BEGIN``), :meth:`end` after it ended, committed or not."""

    def __init__(self, database: pw.Database, restore: object | None) -> None:
        self.database = database
        self.restore = restore  # SQLite: the connection's own level, set again after the commit
        self.relaxed = False

    def before(self) -> None:
        if self.restore is not None:  # SQLite refuses it inside a transaction
            self.database.execute_sql("PRAGMA synchronous=NORMAL")
            self.relaxed = True

    def inside(self) -> None:
        if self.restore is None:
            self.database.execute_sql("SET LOCAL synchronous_commit TO OFF")

    def end(self) -> None:
        if not self.relaxed:
            return
        self.relaxed = False
        try:
            self.database.execute_sql(f"PRAGMA synchronous={self.restore}")
        except Exception:  # noqa: BLE001 - a connection left at NORMAL would not wait for the disk again
            with contextlib.suppress(Exception):
                self.database.close()  # this thread's next statement opens one with the configured pragmas
            raise


def no_disk_wait(database: pw.Database) -> NoDiskWait | None:
    """The relaxation for one write transaction of ``database``, or None where there is
    nothing to relax (SQLite under ``durability="fast"``, any other database)."""
    if isinstance(database, pw.SqliteDatabase):
        level = dict(database._pragmas).get("synchronous")  # as open_database set it
        if level is None or (level.upper() if isinstance(level, str) else level) not in _WAITS:
            return None
        return NoDiskWait(database, level)
    if isinstance(database, pw.PostgresqlDatabase):
        return NoDiskWait(database, None)
    return None


@contextlib.contextmanager
def relaxed(database: pw.Database, transaction: Any) -> Iterator[Any]:
    """``transaction`` (a peewee ``atomic()`` of ``database``), its commit not waiting for the disk."""
    relax = None if database.in_transaction() else no_disk_wait(database)
    if relax is None:
        with transaction as entered:
            yield entered
        return
    relax.before()
    try:
        with transaction as entered:
            relax.inside()
            yield entered
    finally:
        relax.end()
