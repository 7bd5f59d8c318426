"""What every repository shares: the clock, new ids, transactions, error translation."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, ParamSpec, TypeVar, cast

import peewee as pw
from ulid import ULID

from dorkstore import dialect
from dorkstore.db import database
from dorkstore.errors import ConflictError, DatabaseError, DorkstoreError, ValidationError
from dorkstore.timestamps import EPOCH, format_timestamp, utc_now

__all__ = [
    "Clock",
    "Repository",
    "first",
    "guarded",
    "rows",
    "translate_errors",
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


@contextmanager
def translate_errors() -> Iterator[None]:
    """Turn Peewee and driver errors into dorkstore errors, chained with ``from``."""
    try:
        yield
    except DorkstoreError:
        raise
    except dialect.CONSTRAINT_ERRORS as exc:
        if dialect.constraint_kind(exc) == "unique":
            raise ConflictError(str(exc)) from exc
        raise ValidationError(str(exc)) from exc
    except _DATABASE_ERRORS as exc:
        raise DatabaseError(str(exc) or type(exc).__name__) from exc
    except AttributeError as exc:
        # peewee's DatabaseProxy raises AttributeError until init_db() runs.
        if "uninitialized" not in str(exc).lower():
            raise
        raise DatabaseError("no database: call dorkstore.init_db() first") from exc


def guarded(method: Callable[P, R]) -> Callable[P, R]:
    """Run `method` inside `translate_errors`."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with translate_errors():
            return method(*args, **kwargs)

    return wrapper


def write_transaction() -> Any:
    """Return a transaction on `dorkstore.database` that holds the write lock from its start."""
    return dialect.write_transaction(database)


def rows(query: pw.SelectBase) -> list[tuple[Any, ...]]:
    """Return the query's rows as tuples (Peewee's hints type them as model instances)."""
    return cast("list[tuple[Any, ...]]", list(query.tuples()))


def first(query: pw.SelectBase, convert: Callable[[tuple[Any, ...]], R]) -> R | None:
    """Return the query's first row converted, or None when it has none."""
    found = rows(query.limit(1))
    return convert(found[0]) if found else None
