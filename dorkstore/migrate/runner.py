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

Rolling upgrades. With several machines on one database, one is upgraded first
and migrates while the others still run the previous release. A migration file
that sets ``ADDITIVE = True`` at module level (exactly True) declares that the
previous release can run beside it: every statement that release runs still
succeeds and means the same, and what it writes is still right for the new
release (a new table; a nullable column the new code does not need filled; a
non-unique index). Router.read executes the file and returns its functions, so
the runner reads the flag from the globals of its ``migrate`` function.

The previous release does not have the file, so the flag is stored with the
migration: the history's ``additive`` column, nullable, on the one table every
release already reads and that rolling back already cleans. Releases that read
the history by name alone are not disturbed, and rows they insert get NULL:
not additive. A history made before the column existed gets it (``ALTER TABLE
... ADD COLUMN``) the next time migrations are applied, and the flags of the
migrations already applied are written then from their files.

A release that finds migrations it does not ship in the history

- raises SchemaVersionError, changing nothing, if any of them is not additive
  (releases before this one do so for every unknown migration);
- raises SchemaVersionError too if it ships a migration the database lacks:
  migrations are linear, so a newer release has every one an older release
  ships, and a gap means the two histories have diverged;
- otherwise logs a warning on the ``dorkstore`` logger and uses the database
  as it is, applying nothing. It refuses to roll back (SchemaVersionError):
  the unknown migrations may build on what would be undone.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import peewee as pw
from peewee_migrate import Migrator, Router
from playhouse.migrate import SchemaMigrator
from playhouse.migrate import migrate as migrate_schema

from dorkstore import validation as check
from dorkstore.backends import backend_of
from dorkstore.errors import (
    DorkstoreError,
    MigrationError,
    SchemaVersionError,
    ValidationError,
)
from dorkstore.models import MODELS
from dorkstore.timestamps import format_timestamp, parse_timestamp, utc_now

__all__ = [
    "BACKUPS_KEPT",
    "HISTORY_TABLE",
    "LOCK_TIMEOUT_S",
    "AppliedMigration",
    "MigrationHistory",
    "MigrationState",
    "applied_history",
    "applied_migrations",
    "apply_pending",
    "available_migrations",
    "default_directory",
    "migration_history",
    "migration_state",
    "open_database",
    "replay",
    "rollback",
    "router",
]

logger: logging.Logger = logging.getLogger("dorkstore")

HISTORY_TABLE = "migratehistory"
#: How long `open_database` waits for another process's migration to finish.
LOCK_TIMEOUT_S = 60.0
#: How many pre-migration backups are kept next to the database.
BACKUPS_KEPT = 3

MigrationFunction = Callable[..., Any]


class MigrationHistory(pw.Model):
    """One applied migration. Not bound: the runner works on the database it is given."""

    name: pw.CharField[str] = pw.CharField(unique=True)
    migrated_at: pw.TextField[str] = pw.TextField()
    # Nullable: releases before the column insert rows without it (NULL: not additive).
    additive: pw.BooleanField[bool | None] = pw.BooleanField(null=True)

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


class AppliedMigration(NamedTuple):
    """One migration recorded in a database's history."""

    name: str
    #: When it was applied (canonical UTC text), or None when the history lacks it.
    migrated_at: str | None
    #: Whether the migration declared itself additive (see the module docstring).
    additive: bool


class MigrationState(NamedTuple):
    """A database's migrations against those this code ships."""

    #: Recorded in the database, oldest first.
    applied: list[str]
    #: Shipped here, not applied there.
    pending: list[str]
    #: Applied there, not shipped here: a newer dorkstore wrote them.
    unknown: list[str]


def migration_state(db: pw.Database) -> MigrationState:
    """Return the applied migrations, those this code ships but `db` lacks, and the reverse.

    Raises MigrationError as `applied_migrations` does.
    """
    applied, available = applied_migrations(db), available_migrations()
    return MigrationState(
        applied,
        [name for name in available if name not in applied],
        [name for name in applied if name not in available],
    )


