"""PulseStore: schedules and their run history."""

from __future__ import annotations

import os
from dataclasses import asdict, fields
from datetime import datetime
from typing import Any, Never

import peewee as pw

from dorkstore import validation as check
from dorkstore.backends import classify, guarded, write_transaction
from dorkstore.errors import NotFoundError
from dorkstore.models.pulse import PulseRun, PulseSchedule
from dorkstore.records import (
    RUN_STATUSES,
    RUN_TRIGGERS,
    SCHEDULE_STATUSES,
    UNSET,
    PermissionMode,
    Run,
    RunStatus,
    RunTrigger,
    Schedule,
    ScheduleStatus,
    Unset,
)
from dorkstore.repositories.base import Repository
from dorkstore.statements import Statement, StatementFamily, assign, const, slot
from dorkstore.timestamps import format_timestamp, parse_timestamp

__all__ = ["INTERRUPTED_ERROR", "PulseStore"]

#: The error `mark_running_as_failed` records on runs a restart interrupted.
INTERRUPTED_ERROR = "Interrupted by server restart"

_SCHEDULE_NAMES = tuple(field.name for field in fields(Schedule))
_RUN_NAMES = tuple(field.name for field in fields(Run))
_SCHEDULE_COLUMNS = [PulseSchedule._meta.columns[name] for name in _SCHEDULE_NAMES]
_RUN_COLUMNS = [PulseRun._meta.columns[name] for name in _RUN_NAMES]
_NEWEST_RUNS_FIRST = (PulseRun.created_at.desc(), PulseRun.id.desc())

#: The schedule fields a caller may set, and how each is checked.
_SCHEDULE_CHECKS: dict[str, check.Checker] = {
    "name": lambda v: check.text(v, "name"),
    "description": lambda v: check.optional_text(v, "description"),
    "cron": lambda v: check.text(v, "cron"),
    "timezone": lambda v: "UTC" if v is None else check.text(v, "timezone"),
    "prompt": lambda v: check.text(v, "prompt"),
    "cwd": lambda v: check.optional_path_text(v, "cwd"),
    "enabled": lambda v: check.boolean(v, "enabled"),
    "max_runtime": lambda v: None if v is None else check.integer(v, "max_runtime", minimum=0),
    "permission_mode": lambda v: check.text(v, "permission_mode"),
    "status": lambda v: check.choice(v, "status", SCHEDULE_STATUSES),
}

LIST_SCHEDULES = Statement(
    lambda: PulseSchedule.select(*_SCHEDULE_COLUMNS).order_by(
        PulseSchedule.created_at, PulseSchedule.id
    ),
    into=PulseSchedule.to_record,
)
GET_SCHEDULE = Statement(
    lambda: PulseSchedule.select(*_SCHEDULE_COLUMNS).where(PulseSchedule.id == slot("id")),
    into=PulseSchedule.to_record,
)
INSERT_SCHEDULE = Statement(lambda: PulseSchedule.insert(assign(PulseSchedule, _SCHEDULE_NAMES)))
UPDATE_SCHEDULE = StatementFamily(
    lambda names: PulseSchedule.update(assign(PulseSchedule, names)).where(
        PulseSchedule.id == slot("id")
    )
)
# ON DELETE CASCADE removes the runs in the same statement.
DELETE_SCHEDULE = Statement(lambda: PulseSchedule.delete().where(PulseSchedule.id == slot("id")))
INSERT_RUN = Statement(lambda: PulseRun.insert(assign(PulseRun, _RUN_NAMES)))
GET_RUN = Statement(
    lambda: PulseRun.select(*_RUN_COLUMNS).where(PulseRun.id == slot("id")),
    into=PulseRun.to_record,
)
UPDATE_RUN = StatementFamily(
    lambda names: PulseRun.update(assign(PulseRun, names)).where(PulseRun.id == slot("id"))
)


def _list_runs(filters: tuple[str, ...]) -> pw.Node:
    query = PulseRun.select(*_RUN_COLUMNS)
    for name in filters:
        query = query.where(PulseRun._meta.columns[name] == slot(name))
    return query.order_by(*_NEWEST_RUNS_FIRST).limit(slot("limit")).offset(slot("offset"))


