"""Huey's own test suite (shipped inside the installed ``huey`` package) run against LiteQueue.

Huey's tests build their Huey in ``huey.tests.base.BaseTestCase.get_huey()``. For each
upstream test class that does not pick its own backend (by overriding ``get_huey``), this
makes a subclass whose ``get_huey()`` returns a fresh LiteQueue on the backend under test;
the test modules ``test_sqlite.py`` and ``test_postgres.py`` collect them.

Tests that cannot or should not pass on litequeue are listed, with the reason, in
:data:`tests.huey_upstream.expected_failures.EXPECTED_FAILURES` and run as strict xfails:
one that starts passing fails the run, so the list stays honest.
"""

from __future__ import annotations

import importlib
import inspect
import os
import shutil
import tempfile
import unittest
from collections.abc import Callable
from typing import Any

from huey.tests.base import BaseTestCase

from litequeue import LiteQueue

#: The upstream modules run here (the rest test Huey's own storages, asyncio or Django).
MODULES = ("test_api", "test_consumer", "test_priority", "test_signals", "test_wrappers",
           "test_crontab", "test_registry", "test_helpers")

def upstream_classes() -> list[tuple[str, type[unittest.TestCase]]]:
    """(module, class) for every upstream test class this suite runs."""
    found = []
    for name in MODULES:
        module = importlib.import_module(f"huey.tests.{name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != module.__name__ or not issubclass(cls, unittest.TestCase):
                continue
            if issubclass(cls, BaseTestCase):
                if _own_backend(cls):
                    continue  # it tests another backend (RedisHuey, a MemoryHuey variant)
            elif name != "test_crontab":
                continue  # plain TestCases of Huey's consumer internals: no Huey instance at all
            found.append((name, cls))
    return found


def _own_backend(cls: type) -> bool:
    return any("get_huey" in vars(base) for base in cls.__mro__ if base is not BaseTestCase
               and issubclass(base, BaseTestCase))


def adapted(make_db: Callable[[unittest.TestCase], str], cleanup: Callable[[unittest.TestCase], None],
            backend: str) -> dict[str, type]:
    """Subclasses of every upstream class, running on LiteQueue, keyed by their name."""

    class LiteQueueCase:
        def get_huey(self: Any) -> LiteQueue:
            self._lq_db = make_db(self)
            # As upstream's MemoryHuey(utc=False): the tests pass local wall-clock timestamps.
            return LiteQueue("huey", db=self._lq_db, durability="fast", utc=False)

        def tearDown(self: Any) -> None:
            try:
                super().tearDown()
            finally:
                huey = getattr(self, "huey", None)
                if isinstance(huey, LiteQueue):
                    huey.immediate = False
                    huey.storage.inline.close()
                    huey.storage.close()
                cleanup(self)

    out: dict[str, type] = {}
    for module, cls in upstream_classes():
        name = f"{cls.__name__}_{module.removeprefix('test_')}"
        bases = (LiteQueueCase, cls) if issubclass(cls, BaseTestCase) else (cls,)
        out[name] = type(name, bases, {"__module__": f"tests.huey_upstream.test_{backend}",
                                        "__qualname__": name})
    return out


def sqlite_db(case: Any) -> str:
    case._lq_dir = tempfile.mkdtemp(prefix="lq-huey-")
    return os.path.join(case._lq_dir, "huey.db")


def sqlite_cleanup(case: Any) -> None:
    folder = getattr(case, "_lq_dir", None)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
