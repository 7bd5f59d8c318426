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
from dorkstore.timestamps import format_timestamp, utc_now

__all__ = ["Clock", "Repository", "guarded", "rows", "translate_errors", "write_transaction"]

#: A zero-argument callable returning an aware UTC datetime.
Clock = Callable[[], datetime]

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
        if not isinstance(moment, datetime):
            raise ValidationError(f"clock returned {type(moment).__name__}, not a datetime")
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
    except pw.IntegrityError as exc:
        message = str(exc)
        if "UNIQUE" in message or "PRIMARY KEY" in message:
            raise ConflictError(message) from exc
        raise ValidationError(message) from exc
    except (pw.DatabaseError, pw.InterfaceError) as exc:
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
