"""Copy a whole dorkstore database into an empty one, on any backend, and verify it.

`copy_database(source, dest)` moves a database from SQLite to PostgreSQL, back,
or from file to file:

- The source must exist and be migrated by exactly this release (the
  migrations it ships, no more, no fewer). It is only read, inside one read
  transaction, so the copy is one snapshot while other processes keep writing.
- The destination is created or migrated as `init_db` would, and refused
  while any dorkstore table in it holds a row; nothing is written to it then.
- Rows are copied table by table, parents first (`MODELS`' order), each table
  in key order and in batches of `BATCH` rows, all in one transaction that
  holds the destination's write lock: a copy that fails leaves it empty.
- Then both are read again in key order and compared row by row: the same
  keys, and the same values through the models' ``python_value`` where a
  backend stores a value its own way (a boolean is 0/1 on SQLite).

The migration history is not copied: the destination keeps its own, written
when it was migrated.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import peewee as pw

from dorkstore.backends import Backend, Target, backend_of
from dorkstore.backends.postgres import POSTGRES, is_url
from dorkstore.backends.sqlite import MEMORY, SQLITE
from dorkstore.errors import DatabaseError, SchemaVersionError
from dorkstore.migrate.runner import HISTORY_TABLE, migration_state, open_database
from dorkstore.models import MODELS
from dorkstore.sqlite_files import check_file_name, read_only, read_table_names

__all__ = ["BATCH", "CopyReport", "TableCopy", "copy_database"]

#: Rows read, written and compared per statement.
BATCH = 2000
#: Differences a table's report names, at most; it counts the rest.
SHOWN = 10
#: Field types whose values every backend returns as Python already has them
#: (text, integers): compared and written as read, not through python_value.
_PLAIN = (pw.TextField, pw.CharField, pw.IntegerField, pw.BigIntegerField)

Row = tuple[Any, ...]


@dataclass(frozen=True)
class TableCopy:
    """One table of a copy: rows copied, rows found on each side, and how they differ."""

    table: str
    copied: int
    source_rows: int
    dest_rows: int
    #: How many keys are missing from the destination, extra in it, or hold other values.
    different: int = 0
    #: The first `SHOWN` of those, one line each.
    differences: tuple[str, ...] = ()

    @property
    def verified(self) -> bool:
        """Return True when the destination holds exactly the source's rows."""
        return self.different == 0 and self.copied == self.source_rows == self.dest_rows

    def line(self) -> str:
        """Return one line for people."""
        if self.verified:
            return f"{self.table}: {self.copied} rows copied, verified"
        found = (
            f"{self.table}: {self.copied} rows copied; {self.source_rows} in the source, "
            f"{self.dest_rows} in the destination, {self.different} different"
        )
        more = self.different - len(self.differences)
        return "; ".join((found, *self.differences, *([f"{more} more"] if more > 0 else [])))


@dataclass(frozen=True)
class CopyReport:
    """What `copy_database` did: where from, where to, and each table's copy."""

    source: str
    dest: str
    tables: tuple[TableCopy, ...]

    @property
    def verified(self) -> bool:
        """Return True when every table of the destination holds exactly the source's rows."""
        return all(table.verified for table in self.tables)

    def as_dict(self) -> dict[str, Any]:
        """Return the report as plain data, for JSON."""
        return {
            "source": self.source,
            "dest": self.dest,
            "verified": self.verified,
            "tables": [{**asdict(table), "verified": table.verified} for table in self.tables],
        }

    def lines(self) -> list[str]:
        """Return the report as lines for people: one per table, then the verdict."""
        failed = [table.table for table in self.tables if not table.verified]
        verdict = (
            f"FAILED verification: {', '.join(failed)} differ"
            if failed
            else f"verified: every row of {len(self.tables)} tables is the same in both"
        )
        return [
            f"copied {self.source} to {self.dest}",
            *(table.line() for table in self.tables),
            verdict,
        ]


def copy_database(source: Target, dest: Target) -> CopyReport:
    """Copy every dorkstore row of `source` into `dest` (created if need be), then compare them.

    Each is a file path, ``":memory:"`` or a PostgreSQL URL, as for `init_db`
    (neither default applies). Returns the report; check `CopyReport.verified`.
    Raises DatabaseError when the source does not exist, is not migrated to
    this release, or the destination holds rows (nothing is written then),
    SchemaVersionError when either was migrated by a newer dorkstore, and
    DatabaseError when a row cannot be written (the destination is left empty).
    The proxy `dorkstore.database` is not touched.
    """
    with _opened(source, must_exist=True) as source_db:
        _require_this_release(source_db, "source")
        with _opened(dest, must_exist=False) as dest_db:
            _refuse_rows(dest_db)
            open_database(dest_db, apply=True)
            _require_this_release(dest_db, "destination")
            with _snapshot(source_db):
                copied = _copy_all(source_db, dest_db)
                tables = tuple(
                    _compare(model, source_db, dest_db, copied[model]) for model in MODELS
                )
            return CopyReport(_location(source_db), _location(dest_db), tables)


