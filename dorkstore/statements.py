"""Statements built once with Peewee's query builder, then run with each call's values.

Building SQL is most of the cost of a small Peewee query (about 200 us for a
one-row SELECT against 4 us to run it), so each statement is defined once, at
module level, and built on first use per kind of database::

    GET_MESSAGE = Statement(
        lambda: RelayMessage.select(*COLUMNS).where(RelayMessage.id == slot("id")),
        into=RelayMessage.to_record,
    )
    GET_MESSAGE.one(id="01J...")

A builder sees values only through `slot` (bound by name on every call) and
`const` (a true constant). Anything else that would become a parameter is
refused when the statement is first built: a value captured from one call
would otherwise be frozen into the SQL and answer every later call. Builders
may not close over variables at all; a statement whose shape varies (the
columns of an UPDATE, the filters of a listing) is a `StatementFamily`, whose
builder receives the shape as its argument.

Statements run through Peewee's ``execute_sql``, so Peewee's exception
wrapping, query logging and query hooks apply. Values pass through the
``db_value`` of the field they are compared with or assigned to, and selected
columns through their ``python_value``, except for fields whose conversion is
a plain ``str``/``int`` coercion of values the repositories already validated.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from operator import itemgetter
from typing import Any, Generic, NamedTuple, TypeVar, overload

import peewee as pw

from dorkstore.errors import DatabaseError
from dorkstore.models.base import database

__all__ = ["Row", "Statement", "StatementFamily", "Values", "assign", "const", "slot"]

#: A selected row: column name (``schedule_id``, not the field's ``schedule``), or an
#: expression's alias, or ``column<N>`` for an expression without one -> value.
Row = dict[str, Any]
#: A selected row as `into` receives it: the values in the SELECT's column order.
Values = Sequence[Any]
T = TypeVar("T")
Converter = Callable[[Any], Any]

# Peewee logs each statement on this logger; playhouse.test_utils counts queries from it.
_query_log = logging.getLogger("peewee")
# Peewee's context manager that turns driver exceptions into Peewee's own.
_exception_wrapper = vars(pw)["__exception_wrapper__"]
#: Rows per executemany call in `Statement.many`.
MANY_BATCH = 5000
#: Field conversions that only coerce to str or int: repositories validate the
#: type of every value first, so these are skipped for speed.
_PLAIN = (pw.TextField, pw.CharField, pw.IntegerField, pw.BigIntegerField)


def _conversion(field: object, direction: str) -> Converter | None:
    """Return `field`'s db_value or python_value, or None where it is a plain coercion."""
    if not isinstance(field, pw.Field):
        return None
    if type(field) in _PLAIN:
        return None
    converter: Converter = getattr(field, direction)
    return converter


class _Param(NamedTuple):
    """A parameter of a built statement: a slot's name, or a constant (name None)."""

    name: str | None
    value: Any
    convert: Converter | None


class _Slot(pw.ColumnBase):
    """Stands where a value supplied on each call goes."""

    def __init__(self, name: str, field: pw.Field | None) -> None:
        super().__init__()
        self.name, self.field = name, field

    def __sql__(self, ctx: pw.Context) -> pw.Context:
        # Compared with a field, Peewee puts that field's db_value in the context.
        converter = _conversion(self.field, "db_value") if self.field else None
        if converter is None and self.field is None:
            owner = getattr(ctx.state.converter, "__self__", None)
            converter = _conversion(owner, "db_value")
        rendered: pw.Context = ctx.value(_Param(self.name, None, converter), converter=False)
        return rendered


class _Const(pw.ColumnBase):
    """A value that is the same on every call."""

    def __init__(self, value: object) -> None:
        super().__init__()
        self.value = value

    def __sql__(self, ctx: pw.Context) -> pw.Context:
        rendered: pw.Context = ctx.value(_Param(None, self.value, None), converter=False)
        return rendered


def slot(name: str, field: pw.Field | None = None) -> pw.ColumnBase:
    """Return a placeholder for the value named `name`, given on each call.

    Compared with a field (``Model.id == slot("id")``) it takes that field's
    conversion; where Peewee cannot tell (an INSERT or UPDATE value), pass the
    `field`, or build the assignments with `assign`.
    """
    return _Slot(name, field)


def const(value: object) -> pw.ColumnBase:
    """Return `value` as a parameter that every call shares (a status, a 1, a 0).

    Peewee adds a model's Python defaults to an INSERT that leaves their
    columns out; those are values too, so name every column (`assign`) or
    give the default as a const.
    """
    return _Const(value)