def applied_migrations(db: pw.Database) -> list[str]:
    """Return the migrations recorded in `db`, oldest first ([] for a new database).

    Raises MigrationError when the history is not one dorkstore wrote: its
    table lacks the ``id`` or ``name`` column, or holds a name that is not text.
    """
    return [entry.name for entry in migration_history(db)]


def applied_history(db: pw.Database) -> list[tuple[str, bool]]:
    """Return (name, additive) for each migration recorded in `db`, oldest first.

    A migration is additive only when its row says so (an older history has
    no flags: none is). Raises MigrationError as `applied_migrations` does.
    """
    return [(entry.name, entry.additive) for entry in migration_history(db)]


def migration_history(db: pw.Database) -> list[AppliedMigration]:
    """Return each migration recorded in `db` with when it was applied, oldest first.

    Raises MigrationError as `applied_migrations` does.
    """
    if HISTORY_TABLE not in db.get_tables():
        return []
    columns = {column.name for column in db.get_columns(HISTORY_TABLE)}
    missing = {"id", "name"} - columns
    if missing:
        location = backend_of(db).location(db)
        raise MigrationError(
            f"{location}: table {HISTORY_TABLE} has no {' or '.join(sorted(missing))} "
            "column; it is not a dorkstore migration history"
        )
    # Qualified: SQLite reads an unknown double-quoted "name" alone as the string 'name'.
    table = f'"{HISTORY_TABLE}"'
    optional = [f'{table}."{name}"' if name in columns else "NULL" for name in _OPTIONAL_HISTORY]
    sql = f'SELECT {table}."name", {", ".join(optional)} FROM {table} ORDER BY {table}."id"'
    rows = db.execute_sql(sql).fetchall()
    for name, *_ in rows:
        if not isinstance(name, str):
            location = backend_of(db).location(db)
            raise MigrationError(
                f"{location}: table {HISTORY_TABLE} holds a migration name that is not "
                f"text ({name!r}); the migration history is damaged"
            )
    # additive: 1 on SQLite, True on PostgreSQL; NULL or anything else is not additive.
    return [
        AppliedMigration(name, _when(migrated_at), additive == 1)
        for name, migrated_at, additive in rows
    ]


#: History columns a foreign or older history may lack.
_OPTIONAL_HISTORY = ("migrated_at", "additive")


