"""The database proxy, the abstract model bound to it, and column helpers.

The proxy lives here, at the bottom, as in Peewee's own docs: models bind to
it when they are defined, and `dorkstore.db.init_db` points it at a database.
"""

from __future__ import annotations

import functools
import inspect
import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Any

import peewee as pw

__all__ = ["BaseModel", "DatabaseProxy", "database", "enum_check", "sql_default"]

# Peewee's proxy keeps its database in the slot `obj`; this is that slot's descriptor.
_SLOT = inspect.getattr_static(pw.DatabaseProxy, "obj")
_ATTRIBUTES = frozenset({"obj", "_callbacks", "_Model", "_lock", "_replaced"})


class DatabaseProxy(pw.DatabaseProxy):
    """Peewee's proxy, safe to re-point while other threads are inside a transaction.

    A thread inside a transaction on a database that `initialize` has since
    replaced keeps resolving `obj` to that database until the transaction
    ends, so a group of calls is never split between two databases and its
    transaction ends on the connection that began it. Transactions from
    `atomic`, `transaction`, `savepoint` and `manual_commit` pick their
    database when they begin and keep it until they end.

    `obj` is read by every statement, so it stays Peewee's plain slot while no
    replaced database is alive (the usual case: the old one is freed as soon as
    `init_db` returns). Only while one is alive does the proxy become a
    `_PinningProxy`, whose `obj` first asks each replaced database (weakly
    referenced) whether this thread is inside a transaction on it.
    """

    __slots__ = ("_lock", "_replaced")
    _lock: threading.RLock
    _replaced: tuple[weakref.ref[pw.Database], ...]

    def __init__(self) -> None:
        object.__setattr__(self, "_lock", threading.RLock())
        object.__setattr__(self, "_replaced", ())
        super().__init__()

    def __setattr__(self, attr: str, value: object) -> None:
        if attr not in _ATTRIBUTES:
            raise AttributeError("Cannot set attribute on proxy.")
        object.__setattr__(self, attr, value)

    def initialize(self, obj: pw.Database | None) -> None:
        """Point the proxy at `obj`; threads inside a transaction on the old database keep it."""
        with self._lock:
            try:
                previous = _SLOT.__get__(self, DatabaseProxy)
            except AttributeError:  # the first call, from __init__
                previous = None
            refs = tuple(ref for ref in self._replaced if ref() is not None and ref() is not obj)
            if previous is not None and previous is not obj:
                refs += (weakref.ref(previous, self._forget),)
            # Become a _PinningProxy before the slot changes, so that no thread
            # inside a transaction on `previous` ever reads the new database.
            self._set_replaced(refs)
            _SLOT.__set__(self, obj)
        for callback in self._callbacks:
            callback(obj)

    def replaced_databases(self) -> list[pw.Database]:
        """Return the databases `initialize` replaced that are still alive."""
        return [db for db in (ref() for ref in self._replaced) if db is not None]

    def atomic(self, *args: Any, **kwargs: Any) -> _Begun:  # type: ignore[override]  # a _Begun stands in for each
        """Return ``atomic(...)`` of the database this thread uses when the block begins."""
        return _Begun(self, "atomic", args, kwargs)

    def transaction(self, *args: Any, **kwargs: Any) -> _Begun:  # type: ignore[override]  # a _Begun stands in for each
        """Return ``transaction(...)`` of the database this thread uses when it begins."""
        return _Begun(self, "transaction", args, kwargs)

    def savepoint(self) -> _Begun:  # type: ignore[override]  # a _Begun stands in for each
        """Return ``savepoint()`` of the database this thread uses when it begins."""
        return _Begun(self, "savepoint", (), {})

    def manual_commit(self) -> _Begun:  # type: ignore[override]  # a _Begun stands in for each
        """Return ``manual_commit()`` of the database this thread uses when it begins."""
        return _Begun(self, "manual_commit", (), {})

    def _forget(self, _dead: weakref.ref[pw.Database]) -> None:
        """Drop a replaced database that has been freed (a weakref callback)."""
        with self._lock:
            self._set_replaced(tuple(ref for ref in self._replaced if ref() is not None))

    def _set_replaced(self, refs: tuple[weakref.ref[pw.Database], ...]) -> None:
        object.__setattr__(self, "_replaced", refs)
        # Same slots, so the class can change in place: plain while nothing is replaced.
        object.__setattr__(self, "__class__", _PinningProxy if refs else DatabaseProxy)


class _PinningProxy(DatabaseProxy):
    """The proxy while a replaced database is alive: a thread inside a transaction keeps it."""

    __slots__ = ()

    @property
    def obj(self) -> pw.Database | None:
        """The replaced database this thread is inside a transaction on, else the current one."""
        for ref in self._replaced:
            db = ref()
            if db is not None and db.in_transaction():
                return db
        current: pw.Database | None = _SLOT.__get__(self, DatabaseProxy)
        return current

    @obj.setter
    def obj(self, value: pw.Database | None) -> None:
        _SLOT.__set__(self, value)


class _Begun:
    """A transaction block that picks its database when it begins and keeps it to the end."""

    __slots__ = ("_args", "_block", "_kind", "_kwargs", "_proxy")

    def __init__(
        self, proxy: DatabaseProxy, kind: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        self._proxy, self._kind, self._args, self._kwargs = proxy, kind, args, kwargs
        self._block: Any = None

    def __enter__(self) -> Any:
        db = self._proxy.obj
        if db is None:
            raise AttributeError("Cannot use uninitialized Proxy.")
        self._block = getattr(db, self._kind)(*self._args, **self._kwargs)
        return self._block.__enter__()

    def __exit__(self, *exc_info: object) -> Any:
        return self._block.__exit__(*exc_info)

    def __call__(self, function: Callable[..., Any]) -> Callable[..., Any]:
        """Use the block as a decorator: each call runs in a block of its own."""

        @functools.wraps(function)
        def inner(*args: Any, **kwargs: Any) -> Any:
            with _Begun(self._proxy, self._kind, self._args, self._kwargs):
                return function(*args, **kwargs)

        return inner


#: Every model is bound to this; `dorkstore.init_db()` initialises it.
database: DatabaseProxy = DatabaseProxy()


class BaseModel(pw.Model):
    """Binds every model to `database`; it has no table of its own.

    peewee-migrate would generate a table for it, so ``migrations/conf.py``
    lists it in ``IGNORE``.
    """

    class Meta:
        database = database


def enum_check(column: str, values: Iterable[str]) -> pw.Node:
    """Return a column ``CHECK`` that admits only `values`."""
    allowed = ", ".join(f"'{value}'" for value in values)
    return pw.Check(f'"{column}" IN ({allowed})')


def sql_default(value: str | int) -> pw.Node:
    """Return a ``DEFAULT`` clause, so clients other than Peewee get the default too."""
    literal = f"'{value}'" if isinstance(value, str) else str(value)
    return pw.SQL(f"DEFAULT {literal}")
