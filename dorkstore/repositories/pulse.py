"""PulseStore: schedules and their run history."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import peewee as pw

from dorkstore import dialect
from dorkstore import validation as check
from dorkstore.errors import NotFoundError, ValidationError
from dorkstore.models.pulse import (
    RUN_STATUSES,
    RUN_TRIGGERS,
    SCHEDULE_STATUSES,
    PulseRun,
    PulseSchedule,
)
from dorkstore.repositories.base import (
    Repository,
    fetch_all,
    fetch_one,
    guarded,
    slot,
    write,
    write_transaction,
)
from dorkstore.timestamps import format_timestamp, parse_timestamp

__all__ = ["INTERRUPTED_ERROR", "PulseStore", "Run", "Schedule"]

#: The error `mark_running_as_failed` records on runs a restart interrupted.
INTERRUPTED_ERROR = "Interrupted by server restart"


@dataclass(frozen=True, slots=True)
class Schedule:
    """A cron schedule that starts agent runs."""

    id: str
    name: str
    description: str | None
    cron: str
    timezone: str
    prompt: str
    cwd: str | None
    enabled: bool
    max_runtime: int | None
    permission_mode: str
    status: str
    created_at: str
    updated_at: str


@dataclass(frozen=True, slots=True)
class Run:
    """One execution of a schedule."""

    id: str
    schedule_id: str
    status: str
    started_at: str
    finished_at: str | None
    duration_ms: int | None
    output: str | None
    error: str | None
    session_id: str | None
    trigger: str
    created_at: str


_SCHEDULE_FIELDS = [field.name for field in fields(Schedule)]
_RUN_FIELDS = [field.name for field in fields(Run)]
_ENABLED = _SCHEDULE_FIELDS.index("enabled")


def _column(model: type[pw.Model], name: str) -> pw.Field:
    """Return the model field of a record field (run.schedule_id is the `schedule` key)."""
    return PulseRun.schedule if (model, name) == (PulseRun, "schedule_id") else getattr(model, name)


_SCHEDULE_COLUMNS = [_column(PulseSchedule, name) for name in _SCHEDULE_FIELDS]
_RUN_COLUMNS = [_column(PulseRun, name) for name in _RUN_FIELDS]
_NEWEST_RUNS_FIRST = (PulseRun.created_at.desc(), PulseRun.id.desc())


def _schedule(row: tuple[Any, ...]) -> Schedule:
    values = list(row)
    values[_ENABLED] = bool(values[_ENABLED])  # stored as 0 or 1
    return Schedule(*values)


def _schedule_fields(changes: dict[str, Any]) -> dict[str, Any]:
    """Validate the mutable schedule fields in `changes`; return column values."""
    checkers: dict[str, Callable[[Any], Any]] = {
        "name": lambda v: check.text(v, "name"),
        "description": lambda v: check.optional_text(v, "description"),
        "cron": lambda v: check.text(v, "cron"),
        "timezone": lambda v: "UTC" if v is None else check.text(v, "timezone"),
        "prompt": lambda v: check.text(v, "prompt"),
        "cwd": lambda v: check.optional_path_text(v, "cwd"),
        "enabled": _boolean,
        "max_runtime": lambda v: None if v is None else check.integer(v, "max_runtime", minimum=0),
        "permission_mode": lambda v: check.text(v, "permission_mode"),
        "status": lambda v: check.choice(v, "status", SCHEDULE_STATUSES),
    }
    unknown = sorted(set(changes) - set(checkers))
    if unknown:
        raise ValidationError(
            f"cannot update {', '.join(unknown)}: schedules have {', '.join(checkers)}"
        )
    return {name: checkers[name](value) for name, value in changes.items()}


def _boolean(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(f"enabled must be a bool, got {type(value).__name__}")
    return value


def _insert(model: type[pw.Model], names: list[str]) -> Callable[[], pw.Node]:
    """Build an INSERT of every record field, each from the slot of its name."""
    return lambda: model.insert({_column(model, name): slot(name) for name in names})


class PulseStore(Repository):
    """Schedules and their runs. Missing rows are None from getters, False from deletes."""

    @guarded
    def list_schedules(self) -> list[Schedule]:
        """Return every schedule, oldest first."""
        found = fetch_all(
            "list_schedules",
            lambda: PulseSchedule.select(*_SCHEDULE_COLUMNS).order_by(
                PulseSchedule.created_at, PulseSchedule.id
            ),
        )
        return [_schedule(row) for row in found]

    @guarded
    def get_schedule(self, id: str) -> Schedule | None:
        """Return the schedule with this id, or None."""
        return self._schedule(check.text(id, "id"))

    @guarded
    def create_schedule(
        self,
        name: str,
        prompt: str,
        cron: str,
        *,
        description: str | None = None,
        timezone: str | None = "UTC",
        cwd: str | None = None,
        enabled: bool = True,
        max_runtime: int | None = None,
        permission_mode: str = "acceptEdits",
        status: str = "active",
    ) -> Schedule:
        """Create a schedule and return it; `timezone=None` means UTC."""
        fields = _schedule_fields(
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
            }
        )
        now = self._now()
        stamp = format_timestamp(now)
        record = Schedule(id=self._new_id(now), created_at=stamp, updated_at=stamp, **fields)
        write("create_schedule", _insert(PulseSchedule, _SCHEDULE_FIELDS), **_values(record))
        return record

    @guarded
    def update_schedule(self, id: str, /, **changes: Any) -> Schedule | None:
        """Change the given fields and move `updated_at`; return the schedule, or None.

        Raises ValidationError for a field a schedule does not have or may not change.
        """
        id = check.text(id, "id")
        fields = _schedule_fields(changes)
        fields["updated_at"] = self._now_text()
        names = tuple(sorted(fields))
        with write_transaction():
            updated = write(
                ("update_schedule", names),
                lambda: PulseSchedule.update(
                    {getattr(PulseSchedule, name): slot(name) for name in names}
                ).where(PulseSchedule.id == slot("id")),
                id=id,
                **fields,
            )
            return self._schedule(id) if updated else None

    @guarded
    def delete_schedule(self, id: str) -> bool:
        """Delete a schedule and, in the same statement, its runs; False if it did not exist."""
        # ON DELETE CASCADE removes the runs atomically.
        return bool(
            write(
                "delete_schedule",
                lambda: PulseSchedule.delete().where(PulseSchedule.id == slot("id")),
                id=check.text(id, "id"),
            )
        )

    @guarded
    def create_run(self, schedule_id: str, trigger: str = "scheduled") -> Run:
        """Start a run (status 'running'). Raises NotFoundError for an unknown schedule."""
        schedule_id = check.text(schedule_id, "schedule_id")
        trigger = check.choice(trigger, "trigger", RUN_TRIGGERS)
        now = self._now()
        stamp = format_timestamp(now)
        record = Run(
            id=self._new_id(now),
            schedule_id=schedule_id,
            status="running",
            started_at=stamp,
            finished_at=None,
            duration_ms=None,
            output=None,
            error=None,
            session_id=None,
            trigger=trigger,
            created_at=stamp,
        )
        try:
            write("create_run", _insert(PulseRun, _RUN_FIELDS), **_values(record))
        except dialect.CONSTRAINT_ERRORS as exc:
            if dialect.constraint_kind(exc) != "foreign_key":
                raise
            raise NotFoundError(f"no schedule {schedule_id!r}") from exc
        return record

    @guarded
    def get_run(self, id: str) -> Run | None:
        """Return the run with this id, or None."""
        return self._run(check.text(id, "id"))

    @guarded
    def update_run(
        self,
        id: str,
        *,
        status: str | None = None,
        finished_at: object = None,
        duration_ms: int | None = None,
        output: str | None = None,
        error: str | None = None,
        session_id: str | None = None,
    ) -> Run | None:
        """Set the given fields (None keeps a field as it is); return the run, or None."""
        id = check.text(id, "id")
        fields: dict[str, Any] = {}
        if status is not None:
            fields["status"] = check.choice(status, "status", RUN_STATUSES)
        if finished_at is not None:
            fields["finished_at"] = parse_timestamp(finished_at, "finished_at")
        if duration_ms is not None:
            fields["duration_ms"] = check.integer(duration_ms, "duration_ms", minimum=0)
        for name, value in (("output", output), ("error", error), ("session_id", session_id)):
            if value is not None:
                fields[name] = check.text(value, name, empty=True)
        names = tuple(sorted(fields))
        with write_transaction():
            if names and not write(
                ("update_run", names),
                lambda: PulseRun.update({getattr(PulseRun, n): slot(n) for n in names}).where(
                    PulseRun.id == slot("id")
                ),
                id=id,
                **fields,
            ):
                return None
            return self._run(id)

    @guarded
    def list_runs(
        self,
        *,
        schedule_id: str | None = None,
        status: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[Run]:
        """Return runs newest first (created_at, then id, descending)."""
        values: dict[str, Any] = {
            "limit": check.integer(limit, "limit", minimum=1),
            "offset": check.integer(offset, "offset", minimum=0),
        }
        if schedule_id is not None:
            values["schedule_id"] = check.text(schedule_id, "schedule_id")
        if status is not None:
            values["status"] = check.choice(status, "status", RUN_STATUSES)
        shape = (schedule_id is not None, status is not None)

        def build() -> pw.Node:
            query = PulseRun.select(*_RUN_COLUMNS)
            if shape[0]:
                query = query.where(PulseRun.schedule == slot("schedule_id"))
            if shape[1]:
                query = query.where(PulseRun.status == slot("status"))
            return query.order_by(*_NEWEST_RUNS_FIRST).limit(slot("limit")).offset(slot("offset"))

        return [Run(*row) for row in fetch_all(("list_runs", shape), build, **values)]

    @guarded
    def get_running_runs(self) -> list[Run]:
        """Return every run whose status is 'running', newest first."""
        found = fetch_all(
            "get_running_runs",
            lambda: (
                PulseRun.select(*_RUN_COLUMNS)
                .where(PulseRun.status == "running")
                .order_by(*_NEWEST_RUNS_FIRST)
            ),
        )
        return [Run(*row) for row in found]

    @guarded
    def count_runs(self, schedule_id: str | None = None) -> int:
        """Return how many runs exist, of one schedule or of all."""
        count = pw.fn.COUNT(PulseRun.id)
        if schedule_id is None:
            row = fetch_one("count_runs", lambda: PulseRun.select(count))
        else:
            row = fetch_one(
                "count_schedule_runs",
                lambda: PulseRun.select(count).where(PulseRun.schedule == slot("schedule_id")),
                schedule_id=check.text(schedule_id, "schedule_id"),
            )
        return int(row[0]) if row else 0

    @guarded
    def prune_runs(self, schedule_id: str, retention_count: int) -> int:
        """Keep the newest `retention_count` runs of a schedule; return how many were deleted."""

        def build() -> pw.Node:
            keep = (
                PulseRun.select(PulseRun.id)
                .where(PulseRun.schedule == slot("schedule_id"))
                .order_by(*_NEWEST_RUNS_FIRST)
                .limit(slot("keep"))
            )
            return PulseRun.delete().where(
                (PulseRun.schedule == slot("schedule_id")) & PulseRun.id.not_in(keep)
            )

        return write(
            "prune_runs",
            build,
            schedule_id=check.text(schedule_id, "schedule_id"),
            keep=check.integer(retention_count, "retention_count", minimum=0),
        )

    @guarded
    def mark_running_as_failed(self) -> int:
        """Fail every running run, for crash recovery at start-up; return how many."""
        return write(
            "mark_running_as_failed",
            lambda: PulseRun.update(
                status="failed", finished_at=slot("now"), error=INTERRUPTED_ERROR
            ).where(PulseRun.status == "running"),
            now=self._now_text(),
        )

    def _schedule(self, id: str) -> Schedule | None:
        row = fetch_one(
            "get_schedule",
            lambda: PulseSchedule.select(*_SCHEDULE_COLUMNS).where(PulseSchedule.id == slot("id")),
            id=id,
        )
        return None if row is None else _schedule(row)

    def _run(self, id: str) -> Run | None:
        row = fetch_one(
            "get_run",
            lambda: PulseRun.select(*_RUN_COLUMNS).where(PulseRun.id == slot("id")),
            id=id,
        )
        return None if row is None else Run(*row)


def _values(record: Schedule | Run) -> dict[str, Any]:
    return {name: getattr(record, name) for name in type(record).__dataclass_fields__}
