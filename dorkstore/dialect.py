"""SQL that only one backend understands, kept here so a second backend is an addition.

SQLite is the only backend today. Every function takes the database it will
run on, so that a PostgreSQL branch can be added beside each SQLite one.
"""

from __future__ import annotations

from typing import Any, Literal

import apsw
import peewee as pw

from dorkstore.errors import DatabaseError

__all__ = [
    "CONSTRAINT_ERRORS",
    "DRIVER_ERRORS",
    "constraint_kind",
    "is_busy",
    "is_wal_mode",
    "json_array_contains",
    "latency_ms",
    "write_transaction",
]

_MS_PER_DAY = 86_400_000.0

#: Exceptions the driver raises itself, where Peewee does not wrap them (executemany).
DRIVER_ERRORS: tuple[type[Exception], ...] = (apsw.Error,)
#: Constraint violations, from Peewee or straight from the driver.
CONSTRAINT_ERRORS: tuple[type[Exception], ...] = (pw.IntegrityError, apsw.ConstraintError)

#: A database, or the proxy in front of one.
AnyDatabase = pw.Database | pw.DatabaseProxy


def _require_sqlite(db: AnyDatabase) -> None:
    target = db.obj if isinstance(db, pw.DatabaseProxy) else db
    if target is None:
        raise DatabaseError("no database: call dorkstore.init_db() first")
    if not isinstance(target, pw.SqliteDatabase):
        raise DatabaseError(
            f"{type(target).__name__} is not supported yet; dorkstore runs on SQLite"
        )


def write_transaction(db: AnyDatabase) -> Any:
    """Return a transaction that takes the write lock at once (``BEGIN IMMEDIATE``).

    A deferred SQLite transaction that reads and then writes fails at once with
    "database is locked" when another connection wrote in between, whatever
    busy_timeout says; an immediate one waits for the lock instead. Nested in
    another transaction it is a savepoint, and the outer one decides the lock.
    """
    _require_sqlite(db)
    return db.atomic("IMMEDIATE")


def latency_ms(db: AnyDatabase, later: pw.Node, earlier: pw.Node) -> pw.Node:
    """Return an expression for ``later - earlier`` in whole milliseconds (timestamps as text)."""
    _require_sqlite(db)
    # julianday() keeps about 20 microseconds of precision at today's dates.
    return pw.fn.ROUND((pw.fn.julianday(later) - pw.fn.julianday(earlier)) * _MS_PER_DAY)


def json_array_contains(db: AnyDatabase, column: pw.Node, value: object) -> pw.Node:
    """Return a condition true when the JSON array in `column` holds the string `value`."""
    _require_sqlite(db)
    return pw.NodeList(
        (
            pw.SQL("EXISTS (SELECT 1 FROM json_each("),
            column,
            pw.SQL(") AS element WHERE element.value = "),
            pw.Value(value),
            pw.SQL(")"),
        )
    )


def is_wal_mode(db: AnyDatabase) -> bool:
    """Return True when the database runs in write-ahead-log mode."""
    _require_sqlite(db)
    (mode,) = db.execute_sql("PRAGMA journal_mode").fetchone()
    return str(mode).lower() == "wal"


def constraint_kind(exc: Exception) -> Literal["unique", "foreign_key", "other"]:
    """Classify a constraint violation by SQLite's message (other backends word it differently)."""
    message = str(exc)
    if "UNIQUE constraint" in message or "PRIMARY KEY" in message:
        return "unique"
    if "FOREIGN KEY constraint" in message:
        return "foreign_key"
    return "other"


def is_busy(exc: BaseException) -> bool:
    """Return True when `exc` means another connection held a lock past busy_timeout."""
    if isinstance(exc, apsw.BusyError | apsw.LockedError):
        return True
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, apsw.BusyError | apsw.LockedError):
        return True
    return isinstance(exc, pw.OperationalError) and "database is locked" in str(exc)
