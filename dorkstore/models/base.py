"""The database proxy, the abstract model bound to it, and column helpers.

The proxy lives here, at the bottom, as in Peewee's own docs: models bind to
it when they are defined, and `dorkstore.db.init_db` points it at a database.
"""

from __future__ import annotations

from collections.abc import Iterable

import peewee as pw

__all__ = ["BaseModel", "database", "enum_check", "sql_default"]

#: Every model is bound to this; `dorkstore.init_db()` initialises it.
database = pw.DatabaseProxy()


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
