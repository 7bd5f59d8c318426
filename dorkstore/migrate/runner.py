"""Apply and roll back the peewee-migrate migrations in ``migrations/``.

Files are read and listed by `peewee_migrate.Router`; applying them is done
here rather than by `Router.run`, because the runner must

- change the schema inside the backend's `schema_change` (on SQLite:
  foreign-key enforcement off *before* the transaction begins, since SQLite
  ignores the pragma inside one and rebuilding a parent table with enforcement
  on cascades deletes into its children; then the keys checked before commit);
- apply all pending migrations in one transaction, so a crash or a failing
  migration leaves the schema exactly as it was;
- record history with text timestamps (peewee-migrate's own history model
  binds a ``datetime``, which APSW rejects) and unique names;
- hold the backend's migration lock while it reads the history and migrates,
  so that several processes opening one new database apply each migration once;
- replay applied migrations without mocking Peewee process-wide.

Migration files must only *queue* operations on the migrator (``migrator.sql``,
``migrator.run`` and the schema helpers); a file that executes SQL when its
``migrate`` function is called breaks the replay.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import peewee as pw
from peewee_migrate import Migrator, Router

from dorkstore.backends import backend_of
from dorkstore.errors import DorkstoreError, MigrationError, SchemaVersionError
from dorkstore.models import MODELS
from dorkstore.timestamps import format_timestamp, utc_now

__all__ = [
    "BACKUPS_KEPT",
    "HISTORY_TABLE",
    "LOCK_TIMEOUT_S",
    "MigrationHistory",
    "applied_migrations",
    "apply_pending",
    "available_migrations",
    "default_directory",
    "open_database",
    "replay",
    "rollback",
    "router",
]

logger = logging.getLogger("dorkstore")

HISTORY_TABLE = "migratehistory"
#: How long `open_database` waits for another process's migration to finish.
LOCK_TIMEOUT_S = 60.0
#: How many pre-migration backups are kept next to the database.
BACKUPS_KEPT = 3

MigrationFunction = Callable[..., Any]
# Qualified: SQLite reads an unknown double-quoted "name" alone as the string 'name'.
_HISTORY_SQL = (
    f'SELECT "{HISTORY_TABLE}"."name" FROM "{HISTORY_TABLE}" ORDER BY "{HISTORY_TABLE}"."id"'
)


class MigrationHistory(pw.Model):
    """One applied migration. Not bound: the runner works on the database it is given."""

    name = pw.CharField(unique=True)
    migrated_at = pw.TextField()

    class Meta:
        table_name = HISTORY_TABLE


def default_directory() -> Path:
    """Return the migrations `init_db` applies: the packaged ones, or the checkout's."""
    spec = importlib.util.find_spec("dorkstore.migrations")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    # Running from a source checkout that was not installed.
    return Path(__file__).resolve().parents[2] / "migrations"


def router(db: pw.Database, directory: Path | None = None) -> Router:
    """Return peewee-migrate's router over `directory` (default: `default_directory()`)."""
    return Router(db, migrate_dir=Path(directory) if directory else default_directory())


def available_migrations(directory: Path | None = None) -> list[str]:
    """Return the names of the migration files in `directory`, in order."""
    names: list[str] = router(pw.Database(None), directory).todo
    return names


def applied_migrations(db: pw.Database) -> list[str]:
    """Return the migrations recorded in `db`, oldest first ([] for a new database).

    Raises MigrationError when the history is not one dorkstore wrote: its
    table lacks the ``id`` or ``name`` column, or holds a name that is not text.
    """
    if HISTORY_TABLE not in db.get_tables():
        return []
    try:
        rows = db.execute_sql(_HISTORY_SQL).fetchall()
    except Exception as exc:
        missing = {"id", "name"} - {column.name for column in db.get_columns(HISTORY_TABLE)}
        if missing:
            location = backend_of(db).location(db)
            raise MigrationError(
                f"{location}: table {HISTORY_TABLE} has no {' or '.join(sorted(missing))} "
                "column; it is not a dorkstore migration history"
            ) from exc
        raise
    names = [name for (name,) in rows]
    for name in names:
        if not isinstance(name, str):
            location = backend_of(db).location(db)
            raise MigrationError(
                f"{location}: table {HISTORY_TABLE} holds a migration name that is not "
                f"text ({name!r}); the migration history is damaged"
            )
    return names