LIST_RUNS = StatementFamily(_list_runs, into=PulseRun.to_record)
RUNNING_RUNS = Statement(
    lambda: (
        PulseRun.select(*_RUN_COLUMNS)
        .where(PulseRun.status == const("running"))
        .order_by(*_NEWEST_RUNS_FIRST)
    ),
    into=PulseRun.to_record,
)
COUNT_RUNS = Statement(lambda: PulseRun.select(pw.fn.COUNT(PulseRun.id)))
COUNT_SCHEDULE_RUNS = Statement(
    lambda: PulseRun.select(pw.fn.COUNT(PulseRun.id)).where(
        PulseRun.schedule == slot("schedule_id")
    )
)


def _prune_runs() -> pw.Node:
    keep = (
        PulseRun.select(PulseRun.id)
        .where(PulseRun.schedule == slot("schedule_id"))
        .order_by(*_NEWEST_RUNS_FIRST)
        .limit(slot("keep"))
    )
    return PulseRun.delete().where(
        (PulseRun.schedule == slot("schedule_id")) & PulseRun.id.not_in(keep)
    )


PRUNE_RUNS = Statement(_prune_runs)
FAIL_RUNNING_RUNS = Statement(
    lambda: PulseRun.update(
        status=const("failed"), finished_at=slot("now"), error=const(INTERRUPTED_ERROR)
    ).where(PulseRun.status == const("running"))
)


