"""The documented path of litequeue's exceptions; they live in :mod:`litequeue.base.errors`."""

from litequeue.base.errors import (
    AppImportError,
    BatchClosedError,
    ConfigurationError,
    DatabaseBusyError,
    DatabaseError,
    DatabaseFullError,
    DatabaseReadOnlyError,
    DatabaseReplacedError,
    DatabaseUnreachableError,
    DependencyError,
    JobNotFoundError,
    LiteQueueError,
    SchemaOutOfDateError,
    SchemaTooNewError,
    UnknownTaskError,
)

__all__ = [
    "LiteQueueError",
    "ConfigurationError",
    "DatabaseError",
    "DatabaseUnreachableError",
    "DatabaseBusyError",
    "SchemaTooNewError",
    "SchemaOutOfDateError",
    "DatabaseFullError",
    "DatabaseReadOnlyError",
    "DatabaseReplacedError",
    "DependencyError",
    "UnknownTaskError",
    "AppImportError",
    "JobNotFoundError",
    "BatchClosedError",
]
