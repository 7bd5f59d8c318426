"""Apply, roll back and check the peewee-migrate migrations in ``migrations/``.

Files are read and listed by `peewee_migrate.Router`; applying them is done
here rather than by `Router.run`, because the runner must

- turn foreign-key enforcement off *before* the transaction begins (SQLite
  ignores the pragma inside one, and rebuilding a parent table with
  enforcement on cascades deletes into its children), then check the foreign
  keys itself before committing;
- apply all pending migrations in one transaction, so a crash or a failing
  migration leaves the schema exactly as it was;
- record history with text timestamps (peewee-migrate's own history model
  binds a ``datetime``, which APSW rejects) and unique names;
- hold a lock file while it reads the history and migrates, so that several
  processes opening one new file apply each migration once;
- replay applied migrations without mocking Peewee process-wide.

Migration files must only *queue* operations on the migrator (``migrator.sql``,
``migrator.run`` and the schema helpers); a file that executes SQL when its
``migrate`` function is called breaks the replay.
"""

from __future__ import annotations

import importlib.util
import logging
import re
import textwrap
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import apsw
import filelock
import peewee as pw
from peewee_migrate import Migrator, Router
from peewee_migrate.router import compile_migrations
from playhouse.apsw_ext import APSWDatabase

from dorkstore import db as dbmodule
from dorkstore import dialect
from dorkstore.backup import backup_database, unused_path
from dorkstore.errors import (
    DatabaseBusyError,
    DatabaseError,
    DorkstoreError,
    MigrationError,
    SchemaVersionError,
)
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
    "check_migrations",
    "default_directory",
    "migration_lock",
    "open_database",
    "rollback",
]

logger = logging.getLogger("dorkstore")

HISTORY_TABLE = "migratehistory"
#: How long `open_database` waits for another process's migration to finish.
LOCK_TIMEOUT_S = 60.0
#: How many pre-migration backups are kept next to the database.
BACKUPS_KEPT = 3

MigrationFunction = Callable[..., Any]
_HISTORY_SQL = f'SELECT "name" FROM "{HISTORY_TABLE}" ORDER BY "id"'


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
    return Path(__file__).resolve().parent.parent / "migrations"


def available_migrations(directory: Path | None = None) -> list[str]:
    """Return the names of the migration files in `directory`, in order."""
    names: list[str] = _router(_scratch_database(), directory).todo
    return names


def applied_migrations(db: pw.SqliteDatabase) -> list[str]:
    """Return the migrations recorded in `db`, oldest first ([] for a new database)."""
    if HISTORY_TABLE not in db.get_tables():
        return []
    return [str(name) for (name,) in db.execute_sql(_HISTORY_SQL).fetchall()]


@contextmanager
def migration_lock(db: pw.SqliteDatabase) -> Iterator[None]:
    """Hold the exclusive lock on ``<file>.lock`` (nothing for an in-memory database).

    The lock is a separate file: locking the database file itself would fight
    SQLite's own locks. Raises MigrationError when another process holds it for
    longer than LOCK_TIMEOUT_S.
    """
    if dbmodule.is_memory(db):
        yield
        return
    path = Path(db.database)
    lock = filelock.FileLock(path.with_name(path.name + ".lock"), mode=0o600)
    try:
        lock.acquire(timeout=LOCK_TIMEOUT_S)
    except filelock.Timeout as exc:
        raise MigrationError(
            f"another process has held {lock.lock_file} for {LOCK_TIMEOUT_S:.0f} s; "
            "is a migration stuck?"
        ) from exc
    except OSError as exc:
        raise DatabaseError(f"cannot create lock file {lock.lock_file}: {exc.strerror}") from exc
    try:
        yield
    finally:
        lock.release()


def open_database(
    db: APSWDatabase, *, apply: bool = True, directory: Path | None = None
) -> list[str]:
    """Connect `db` (a file) and, with `apply`, migrate it; return what was applied.

    Everything happens under the migration lock. The history is read read-only
    first, so a database from a newer dorkstore raises SchemaVersionError before
    the journal-mode switch or anything else writes.
    """
    path = Path(db.database)
    with migration_lock(db):
        if apply:
            _pending(_read_history(path), _router(db, directory).todo)
        try:
            db.connect(reuse_if_open=True)
        except pw.DatabaseError as exc:
            raise DatabaseError(f"cannot open {path}: {exc}") from exc
        return apply_pending(db, directory=directory) if apply else []


