"""Scheduler tables: schedules and their run history."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import peewee as pw

from dorkstore.models.base import BaseModel, enum_check, sql_default
from dorkstore.records import RUN_STATUSES, RUN_TRIGGERS, SCHEDULE_STATUSES, Run, Schedule

__all__ = ["PulseRun", "PulseSchedule"]


class PulseSchedule(BaseModel):
    """A cron schedule that starts agent runs."""

    id: pw.CharField[str] = pw.CharField(max_length=26, primary_key=True)
    name: pw.TextField[str] = pw.TextField()
    description: pw.TextField[str | None] = pw.TextField(null=True)
    cron: pw.TextField[str] = pw.TextField()
    timezone: pw.TextField[str] = pw.TextField(default="UTC", constraints=[sql_default("UTC")])
    prompt: pw.TextField[str] = pw.TextField()
    cwd: pw.TextField[str | None] = pw.TextField(null=True)
    enabled: pw.BooleanField[bool] = pw.BooleanField(default=True, constraints=[sql_default(1)])
    max_runtime: pw.BigIntegerField[int | None] = pw.BigIntegerField(null=True)
    permission_mode: pw.TextField[str] = pw.TextField(
        default="acceptEdits", constraints=[sql_default("acceptEdits")]
    )
    status: pw.TextField[str] = pw.TextField(
        default="active",
        constraints=[sql_default("active"), enum_check("status", SCHEDULE_STATUSES)],
    )
    created_at: pw.TextField[str] = pw.TextField()
    updated_at: pw.TextField[str] = pw.TextField()

    class Meta:
        table_name = "pulse_schedules"

    @staticmethod
    def to_record(row: Sequence[Any]) -> Schedule:
        """Return the record of a selected row (every column, in the record's field order)."""
        return Schedule(*row)


class PulseRun(BaseModel):
    """One execution of a schedule."""

    id: pw.CharField[str] = pw.CharField(max_length=26, primary_key=True)
    # index=False: the (schedule_id, created_at) index below serves lookups by schedule.
    schedule: pw.ForeignKeyField[PulseSchedule] = pw.ForeignKeyField(
        PulseSchedule,
        column_name="schedule_id",
        field="id",
        on_delete="CASCADE",
        index=False,
    )
    status: pw.TextField[str] = pw.TextField(constraints=[enum_check("status", RUN_STATUSES)])
    started_at: pw.TextField[str] = pw.TextField()
    finished_at: pw.TextField[str | None] = pw.TextField(null=True)
    duration_ms: pw.BigIntegerField[int | None] = pw.BigIntegerField(null=True)
    output: pw.TextField[str | None] = pw.TextField(null=True)
    error: pw.TextField[str | None] = pw.TextField(null=True)
    session_id: pw.TextField[str | None] = pw.TextField(null=True)
    trigger: pw.TextField[str] = pw.TextField(
        default="scheduled",
        constraints=[sql_default("scheduled"), enum_check("trigger", RUN_TRIGGERS)],
    )
    created_at: pw.TextField[str] = pw.TextField(index=True)

    class Meta:
        table_name = "pulse_runs"
        indexes: tuple[tuple[tuple[str, ...], bool], ...] = (
            (("schedule", "created_at"), False),
            (("status",), False),
        )

    @staticmethod
    def to_record(row: Sequence[Any]) -> Run:
        """Return the record of a selected row (every column, in the record's field order)."""
        return Run(*row)
