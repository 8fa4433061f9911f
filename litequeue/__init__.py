"""litequeue: a background-job queue for one host that needs no broker.

Huey (on SQLite, or PostgreSQL) is the engine; peewee keeps a ledger of every job in the
same database; claims and acknowledgements make sure no job is ever lost.
"""

from typing import TYPE_CHECKING, Any

from litequeue.base.errors import (
    AppImportError,
    ConfigurationError,
    DatabaseBusyError,
    DatabaseError,
    DatabaseFullError,
    DatabaseReadOnlyError,
    DatabaseReplacedError,
    JobNotFoundError,
    LiteQueueError,
    UnknownTaskError,
)
from litequeue.base.limits import Breaker
from litequeue.base.states import AttemptOutcome, JobStatus
from litequeue.store.lazy_drivers import import_peewee

import_peewee()  # before any module of litequeue imports peewee: no PostgreSQL driver until one is used

if TYPE_CHECKING:
    from huey import crontab

    from litequeue.engine.context import current_job
    from litequeue.engine.exceptions import JobCancelled

    from .app import LiteQueue, default_app, periodic_task, task

#: Imported on first use: the CLI's read commands never import Huey (start-up time).
_LAZY = {"crontab": "huey", "LiteQueue": ".app", "default_app": ".app", "periodic_task": ".app",
         "task": ".app", "current_job": ".engine.context", "JobCancelled": ".engine.exceptions"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'litequeue' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value

__all__ = [
    "AppImportError", "AttemptOutcome", "Breaker", "ConfigurationError", "DatabaseBusyError", "DatabaseError",
    "DatabaseFullError", "DatabaseReadOnlyError", "DatabaseReplacedError",
    "JobCancelled", "JobNotFoundError", "JobStatus", "LiteQueue", "LiteQueueError",
    "UnknownTaskError", "crontab", "current_job", "default_app", "periodic_task", "task",
]
__version__ = "0.1.0"
