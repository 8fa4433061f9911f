"""``LiteQueue.using(connection)``: the block inside which every enqueue of an app runs on
the application's own connection and joins its open transaction.

The statements run on a :class:`litequeue.store.borrowed.Borrowed` (set for this context
only: another thread, or another asyncio task, keeps litequeue's own connection), so a job's
queue row and ledger row exist iff the application's transaction commits, and the doorbell
rings only after that commit (:meth:`litequeue.engine.storage.LiteStorage.after_write`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from litequeue.base.errors import ConfigurationError
from litequeue.engine.storage import LiteStorage
from litequeue.store.borrowed import Borrowed, borrow


@contextlib.contextmanager
def using(storage: Any, connection: Any, durability: str) -> Iterator[Borrowed | None]:
    """Route ``storage``'s statements to ``connection`` for the block (checked to be on the
    queue's database first). In immediate mode (no database) the block changes nothing."""
    if not isinstance(storage, LiteStorage):
        yield None
        return
    if storage.unit is not None and not storage.unit.in_body:
        raise ConfigurationError("using() cannot run while a job's writes wait for its ack")
    borrowed = borrow(connection)
    current = storage.borrowed.get()
    if current is None or getattr(current, "source", None) is not connection:
        # A Borrowed used again (the Django integration keeps one per connection) is
        # checked once per driver connection and queue database.
        checked = (storage.database, borrowed.raw())
        last = getattr(borrowed, "checked", None)
        if last is None or last[0] is not checked[0] or last[1] is not checked[1]:
            borrowed.check_same_database(storage.database, durability)
            borrowed.checked = checked  # type: ignore[attr-defined]
    borrowed.source = connection  # type: ignore[attr-defined]
    token = storage.borrowed.set(borrowed)
    try:
        yield borrowed
    finally:
        storage.borrowed.reset(token)
