"""What an operator asks of a database: its status, a health check, a backup.

Each works on the database `init_db` opened. The command line prints what they
return; they are plain functions so that a service can call them too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import peewee as pw

from dorkstore.backends import backend_of, current_database
from dorkstore.migrate.runner import applied_migrations, available_migrations
from dorkstore.models import MODELS
from dorkstore.sqlite_files import new_backup_path
from dorkstore.statements import StatementFamily
from dorkstore.timestamps import utc_now

__all__ = ["backup", "doctor", "row_counts", "status"]

COUNT_ROWS = StatementFamily(lambda model: model.select(pw.fn.COUNT(pw.SQL("*"))))


def row_counts() -> dict[str, int]:
    """Return each dorkstore table's row count, by table name (tables that exist)."""
    tables = set(current_database().get_tables())
    return {
        model._meta.table_name: int(COUNT_ROWS[model].scalar())
        for model in sorted(MODELS, key=lambda model: model._meta.table_name)
        if model._meta.table_name in tables
    }


def status() -> dict[str, Any]:
    """Return where the database is, what its backend reports, its migrations and row counts."""
    db = current_database()
    backend = backend_of(db)
    applied, available = applied_migrations(db), available_migrations()
    return {
        "path": backend.location(db),
        **backend.describe(db),
        "applied_migrations": applied,
        "pending_migrations": [name for name in available if name not in applied],
        "unknown_migrations": [name for name in applied if name not in available],
        "tables": row_counts(),
    }


def doctor() -> list[tuple[str, list[str]]]:
    """Return (check, problems) for the backend's checks and the migration state."""
    db = current_database()
    findings = list(backend_of(db).health_checks(db))
    applied, available = applied_migrations(db), available_migrations()
    state = [f"pending {name}" for name in available if name not in applied]
    state += [
        f"unknown {name} (written by a newer dorkstore)"
        for name in applied
        if name not in available
    ]
    findings.append(("migrations", state))
    return findings


def backup(dest: Path) -> Path:
    """Copy the database to the new file `dest`, or to a dated new file in the directory `dest`."""
    db = current_database()
    backend = backend_of(db)
    if dest.is_dir():
        location = Path(backend.location(db))
        name = location.name if location.is_file() else "memory.db"
        dest = new_backup_path(dest, f"{name}.backup-", utc_now())
    return backend.backup(db, dest)
