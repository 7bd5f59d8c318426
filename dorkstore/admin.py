"""What an operator asks of a database: its status, a health check, a backup.

Each works on the database `init_db` opened. The command line prints what they
return; they are plain functions so that a service can call them too.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import peewee as pw

from dorkstore.backends import Backend, backend_of, current, current_database
from dorkstore.backends.postgres import POSTGRES
from dorkstore.errors import DorkstoreError
from dorkstore.migrate.runner import migration_state
from dorkstore.models import MODELS, MeshAgent, RelayMessage, RelayTrace
from dorkstore.repositories.traces import WRONG_LATENCIES
from dorkstore.sqlite_files import new_backup_path
from dorkstore.statements import StatementFamily, slot
from dorkstore.timestamps import utc_now

__all__ = ["JSON_COLUMNS", "backup", "doctor", "row_counts", "status"]

#: Every JSON column: (model, column, whether it must be a JSON array of strings).
JSON_COLUMNS: tuple[tuple[type[pw.Model], str, bool], ...] = (
    (RelayMessage, "payload", False),
    (RelayMessage, "metadata", False),
    (RelayTrace, "metadata", False),
    (MeshAgent, "capabilities_json", True),
)
#: Rows a check names, at most; beyond that it says how many more there are.
SHOWN = 10

COUNT_ROWS = StatementFamily(lambda model: model.select(pw.fn.COUNT(pw.SQL("*"))))


def _bad_json(shape: tuple[type[pw.Model], str, bool]) -> pw.Node:
    model, column, text_array = shape
    key = model._meta.primary_key
    return (
        model.select(key, pw.fn.COUNT(pw.SQL("*")).over().alias("found"))
        .where(current().json_invalid(model._meta.columns[column], text_array=text_array))
        .order_by(key)
        .limit(slot("shown"))
    )


#: The rows of one JSON column whose text is not JSON (of the right shape), the
#: first "shown" by id, each with how many there are in all.
BAD_JSON = StatementFamily(_bad_json)


def row_counts() -> dict[str, int]:
    """Return each dorkstore table's row count, by table name (tables that exist)."""
    tables = set(current_database().get_tables())
    return {
        model._meta.table_name: int(COUNT_ROWS[model].scalar())
        for model in sorted(MODELS, key=lambda model: model._meta.table_name)
        if model._meta.table_name in tables
    }


def status() -> dict[str, Any]:
    """Return where the database is, its backend, what that reports, migrations and row counts.

    ``path`` is a file, ``":memory:"`` or a URL without its password;
    ``backend`` is ``"sqlite"`` or ``"postgresql"``.
    """
    db = current_database()
    backend = backend_of(db)
    applied, pending, unknown = migration_state(db)
    return {
        "path": backend.location(db),
        "backend": backend.name,
        **backend.describe(db),
        "applied_migrations": applied,
        "pending_migrations": pending,
        "unknown_migrations": unknown,
        "tables": row_counts(),
    }


def doctor() -> list[tuple[str, list[str]]]:
    """Return (check, problems) for the backend's checks, the stored data and the migrations.

    ``json`` names each row ("<table> <id> <column>") whose JSON column holds
    text that is not strict JSON (capabilities: not a JSON array of strings);
    ``latency`` each span whose stored latency_ms is not delivered_at - sent_at.
    """
    db = current_database()
    findings = list(backend_of(db).health_checks(db))
    findings.append(("json", _findings(_bad_json_rows)))
    findings.append(("latency", _findings(_wrong_latency_rows)))
    _, pending, unknown = migration_state(db)
    state = [f"pending {name}" for name in pending]
    state += [f"unknown {name} (written by a newer dorkstore)" for name in unknown]
    findings.append(("migrations", state))
    return findings


def _findings(check: Callable[[], tuple[list[str], int]]) -> list[str]:
    """Return a check's first rows, then how many more it found; a check that fails says why."""
    try:
        named, found = check()
    except (DorkstoreError, pw.PeeweeException) as exc:
        return [f"cannot run: {exc}"]
    shown = named[:SHOWN]
    return shown + ([f"{found - len(shown)} more"] if found > len(shown) else [])


def _bad_json_rows() -> tuple[list[str], int]:
    named, found = [], 0
    for model, column, text_array in JSON_COLUMNS:
        rows = BAD_JSON[(model, column, text_array)].all(shown=SHOWN)
        named += [f"{model._meta.table_name} {row['id']} {column}" for row in rows]
        found += rows[0]["found"] if rows else 0
    return named, found


def _wrong_latency_rows() -> tuple[list[str], int]:
    rows = WRONG_LATENCIES.all(shown=SHOWN)
    return [f"relay_traces {row['id']} latency_ms" for row in rows], rows[0]["found"] if rows else 0


def backup(dest: Path) -> Path:
    """Copy the database to the new file `dest`, or to a dated new file in the directory `dest`.

    The dated file is named after the database file (``dork.db.backup-<UTC>``),
    or after a PostgreSQL database (``<dbname>.pg_dump.backup-<UTC>``).
    """
    db = current_database()
    backend = backend_of(db)
    if dest.is_dir():
        dest = new_backup_path(dest, f"{_backup_name(db, backend)}.backup-", utc_now())
    return backend.backup(db, dest)


def _backup_name(db: pw.Database, backend: Backend) -> str:
    if backend is POSTGRES:
        return f"{db.database}.pg_dump"
    location = Path(backend.location(db))
    return location.name if location.is_file() else "memory.db"
