"""Migrations: the runner that applies and rolls them back, and the drift check.

``dorkstore.migrate.runner`` applies the peewee-migrate files under the
backend's migration lock; ``dorkstore.migrate.drift`` checks that they build
what the models describe.
"""

from __future__ import annotations

from dorkstore.migrate.drift import check_migrations
from dorkstore.migrate.runner import (
    BACKUPS_KEPT,
    HISTORY_TABLE,
    LOCK_TIMEOUT_S,
    AppliedMigration,
    MigrationState,
    applied_history,
    applied_migrations,
    apply_pending,
    available_migrations,
    default_directory,
    migration_history,
    migration_state,
    open_database,
    rollback,
)

__all__ = [
    "BACKUPS_KEPT",
    "HISTORY_TABLE",
    "LOCK_TIMEOUT_S",
    "AppliedMigration",
    "MigrationState",
    "applied_history",
    "applied_migrations",
    "apply_pending",
    "available_migrations",
    "check_migrations",
    "default_directory",
    "migration_history",
    "migration_state",
    "open_database",
    "rollback",
]
