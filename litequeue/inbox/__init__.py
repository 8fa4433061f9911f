"""The watched inbox: files dropped into a folder become jobs (see ``litequeue watch-inbox``).

Modules: ``layout`` (the folder, its rules and subfolders), ``take`` (a file becomes a job),
``settle`` (a finished job's file moves to done/ or failed/), ``reconcile`` (repairs after a
crash), ``retry`` (a retried job's file moves back), ``watcher`` (events and rescans),
``status`` (counts for ``litequeue status``). Only this module is imported by every
consumer, so it stays light: the rest loads when first used.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def install(app: Any) -> None:
    """Plug the inbox into ``app`` (a LiteQueue): its consumers settle a finished job's file
    right after the ack commits. ``run-consumer`` does this for every app; a consumer
    started from code calls it itself (without it the watcher settles files on its rescan)."""
    from .settle import FileSettler

    app.add_observer(FileSettler(lambda: app.storage))


def retry_hooks() -> list[Callable[[Any, str, str], None]]:
    """Hooks for ``control.retry_jobs``: a retried inbox job's file moves back first."""
    from .retry import move_back

    return [move_back]
