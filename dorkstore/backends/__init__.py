"""The backend seam: one object per database engine, chosen by the database in use.

Only the modules in this package (and `dorkstore.sqlite_files`) import a
driver. Everything above asks `current()` for what differs between engines,
runs repository methods under `guarded` so that driver errors arrive as
dorkstore errors, and takes write locks through `write_transaction`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

import peewee as pw

from dorkstore.backends.base import Backend, ErrorKind, Target
from dorkstore.backends.postgres import POSTGRES
from dorkstore.backends.sqlite import SQLITE
from dorkstore.errors import (
    ConflictError,
    DatabaseBusyError,
    DatabaseError,
    DorkstoreError,
    ValidationError,
)
from dorkstore.models.base import database

__all__ = [
    "BACKENDS",
    "Backend",
    "ErrorKind",
    "Target",
    "backend_of",
    "classify",
    "current",
    "current_database",
    "guarded",
    "translate",
    "write_transaction",
]

#: Every backend dorkstore knows, the default first.
BACKENDS: tuple[Backend, ...] = (SQLITE, POSTGRES)

P = ParamSpec("P")
R = TypeVar("R")


def current_database() -> pw.Database:
    """Return the database `init_db` opened; raise DatabaseError before that."""
    db: pw.Database | None = database.obj
    if db is None:
        raise DatabaseError("no database: call dorkstore.init_db() first")
    return db


def backend_of(db: pw.Database) -> Backend:
    """Return the backend of `db`; raise DatabaseError for an engine dorkstore does not support."""
    for backend in BACKENDS:
        if backend.owns(db):
            return backend
    raise DatabaseError(f"{type(db).__name__} is not a database dorkstore supports")


def current() -> Backend:
    """Return the backend of the database `init_db` opened."""
    return backend_of(current_database())


@contextmanager
def write_transaction(key: str | None = None) -> Iterator[Any]:
    """Begin a transaction on the current database that holds the write lock it needs.

    Use it to group several repository calls into one atomic step. `key`
    narrows the lock where the backend can (one agent's budget, say). A lock
    not granted within the busy timeout, or a connection lost on the way in or
    out, raises the dorkstore error here too, as a repository method would.
    """
    db = current_database()
    try:
        with backend_of(db).write_transaction(db, key) as transaction:
            yield transaction
    except Exception as exc:
        translated = translate(exc)
        if translated is None:
            raise
        raise translated from exc


def classify(exc: BaseException) -> ErrorKind | None:
    """Return what a driver or Peewee exception means, asking each backend's driver."""
    for backend in BACKENDS:
        kind = backend.classify(exc)
        if kind is not None:
            return kind
    if isinstance(exc, pw.PeeweeException):
        return "database"
    return None


_ERRORS: dict[ErrorKind, type[DorkstoreError]] = {
    "unique": ConflictError,
    "foreign_key": ValidationError,
    "constraint": ValidationError,
    "busy": DatabaseBusyError,
    "connection": DatabaseError,
    "database": DatabaseError,
}


def translate(exc: Exception) -> DorkstoreError | None:
    """Return the dorkstore error for a driver or Peewee exception; None if not one."""
    if isinstance(exc, DorkstoreError):
        return None
    kind = classify(exc)
    if kind is None:
        # peewee's DatabaseProxy raises AttributeError until init_db() runs.
        if isinstance(exc, AttributeError) and "uninitialized" in str(exc).lower():
            return DatabaseError("no database: call dorkstore.init_db() first")
        return None
    message = str(exc).strip() or type(exc).__name__
    if kind == "busy":
        message += ": another connection held the write lock too long"
    if kind == "connection":
        db = database.obj
        if db is not None:
            backend_of(db).recover(db)
        message = f"the connection to the database was lost ({message}); the next call reconnects"
    return _ERRORS[kind](message)


def guarded(function: Callable[P, R]) -> Callable[P, R]:
    """Run `function` with driver and Peewee errors turned into dorkstore errors."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        except Exception as exc:
            translated = translate(exc)
            if translated is None:
                raise
            raise translated from exc

    return wrapper