class PulseStore(Repository):
    """Schedules and their runs. Missing rows are None from getters, False from deletes."""

    @guarded
    def list_schedules(self) -> list[Schedule]:
        """Return every schedule, oldest first."""
        return LIST_SCHEDULES.all()

    @guarded
    def get_schedule(self, id: str) -> Schedule | None:
        """Return the schedule with this id, or None."""
        return GET_SCHEDULE.one(id=check.text(id, "id"))

    @guarded
    def create_schedule(
        self,
        name: str,
        prompt: str,
        cron: str,
        *,
        description: str | None = None,
        timezone: str | None = "UTC",
        cwd: str | os.PathLike[str] | None = None,
        enabled: bool = True,
        max_runtime: int | None = None,
        permission_mode: PermissionMode = "acceptEdits",
        status: ScheduleStatus = "active",
    ) -> Schedule:
        """Create a schedule and return it; `timezone=None` means UTC.

        `permission_mode` is checked only for being a non-empty string: the
        schema leaves it open, so a mode newer than `PermissionMode` is stored too.
        """
        values = check.fields(
            {
                "name": name,
                "prompt": prompt,
                "cron": cron,
                "description": description,
                "timezone": timezone,
                "cwd": cwd,
                "enabled": enabled,
                "max_runtime": max_runtime,
                "permission_mode": permission_mode,
                "status": status,
            },
            _SCHEDULE_CHECKS,
            "schedules",
        )
        now = self._now()
        stamp = format_timestamp(now)
        schedule = Schedule(id=self._new_id(now), created_at=stamp, updated_at=stamp, **values)
        INSERT_SCHEDULE.run(**asdict(schedule))
        return schedule

    @guarded
    def update_schedule(
        self,
        id: str,
        /,
        *,
        name: str | Unset = UNSET,
        description: str | Unset | None = UNSET,
        cron: str | Unset = UNSET,
        timezone: str | Unset | None = UNSET,
        prompt: str | Unset = UNSET,
        cwd: str | os.PathLike[str] | Unset | None = UNSET,
        enabled: bool | Unset = UNSET,
        max_runtime: int | Unset | None = UNSET,
        permission_mode: PermissionMode | Unset = UNSET,
        status: ScheduleStatus | Unset = UNSET,
        **unknown: Never,
    ) -> Schedule | None:
        """Change the given fields and move `updated_at`; return the schedule, or None.

        A field left `UNSET` keeps its value; None clears an optional field
        (`timezone=None` means UTC). Raises ValidationError for a field a
        schedule does not have or may not change (its type, ``Never``, makes
        that a type error too).
        """
        id = check.text(id, "id")
        changes = {
            "name": name,
            "description": description,
            "cron": cron,
            "timezone": timezone,
            "prompt": prompt,
            "cwd": cwd,
            "enabled": enabled,
            "max_runtime": max_runtime,
            "permission_mode": permission_mode,
            "status": status,
        }
        given = {field: value for field, value in changes.items() if value is not UNSET}
        values = check.fields(given | unknown, _SCHEDULE_CHECKS, "schedules")
        values["updated_at"] = self._now_text()
        with write_transaction():
            if not UPDATE_SCHEDULE[tuple(sorted(values))].run(id=id, **values):
                return None
            return GET_SCHEDULE.one(id=id)

    @guarded
    def delete_schedule(self, id: str) -> bool:
        """Delete a schedule and, in the same statement, its runs; False if it did not exist."""
        return bool(DELETE_SCHEDULE.run(id=check.text(id, "id")))

    @guarded
    def create_run(self, schedule_id: str, trigger: RunTrigger = "scheduled") -> Run:
        """Start a run (status 'running'). Raises NotFoundError for an unknown schedule."""
        now = self._now()
        stamp = format_timestamp(now)
        run = Run(
            id=self._new_id(now),
            schedule_id=check.text(schedule_id, "schedule_id"),
            status="running",
            started_at=stamp,
            finished_at=None,
            duration_ms=None,
            output=None,
            error=None,
            session_id=None,
            trigger=check.choice(trigger, "trigger", RUN_TRIGGERS),
            created_at=stamp,
        )
        try:
            INSERT_RUN.run(**asdict(run))
        except pw.IntegrityError as exc:
            if classify(exc) != "foreign_key":
                raise
            raise NotFoundError(f"no schedule {schedule_id!r}") from exc
        return run

    @guarded
    def get_run(self, id: str) -> Run | None:
        """Return the run with this id, or None."""
        return GET_RUN.one(id=check.text(id, "id"))

    @guarded
    def update_run(
        self,
        id: str,
        *,
        status: RunStatus | None = None,
        finished_at: datetime | str | None = None,
        duration_ms: int | None = None,
        output: str | None = None,
        error: str | None = None,
        session_id: str | None = None,
    ) -> Run | None:
        """Set the given fields (None keeps a field as it is); return the run, or None."""
        id = check.text(id, "id")
        values: dict[str, Any] = {}
        if status is not None:
            values["status"] = check.choice(status, "status", RUN_STATUSES)
        if finished_at is not None:
            values["finished_at"] = parse_timestamp(finished_at, "finished_at")
        if duration_ms is not None:
            values["duration_ms"] = check.integer(duration_ms, "duration_ms", minimum=0)
        for name, value in (("output", output), ("error", error), ("session_id", session_id)):
            if value is not None:
                values[name] = check.text(value, name, empty=True)
        with write_transaction():
            if values and not UPDATE_RUN[tuple(sorted(values))].run(id=id, **values):
                return None
            return GET_RUN.one(id=id)

    @guarded
    def list_runs(
        self,
        *,
        schedule_id: str | None = None,
        status: RunStatus | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[Run]:
        """Return runs newest first (created_at, then id, descending)."""
        filters: dict[str, str] = {}
        if schedule_id is not None:
            filters["schedule_id"] = check.text(schedule_id, "schedule_id")
        if status is not None:
            filters["status"] = check.choice(status, "status", RUN_STATUSES)
        return LIST_RUNS[tuple(filters)].all(
            limit=check.integer(limit, "limit", minimum=1),
            offset=check.integer(offset, "offset", minimum=0),
            **filters,
        )

    @guarded
    def get_running_runs(self) -> list[Run]:
        """Return every run whose status is 'running', newest first."""
        return RUNNING_RUNS.all()

    @guarded
    def count_runs(self, schedule_id: str | None = None) -> int:
        """Return how many runs exist, of one schedule or of all."""
        if schedule_id is None:
            return int(COUNT_RUNS.scalar())
        return int(COUNT_SCHEDULE_RUNS.scalar(schedule_id=check.text(schedule_id, "schedule_id")))

    @guarded
    def prune_runs(self, schedule_id: str, retention_count: int) -> int:
        """Keep the newest `retention_count` runs of a schedule; return how many were deleted."""
        return PRUNE_RUNS.run(
            schedule_id=check.text(schedule_id, "schedule_id"),
            keep=check.integer(retention_count, "retention_count", minimum=0),
        )

    @guarded
    def mark_running_as_failed(self) -> int:
        """Fail every running run, for crash recovery at start-up; return how many."""
        return FAIL_RUNNING_RUNS.run(now=self._now_text())