def apply_pending(db: pw.SqliteDatabase, *, directory: Path | None = None) -> list[str]:
    """Apply every migration `db` lacks, in one transaction; return their names.

    A file database that already has migrations is backed up first. Callers
    other than `open_database` should hold `migration_lock`; the history is
    read again under the write lock all the same. Raises SchemaVersionError when
    the history names a migration this code does not ship, MigrationError when
    one fails, leaves a foreign key dangling, or would build over tables that
    some other program made.
    """
    router = _router(db, directory)
    available = router.todo
    applied = applied_migrations(db)
    if not _pending(applied, available):
        return []
    if applied:
        _backup_before_changing(db, applied[-1])
    with _schema_change(db, "migrate"):
        applied = applied_migrations(db)  # again, now that the write lock is held
        pending = _pending(applied, available)
        if not applied:
            _refuse_foreign_tables(db)
        migrator = _replay(db, router, applied)
        _create_history(db)
        for name in pending:
            logger.info("applying migration %s", name)
            _run(router.read(name)[0], migrator, db, name)
            history = MigrationHistory.insert(name=name, migrated_at=format_timestamp(utc_now()))
            db.execute(history)
    return pending


def rollback(
    db: pw.SqliteDatabase, *, to: str | None = None, directory: Path | None = None
) -> list[str]:
    """Roll back the migrations applied after `to` (all of them when None), newest first.

    Takes the migration lock and, for a file, a backup first, as migrating
    does. Returns the names rolled back. Raises MigrationError when `to` is not
    applied.
    """
    router = _router(db, directory)
    with migration_lock(db):
        applied = applied_migrations(db)
        _pending(applied, router.todo)
        if to is not None and to not in applied:
            raise MigrationError(f"cannot roll back to {to}: it is not applied")
        undo = applied[applied.index(to) + 1 if to is not None else 0 :][::-1]
        if not undo:
            return []
        _backup_before_changing(db, applied[-1])
        migrator = _replay(db, router, applied)
        with _schema_change(db, "roll back"):
            for name in undo:
                logger.info("rolling back migration %s", name)
                _run(router.read(name)[1], migrator, db, name)
                db.execute(MigrationHistory.delete().where(MigrationHistory.name == name))
    return undo


def check_migrations(directory: Path | None = None) -> str | None:
    """Return the migration the models need beyond `directory`'s, or None if none is missing.

    The migrations are applied to an in-memory database and its schema is
    compared, table by table, with the one the models create; peewee-migrate's
    own diff supplies the source when it can express the change. Differences it
    cannot express (SQL defaults, checks, ON DELETE, index names, WITHOUT
    ROWID) are listed for a hand-written migration.
    """
    migrated = _scratch_database()
    router = _router(migrated, directory)
    if not router.migrate_dir.is_dir():
        raise MigrationError(f"migration directory {router.migrate_dir} does not exist")
    with migrated.connection_context():
        apply_pending(migrated, directory=router.migrate_dir)
        source = compile_migrations(_replay(migrated, router, router.todo), list(MODELS))
        expected = _scratch_database()
        with expected.connection_context():
            for model in MODELS:
                pw.SchemaManager(model, database=expected).create_all()
            differences = _schema_differences(_describe(expected), _describe(migrated))
    if not source and not differences:
        return None
    parts = [textwrap.dedent(source).strip()] if source else []
    if differences:
        parts.append(
            "# Write by hand (peewee-migrate cannot generate these); "
            "'-' is the migrated schema, '+' the models':\n"
            + "\n".join(f"# {line}" for line in differences)
        )
    return "\n\n".join(parts) + "\n"


def _router(db: pw.SqliteDatabase, directory: Path | None) -> Router:
    return Router(db, migrate_dir=Path(directory) if directory else default_directory())


def _scratch_database() -> APSWDatabase:
    return APSWDatabase(":memory:", pragmas=(("foreign_keys", 1),))


