"""Where the optional parts plug into the core: the CLI and the page call these; the core
(app, storage, jobs, consumer) never imports a plugin. Removing ``litequeue/inbox/``
leaves everything else working."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from litequeue.app import LiteQueue
    from litequeue.jobs.retry import RetryHook


def install(app: LiteQueue) -> None:
    """Register every installed plugin's observers on ``app`` (``run-consumer`` calls it)."""
    try:
        from litequeue.inbox import install as install_inbox
    except ImportError:
        return
    install_inbox(app)


def retry_hooks() -> list[RetryHook]:
    """Every installed plugin's retry hooks, for ``control.retry_jobs``."""
    try:
        from litequeue.inbox import retry_hooks as inbox_hooks
    except ImportError:
        return []
    return inbox_hooks()