def _when(migrated_at: object) -> str | None:
    """Return a history row's time as canonical text (peewee-migrate itself stores datetimes)."""
    if migrated_at is None:
        return None
    try:
        return parse_timestamp(migrated_at, "migrated_at")
    except DorkstoreError:
        return str(migrated_at)  # shown as stored: it is only reported


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
    the history names a migration this code does not ship that is not
    additive, MigrationError when one fails, leaves a foreign key dangling, or
    would build over tables that some other program made. Unknown migrations
    that are all additive are logged as a warning, and nothing is applied.
    """
    backend = backend_of(db)
    files = router(db, directory)
    available = files.todo
    history = applied_history(db)
    if not _pending(history, available, warn_about=db):
        return []
    if history:
        backend.backup_before_migrating(db, history[-1][0], BACKUPS_KEPT)
    with backend.schema_change(db, "migrate"):
        history = applied_history(db)  # again, now that the write lock is held
        pending = _pending(history, available)
        if not pending:
            return []
        applied = [name for name, _ in history]
        if not applied:
            _refuse_foreign_tables(db)
        migrator = replay(db, files, applied)
        _prepare_history(db, files, applied)
        for name in pending:
            logger.info("applying migration %s", name)
            forward = files.read(name)[0]
            _run(forward, migrator, db, name)
            stamp = format_timestamp(utc_now())
            db.execute(
                MigrationHistory.insert(name=name, migrated_at=stamp, additive=_additive(forward))
            )
    return pending


def rollback(
    db: pw.Database,
    *,
    to: str | None = None,
    count: int | None = None,
    directory: Path | None = None,
    confirm: Callable[[list[str]], None] | None = None,
) -> list[str]:
    """Roll back migrations, newest first; return the names rolled back.

    `to`: every migration applied after it. `count`: the newest `count`.
    Neither: all of them. Takes the migration lock and a backup first, as
    migrating does, and decides what to undo under that lock: `confirm`, if
    given, is called there with those names and may raise to change nothing.
    Raises MigrationError when `to` is not applied, ValidationError when both
    `to` and `count` are given, and SchemaVersionError when the history names
    a migration this code does not ship, additive or not (the unknown ones may
    build on what would be undone).
    """
    if to is not None and count is not None:
        raise ValidationError("give to or count, not both")
    if count is not None:
        count = check.integer(count, "count", minimum=0)
    backend = backend_of(db)
    files = router(db, directory)
    with backend.migration_lock(db, LOCK_TIMEOUT_S):
        applied = applied_migrations(db)
        unknown = sorted(set(applied) - set(files.todo))
        if unknown:
            raise SchemaVersionError(
                f"cannot roll back: the database was migrated by a newer dorkstore "
                f"({', '.join(unknown)} is not in this version); upgrade dorkstore first"
            )
        if to is not None and to not in applied:
            raise MigrationError(f"cannot roll back to {to}: it is not applied")
        if to is not None:
            keep = applied.index(to) + 1
        elif count is not None:
            keep = max(0, len(applied) - count)
        else:
            keep = 0
        undo = applied[keep:][::-1]
        if not undo:
            return []
        if confirm is not None:
            confirm(undo)
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


def _pending(
    history: Sequence[tuple[str, bool]],
    available: Sequence[str],
    *,
    warn_about: pw.Database | None = None,
) -> list[str]:
    """Return the migrations in `available` that `history` lacks.

    Raises SchemaVersionError when the history names a migration `available`
    lacks that is not additive, or when it names only additive ones but lacks
    one of `available` (diverged histories). Unknown additive migrations
    otherwise mean nothing is pending; with `warn_about`, a warning names them
    and that database.
    """
    known = set(available)
    unknown = [(name, additive) for name, additive in history if name not in known]
    done = {name for name, _ in history}
    pending = [name for name in available if name not in done]
    if not unknown:
        return pending
    names = ", ".join(name for name, _ in unknown)
    refused = [name for name, additive in unknown if not additive]
    if refused:
        raise SchemaVersionError(
            f"the database was migrated by a newer dorkstore ({', '.join(refused)} "
            "is not in this version, and not additive); upgrade dorkstore to open it"
        )
    if pending:
        raise SchemaVersionError(
            f"the database was migrated by another dorkstore: it has {names}, which this "
            f"version does not ship, but lacks {', '.join(pending)}, which it does; "
            "open it with the release that migrated it"
        )
    if warn_about is not None:
        logger.warning(
            "%s was migrated by a newer dorkstore (%s not in this version, all additive): "
            "using it as it is; upgrade dorkstore to use what they add",
            backend_of(warn_about).location(warn_about),
            names,
        )
    return []


def _additive(forward: MigrationFunction) -> bool:
    """Return True when the file of migration function `forward` sets ``ADDITIVE = True``."""
    # Router.read execs the file and returns its functions; their globals are its module's.
    return getattr(forward, "__globals__", {}).get("ADDITIVE") is True


def _prepare_history(db: pw.Database, files: Router, applied: Sequence[str]) -> None:
    """Create the history table, or give an older one the ``additive`` column; set the flags.

    The flags of `applied` are (re)written from their files, so that migrations
    applied before the column existed carry them for releases that lack the files.
    """
    if HISTORY_TABLE not in db.get_tables():
        pw.SchemaManager(MigrationHistory, database=db).create_all()
        return
    if "additive" not in {column.name for column in db.get_columns(HISTORY_TABLE)}:
        column = SchemaMigrator.from_database(db).add_column(
            HISTORY_TABLE, "additive", MigrationHistory.additive
        )
        migrate_schema(column)
    flags = {name: _additive(files.read(name)[0]) for name in applied}
    for value in (True, False):
        names = [name for name, additive in flags.items() if additive is value]
        if names:
            stale = MigrationHistory.additive.is_null() | (MigrationHistory.additive != value)
            update = MigrationHistory.update(additive=value)
            db.execute(update.where(MigrationHistory.name.in_(names) & stale))


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