@contextmanager
def _opened(target: Target, *, must_exist: bool) -> Iterator[pw.Database]:
    """Open `target` beside the current database, connected, migrating nothing; close it after."""
    backend, resolved = _resolve(target)
    if must_exist and backend is SQLITE and resolved != MEMORY:
        _require_dorkstore_file(Path(resolved))
    db = backend.open(resolved)
    try:
        open_database(db, apply=False)
        yield db
    finally:
        db.close()
        backend.release(db)


def _resolve(target: Target) -> tuple[Backend, str]:
    """Return the backend of `target` and what it opens: a URL, ``":memory:"`` or a real path."""
    spelled = os.fspath(target)
    if not isinstance(spelled, str):
        raise DatabaseError(f"a database must be named by a str, got {type(spelled).__name__}")
    if is_url(spelled):
        return POSTGRES, spelled
    if spelled == MEMORY:
        return SQLITE, MEMORY
    resolved = os.path.realpath(spelled)  # one file, one lock file, as init_db does
    check_file_name(resolved)
    return SQLITE, resolved


def _require_dorkstore_file(path: Path) -> None:
    """Refuse a missing file, or one without a dorkstore history, before opening it writes.

    Opening a SQLite file as dorkstore does switches it to WAL mode, which
    would change a file that is not dorkstore's (an old ``pulse.db``, say).
    """
    if not path.exists():
        raise DatabaseError(f"no database at {path}")
    with read_only(path) as connection:
        if HISTORY_TABLE not in read_table_names(connection):
            raise DatabaseError(f"{path} is not a dorkstore database (it has no migration history)")


def _location(db: pw.Database) -> str:
    return backend_of(db).location(db)


def _require_this_release(db: pw.Database, role: str) -> None:
    """Refuse a database whose migrations are not exactly the ones this code ships."""
    applied, pending, unknown = migration_state(db)
    if unknown:
        raise SchemaVersionError(
            f"the {role} {_location(db)} was migrated by a newer dorkstore "
            f"({', '.join(unknown)} is not in this version); copy it with that release"
        )
    if pending:
        hint = "" if applied else " (is it a dorkstore database?)"
        raise DatabaseError(
            f"the {role} {_location(db)} lacks migrations {', '.join(pending)}{hint}: "
            "run dorkstore --db SOURCE migrate first"
        )


def _refuse_rows(db: pw.Database) -> None:
    """Raise DatabaseError when a dorkstore table in `db` holds a row."""
    tables = set(db.get_tables())
    full = [
        f"{model._meta.table_name}: {count}"
        for model in MODELS
        if model._meta.table_name in tables
        and (count := int(db.execute(model.select(pw.fn.COUNT(pw.SQL("*")))).fetchone()[0]))
    ]
    if full:
        raise DatabaseError(
            f"the destination {_location(db)} is not empty (rows in {', '.join(full)}); "
            "copy fills an empty database only"
        )


def _snapshot(db: pw.Database) -> Any:
    """Return a read transaction that sees one snapshot of `db` from its first read to its end.

    A SQLite reader in WAL mode keeps its snapshot for the whole transaction;
    PostgreSQL's default (READ COMMITTED) takes a new one per statement.
    """
    if backend_of(db) is POSTGRES:
        return db.atomic(isolation_level="REPEATABLE READ")
    return db.atomic()


def _copy_all(source: pw.Database, dest: pw.Database) -> dict[type[pw.Model], int]:
    """Copy every table in one transaction holding `dest`'s write lock; return rows per model."""
    copied: dict[type[pw.Model], int] = {}
    with backend_of(dest).write_transaction(dest):
        _refuse_rows(dest)  # again, under the lock: another process may have written meanwhile
        for model in MODELS:
            copied[model] = _copy_table(model, source, dest)
    return copied


def _copy_table(model: type[pw.Model], source: pw.Database, dest: pw.Database) -> int:
    """Copy one table, a batch per executemany (pipelined by psycopg); return how many rows."""
    sql = _insert_sql(model, dest)
    to_dest = _conversion(model._meta.sorted_fields, "db_value")
    copied = 0
    for batch in _batches(model, source):
        try:
            dest.cursor().executemany(sql, [to_dest(row) for row in batch])
        except Exception as exc:  # the driver's own: executemany bypasses Peewee's wrapping
            raise DatabaseError(
                f"cannot copy {model._meta.table_name} rows {copied + 1} to {copied + len(batch)} "
                f"(in key order) into {_location(dest)}: {exc}; nothing was copied"
            ) from exc
        copied += len(batch)
    return copied


