"""peewee, imported without its PostgreSQL drivers until a PostgreSQL database is made.

peewee imports psycopg 3 and psycopg2 at its top, whatever the database: about 120 ms of a
read command's start on SQLite (``python -X importtime -m litequeue status``). :func:`import_peewee`
imports peewee with both hidden, so peewee takes them for absent; the first
``peewee.PostgresqlDatabase`` (litequeue's, playhouse's or the application's own) then imports them
and hands peewee the same names its own import would have bound (:func:`load_postgres_drivers`).
A program that imported peewee or a driver before litequeue keeps the import it made.
"""

from __future__ import annotations

import importlib.abc
import sys
import threading
from types import ModuleType
from typing import Any

#: The driver packages peewee imports at its top.
DRIVERS = ("psycopg", "psycopg2", "psycopg2cffi")

_lock = threading.Lock()
_deferred = False  # True once peewee was imported with the drivers hidden and they are not loaded yet


class _HideDrivers(importlib.abc.MetaPathFinder):
    """Answers "not installed" for the drivers, while peewee's own import runs."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> None:
        if fullname.split(".")[0] in DRIVERS:
            raise ModuleNotFoundError(f"{fullname} deferred by litequeue until a PostgreSQL database is made",
                                      name=fullname)
        return None


def import_peewee() -> ModuleType:
    """peewee; imported here first, without the PostgreSQL drivers (see the module's docstring)."""
    global _deferred
    with _lock:
        if "peewee" in sys.modules:
            return sys.modules["peewee"]
        if any(name in sys.modules for name in DRIVERS):  # a driver is loaded already: nothing to save
            import peewee

            return peewee
        hider = _HideDrivers()
        sys.meta_path.insert(0, hider)
        try:
            import peewee
        finally:
            sys.meta_path.remove(hider)
        _deferred = True
        _original_init = peewee.PostgresqlDatabase.init

        def init(self: Any, *args: Any, **kwargs: Any) -> Any:
            load_postgres_drivers()
            return _original_init(self, *args, **kwargs)

        init.__wrapped__ = _original_init  # type: ignore[attr-defined]
        peewee.PostgresqlDatabase.init = init  # type: ignore[method-assign]
        return peewee


def load_postgres_drivers() -> None:
    """Imports the drivers peewee's import skipped, and binds them in peewee as its own import
    would have (module globals, and the adapters' transaction states read at class creation)."""
    global _deferred
    if not _deferred:
        return
    with _lock:
        if not _deferred:
            return
        import peewee

        try:
            from psycopg2cffi import compat  # type: ignore[import-not-found]

            compat.register()
        except ImportError:
            pass
        try:
            import psycopg2
            from psycopg2 import extensions
            from psycopg2.extras import Json, register_uuid
        except ImportError:
            pass
        else:
            register_uuid()
            peewee.psycopg2, peewee.pg_extensions, peewee.pg_register_uuid = psycopg2, extensions, register_uuid
            peewee.Json_pg2 = Json
            adapter = peewee.Psycopg2Adapter
            adapter.txn_idle = extensions.TRANSACTION_STATUS_IDLE
            adapter.txn_inerror = extensions.TRANSACTION_STATUS_INERROR
            adapter.txn_unknown = extensions.TRANSACTION_STATUS_UNKNOWN
        try:
            import psycopg
            from psycopg.pq import TransactionStatus
            from psycopg.types.json import Json as Json3
            from psycopg.types.json import Jsonb as Jsonb3
        except ImportError:
            pass
        else:
            peewee.psycopg, peewee.TransactionStatus = psycopg, TransactionStatus
            peewee.Json_pg3, peewee.Jsonb_pg3 = Json3, Jsonb3
            adapter3 = peewee.Psycopg3Adapter
            adapter3.txn_idle = TransactionStatus.IDLE
            adapter3.txn_inerror = TransactionStatus.INERROR
            adapter3.txn_unknown = TransactionStatus.UNKNOWN
        _deferred = False
