"""Test support, run at start-up by a process whose PYTHONPATH names this folder (see
tests/support/clock.py): with ``$LITEQUEUE_TEST_CLOCK_OFFSET_FILE`` set, the consumer's
periodic clock (``litequeue.runtime.scheduler.wall_clock``) runs ahead by the seconds in
that file, re-read on every pass (0 while it is missing or holds no number).

Nothing is imported until the scheduler module is: the patch is applied right after it
loads, so a process that never imports it (a read command) is not slowed down.
"""

from __future__ import annotations

import datetime as dt
import importlib.abc
import importlib.machinery
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

TARGET = "litequeue.runtime.scheduler"
ENV = "LITEQUEUE_TEST_CLOCK_OFFSET_FILE"


def offset(path: str) -> float:
    try:
        return float(Path(path).read_text().strip() or 0)
    except (OSError, ValueError):
        return 0.0


def step(module: ModuleType, path: str) -> None:
    """Make ``module.wall_clock`` run ``offset(path)`` seconds ahead."""
    real = module.wall_clock

    def stepped(utc: bool) -> dt.datetime:
        return real(utc) + dt.timedelta(seconds=offset(path))

    setattr(module, "wall_clock", stepped)  # noqa: B010 - the module is typed as any module


class _StepAfterLoading(importlib.abc.Loader):
    def __init__(self, loader: Any, path: str) -> None:
        self.loader, self.path = loader, path

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self.loader.exec_module(module)
        step(module, self.path)

    def __getattr__(self, name: str) -> Any:  # get_source, get_filename... for tracebacks
        return getattr(self.loader, name)


class _Finder(importlib.abc.MetaPathFinder):
    def __init__(self, path: str) -> None:
        self.path = path

    def find_spec(self, name: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if name != TARGET:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _StepAfterLoading(spec.loader, self.path)
        return spec


if os.environ.get(ENV):
    sys.meta_path.insert(0, _Finder(os.environ[ENV]))
