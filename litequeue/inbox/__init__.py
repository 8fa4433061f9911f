"""The watched inbox: files dropped into a folder become jobs (see ``litequeue watch-inbox``).

Modules: ``layout`` (the folder, its rules and subfolders), ``take`` (a file becomes a job),
``settle`` (a finished job's file moves to done/ or failed/), ``reconcile`` (repairs after a
crash), ``retry`` (a retried job's file moves back), ``watcher`` (events and rescans),
``status`` (counts for ``litequeue status``). Only this module is imported by every
consumer, so it stays light: the rest loads when first used.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any


def observers(app: Any = None) -> list[Callable[[Sequence[Any]], None]]:
    """Observers every consumer runs after an ack commits (the inbox moves files here).

    ``app`` is the consumer's LiteQueue; without one the settler uses the default
    database (``$LITEQUEUE_DB``)."""
    from .settle import FileSettler

    if app is None or not hasattr(app, "storage"):
        return [FileSettler(_default_storage)]
    return [FileSettler(lambda: app.storage)]


_fallback: Any = None


def _default_storage() -> Any:
    global _fallback
    if _fallback is None:
        from ..control import open_store

        _fallback = open_store()
    return _fallback
