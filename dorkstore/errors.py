"""The exceptions dorkstore raises; every one derives from `DorkstoreError`."""

from __future__ import annotations

__all__ = [
    "ConflictError",
    "DatabaseBusyError",
    "DatabaseError",
    "DorkstoreError",
    "MigrationError",
    "NotFoundError",
    "RefusedError",
    "SchemaVersionError",
    "ValidationError",
]


class DorkstoreError(Exception):
    """Base class of every error dorkstore raises on purpose."""


class ValidationError(DorkstoreError, ValueError):
    """An argument is of the wrong type, out of range or not an allowed value."""


class NotFoundError(DorkstoreError, LookupError):
    """An operation needs a row that does not exist."""


class ConflictError(DorkstoreError):
    """A write clashes with a unique key."""


class DatabaseError(DorkstoreError):
    """The database file cannot be opened or used (not SQLite, unreadable, unsafe library)."""


class DatabaseBusyError(DatabaseError):
    """Another connection held the write lock for longer than busy_timeout; try again later."""


class MigrationError(DorkstoreError):
    """Applying or rolling back a migration failed; the schema is left as it was."""


class SchemaVersionError(MigrationError):
    """The database was migrated by a newer dorkstore than this one."""


class RefusedError(DorkstoreError):
    """An operation would lose data it was probably not meant to, so it changed nothing.

    The message says why, and how to proceed anyway (``force=True``, ``--force``).
    """
