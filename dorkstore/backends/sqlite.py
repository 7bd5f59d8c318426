"""SQLite through APSW: the embedded default, and the only backend today.

APSW bundles a current SQLite; Python's own ``sqlite3`` links the system
library, which on Debian 12 carries the WAL-reset bug (see the README).
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import apsw
import filelock
import peewee as pw
from playhouse.apsw_ext import APSWDatabase

from dorkstore import sqlite_files
from dorkstore.backends.base import (
    DEFAULT_CACHE_MB,
    Backend,
    Durability,
    ErrorKind,
    driver_error,
)
from dorkstore.errors import DatabaseBusyError, DatabaseError, MigrationError
from dorkstore.models.base import database
from dorkstore.timestamps import utc_now

__all__ = [
    "BUSY_TIMEOUT_MS",
    "CACHE_MB",
    "MEMORY",
    "MIN_SQLITE_VERSION",
    "PRAGMAS",
    "SQLITE",
    "WAL_AUTOCHECKPOINT_PAGES",
    "SqliteBackend",
    "check_sqlite_version",
    "describe_schema",
    "scratch_database",
]

#: Versions 3.7.0 to 3.51.2 carry the WAL-reset bug: two connections writing or
#: checkpointing one WAL database at the same moment can corrupt it.
MIN_SQLITE_VERSION = (3, 51, 3)
BUSY_TIMEOUT_MS = sqlite_files.BUSY_TIMEOUT_MS
#: SQLite's page cache per connection, in MiB, unless `init_db(cache_mb=...)` says otherwise.
#: SQLite's own default, 2 MiB, made a page of 50 at 1,000,000 rows 1.5x slower and a
#: bulk insert 1.3x slower than 16 (ARCHITECTURE.md); 64 gained nothing more.
CACHE_MB = DEFAULT_CACHE_MB
#: Pages of write-ahead log after which a commit copies them into the file. At
#: SQLite's 1,000, a commit into a 10-index table triggers a checkpoint about every
#: 80 single-row commits, each rewriting pages the next ones dirty again: 10,000
#: made insert_message 1.5x faster at 1,000,000 rows, for a -wal file of up to 40 MB.
WAL_AUTOCHECKPOINT_PAGES = 10_000
#: Applied in this order on every new connection, in every thread. busy_timeout
#: comes first so that the journal_mode switch waits for other connections.
PRAGMAS = (
    ("busy_timeout", BUSY_TIMEOUT_MS),
    ("journal_mode", "wal"),
    ("synchronous", "normal"),
    ("foreign_keys", 1),
    ("cache_size", -CACHE_MB * 1024),  # negative: KiB, whatever the page size
    ("wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES),
)
MEMORY = ":memory:"

_MS_PER_DAY = "86400000.0"
_MEMORY_URI = "file:/dorkstore-memory-"
_UNIQUE = {apsw.SQLITE_CONSTRAINT_UNIQUE, apsw.SQLITE_CONSTRAINT_PRIMARYKEY}
_BUSY = {apsw.SQLITE_BUSY, apsw.SQLITE_LOCKED}


def check_sqlite_version(version: str) -> None:
    """Refuse a SQLite library that carries the WAL-reset bug.

    Raises DatabaseError when `version` (``"3.51.2"``) is older than 3.51.3.
    """
    parts = tuple(int(part) for part in version.split(".")[:3])
    if parts < MIN_SQLITE_VERSION:
        wanted = ".".join(map(str, MIN_SQLITE_VERSION))
        raise DatabaseError(
            f"SQLite {version} can corrupt a WAL database written by several connections "
            f"(the WAL-reset bug); dorkstore needs SQLite {wanted} or newer: upgrade apsw"
        )


class _MemoryDatabase(APSWDatabase):  # type: ignore[misc]  # playhouse is untyped
    """An in-memory database every thread shares, kept alive by one extra connection."""

    keeper: apsw.Connection | None = None


class SqliteBackend(Backend):
    """SQLite files (WAL mode) and shared in-memory databases, through APSW."""

    name = "sqlite"

    # --- opening ------------------------------------------------------------------

    def owns(self, db: pw.Database) -> bool:
        """Return True for an APSW (or any Peewee SQLite) database."""
        return isinstance(db, pw.SqliteDatabase)

    def open(
        self, target: str, *, durability: Durability = "normal", cache_mb: int = CACHE_MB
    ) -> pw.Database:
        """Return a database for the file `target` (created 0600) or ``":memory:"``.

        ``":memory:"`` is a new, empty database shared by every thread: plain
        ":memory:" gives each connection its own, and one connection shared by
        all threads mixes their transactions. SQLite's memdb VFS gives one
        database per name, with real locking between connections.
        """
        check_sqlite_version(apsw.sqlitelibversion())
        timeout = BUSY_TIMEOUT_MS / 1000
        # durability names SQLite's own synchronous levels: "normal" or "full".
        chosen = {
            "busy_timeout": BUSY_TIMEOUT_MS,
            "synchronous": durability,
            "cache_size": -cache_mb * 1024,
        }
        pragmas = tuple((name, chosen.get(name, value)) for name, value in PRAGMAS)
        if target == MEMORY:
            uri = f"{_MEMORY_URI}{uuid.uuid4().hex}?vfs=memdb"
            flags = apsw.SQLITE_OPEN_URI | apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE
            memory = _MemoryDatabase(uri, pragmas=pragmas, timeout=timeout, flags=flags)
            memory.keeper = apsw.Connection(uri, flags=flags)
            return memory
        path = Path(target)
        sqlite_files.create_private_file(path)
        db: pw.Database = APSWDatabase(str(path), pragmas=pragmas, timeout=timeout)
        return db

    def connect(self, db: pw.Database) -> None:
        """Connect this thread, applying the pragmas; raise DatabaseError if it fails."""
        try:
            db.connect(reuse_if_open=True)
        except pw.DatabaseError as exc:
            raise DatabaseError(f"cannot open {db.database}: {exc}") from exc

    def release(self, db: pw.Database) -> None:
        """Close an in-memory database's keeper, which frees the database."""
        if isinstance(db, _MemoryDatabase) and db.keeper is not None:
            db.keeper.close()
            db.keeper = None

    def location(self, db: pw.Database) -> str:
        """Return the file's path, or ``":memory:"``."""
        return MEMORY if is_memory(db) else str(db.database)

    # --- errors and locks ---------------------------------------------------------

    def classify(self, exc: BaseException) -> ErrorKind | None:
        """Classify by SQLite's (extended) result code, never by the message's words."""
        error = driver_error(exc, apsw.Error)
        if error is None:
            return None
        code = int(getattr(error, "extendedresult", None) or getattr(error, "result", None) or 0)
        if code in _UNIQUE:
            return "unique"
        if code == apsw.SQLITE_CONSTRAINT_FOREIGNKEY:
            return "foreign_key"
        if code & 0xFF == apsw.SQLITE_CONSTRAINT:
            return "constraint"
        if code & 0xFF in _BUSY:
            return "busy"
        return "database"

    def recover(self, db: pw.Database) -> None:
        """Nothing: a SQLite connection is a file handle, never lost like a socket."""

    def write_transaction(self, db: pw.Database, key: str | None = None) -> Any:
        """Return a ``BEGIN IMMEDIATE`` transaction: it takes the write lock at once.

        A deferred SQLite transaction that reads and then writes fails at once
        with "database is locked" when another connection wrote in between,
        whatever busy_timeout says; an immediate one waits for the lock
        instead. SQLite locks the whole file, so `key` is not needed. Nested in
        another transaction it is a savepoint, and the outer one decides the lock.
        """
        return db.atomic("IMMEDIATE")

    # --- SQL only SQLite understands ----------------------------------------------

    def latency_ms(self, later: pw.Node, earlier: pw.Node) -> pw.Node:
        """Return ``later - earlier`` in whole milliseconds through julianday()."""
        # julianday() keeps about 20 microseconds of precision at today's dates.
        days = pw.fn.julianday(later) - pw.fn.julianday(earlier)
        return pw.fn.ROUND(days * pw.SQL(_MS_PER_DAY))

    def json_array_contains(self, column: pw.Node, value: pw.Node) -> pw.Node:
        """Return ``EXISTS (SELECT 1 FROM json_each(column) WHERE value = ...)`` for arrays.

        json_each() raises on text that is not JSON, and accepts JSON5: only
        strict JSON arrays are searched (CASE tests its conditions in order).
        """
        return _sql(
            "CASE WHEN ", _not_json(column), " OR json_type(", column, ") <> 'array' THEN 0 "
            "ELSE EXISTS (SELECT 1 FROM json_each(", column, ") AS element "
            "WHERE element.type = 'text' AND element.value = ", value, ") END"
        )  # fmt: skip

    def json_invalid(self, column: pw.Node, *, text_array: bool = False) -> pw.Node:
        """Return a condition true when `column` is not JSON text that json_valid() accepts.

        json_valid(X) accepts RFC 8259 alone (not JSON5, NaN or Infinity), as
        Python's decoder does with NaN and Infinity refused. A BLOB is not text.
        """
        if not text_array:
            return _sql("CASE WHEN ", column, " IS NULL THEN 0 ELSE ", _not_json(column), " END")
        return _sql(
            "CASE WHEN ", _not_json(column), " OR json_type(", column, ") <> 'array' THEN 1 "
            "ELSE EXISTS (SELECT 1 FROM json_each(", column, ") AS element "
            "WHERE element.type <> 'text') END"
        )  # fmt: skip

    def delete_unlocked(self, model: type[pw.Model], condition: pw.Node) -> pw.Node:
        """Return a plain DELETE: SQLite's write lock is the whole file, so nothing is held."""
        return model.delete().where(condition)

    def is_wal_mode(self, db: pw.Database) -> bool:
        """Return True when the journal mode is ``wal``."""
        (mode,) = db.execute_sql("PRAGMA journal_mode").fetchone()
        return str(mode).lower() == "wal"

    def query_plan(self, db: pw.Database, sql: str, params: tuple[Any, ...]) -> list[str]:
        """Return ``EXPLAIN QUERY PLAN``'s detail column, one line per step."""
        rows = db.execute_sql(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
        return [str(row[-1]) for row in rows]

    # --- migrations ---------------------------------------------------------------

    @contextmanager
    def migration_lock(self, db: pw.Database, timeout: float) -> Iterator[None]:
        """Hold the exclusive lock on ``<file>.lock`` (nothing for an in-memory database).

        The lock is a separate file: locking the database file itself would
        fight SQLite's own locks. Raises MigrationError when another process
        holds it for longer than `timeout` seconds.
        """
        if is_memory(db):
            yield
            return
        path = Path(db.database)
        lock = filelock.FileLock(path.with_name(path.name + ".lock"), mode=0o600)
        try:
            lock.acquire(timeout=timeout)
        except filelock.Timeout as exc:
            raise MigrationError(
                f"another process has held {lock.lock_file} for {timeout:.0f} s; "
                "is a migration stuck?"
            ) from exc
        except OSError as exc:
            raise DatabaseError(
                f"cannot create lock file {lock.lock_file}: {exc.strerror}"
            ) from exc
        try:
            yield
        finally:
            lock.release()

    def history_before_connect(self, db: pw.Database, table: str) -> list[tuple[str, bool]] | None:
        """Read a file's history read-only, before the journal-mode switch writes anything."""
        if is_memory(db):
            return None
        path = Path(db.database)
        if not path.exists() or path.stat().st_size == 0:
            return []  # a new database
        sqlite_files.refuse_truncated(path)
        try:
            connection = sqlite_files.open_read_only(path)
        except (OSError, apsw.Error) as exc:
            raise DatabaseError(f"cannot open {path}: {exc}") from exc
        try:
            if table not in sqlite_files.read_table_names(connection):
                return []
            return _history_rows(connection, table, path)
        except (apsw.NotADBError, apsw.CorruptError) as exc:
            raise DatabaseError(f"{path} is not a SQLite database ({exc})") from exc
        except apsw.Error as exc:
            raise DatabaseError(f"cannot read {path}: {exc}") from exc
        finally:
            connection.close()

    @contextmanager
    def schema_change(self, db: pw.Database, action: str) -> Iterator[None]:
        """One IMMEDIATE transaction with foreign-key enforcement off, checked before commit.

        SQLite ignores ``PRAGMA foreign_keys`` inside a transaction, and a
        migration that rebuilds a parent table with enforcement on cascades
        deletes into its children: so it is turned off before the transaction
        begins, and the keys are checked before it commits.
        """
        db = _sqlite(db)
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
            if self.classify(exc) == "busy":
                raise DatabaseBusyError(
                    f"cannot {action}: {exc}: another connection held the write lock too "
                    "long; nothing was changed"
                ) from exc
            raise MigrationError(f"cannot {action}: {exc}; nothing was changed") from exc
        finally:
            db.pragma("foreign_keys", 1)

    def backup_before_migrating(self, db: pw.Database, last_applied: str, keep: int) -> None:
        """Back up a file next to itself; keep the `keep` newest such backups."""
        if is_memory(db):
            return
        path = Path(db.database)
        prefix = f"{path.name}.bak-{last_applied}-"
        self.backup(db, sqlite_files.new_backup_path(path.parent, prefix, utc_now()))
        # Only names this makes: never a file someone else called dork.db.bak-*.
        ours = re.compile(re.escape(path.name) + r"\.bak-\d{3}_[^/]+-\d{8}T\d{6}Z(-\d+)?")
        backups = sorted(
            (p for p in path.parent.iterdir() if ours.fullmatch(p.name)),
            key=lambda p: (p.stat().st_mtime_ns, p.name),
        )
        for old in backups[:-keep]:
            old.unlink(missing_ok=True)

    # --- operators ----------------------------------------------------------------

    def backup(self, db: pw.Database, dest: Path) -> Path:
        """Copy `db` to the new file `dest` (mode 0600) through SQLite's backup API.

        The copy is one snapshot: other connections may keep writing while it
        is taken. It is written under a temporary name and linked to `dest`
        when complete, so `dest` never holds a partial copy and is never
        overwritten. Temporary copies that killed processes left in its
        directory are removed first. Raises DatabaseError when `dest` exists or
        cannot be written, ValidationError when SQLite cannot spell its name.
        """
        sqlite_files.check_file_name(dest)
        if dest.exists():
            raise DatabaseError(f"cannot create backup {dest}: it already exists")
        sqlite_files.remove_stale_partials(dest.parent)
        partial = sqlite_files.partial_path(dest)
        try:
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            raise DatabaseError(f"cannot create backup {dest}: {exc.strerror}") from exc
        os.close(fd)
        try:
            target = apsw.Connection(str(partial))
            try:
                # step(-1) copies every page under one read transaction: a snapshot
                # that a concurrent writer cannot tear (in WAL mode it is not blocked).
                with target.backup("main", db.connection(), "main") as backup:
                    backup.step(-1)
            finally:
                target.close()
            os.link(partial, dest)  # fails, rather than overwrites, if dest appeared meanwhile
        except (apsw.Error, pw.DatabaseError, OSError) as exc:
            raise DatabaseError(f"backup to {dest} failed: {exc}") from exc
        finally:
            partial.unlink(missing_ok=True)
        return dest

    def shell(self, db: pw.Database, *, write: bool, commands: Sequence[str]) -> int:
        """Run APSW's shell on the file, on the same SQLite as the library, with its settings.

        Read-only unless `write` (``mode=ro``: no statement can change the file;
        the shell's own ``.open`` could still open it again read-write).
        Raises DatabaseError naming a statement or dot-command that fails.
        """
        if is_memory(db):
            raise DatabaseError("an in-memory database has no file to open a shell on")
        from apsw.shell import Shell  # noqa: PLC0415 - only this command needs the shell

        mode = "rw" if write else "ro"
        try:
            connection = apsw.Connection(
                f"{Path(db.database).absolute().as_uri()}?mode={mode}",
                flags=apsw.SQLITE_OPEN_URI
                | (apsw.SQLITE_OPEN_READWRITE if write else apsw.SQLITE_OPEN_READONLY),
            )
            connection.setbusytimeout(BUSY_TIMEOUT_MS)
            connection.execute("PRAGMA foreign_keys=ON")
        except apsw.Error as exc:
            raise DatabaseError(f"cannot open {db.database}: {exc}") from exc
        try:
            shell = Shell(db=connection)
            for command in commands:
                shell.process_complete_line(command)
            if not commands:
                shell.cmdloop()
        except (apsw.Error, Shell.Error) as exc:  # Shell.Error: a dot-command it cannot run
            raise DatabaseError(f"{type(exc).__name__}: {exc}") from exc
        finally:
            connection.close()
        return 0

    def describe(self, db: pw.Database) -> dict[str, Any]:
        """Return the file's size (with its -wal), SQLite's version and the journal mode."""
        size = 0
        if not is_memory(db):
            path = Path(db.database)
            wal = path.with_name(path.name + "-wal")
            size = path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
        return {
            "size_bytes": size,
            "sqlite_version": apsw.sqlitelibversion(),
            "journal_mode": str(_sqlite(db).pragma("journal_mode")),
        }

    def health_checks(self, db: pw.Database) -> Iterator[tuple[str, list[str]]]:
        """Yield SQLite's ``integrity_check`` and ``foreign_key_check`` findings."""
        integrity = _pragma_rows(db, "integrity_check")
        yield (
            "integrity_check",
            [] if integrity == [("ok",)] else [str(row[0]) for row in integrity[:10]],
        )
        orphans = _pragma_rows(db, "foreign_key_check")
        yield (
            "foreign_key_check",
            [
                f"{row[0]} rowid {row[1]} has no {row[2]} row" if len(row) == 4 else str(row[0])
                for row in orphans[:10]
            ],
        )


def _history_rows(connection: apsw.Connection, table: str, path: Path) -> list[tuple[str, bool]]:
    """Return (name, additive) per row of `table`; MigrationError if dorkstore did not write it."""
    columns = {row[1] for row in connection.execute(f'PRAGMA table_info("{table}")')}
    missing = {"id", "name"} - columns
    if missing:
        raise MigrationError(
            f"{path}: table {table} has no {' or '.join(sorted(missing))} column; "
            "it is not a dorkstore migration history"
        )
    # Qualified: SQLite reads an unknown double-quoted "name" alone as the string 'name'.
    flag = f'"{table}"."additive"' if "additive" in columns else "NULL"
    rows = list(
        connection.execute(
            f'SELECT "{table}"."name", {flag} FROM "{table}" ORDER BY "{table}"."id"'
        )
    )
    for name, _ in rows:
        if not isinstance(name, str):
            raise MigrationError(
                f"{path}: table {table} holds a migration name that is not text "
                f"({name!r}); the migration history is damaged"
            )
    # Only 1 is additive: NULL (a row written before the column existed) is not.
    return [(name, additive == 1) for name, additive in rows]


def _sql(*parts: str | pw.Node) -> pw.Node:
    """Return SQL text and nodes (columns, slots) joined as they are."""
    return pw.NodeList([pw.SQL(part) if isinstance(part, str) else part for part in parts], "")


def _not_json(column: pw.Node) -> pw.Node:
    """Return a condition true when `column` is not strict JSON text (NULL included)."""
    return _sql("(typeof(", column, ") <> 'text' OR NOT json_valid(", column, "))")


def _pragma_rows(db: pw.Database, pragma: str) -> list[tuple[Any, ...]]:
    """Run a checking pragma; a check that cannot run returns its error as the finding."""
    try:
        return [tuple(row) for row in db.execute_sql(f"PRAGMA {pragma}").fetchall()]
    except (pw.DatabaseError, apsw.Error) as exc:
        return [(f"cannot run: {exc}",)]


def _sqlite(db: pw.Database) -> pw.SqliteDatabase:
    if not isinstance(db, pw.SqliteDatabase):
        raise DatabaseError(f"{type(db).__name__} is not a SQLite database")
    return db


def is_memory(db: pw.Database) -> bool:
    """Return True for an in-memory database (`init_db(":memory:")` makes one)."""
    name = str(db.database)
    return name in ("", MEMORY) or name.startswith(_MEMORY_URI) or "mode=memory" in name


SQLITE = SqliteBackend()


# --- the drift check's scratch databases --------------------------------------------


def scratch_database() -> pw.Database:
    """Return a private in-memory database with foreign keys on, for replaying migrations."""
    db: pw.Database = APSWDatabase(MEMORY, pragmas=(("foreign_keys", 1),))
    return db


_CHECK = re.compile(r"\bCHECK\s*\(", re.IGNORECASE)


def describe_schema(db: pw.Database, *, skip: str) -> dict[str, list[str]]:
    """Describe each table but `skip` (columns, keys, indexes, checks) as comparable lines."""
    schema: dict[str, list[str]] = {}
    tables = db.execute_sql(
        "SELECT name, sql FROM sqlite_master WHERE type = 'table' "
        "AND name NOT LIKE 'sqlite_%' AND name != ?",
        (skip,),
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


# --- fork safety ----------------------------------------------------------------------

#: Connections a forked child inherited, set aside so that the child never uses
#: them and does not close them itself. (CPython may still close them as the
#: child exits, or clear another thread's; SQLite then sees the parent's locks
#: and leaves its -wal alone.)
_inherited: list[object] = []


def _forget_connections_in_child() -> None:
    """After fork, make the child open its own connections instead of sharing the parent's."""
    # Replaced databases too: close_db() in the child would close their connections.
    for db in (database.obj, *database.replaced_databases()):
        if db is None:
            continue
        state = db._state  # Peewee keeps the per-thread connection here
        if state.conn is not None:
            _inherited.append(state.conn)
            state.reset()
        keeper = getattr(db, "keeper", None)
        if keeper is not None:
            _inherited.append(keeper)


os.register_at_fork(after_in_child=_forget_connections_in_child)
