"""The database for commands that only read the ledger (``status``, ``jobs list``, ``jobs
show``): opened without Huey, the user's code or a storage, so they answer quickly."""

from __future__ import annotations

import peewee as pw

from litequeue.base.errors import DatabaseError
from litequeue.ledger.queries import has_schema
from litequeue.store import migrations
from litequeue.store.database import open_database


def open_ledger(db: str | None = None, readonly: bool = False) -> pw.Database:
    """The database at ``db``, checked to be a litequeue database of this code's schema
    (an out-of-date one is refused: run ``litequeue migrate``)."""
    database = open_database(db, create=False, readonly=readonly)
    if not has_schema(database):
        raise DatabaseError(f"{database.database} is not a litequeue database (no lq_meta table); "
                            "point LITEQUEUE_DB at a litequeue database")
    migrations.check(database)
    return database
