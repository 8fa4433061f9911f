"""litequeue: a background-job queue for one host that needs no broker.

Huey (on SQLite, or PostgreSQL) is the engine; peewee keeps a ledger of every job in the
same database; claims and acknowledgements make sure no job is ever lost.
"""

from typing import TYPE_CHECKING, Any

from .errors import (
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
from .limits import Breaker
from .status import AttemptOutcome, JobStatus

if TYPE_CHECKING:
    from huey import crontab

    from .app import LiteQueue, default_app, periodic_task, task
    from .context import JobCancelled, current_job

#: Imported on first use: the CLI's read commands never import Huey (start-up time).
_LAZY = {"crontab": "huey", "LiteQueue": ".app", "default_app": ".app", "periodic_task": ".app",
         "task": ".app", "current_job": ".context",
         "JobCancelled": ".context"}


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
