"""What every repository shares: the clock, new ids, transactions, error translation."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Hashable, Iterable, Sequence
from datetime import datetime
from operator import itemgetter
from typing import Any, NamedTuple, ParamSpec, TypeVar, cast

import peewee as pw
from ulid import ULID

from dorkstore import dialect
from dorkstore.db import database
from dorkstore.errors import (
    ConflictError,
    DatabaseBusyError,
    DatabaseError,
    DorkstoreError,
    ValidationError,
)
from dorkstore.timestamps import EPOCH, format_timestamp, utc_now

__all__ = [
    "Clock",
    "Repository",
    "execute",
    "fetch_all",
    "fetch_one",
    "guarded",
    "slot",
    "write",
    "write_many",
    "write_transaction",
]

#: A zero-argument callable returning an aware UTC datetime.
Clock = Callable[[], datetime]

_DATABASE_ERRORS: tuple[type[Exception], ...] = (
    pw.DatabaseError,
    pw.InterfaceError,
    *dialect.DRIVER_ERRORS,
)

P = ParamSpec("P")
R = TypeVar("R")


class Repository:
    """Base of the repositories: holds the clock; never a connection."""

    def __init__(self, *, clock: Clock | None = None) -> None:
        if clock is not None and not callable(clock):
            raise ValidationError(f"clock must be callable, got {type(clock).__name__}")
        self._clock: Clock = clock or utc_now

    def _now(self) -> datetime:
        moment = self._clock()
        if not isinstance(moment, datetime) or moment.utcoffset() is None:
            raise ValidationError(f"clock must return an aware datetime, got {moment!r}")
        if moment < EPOCH:  # ULIDs and minute buckets count from 1970
            raise ValidationError(f"clock returned {moment.isoformat()}, before 1970")
        return moment

    def _now_text(self) -> str:
        return format_timestamp(self._now())

    def _new_id(self, moment: datetime | None = None) -> str:
        """Return a new ULID whose time part is `moment` (default: now)."""
        return str(ULID.from_datetime(moment or self._now()))


def _translated(exc: Exception) -> Exception | None:  # noqa: PLR0911 - a return per kind
    """Return the dorkstore error for a Peewee or driver exception (None: not ours to translate)."""
    if isinstance(exc, DorkstoreError):
        return None
    if isinstance(exc, dialect.CONSTRAINT_ERRORS):
        if dialect.constraint_kind(exc) == "unique":
            return ConflictError(str(exc))
        return ValidationError(str(exc))
    if dialect.is_busy(exc):
        return DatabaseBusyError(f"{exc}: another connection held the write lock too long")
    if isinstance(exc, _DATABASE_ERRORS):
        return DatabaseError(str(exc) or type(exc).__name__)
    # peewee's DatabaseProxy raises AttributeError until init_db() runs.
    if isinstance(exc, AttributeError) and "uninitialized" in str(exc).lower():
        return DatabaseError("no database: call dorkstore.init_db() first")
    return None


def guarded(method: Callable[P, R]) -> Callable[P, R]:
    """Run `method` with Peewee and driver errors turned into dorkstore errors."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except Exception as exc:
            translated = _translated(exc)
            if translated is None:
                raise
            raise translated from exc

    return wrapper


def write_transaction() -> Any:
    """Return a transaction on `dorkstore.database` that holds the write lock from its start."""
    return dialect.write_transaction(database)


# --- statements built once ------------------------------------------------------------
#
# Building SQL is most of the cost of a Peewee query: about 200 us for a
# one-row SELECT against 4 us to run it. Each statement is therefore built
# once per shape and backend with Peewee's portable query builder, with
# `slot()` placeholders where the values go, and executed with the values of
# each call.


class _Slot:
    """Stands in a built statement's parameters for a value supplied per call."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


def slot(name: str) -> pw.Node:
    """Return a placeholder for the value named `name` (bound as given, no conversion)."""
    return pw.Value(_Slot(name), converter=False, unpack=False)


class _Built(NamedTuple):
    sql: str
    params: tuple[Any, ...]
    bind: Callable[[dict[str, Any]], Sequence[Any]]


_built: dict[tuple[type, Hashable], _Built] = {}
# Peewee logs each statement here; playhouse.test_utils counts queries from it.
_query_log = logging.getLogger("peewee")


def _binder(params: tuple[Any, ...]) -> Callable[[dict[str, Any]], Sequence[Any]]:
    """Return a function from the call's values to the statement's parameters, in order."""
    names = [param.name for param in params if type(param) is _Slot]
    if len(names) < len(params):  # constants built into the statement stay where they are
        return lambda values: [
            values[param.name] if type(param) is _Slot else param for param in params
        ]
    if not names:
        return lambda values: ()
    if len(names) == 1:
        name = names[0]
        return lambda values: (values[name],)
    return cast("Callable[[dict[str, Any]], Sequence[Any]]", itemgetter(*names))


def _statement(key: Hashable, build: Callable[[], Any]) -> tuple[pw.Database, _Built]:
    db = database.obj
    if db is None:
        raise DatabaseError("no database: call dorkstore.init_db() first")
    cache_key = (type(db), key)
    built = _built.get(cache_key)
    if built is None:
        sql, params = build().sql()
        built = _built[cache_key] = _Built(sql, tuple(params), _binder(tuple(params)))
    return db, built


def execute(key: Hashable, build: Callable[[], Any], **values: Any) -> Any:
    """Run the statement `build` returns (built once per `key`) with `values`; return the cursor.

    Driver errors are left to `guarded` to translate. Statements are logged on
    the ``peewee`` logger as Peewee logs its own (so playhouse.test_utils counts
    them), but Peewee's ``query_hooks`` are not called.
    """
    db, built = _statement(key, build)
    params = built.bind(values)
    _query_log.debug((built.sql, params))
    cursor = db.cursor()
    cursor.execute(built.sql, params)
    return cursor


def fetch_all(key: Hashable, build: Callable[[], Any], **values: Any) -> list[tuple[Any, ...]]:
    """Return every row of a built statement."""
    return cast("list[tuple[Any, ...]]", execute(key, build, **values).fetchall())


def fetch_one(key: Hashable, build: Callable[[], Any], **values: Any) -> tuple[Any, ...] | None:
    """Return the first row of a built statement, or None."""
    return cast("tuple[Any, ...] | None", execute(key, build, **values).fetchone())


def write(key: Hashable, build: Callable[[], Any], **values: Any) -> int:
    """Run a built INSERT, UPDATE or DELETE; return how many rows it changed."""
    cursor = execute(key, build, **values)
    return int(database.obj.rows_affected(cursor))


def write_many(key: Hashable, build: Callable[[], Any], rows: Iterable[tuple[Any, ...]]) -> int:
    """Run a built statement once per row with executemany; its slots are named "0", "1", ...

    Returns how many rows were given.
    """
    db, built = _statement(key, build)
    sql, params = built.sql, built.params
    positions = [int(param.name) if type(param) is _Slot else None for param in params]
    if positions != list(range(len(params))):
        raise AssertionError(f"executemany needs one slot per column, in order: {sql}")
    batch: list[tuple[Any, ...]] = []
    total = 0
    cursor = db.cursor()
    for row in rows:
        batch.append(row)
        if len(batch) == _BATCH:
            _query_log.debug((sql, f"<{len(batch)} rows>"))
            cursor.executemany(sql, batch)
            total, batch = total + len(batch), []
    if batch:
        _query_log.debug((sql, f"<{len(batch)} rows>"))
        cursor.executemany(sql, batch)
        total += len(batch)
    return total


#: Rows per executemany call in write_many.
_BATCH = 5000