def _pending(applied: Sequence[str], available: Sequence[str]) -> list[str]:
    unknown = sorted(set(applied) - set(available))
    if unknown:
        raise SchemaVersionError(
            f"the database was migrated by a newer dorkstore ({', '.join(unknown)} "
            "is not in this version); upgrade dorkstore to open it"
        )
    done = set(applied)
    return [name for name in available if name not in done]


def _read_history(path: Path) -> list[str]:
    """Read the applied migrations without writing anything (no WAL switch, no files)."""
    if not path.exists() or path.stat().st_size == 0:
        return []  # a new database
    _refuse_truncated(path)
    try:
        connection = dbmodule.open_read_only(path)
    except (OSError, apsw.Error) as exc:
        raise DatabaseError(f"cannot open {path}: {exc}") from exc
    try:
        tables = connection.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (HISTORY_TABLE,)
        ).fetchall()
        return [name for (name,) in connection.execute(_HISTORY_SQL)] if tables else []
    except (apsw.NotADBError, apsw.CorruptError) as exc:
        raise DatabaseError(f"{path} is not a SQLite database ({exc})") from exc
    except apsw.Error as exc:
        raise DatabaseError(f"cannot read {path}: {exc}") from exc
    finally:
        connection.close()


def _refuse_truncated(path: Path) -> None:
    """Refuse a file shorter than its header says (cut short by a copy or a full disk).

    Only without a -wal or hot -journal file: with one, the missing pages may be
    in the log, or the journal rolls the file back to its full length.
    """
    if any(path.with_name(path.name + suffix).exists() for suffix in ("-wal", "-journal")):
        return
    try:
        with path.open("rb") as file:
            header = file.read(100)
    except OSError as exc:
        raise DatabaseError(f"cannot read {path}: {exc.strerror}") from exc
    if len(header) < 100 or not header.startswith(b"SQLite format 3\x00"):
        return  # not SQLite at all: the read-only open says so
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    # The page count is valid when the version-valid-for number matches the change counter.
    valid = header[92:96] == header[24:28] and pages > 0
    size = path.stat().st_size
    if valid and size < pages * page_size:
        raise DatabaseError(
            f"{path} is truncated: {size} bytes, but its header says {pages} pages of "
            f"{page_size} bytes; restore it from a backup"
        )


def _refuse_foreign_tables(db: pw.SqliteDatabase) -> None:
    """Refuse to build the schema over tables that some other program made."""
    clashes = sorted({model._meta.table_name for model in MODELS} & set(db.get_tables()))
    if clashes:
        raise MigrationError(
            f"{db.database} already has tables {', '.join(clashes)} but no dorkstore history; "
            "it is not a dorkstore database (old databases are imported with import-legacy)"
        )


def _replay(db: pw.SqliteDatabase, router: Router, names: Sequence[str]) -> Migrator:
    """Rebuild the migrator's model state after `names` without touching the database."""
    migrator = Migrator(db)
    for name in names:
        router.read(name)[0](migrator, db, fake=True)
        migrator.__ops__ = []
    return migrator


def _run(function: MigrationFunction, migrator: Migrator, db: pw.SqliteDatabase, name: str) -> None:
    try:
        function(migrator, db, fake=False)
        migrator()
    except DorkstoreError:
        raise
    except Exception as exc:
        raise MigrationError(f"migration {name} failed: {exc}") from exc


@contextmanager
def _schema_change(db: pw.SqliteDatabase, action: str) -> Iterator[None]:
    """One IMMEDIATE transaction with foreign-key enforcement off, checked before commit."""
    if db.in_transaction():
        raise MigrationError(f"cannot {action} inside a transaction")
    db.pragma("foreign_keys", 0)
    try:
        with db.atomic("IMMEDIATE"):
            yield
            violations = db.execute_sql("PRAGMA foreign_key_check").fetchall()
            if violations:
                table, rowid, parent, _ = violations[0]
                raise MigrationError(
                    f"cannot {action}: {len(violations)} row(s) break a foreign key "
                    f"(first: {table} rowid {rowid} -> {parent}); nothing was changed"
                )
    except (pw.PeeweeException, apsw.Error) as exc:
        if dialect.is_busy(exc):
            raise DatabaseBusyError(
                f"cannot {action}: {exc}: another connection held the write lock too long; "
                "nothing was changed"
            ) from exc
        raise MigrationError(f"cannot {action}: {exc}; nothing was changed") from exc
    finally:
        db.pragma("foreign_keys", 1)


