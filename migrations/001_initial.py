"""Peewee migrations -- 001_initial.py.

Generated with ``pw_migrate create --auto``, then completed by hand where
autogeneration falls short: the SQL ``DEFAULT``s and ``CHECK``s
(``constraints=``), ``index=False`` on ``pulse_runs.schedule``, the named
unique index and ``primary_key = False`` of ``rate_limit_buckets``, and
``without_rowid`` on ``relay_index``.

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


def migrate(migrator: Migrator, database: pw.Database, *, fake: bool = False) -> None:
    """Write your migrations here."""
    # PostgreSQL (added later): a boolean's default is TRUE, and WITHOUT ROWID is
    # SQLite's alone. SQLite keeps exactly the schema this migration always made.
    postgres = isinstance(database, pw.PostgresqlDatabase)

    @migrator.create_model
    class Agent(pw.Model):
        id = pw.CharField(max_length=26, primary_key=True)
        name = pw.TextField()
        runtime = pw.TextField(index=True)
        project_path = pw.TextField(unique=True)
        namespace = pw.TextField(
            default="default", index=True, constraints=[pw.SQL("DEFAULT 'default'")]
        )
        capabilities_json = pw.TextField(default="[]", constraints=[pw.SQL("DEFAULT '[]'")])
        entrypoint = pw.TextField(null=True)
        version = pw.TextField(null=True)
        description = pw.TextField(null=True)
        approver = pw.TextField(null=True)
        status = pw.TextField(
            default="active",
            constraints=[
                pw.SQL("DEFAULT 'active'"),
                pw.Check(""""status" IN ('active', 'inactive')"""),
            ],
        )
        last_seen_at = pw.TextField(null=True)
        last_seen_event = pw.TextField(null=True)
        registered_at = pw.TextField(index=True)
        updated_at = pw.TextField()

        class Meta:
            table_name = "agents"

    @migrator.create_model
    class AgentDenial(pw.Model):
        id = pw.CharField(max_length=26, primary_key=True)
        path = pw.TextField(unique=True)
        reason = pw.TextField(null=True)
        denier = pw.TextField(null=True)
        created_at = pw.TextField()

        class Meta:
            table_name = "agent_denials"

    @migrator.create_model
    class PulseSchedule(pw.Model):
        id = pw.CharField(max_length=26, primary_key=True)
        name = pw.TextField()
        description = pw.TextField(null=True)
        cron = pw.TextField()
        timezone = pw.TextField(default="UTC", constraints=[pw.SQL("DEFAULT 'UTC'")])
        prompt = pw.TextField()
        cwd = pw.TextField(null=True)
        enabled = pw.BooleanField(
            default=True, constraints=[pw.SQL("DEFAULT TRUE" if postgres else "DEFAULT 1")]
        )
        max_runtime = pw.BigIntegerField(null=True)
        permission_mode = pw.TextField(
            default="acceptEdits", constraints=[pw.SQL("DEFAULT 'acceptEdits'")]
        )
        status = pw.TextField(
            default="active",
            constraints=[
                pw.SQL("DEFAULT 'active'"),
                pw.Check(""""status" IN ('active', 'paused', 'pending_approval')"""),
            ],
        )
        created_at = pw.TextField()
        updated_at = pw.TextField()

        class Meta:
            table_name = "pulse_schedules"

    @migrator.create_model
    class PulseRun(pw.Model):
        id = pw.CharField(max_length=26, primary_key=True)
        schedule = pw.ForeignKeyField(
            column_name="schedule_id",
            field="id",
            model=migrator.orm["pulse_schedules"],
            on_delete="CASCADE",
            index=False,
        )
        status = pw.TextField(
            constraints=[
                pw.Check(
                    """"status" IN ('running', 'completed', 'failed', 'cancelled', 'timeout')"""
                )
            ]
        )
        started_at = pw.TextField()
        finished_at = pw.TextField(null=True)
        duration_ms = pw.BigIntegerField(null=True)
        output = pw.TextField(null=True)
        error = pw.TextField(null=True)
        session_id = pw.TextField(null=True)
        trigger = pw.TextField(
            default="scheduled",
            constraints=[
                pw.SQL("DEFAULT 'scheduled'"),
                pw.Check(""""trigger" IN ('scheduled', 'manual', 'agent')"""),
            ],
        )
        created_at = pw.TextField(index=True)

        class Meta:
            table_name = "pulse_runs"
            indexes = [(("schedule", "created_at"), False), (("status",), False)]

    @migrator.create_model
    class RateLimitBucket(pw.Model):
        agent_id = pw.TextField()
        bucket_minute = pw.BigIntegerField()
        count = pw.BigIntegerField(default=0, constraints=[pw.SQL("DEFAULT 0")])

        class Meta:
            table_name = "rate_limit_buckets"
            primary_key = False

    RateLimitBucket.add_index(
        RateLimitBucket.agent_id,
        RateLimitBucket.bucket_minute,
        unique=True,
        name="idx_rate_limit_agent_minute",
    )

    @migrator.create_model
    class RelayMessage(pw.Model):
        id = pw.CharField(max_length=26, primary_key=True)
        subject = pw.TextField()
        endpoint_hash = pw.TextField()
        sender = pw.TextField(null=True)
        status = pw.TextField(
            default="pending",
            constraints=[
                pw.SQL("DEFAULT 'pending'"),
                pw.Check(""""status" IN ('pending', 'delivered', 'failed')"""),
            ],
        )
        expires_at = pw.TextField(index=True, null=True)
        payload = pw.TextField(null=True)
        metadata = pw.TextField(null=True)
        created_at = pw.TextField()

        class Meta:
            table_name = "relay_index"
            without_rowid = not postgres
            indexes = [
                (("subject", "created_at"), False),
                (("endpoint_hash", "created_at"), False),
                (("sender", "created_at"), False),
                (("subject", "id"), False),
                (("endpoint_hash", "id"), False),
                (("endpoint_hash", "status", "id"), False),
                (("sender", "id"), False),
                (("status", "id"), False),
            ]

    @migrator.create_model
    class RelayTrace(pw.Model):
        id = pw.CharField(max_length=26, primary_key=True)
        message_id = pw.TextField(unique=True)
        trace_id = pw.TextField(index=True)
        subject = pw.TextField(index=True)
        status = pw.TextField(
            index=True,
            constraints=[pw.Check(""""status" IN ('sent', 'delivered', 'failed', 'timeout')""")],
        )
        sent_at = pw.TextField(index=True)
        delivered_at = pw.TextField(null=True)
        processed_at = pw.TextField(null=True)
        error_message = pw.TextField(null=True)
        metadata = pw.TextField(null=True)

        class Meta:
            table_name = "relay_traces"


def rollback(migrator: Migrator, database: pw.Database, *, fake: bool = False) -> None:
    """Write your rollback migrations here."""
    migrator.remove_model("relay_traces")

    migrator.remove_model("relay_index")

    migrator.remove_model("rate_limit_buckets")

    migrator.remove_model("pulse_runs")

    migrator.remove_model("pulse_schedules")

    migrator.remove_model("agent_denials")

    migrator.remove_model("agents")
