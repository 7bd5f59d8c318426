"""dorkstore: one SQLite file for the scheduler, the relay and the agent mesh."""

from __future__ import annotations

from dorkstore.db import close_db, database, init_db, migrate_db
from dorkstore.errors import (
    ConflictError,
    DatabaseError,
    DorkstoreError,
    MigrationError,
    NotFoundError,
    SchemaVersionError,
    ValidationError,
)

__all__ = [
    "ConflictError",
    "DatabaseError",
    "DorkstoreError",
    "MigrationError",
    "NotFoundError",
    "SchemaVersionError",
    "ValidationError",
    "close_db",
    "database",
    "init_db",
    "migrate_db",
]

__version__ = "0.1.0"