def _insert_sql(model: type[pw.Model], db: pw.Database) -> str:
    """Return ``INSERT INTO table (columns) VALUES (placeholders)`` in `db`'s dialect."""
    fields = model._meta.sorted_fields
    query = model.insert_many([[pw.SQL(db.param)] * len(fields)], fields=fields).returning()
    sql: str = db.get_sql_context().sql(query).query()[0]
    return sql


def _batches(model: type[pw.Model], db: pw.Database) -> Iterator[list[Row]]:
    """Yield every row of `model`'s table in `db`, as read, in key order, BATCH rows at a time."""
    fields = model._meta.sorted_fields
    key = _key(model)
    positions = _positions(fields, key)
    last: Row | None = None
    while True:
        query = model.select(*fields).order_by(*key).limit(BATCH)
        if last is not None:
            query = query.where(
                key[0] > last[0] if len(key) == 1 else pw.Tuple(*key) > pw.Tuple(*last)
            )
        rows = db.execute(query).fetchall()
        if not rows:
            return
        yield [tuple(row) for row in rows]
        last = tuple(rows[-1][position] for position in positions)


def _key(model: type[pw.Model]) -> Sequence[pw.Field]:
    """Return the columns that order `model`'s rows: its primary key, else its unique index."""
    primary = model._meta.primary_key
    if isinstance(primary, pw.Field):
        return (primary,)
    unique = next(index for index in model._meta.fields_to_index() if index._unique)
    return tuple(unique._expressions)


def _positions(fields: Sequence[pw.Field], key: Sequence[pw.Field]) -> list[int]:
    """Return where each key column is among `fields` (Field's == builds SQL: compare names)."""
    names = [field.name for field in fields]
    return [names.index(column.name) for column in key]


def _conversion(fields: Sequence[pw.Field], direction: str) -> Callable[[Row], Row]:
    """Return a function passing a row's values through the fields' `direction` where needed.

    `direction` is ``"db_value"`` or ``"python_value"``; NULL stays NULL.
    """
    converters = [
        (place, getattr(field, direction))
        for place, field in enumerate(fields)
        if type(field) not in _PLAIN
    ]

    def convert(row: Row) -> Row:
        if not converters:
            return row
        values = list(row)
        for place, converter in converters:
            if values[place] is not None:
                values[place] = converter(values[place])
        return tuple(values)

    return convert


def _compare(
    model: type[pw.Model], source: pw.Database, dest: pw.Database, copied: int
) -> TableCopy:
    """Compare `model`'s rows in `source` and `dest`, both read in key order, row by row."""
    fields = model._meta.sorted_fields
    names = [field.column_name for field in fields]
    positions = _positions(fields, _key(model))
    as_python = _conversion(fields, "python_value")
    counts = {"source": 0, "dest": 0}

    def rows(db: pw.Database, side: str) -> Iterator[Row]:
        for batch in _batches(model, db):
            counts[side] += len(batch)
            yield from map(as_python, batch)

    def key_of(row: Row) -> Row:
        return tuple(row[position] for position in positions)

    different, shown = 0, list[str]()
    for key, was, now in _pairs(rows(source, "source"), rows(dest, "dest"), key_of):
        if was != now:
            different += 1
            if len(shown) < SHOWN:
                shown.append(_difference(key, was, now, names))
    return TableCopy(
        model._meta.table_name, copied, counts["source"], counts["dest"], different, tuple(shown)
    )


def _pairs(
    left: Iterator[Row], right: Iterator[Row], key_of: Callable[[Row], Row]
) -> Iterator[tuple[Row, Row | None, Row | None]]:
    """Walk two key-ordered row streams together: yield (key, left, right), None where absent.

    Keys are text and integers, which Python orders as both backends do
    (text bytewise: code point order is UTF-8's byte order).
    """
    a, b = next(left, None), next(right, None)
    while a is not None or b is not None:
        if a is not None and (b is None or key_of(a) < key_of(b)):
            yield key_of(a), a, None
            a = next(left, None)
        elif b is not None and (a is None or key_of(b) < key_of(a)):
            yield key_of(b), None, b
            b = next(right, None)
        elif a is not None and b is not None:  # the same key: always so here
            yield key_of(a), a, b
            a, b = next(left, None), next(right, None)


def _difference(key: Row, was: Row | None, now: Row | None, names: Sequence[str]) -> str:
    """Say how the source's row (`was`) and the destination's (`now`) of one key differ."""
    shown = repr(key[0]) if len(key) == 1 else repr(key)
    if now is None:
        return f"{shown} missing"
    if was is None:
        return f"{shown} extra"
    columns = [name for name, a, b in zip(names, was, now, strict=True) if a != b]
    return f"{shown} differs in {', '.join(columns)}"