def open_database(
    db: pw.Database, *, apply: bool = True, directory: Path | None = None
) -> list[str]:
    """Connect `db` and, with `apply`, migrate it; return what was applied.

    With `apply`, everything happens under the migration lock. Where the
    backend can, the history is read without writing first, so a database
    from a newer dorkstore raises SchemaVersionError before anything (on
    SQLite, the journal-mode switch) writes. Without `apply` (``status``,
    ``doctor``) only the connection is made: no lock is taken, so no lock
    file appears beside a file that may not even be a database.
    """
    backend = backend_of(db)
    if not apply:
        backend.connect(db)
        return []
    with backend.migration_lock(db, LOCK_TIMEOUT_S):
        early = backend.history_before_connect(db, HISTORY_TABLE)
        if early is not None:
            _pending(early, router(db, directory).todo)
        backend.connect(db)
        return apply_pending(db, directory=directory)


def apply_pending(db: pw.Database, *, directory: Path | None = None) -> list[str]:
    """Apply every migration `db` lacks, in one transaction; return their names.

    A database that already has migrations is backed up first. Callers other
    than `open_database` should hold the migration lock; the history is read
    again under the write lock all the same. Raises SchemaVersionError when
    the history names a migration this code does not ship, MigrationError when
    one fails, leaves a foreign key dangling, or would build over tables that
    some other program made.
    """
    backend = backend_of(db)
    files = router(db, directory)
    available = files.todo
    applied = applied_migrations(db)
    if not _pending(applied, available):
        return []
    if applied:
        backend.backup_before_migrating(db, applied[-1], BACKUPS_KEPT)
    with backend.schema_change(db, "migrate"):
        applied = applied_migrations(db)  # again, now that the write lock is held
        pending = _pending(applied, available)
        if not applied:
            _refuse_foreign_tables(db)
        migrator = replay(db, files, applied)
        pw.SchemaManager(MigrationHistory, database=db).create_all(safe=True)
        for name in pending:
            logger.info("applying migration %s", name)
            _run(files.read(name)[0], migrator, db, name)
            history = MigrationHistory.insert(name=name, migrated_at=format_timestamp(utc_now()))
            db.execute(history)
    return pending


def rollback(db: pw.Database, *, to: str | None = None, directory: Path | None = None) -> list[str]:
    """Roll back the migrations applied after `to` (all of them when None), newest first.

    Takes the migration lock and a backup first, as migrating does. Returns
    the names rolled back. Raises MigrationError when `to` is not applied.
    """
    backend = backend_of(db)
    files = router(db, directory)
    with backend.migration_lock(db, LOCK_TIMEOUT_S):
        applied = applied_migrations(db)
        _pending(applied, files.todo)
        if to is not None and to not in applied:
            raise MigrationError(f"cannot roll back to {to}: it is not applied")
        undo = applied[applied.index(to) + 1 if to is not None else 0 :][::-1]
        if not undo:
            return []
        backend.backup_before_migrating(db, applied[-1], BACKUPS_KEPT)
        migrator = replay(db, files, applied)
        with backend.schema_change(db, "roll back"):
            for name in undo:
                logger.info("rolling back migration %s", name)
                _run(files.read(name)[1], migrator, db, name)
                db.execute(MigrationHistory.delete().where(MigrationHistory.name == name))
    return undo


def replay(db: pw.Database, files: Router, names: Sequence[str]) -> Migrator:
    """Rebuild the migrator's model state after `names` without touching the database."""
    migrator = Migrator(db)
    for name in names:
        files.read(name)[0](migrator, db, fake=True)
        migrator.__ops__ = []
    return migrator


def _pending(applied: Sequence[str], available: Sequence[str]) -> list[str]:
    unknown = sorted(set(applied) - set(available))
    if unknown:
        raise SchemaVersionError(
            f"the database was migrated by a newer dorkstore ({', '.join(unknown)} "
            "is not in this version); upgrade dorkstore to open it"
        )
    done = set(applied)
    return [name for name in available if name not in done]


def _refuse_foreign_tables(db: pw.Database) -> None:
    """Refuse to build the schema over tables that some other program made."""
    clashes = sorted({model._meta.table_name for model in MODELS} & set(db.get_tables()))
    if clashes:
        location = backend_of(db).location(db)
        raise MigrationError(
            f"{location} already has tables {', '.join(clashes)} but no dorkstore history; "
            "it is not a dorkstore database (old databases are imported with import-legacy)"
        )


def _run(function: MigrationFunction, migrator: Migrator, db: pw.Database, name: str) -> None:
    try:
        function(migrator, db, fake=False)
        migrator()
    except DorkstoreError:
        raise
    except Exception as exc:
        raise MigrationError(f"migration {name} failed: {exc}") from exc