def assign(model: type[pw.Model], names: Iterable[str]) -> dict[pw.Field, pw.ColumnBase]:
    """Return ``{field: slot(name, field)}`` for an INSERT or UPDATE of the columns `names`."""
    columns = model._meta.columns
    return {columns[name]: slot(name, columns[name]) for name in names}


class _Built(NamedTuple):
    sql: str
    bind: Callable[[Mapping[str, Any]], Sequence[Any]]
    columns: tuple[str, ...]
    converters: tuple[tuple[int, Converter], ...]


def _binder(params: tuple[_Param, ...]) -> Callable[[Mapping[str, Any]], Sequence[Any]]:
    """Return a function from a call's values (by name) to the parameters, in order."""
    if not params:
        return lambda values: ()
    names = [param.name for param in params if param.name is not None]
    if len(names) == len(params) and all(param.convert is None for param in params):
        if len(names) == 1:
            only = names[0]
            return lambda values: (values[only],)
        return itemgetter(*names)

    def bind(values: Mapping[str, Any]) -> list[Any]:
        bound = []
        for name, constant, convert in params:
            value = constant if name is None else values[name]
            bound.append(value if convert is None or value is None else convert(value))
        return bound

    return bind


def _check_params(label: str, params: list[Any]) -> tuple[_Param, ...]:
    for param in params:
        if not isinstance(param, _Param):
            raise TypeError(
                f"statement {label}: the value {param!r} is neither slot() nor const(); "
                "a builder must not capture values, or its first call's values would "
                "answer every later call"
            )
    return tuple(params)


def _selected(query: pw.Node) -> tuple[tuple[str, ...], tuple[tuple[int, Converter], ...]]:
    """Return the names of a SELECT's columns and the conversions they need."""
    returning = getattr(query, "_returning", None) or ()
    names, converters = [], []
    for index, column in enumerate(returning):
        if isinstance(column, pw.Alias):
            names.append(column.name)
        elif isinstance(column, pw.Field):
            names.append(column.column_name)
        else:
            names.append(f"column{index}")
        converter = _conversion(column, "python_value")
        if converter is not None:
            converters.append((index, converter))
    return tuple(names), tuple(converters)


class Statement(Generic[T]):
    """One SQL statement, built on first use per kind of database and reused.

    The statement object is its own cache key. `into` turns each selected row
    (its values, in the SELECT's column order) into what `one` and `all`
    return; without it they return each row as a `Row` dict.
    """

    __slots__ = ("_build", "_built", "into", "label")
    #: Turns a selected row's values into what `one` and `all` return; None: a `Row`.
    into: Callable[[Values], T] | None
    #: Names the statement in errors and its repr.
    label: str

    @overload
    def __init__(
        self: Statement[Row], build: Callable[[], pw.Node], *, label: str = ""
    ) -> None: ...
    @overload
    def __init__(
        self, build: Callable[[], pw.Node], *, into: Callable[[Values], T], label: str = ""
    ) -> None: ...
    def __init__(
        self,
        build: Callable[[], pw.Node],
        *,
        into: Callable[[Values], Any] | None = None,
        label: str = "",
    ) -> None:
        if getattr(build, "__closure__", None):
            captured = ", ".join(build.__code__.co_freevars)
            raise TypeError(
                f"statement builder {build.__qualname__} captures {captured}; "
                "use slot() for values and StatementFamily for shapes"
            )
        self._build = build
        self._built: dict[type, _Built] = {}
        self.into = into
        self.label = label or getattr(build, "__qualname__", "statement")

    def __repr__(self) -> str:
        return f"<Statement {self.label}>"

    def sql(self) -> str:
        """Return the SQL this statement runs on the current database."""
        return self._prepare()[1].sql

    def one(self, **values: Any) -> T | None:
        """Return the first selected row (through `into`), or None."""
        db, built = self._prepare()
        row = db.execute_sql(built.sql, built.bind(values)).fetchone()
        return None if row is None else self._row(built, row)

    def all(self, **values: Any) -> list[T]:
        """Return every selected row (through `into`)."""
        db, built = self._prepare()
        rows = db.execute_sql(built.sql, built.bind(values)).fetchall()
        if built.converters:
            rows = [_converted(built.converters, row) for row in rows]
        into, columns = self.into, built.columns
        if into is None:
            return [dict(zip(columns, row, strict=False)) for row in rows]  # type: ignore[misc]
        # A page of rows is the hot path: no mapping per row, one call each.
        return list(map(into, rows))

    def scalar(self, **values: Any) -> Any:
        """Return the first column of the first row, or None when there is no row."""
        db, built = self._prepare()
        row = db.execute_sql(built.sql, built.bind(values)).fetchone()
        return None if row is None else row[0]

    def run(self, **values: Any) -> int:
        """Run an INSERT, UPDATE or DELETE; return how many rows it changed."""
        db, built = self._prepare()
        cursor = db.execute_sql(built.sql, built.bind(values))
        return int(db.rows_affected(cursor))

    def many(self, rows: Iterable[Mapping[str, Any] | object]) -> int:
        """Run the statement once per row (executemany, in batches); return how many rows.

        A row is a mapping or an object (a record) with an attribute per slot name.
        """
        db, built = self._prepare()
        total = 0
        for batch in _batches(rows):
            params = [built.bind(_as_mapping(row)) for row in batch]
            _query_log.debug((built.sql, f"<{len(params)} rows>"))
            with _exception_wrapper:
                db.cursor().executemany(built.sql, params)
            total += len(params)
        return total

    def _row(self, built: _Built, row: Sequence[Any]) -> Any:
        if built.converters:
            row = _converted(built.converters, row)
        if self.into is None:
            return dict(zip(built.columns, row, strict=False))  # one value per column
        return self.into(row)

    def _prepare(self) -> tuple[pw.Database, _Built]:
        db = database.obj
        if db is None:
            raise DatabaseError("no database: call dorkstore.init_db() first")
        built = self._built.get(type(db))
        if built is None:
            query = self._build()
            sql, params = db.get_sql_context().sql(query).query()
            columns, converters = _selected(query)
            bind = _binder(_check_params(self.label, params))
            built = self._built[type(db)] = _Built(sql, bind, columns, converters)
        return db, built


