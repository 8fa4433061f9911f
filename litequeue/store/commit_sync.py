"""Commits that need not wait for the disk, on SQLite: a round that only claims jobs (and
writes the starts of claims taken ahead) acknowledges nothing.

Why it loses nothing: SQLite's WAL file is written in order, and the kernel keeps what a
commit wrote even if the process dies. Such a commit is on disk as soon as any later commit
that does wait for the disk is: the enqueue of the next job, or the ack of this very job,
which is written after its claim. Only a power cut or a kernel crash before that takes back
the claims and starts of jobs that have not finished, and it takes down the consumers of
that host with them (SQLite serves one host): their claims would have been handed back
anyway, and those jobs run again as after any consumer's death. What the ledger then lacks
is the interrupted attempt. An enqueue, an ack, a cancel or anything else that ends a job
still waits for the disk (``durability="full"``). What it saves is one fsync between an
enqueue and the start of its job, after an idle spell a large part of a pickup.

``PRAGMA synchronous=NORMAL`` on this connection just before the transaction (SQLite refuses
it inside one), then back to the connection's own level once it ended. Nothing changes
under ``durability="fast"``, which never waits for the disk.

Not on PostgreSQL: ``synchronous_commit = off`` can lose the last commits when the server
alone crashes or fails over, while consumers on other hosts keep running the jobs whose
claims it lost, and another consumer would claim them again at once.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import peewee as pw

log = logging.getLogger("litequeue.store")

#: The ``synchronous`` levels that wait for the disk, as a connection's pragmas may name them.
_WAITS = frozenset({"FULL", "EXTRA", "2", "3"})


def _waiting_level(database: pw.Database) -> object | None:
    """The level ``open_database`` gave this SQLite database if it waits for the disk, else
    None: nothing to relax (``durability="fast"``), or not safe to (PostgreSQL)."""
    if not isinstance(database, pw.SqliteDatabase):
        return None
    level = dict(database._pragmas).get("synchronous")
    return level if level is not None and str(level).upper() in _WAITS else None


def _restore(database: pw.Database, level: object) -> None:
    try:
        database.execute_sql(f"PRAGMA synchronous={level}")
    except Exception as exc:  # noqa: BLE001 - the transaction's own outcome stands either way
        # A connection left at NORMAL would not wait for the disk again: this thread's next
        # statement opens a new one, with the configured pragmas.
        log.warning("could not set synchronous=%s again (%s); reopening the connection", level, exc,
                    extra={"action": "reconnect"})
        with contextlib.suppress(Exception):
            database.close()


@contextlib.contextmanager
def relaxed(database: pw.Database, transaction: Any) -> Iterator[Any]:
    """``transaction`` (a peewee ``atomic()`` of ``database``), its commit not waiting for the disk."""
    level = None if database.in_transaction() else _waiting_level(database)
    if level is None:
        with transaction as entered:
            yield entered
        return
    database.execute_sql("PRAGMA synchronous=NORMAL")  # before BEGIN: SQLite refuses it inside one
    try:
        with transaction as entered:
            yield entered
    finally:
        _restore(database, level)
