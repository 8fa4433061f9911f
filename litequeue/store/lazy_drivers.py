"""peewee, imported without psycopg 3 until a PostgreSQL database is made.

peewee imports psycopg 3 at its top, whatever the database: about 100 ms of a read command's
start on SQLite here (``python -X importtime -m litequeue status``). :func:`import_peewee`
imports peewee with it hidden (from that import's own thread only), so peewee takes it for
absent; the first ``peewee.PostgresqlDatabase`` (litequeue's, playhouse's or the
application's own) then imports it and hands peewee the same names its own import would have
bound (:func:`load_postgres_drivers`). psycopg2 is left to peewee's import as it is: peewee
registers its UUID adapter there, which a program may rely on. A program that imported
peewee or psycopg before litequeue keeps the import it made.
"""

from __future__ import annotations

import importlib.abc
import sys
import threading
from types import ModuleType
from typing import Any

#: The driver package deferred.
DEFERRED = "psycopg"

_lock = threading.Lock()
_deferred = False  # True once peewee was imported with psycopg hidden, until psycopg is loaded


class _HideDrivers(importlib.abc.MetaPathFinder):
    """Answers "not installed" for psycopg to the thread running peewee's import, while it runs."""

    def __init__(self) -> None:
        self.thread = threading.get_ident()

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> None:
        if threading.get_ident() == self.thread and fullname.split(".")[0] == DEFERRED:
            raise ModuleNotFoundError(f"{fullname} deferred by litequeue until a PostgreSQL database is made",
                                      name=fullname)
        return None


def import_peewee() -> ModuleType:
    """peewee; imported here first, without psycopg 3 (see the module's docstring)."""
    global _deferred
    with _lock:
        if "peewee" in sys.modules:
            return sys.modules["peewee"]
        if DEFERRED in sys.modules:  # loaded already: nothing to save
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
    """Imports psycopg, which peewee's import skipped, and binds it in peewee as its own import
    would have (module globals, and the adapter's transaction states read at class creation)."""
    global _deferred
    if not _deferred:
        return
    with _lock:
        if not _deferred:
            return
        import peewee

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
