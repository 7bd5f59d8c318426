"""The abstract model every table model derives from, and column helpers."""

from __future__ import annotations

from collections.abc import Iterable

import peewee as pw

from dorkstore.db import database

__all__ = ["BaseModel", "enum_check", "sql_default"]


class BaseModel(pw.Model):
    """Binds every model to `dorkstore.database`; it has no table of its own.

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