class StatementFamily(Generic[T]):
    """Statements of one kind whose shape varies: one built `Statement` per shape.

    `build` receives the shape (a hashable value such as a tuple of column
    names or of the filters in use) and may use it only to choose the SQL's
    structure; values still come from slots.
    """

    __slots__ = ("_build", "_members", "into", "label")
    #: Each member statement's `Statement.into`.
    into: Callable[[Values], T] | None
    #: Names the family in errors; a member's label adds its shape.
    label: str

    @overload
    def __init__(
        self: StatementFamily[Row], build: Callable[[Any], pw.Node], *, label: str = ""
    ) -> None: ...
    @overload
    def __init__(
        self, build: Callable[[Any], pw.Node], *, into: Callable[[Values], T], label: str = ""
    ) -> None: ...
    def __init__(
        self,
        build: Callable[[Any], pw.Node],
        *,
        into: Callable[[Values], Any] | None = None,
        label: str = "",
    ) -> None:
        if getattr(build, "__closure__", None):
            raise TypeError(f"statement builder {build.__qualname__} captures variables")
        self._build = build
        self._members: dict[Hashable, Statement[T]] = {}
        self.into = into
        self.label = label or getattr(build, "__qualname__", "statements")

    def __getitem__(self, shape: Hashable) -> Statement[T]:
        member = self._members.get(shape)
        if member is None:
            member = Statement.__new__(Statement)
            member._build = _Bound(self._build, shape)
            member._built = {}
            member.into = self.into
            member.label = f"{self.label}[{shape!r}]"
            self._members[shape] = member
        return member


class _Bound:
    """A family's builder with its shape: called without arguments, as a Statement's is."""

    __slots__ = ("build", "shape")

    def __init__(self, build: Callable[[Any], pw.Node], shape: Hashable) -> None:
        self.build, self.shape = build, shape

    def __call__(self) -> pw.Node:
        return self.build(self.shape)


def _converted(converters: tuple[tuple[int, Converter], ...], row: Sequence[Any]) -> list[Any]:
    """Return a selected row with its columns' Python conversions applied."""
    values = list(row)
    for index, convert in converters:
        if values[index] is not None:
            values[index] = convert(values[index])
    return values


def _as_mapping(row: Mapping[str, Any] | object) -> Mapping[str, Any]:
    if isinstance(row, Mapping):
        return row
    return _Attributes(row)


class _Attributes(Mapping[str, Any]):
    """A record's attributes, read by name like a mapping."""

    __slots__ = ("record",)

    def __init__(self, record: object) -> None:
        self.record = record

    def __getitem__(self, name: str) -> Any:
        try:
            return getattr(self.record, name)
        except AttributeError:
            raise KeyError(name) from None

    def __iter__(self) -> Iterator[str]:
        return iter(getattr(self.record, "__dataclass_fields__", ()))

    def __len__(self) -> int:
        return len(getattr(self.record, "__dataclass_fields__", ()))


def _batches(rows: Iterable[Any]) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for row in rows:
        batch.append(row)
        if len(batch) == MANY_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch
