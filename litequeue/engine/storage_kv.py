"""Huey's key/value store (results, task locks, revoke and cancel keys) on the ``lq_kv`` table,
with the running job's result held for its ack.

:class:`KeyValues` is a mixin of :class:`~litequeue.engine.storage.LiteStorage`, before
Huey's ``SqlStorage`` (whose ``pop_data`` and ``delete_data`` it extends): the result Huey
stores for the running job goes to the job's unit and is written by its ack; reads on the
hot path are single indexed ``SELECT``s.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from huey.constants import EmptyData

if TYPE_CHECKING:
    from litequeue.base.values import Unit


class KeyValues:
    """Huey's key/value methods for a storage that has ``sql``, ``many``, ``write``, ``name``
    and the running job's ``unit``."""

    if TYPE_CHECKING:
        name: str

        @property
        def unit(self) -> Unit | None: ...

        def sql(self, query: str, params: Sequence[Any] = ()) -> Any: ...

        def many(self, query: str, rows: Iterable[Sequence[Any]]) -> int: ...

        def write(self) -> Any: ...

    def put_many(self, rows: Sequence[tuple[str, str, bytes]]) -> None:
        """Upsert Huey key/value rows (results, flags) as (app, key, value)."""
        self.many("INSERT INTO lq_kv (queue, key, value) VALUES (?, ?, ?) "
                  "ON CONFLICT (queue, key) DO UPDATE SET value = excluded.value", rows)

    def put_data(self, key: str, value: bytes, is_result: bool = False) -> None:
        unit = self.unit
        if unit is not None and is_result and key == unit.job_id:
            unit.results.append((key, bytes(value)))
            return
        self.put_many([(self.name, key, bytes(value))])

    def _unit_result(self, key: str, pop: bool = False) -> Any:
        # A result Huey stored for the running job is written by its ack; a signal handler
        # or post-execute hook reading it before then gets it from the unit, as in Huey.
        unit = self.unit
        if unit is None or key != unit.job_id or not unit.results:
            return EmptyData
        value = unit.results[-1][1]
        if pop:
            unit.results.clear()
        return value

    def pop_data(self, key: str) -> Any:
        value = self._unit_result(key, pop=True)
        return super().pop_data(key) if value is EmptyData else value  # type: ignore[misc]

    def peek_data(self, key: str) -> Any:
        value = self._unit_result(key)
        if value is not EmptyData:
            return value
        row = self.sql("SELECT value FROM lq_kv WHERE queue = ? AND key = ?", (self.name, key)).fetchone()
        return EmptyData if row is None else bytes(row[0])

    def peek_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        marks = ", ".join("?" * len(keys))
        rows = self.sql(f"SELECT key, value FROM lq_kv WHERE queue = ? AND key IN ({marks})",
                        (self.name, *keys)).fetchall()
        return {k: bytes(v) for k, v in rows}

    def has_data_for_key(self, key: str) -> bool:
        if self._unit_result(key) is not EmptyData:
            return True
        if self.sql("SELECT 1 FROM lq_kv WHERE queue = ? AND key = ?", (self.name, key)).fetchone() is None:
            return False
        return not self._expired(key)

    # A key written with a ttl (``lock_task(name, ttl=...)``) has its expiry beside it.
    @staticmethod
    def _ttl_key(key: str) -> str:
        return f"ttl:{key}"

    def _expired(self, key: str, now: float | None = None) -> bool:
        row = self.sql("SELECT value FROM lq_kv WHERE queue = ? AND key = ?",
                       (self.name, self._ttl_key(key))).fetchone()
        return row is not None and float(bytes(row[0])) <= (time.time() if now is None else now)

    def put_if_empty(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        """Huey's put_if_empty (task locks); ``ttl``: the key lapses after that many seconds."""
        now = time.time()
        with self.write():
            if self._expired(key, now):
                self.many("DELETE FROM lq_kv WHERE queue = ? AND key = ?",
                          [(self.name, key), (self.name, self._ttl_key(key))])
            added = self.sql("INSERT INTO lq_kv (queue, key, value) VALUES (?, ?, ?) ON CONFLICT "
                             "(queue, key) DO NOTHING", (self.name, key, bytes(value))).rowcount == 1
            if added and ttl is not None:
                self.put_many([(self.name, self._ttl_key(key), str(now + ttl).encode())])
        return added

    def delete_data(self, key: str) -> bool:
        # Huey deletes a revoke key after every job: skip it when none existed at claim
        # time, and look before taking the write lock otherwise.
        unit = self.unit
        if unit is not None and not unit.revocable and key == f"r:{unit.job_id}":
            return False
        if self.sql("SELECT 1 FROM lq_kv WHERE queue = ? AND key = ?", (self.name, key)).fetchone() is None:
            return False
        if self.sql("SELECT 1 FROM lq_kv WHERE queue = ? AND key = ?",
                    (self.name, self._ttl_key(key))).fetchone() is not None:
            super().delete_data(self._ttl_key(key))  # type: ignore[misc]
        return super().delete_data(key)  # type: ignore[misc]
