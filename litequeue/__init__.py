"""litequeue: a background-job queue for one host that needs no broker.

Huey (on SQLite, or PostgreSQL) is the engine; peewee keeps a ledger of every job in the
same database; claims and acknowledgements make sure no job is ever lost.
"""

from huey import crontab

from .app import LiteQueue, default_app, periodic_task, task
from .context import current_job
from .errors import (
    AppImportError,
    ConfigurationError,
    DatabaseBusyError,
    DatabaseError,
    DatabaseFullError,
    DatabaseReadOnlyError,
    DatabaseReplacedError,
    JobCancelled,
    JobNotFoundError,
    LiteQueueError,
    UnknownTaskError,
)
from .limits import Breaker
from .status import AttemptOutcome, JobStatus

__all__ = [
    "AppImportError", "AttemptOutcome", "Breaker", "ConfigurationError", "DatabaseBusyError", "DatabaseError",
    "DatabaseFullError", "DatabaseReadOnlyError", "DatabaseReplacedError",
    "JobCancelled", "JobNotFoundError", "JobStatus", "LiteQueue", "LiteQueueError",
    "UnknownTaskError", "crontab", "current_job", "default_app", "periodic_task", "task",
]
__version__ = "0.1.0"