def _create_history(db: pw.SqliteDatabase) -> None:
    pw.SchemaManager(MigrationHistory, database=db).create_all(safe=True)


def _backup_before_changing(db: pw.SqliteDatabase, last_applied: str) -> None:
    """Back up a file database next to itself; keep the BACKUPS_KEPT newest such backups."""
    if dbmodule.is_memory(db):
        return
    path = Path(db.database)
    stamp = utc_now().strftime("%Y%m%dT%H%M%SZ")
    dest = backup_database(db, unused_path(path.parent, f"{path.name}.bak-{last_applied}-{stamp}"))
    logger.info("backed up %s to %s before changing its schema", path, dest)
    # Only names this function makes: never a file someone else called dork.db.bak-*.
    ours = re.compile(re.escape(path.name) + r"\.bak-\d{3}_[^/]+-\d{8}T\d{6}Z(-\d+)?")
    backups = sorted(
        (p for p in path.parent.iterdir() if ours.fullmatch(p.name)),
        key=lambda p: (p.stat().st_mtime_ns, p.name),
    )
    for old in backups[:-BACKUPS_KEPT]:
        old.unlink(missing_ok=True)


# --- schema comparison for the drift check -------------------------------------------

_CHECK = re.compile(r"\bCHECK\s*\(", re.IGNORECASE)


def _describe(db: pw.SqliteDatabase) -> dict[str, list[str]]:
    """Describe each table's columns, keys, indexes and checks as comparable lines."""
    schema: dict[str, list[str]] = {}
    tables = db.execute_sql(
        "SELECT name, sql FROM sqlite_master WHERE type = 'table' "
        "AND name NOT LIKE 'sqlite_%' AND name != ?",
        (HISTORY_TABLE,),
    ).fetchall()
    for table, sql in tables:
        lines = [
            f"column {name} {kind} {'NOT NULL' if notnull else 'NULL'} DEFAULT {default} PK {pk}"
            for _, name, kind, notnull, default, pk, _hidden in db.execute_sql(
                f'PRAGMA table_xinfo("{table}")'
            )
        ]
        lines += [
            f"foreign key {row[3]} -> {row[2]}.{row[4]} ON UPDATE {row[5]} ON DELETE {row[6]}"
            for row in db.execute_sql(f'PRAGMA foreign_key_list("{table}")')
        ]
        for _, index, unique, origin, partial in db.execute_sql(f'PRAGMA index_list("{table}")'):
            columns = [row[2] for row in db.execute_sql(f'PRAGMA index_info("{index}")')]
            name = index if origin == "c" else f"<{origin}>"
            kind = "unique index" if unique else "index"
            lines.append(f"{kind} {name} ({', '.join(columns)}){' partial' if partial else ''}")
        lines += [f"check {check}" for check in _checks(sql)]
        if re.search(r"\)\s*WITHOUT\s+ROWID\s*$", sql, re.IGNORECASE):
            lines.append("WITHOUT ROWID")
        schema[table] = sorted(lines)
    return schema


def _checks(sql: str) -> list[str]:
    """Return the CHECK expressions in a CREATE TABLE statement, whitespace-normalised."""
    found = []
    for match in _CHECK.finditer(sql):
        depth, start = 1, match.end()
        end = start
        while depth and end < len(sql):
            depth += {"(": 1, ")": -1}.get(sql[end], 0)
            end += 1
        found.append(" ".join(sql[start : end - 1].split()))
    return found


def _schema_differences(expected: dict[str, list[str]], actual: dict[str, list[str]]) -> list[str]:
    differences = []
    for table in sorted(expected.keys() | actual.keys()):
        want, have = set(expected.get(table, [])), set(actual.get(table, []))
        differences += [f"{table}: - {line}" for line in sorted(have - want)]
        differences += [f"{table}: + {line}" for line in sorted(want - have)]
    return differences
