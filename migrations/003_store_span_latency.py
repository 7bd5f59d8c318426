"""Peewee migrations -- 003_store_span_latency.py.

Store each span's delivery latency, ``relay_traces.latency_ms``, indexed:
`TraceStore.get_metrics` computed ``julianday(delivered_at) - julianday(sent_at)``
for every span and sorted them for the p95 (11 s at 1,000,000 spans).

Generated with ``pw_migrate create --auto``, then completed by hand:
existing delivered spans are backfilled with the arithmetic the SQLite backend
used to compute latencies in the query (so the metrics stay exactly the same),
before the index is built; and, as in 002, the index is created under the name
Peewee gives the model's (``relaytrace_latency_ms``), not the table-based name
``migrator.add_fields`` would use: the migrator's state is updated under
``migrator.fake()`` and the column and index are made with SQL.

Not additive (no ``ADDITIVE = True``), although it only adds a nullable column
and an index: `get_metrics` relies on every delivered span having its latency,
and a previous release beside it would deliver spans without one, which the
metrics would then leave out. Stop the previous release before migrating.

Some examples (model - class or model name)::

    > Model = migrator.orm['table_name']            # Return model in current state by name
    > Model = migrator.ModelClass                   # Return model in current state by name

    > migrator.sql(sql)                             # Run custom SQL
    > migrator.run(func, *args, **kwargs)           # Run python function with the given args
    > migrator.create_model(Model)                  # Create a model (could be used as decorator)
    > migrator.remove_model(model, cascade=True)    # Remove a model
    > migrator.add_fields(model, **fields)          # Add fields (allow_not_null=True skips default)
    > migrator.change_fields(model, **fields)       # Change fields
    > migrator.remove_fields(model, *field_names, cascade=True)
    > migrator.rename_field(model, old_field_name, new_field_name)
    > migrator.rename_table(model, new_table_name)
    > migrator.add_index(model, *col_names, unique=False)
    > migrator.add_not_null(model, *field_names)
    > migrator.add_default(model, field_name, default)
    > migrator.add_constraint(model, name, sql)
    > migrator.drop_index(model, *col_names)
    > migrator.drop_not_null(model, *field_names)
    > migrator.drop_constraints(model, *constraints)

"""

from contextlib import suppress

import peewee as pw
from peewee_migrate import Migrator

with suppress(ImportError):
    import playhouse.postgres_ext as pw_pext


#: delivered_at - sent_at in whole milliseconds, as the SQLite backend computed it
#: in get_metrics before this migration (dorkstore.backends.sqlite latency_ms).
BACKFILL = """
UPDATE "relay_traces"
SET "latency_ms" = CAST(
    ROUND((julianday("delivered_at") - julianday("sent_at")) * 86400000.0) AS INTEGER
)
WHERE "delivered_at" IS NOT NULL
"""


#: The same on PostgreSQL, exact to the millisecond (timestamps are stored as text).
BACKFILL_POSTGRES = """
UPDATE "relay_traces"
SET "latency_ms" = CAST(ROUND(EXTRACT(EPOCH FROM (
    CAST("delivered_at" AS timestamptz) - CAST("sent_at" AS timestamptz)
)) * 1000) AS BIGINT)
WHERE "delivered_at" IS NOT NULL
"""


def migrate(migrator: Migrator, database: pw.Database, *, fake: bool = False) -> None:
    """Write your migrations here."""
    postgres = isinstance(database, pw.PostgresqlDatabase)
    # The state only: add_fields would also build the index, under the table-based name.
    with migrator.fake():
        migrator.add_fields("relay_traces", latency_ms=pw.BigIntegerField(index=True, null=True))
    kind = "BIGINT" if postgres else "INTEGER"
    migrator.sql(f'ALTER TABLE "relay_traces" ADD COLUMN "latency_ms" {kind}')
    migrator.sql(BACKFILL_POSTGRES if postgres else BACKFILL)
    # Indexed after the backfill: building it once is cheaper than updating it per row.
    migrator.sql('CREATE INDEX "relaytrace_latency_ms" ON "relay_traces" ("latency_ms")')


def rollback(migrator: Migrator, database: pw.Database, *, fake: bool = False) -> None:
    """Write your rollback migrations here."""
    # SQLite refuses to drop an indexed column: the index goes first.
    migrator.sql('DROP INDEX "relaytrace_latency_ms"')
    migrator.remove_fields("relay_traces", "latency_ms")
