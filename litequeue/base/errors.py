"""Errors litequeue raises. Each message says what to do."""

from __future__ import annotations


class LiteQueueError(Exception):
    """Base class of every litequeue error."""


class ConfigurationError(LiteQueueError):
    """A setting is wrong; the message names it and the expected form."""


class DatabaseError(LiteQueueError):
    """The database cannot be opened or used; the message says why and what to do."""


class _ServerUnreachable(Exception):
    """First base of :class:`DatabaseUnreachableError`: peewee's exception wrapper turns an
    error whose first base is named ``DatabaseError`` into its own; this one passes through."""


class DatabaseUnreachableError(_ServerUnreachable, DatabaseError):
    """The database server could not be reached within the retry window (``busy_timeout``)."""


class DatabaseBusyError(DatabaseError):
    """Another process held the database write lock for longer than the busy timeout."""


class SchemaTooNewError(DatabaseError):
    """The database's schema is newer than this litequeue: it is refused, nothing is written."""


class SchemaOutOfDateError(DatabaseError):
    """The database's schema is older than this litequeue and migrating was turned off."""


class DatabaseFullError(DatabaseError):
    """The database's filesystem (or server) is out of space; nothing was written.

    ``path`` is the database file (or the redacted URL); writes work again once space
    returns, with no other action."""

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class DatabaseReadOnlyError(DatabaseError):
    """The database file, its folder or its filesystem refuses writes; nothing was written.

    Reads still work; ``path`` is the database file (or the redacted URL)."""

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class DatabaseReplacedError(DatabaseError):
    """The database file was deleted or replaced while this process had it open."""


class DependencyError(ConfigurationError):
    """A job's ``depends_on`` names a job that does not exist, or makes a cycle; nothing
    was written."""


class UnknownTaskError(LiteQueueError):
    """No task of that name is registered (or the short name is ambiguous)."""


class AppImportError(LiteQueueError):
    """The APP given to the CLI could not be imported."""


class JobNotFoundError(LiteQueueError):
    """No job with that id is in the ledger."""


class BatchClosedError(LiteQueueError):
    """A job was added to a batch that has finished (or that does not exist)."""


def on_one_line(text: str) -> str:
    """``text`` with every character that would break or garble a one-line message shown
    escaped (``\\n``, ``\\x1e``, ``\\u2028``...): line breaks, the separators
    :meth:`str.splitlines` breaks on, and other control characters, for errors that echo a
    value the user gave."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)
