"""Import the databases dorkstore replaces (SPEC section 8).

The old layout under DORK_HOME: ``schedules.json``, ``pulse.db`` (``runs``),
``relay/index.db`` (``messages``, ``message_traces``) and ``mesh/mesh.db``
(``agents``, ``denials``, ``budget_counters``). Any of them may be missing or
be at an older version of its own schema: columns are read if they exist.

- Old files are opened read-only (``mode=ro``) and never changed; no file is
  created beside them unless a ``-wal`` file already exists (see
  `dorkstore.sqlite_files.open_read_only`).
- Everything is imported in one transaction: a failure or a kill imports nothing.
- Rows whose key is already present are left alone, so a second import adds
  nothing; the report counts them as present.
- Schedule and run ids that are not ULIDs become ULIDs whose time part is the
  row's creation time and whose random part is derived from the old id, so the
  mapping is deterministic and runs keep pointing at their schedules.
- Old timestamps are ISO strings or epoch milliseconds; an ISO string without
  an offset is taken as UTC (the old tools wrote UTC).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import peewee as pw
from ulid import ULID

from dorkstore import sqlite_files
from dorkstore import validation as check
from dorkstore.backends import guarded, write_transaction
from dorkstore.db import default_path
from dorkstore.errors import DatabaseError, ValidationError
from dorkstore.models import (
    AgentDenial,
    MeshAgent,
    PulseRun,
    PulseSchedule,
    RateLimitBucket,
    RelayMessage,
    RelayTrace,
)
from dorkstore.records import (
    LEGACY_TRACE_STATUSES,
    MAILDIR_STATUSES,
    RUN_STATUSES,
    RUN_TRIGGERS,
    SCHEDULE_STATUSES,
    TRACE_STATUSES,
)
from dorkstore.timestamps import EPOCH, Clock, format_timestamp, parse_timestamp, utc_now

__all__ = ["ImportReport", "import_legacy", "legacy_ulid"]

#: Rows per INSERT in the import.
_BATCH = 500


@dataclass
class ImportReport:
    """What `import_legacy` found: rows added and already present per table, and what it skipped."""

    imported: Counter[str] = field(default_factory=Counter)
    present: Counter[str] = field(default_factory=Counter)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """Return the report as lines for people."""
        lines = [f"not found: {source}" for source in self.missing]
        for table in sorted(self.imported.keys() | self.present.keys()):
            lines.append(
                f"{table}: imported {self.imported[table]}, already present {self.present[table]}"
            )
        lines += [f"skipped {what}: {why}" for what, why in self.skipped]
        return lines or ["nothing to import"]


class _SkipError(Exception):
    """An old row that cannot be imported; the message says why."""


def legacy_ulid(old_id: str, created: datetime) -> str:
    """Return `old_id` if it is a ULID, else a ULID made from `created` and a hash of `old_id`."""
    try:
        return str(ULID.from_str(old_id))
    except ValueError:
        pass
    milliseconds = (created - EPOCH) // timedelta(milliseconds=1)
    milliseconds = min(max(milliseconds, 0), 2**48 - 1)
    randomness = hashlib.sha256(old_id.encode("utf-8", "surrogatepass")).digest()[:10]
    return str(ULID.from_bytes(milliseconds.to_bytes(6, "big") + randomness))


@guarded
def import_legacy(
    source: str | os.PathLike[str] | None = None, *, clock: Clock | None = None
) -> ImportReport:
    """Copy the old databases under `source` (default: DORK_HOME) into `dorkstore.database`.

    `clock` (default: the real clock) dates a denial the old database did not
    date. Returns the report; raises DatabaseError when an old file is not a
    readable SQLite database, and ValidationError when `source` is not a directory.
    """
    home = Path(check.canonical_path(source, "source")) if source else default_path().parent
    if not home.is_dir():
        raise ValidationError(f"{home} is not a directory")
    report = ImportReport()
    now = format_timestamp((clock or utc_now)())
    with write_transaction():
        schedule_ids = _import_schedules(home / "schedules.json", report)
        with _old_database(home / "pulse.db", report) as pulse:
            if pulse:
                _import_runs(pulse, schedule_ids, report)
        with _old_database(home / "relay" / "index.db", report) as relay:
            if relay:
                _import_messages(relay, report)
                _import_traces(relay, report)
        with _old_database(home / "mesh" / "mesh.db", report) as mesh:
            if mesh:
                _import_agents(mesh, report)
                _import_denials(mesh, report, now)
                _import_buckets(mesh, report)
    return report


# --- reading the old files ------------------------------------------------------------

OldDatabase = sqlite_files.ReadOnlyConnection


@contextmanager
def _old_database(path: Path, report: ImportReport) -> Iterator[OldDatabase | None]:
    """Yield an old SQLite file opened read-only, or None (and report it) if it is missing."""
    if not path.is_file():
        report.missing.append(str(path))
        yield None
        return
    with sqlite_files.read_only(path) as connection:
        yield connection


def _rows(connection: OldDatabase, table: str, columns: list[str]) -> Iterator[dict[str, Any]]:
    return sqlite_files.read_table(connection, table, columns)


def _time(value: object, name: str) -> str | None:
    """Normalise an old timestamp: ISO (no offset means UTC), epoch ms, or None."""
    if value is None or value == "":
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.lstrip("-").isdigit():
        value = int(value)
    try:
        if isinstance(value, str):
            moment = datetime.fromisoformat(check.text(value, name))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            return format_timestamp(moment)
        return parse_timestamp(value, name, epoch_ms=True)
    except (ValueError, ValidationError) as exc:
        raise _SkipError(f"{name} {value!r} is not a timestamp") from exc


def _required_time(value: object, name: str) -> str:
    stamp = _time(value, name)
    if stamp is None:
        raise _SkipError(f"{name} is missing")
    return stamp


def _text(value: object, name: str) -> str:
    try:
        return check.text(value, name)
    except ValidationError as exc:
        raise _SkipError(str(exc)) from exc


def _optional_text(value: object, name: str) -> str | None:
    try:
        return check.optional_text(value, name)
    except ValidationError as exc:
        raise _SkipError(str(exc)) from exc


def _convert(
    rows: Iterator[dict[str, Any]],
    convert: Callable[[dict[str, Any]], dict[str, Any]],
    what: str,
    key: str,
    report: ImportReport,
) -> list[dict[str, Any]]:
    """Convert old rows, reporting each one that cannot be imported."""
    converted = []
    for row in rows:
        try:
            converted.append(convert(row))
        except _SkipError as exc:
            report.skipped.append((f"{what} {row.get(key)!r}", str(exc)))
    return converted


def _insert(
    model: type[pw.Model], rows: list[dict[str, Any]], report: ImportReport, what: str, key: str
) -> None:
    """Insert rows whose `key` is new; count them, those already present, and clashes.

    A row whose key exists is present (a second import). A row that another
    unique column refuses (two old agents on one project_path), or that repeats
    a key earlier in the same import, is skipped and reported, never dropped quietly.
    """
    table = model._meta.table_name
    names = key.split("+")
    columns = [getattr(model, name) for name in names]
    for start in range(0, len(rows), _BATCH):
        batch = rows[start : start + _BATCH]
        keys = [tuple(row[name] for name in names) for row in batch]
        before = _existing(columns, keys)
        model.insert_many(batch).on_conflict_ignore().execute()
        after = _existing(columns, keys)
        seen: set[tuple[Any, ...]] = set()
        for row, row_key in zip(batch, keys, strict=True):
            label = f"{what} {row_key[0] if len(row_key) == 1 else row_key!r}"
            if row_key in before:
                report.present[table] += 1
            elif row_key in seen or row_key not in after:
                report.skipped.append((label, _clash(model, row, row_key in seen)))
            else:
                report.imported[table] += 1
            seen.add(row_key)


def _existing(columns: list[pw.Field], keys: list[tuple[Any, ...]]) -> set[tuple[Any, ...]]:
    """Return which of `keys` (values of `columns`) are in the table."""
    model = columns[0].model
    target = columns[0] if len(columns) == 1 else pw.Tuple(*columns)
    values = [k[0] for k in keys] if len(columns) == 1 else [pw.Tuple(*k) for k in keys]
    found = model.select(*columns).where(target.in_(values)).tuples()
    return {tuple(row) for row in found}


def _clash(model: type[pw.Model], row: dict[str, Any], repeated: bool) -> str:
    if repeated:
        return "the old database holds it twice; the first was imported"
    if model is MeshAgent:
        return f"project_path {row['project_path']!r} belongs to another agent"
    return "another row already holds one of its unique values"


# --- the tables -------------------------------------------------------------------------


def _import_schedules(path: Path, report: ImportReport) -> dict[str, str]:
    """Import schedules.json; return old id -> new id for every schedule kept."""
    if not path.is_file():
        report.missing.append(str(path))
        return {}
    try:
        schedules = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise DatabaseError(f"cannot read {path}: {exc}") from exc
    if not isinstance(schedules, list):
        raise DatabaseError(f"{path} does not hold a JSON array of schedules")
    fallback = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    ids: dict[str, str] = {}

    def convert(old: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(old, dict):
            raise _SkipError("not a JSON object")
        old_id = _text(old.get("id"), "id")
        created = _time(old.get("createdAt"), "createdAt") or _time(
            old.get("updatedAt"), "updatedAt"
        )
        created = created or format_timestamp(fallback)
        status = old.get("status") or "active"
        if status not in SCHEDULE_STATUSES:
            raise _SkipError(f"status {status!r} is unknown")
        enabled = old.get("enabled", True)
        if enabled not in (True, False, 0, 1):
            raise _SkipError(f"enabled {enabled!r} is not a boolean")
        max_runtime = old.get("maxRuntime")
        if max_runtime is not None and (
            not isinstance(max_runtime, int) or isinstance(max_runtime, bool) or max_runtime < 0
        ):
            raise _SkipError(f"maxRuntime {max_runtime!r} is not milliseconds")
        new_id = legacy_ulid(old_id, datetime.fromisoformat(created))
        row = {
            "id": new_id,
            "name": _text(old.get("name"), "name"),
            "description": _optional_text(old.get("description"), "description"),
            "cron": _text(old.get("cron"), "cron"),
            "timezone": _optional_text(old.get("timezone"), "timezone") or "UTC",
            "prompt": _text(old.get("prompt"), "prompt"),
            "cwd": _optional_text(old.get("cwd"), "cwd"),
            "enabled": bool(enabled),
            "max_runtime": max_runtime,
            "permission_mode": _optional_text(old.get("permissionMode"), "permissionMode")
            or "acceptEdits",
            "status": status,
            "created_at": created,
            "updated_at": _time(old.get("updatedAt"), "updatedAt") or created,
        }
        # Only now that every field converted: a skipped schedule's runs must be skipped too.
        ids[old_id] = new_id
        return row

    rows = _convert(iter(schedules), convert, "schedule", "id", report)
    _insert(PulseSchedule, rows, report, "schedule", "id")
    return ids


RUN_COLUMNS = [
    "id", "schedule_id", "status", "started_at", "finished_at", "duration_ms", "output_summary",
    "error", "session_id", "trigger", "created_at",
]  # fmt: skip


def _import_runs(pulse: OldDatabase, schedule_ids: dict[str, str], report: ImportReport) -> None:
    def convert(old: dict[str, Any]) -> dict[str, Any]:
        schedule_id = schedule_ids.get(old["schedule_id"])
        if schedule_id is None:
            raise _SkipError(
                f"its schedule {old['schedule_id']!r} is not in schedules.json or was skipped"
            )
        created = _required_time(old["created_at"] or old["started_at"], "created_at")
        status, trigger = old["status"], old["trigger"] or "scheduled"
        if status not in RUN_STATUSES:
            raise _SkipError(f"status {status!r} is unknown")
        if trigger not in RUN_TRIGGERS:
            raise _SkipError(f"trigger {trigger!r} is unknown")
        duration = old["duration_ms"]
        if duration is not None and (not isinstance(duration, int) or duration < 0):
            raise _SkipError(f"duration_ms {duration!r} is not milliseconds")
        return {
            "id": legacy_ulid(_text(old["id"], "id"), datetime.fromisoformat(created)),
            "schedule": schedule_id,
            "status": status,
            "started_at": _time(old["started_at"], "started_at") or created,
            "finished_at": _time(old["finished_at"], "finished_at"),
            "duration_ms": duration,
            "output": _optional_text(old["output_summary"], "output_summary"),
            "error": _optional_text(old["error"], "error"),
            "session_id": _optional_text(old["session_id"], "session_id"),
            "trigger": trigger,
            "created_at": created,
        }

    rows = _convert(_rows(pulse, "runs", RUN_COLUMNS), convert, "run", "id", report)
    _insert(PulseRun, rows, report, "run", "id")


def _import_messages(relay: OldDatabase, report: ImportReport) -> None:
    columns = ["id", "subject", "sender", "endpoint_hash", "status", "created_at", "ttl"]

    def convert(old: dict[str, Any]) -> dict[str, Any]:
        status = MAILDIR_STATUSES.get(old["status"])
        if status is None:
            raise _SkipError(f"status {old['status']!r} is unknown")
        return {
            "id": _text(old["id"], "id"),
            "subject": _text(old["subject"], "subject"),
            "endpoint_hash": _text(old["endpoint_hash"], "endpoint_hash"),
            "sender": _optional_text(old["sender"], "sender"),
            "status": status,
            "expires_at": _time(old["ttl"], "ttl") if old["ttl"] else None,
            "created_at": _required_time(old["created_at"], "created_at"),
        }

    rows = _convert(_rows(relay, "messages", columns), convert, "message", "id", report)
    _insert(RelayMessage, rows, report, "message", "id")


TRACE_COLUMNS = [
    "message_id", "trace_id", "span_id", "parent_span_id", "subject", "from_endpoint",
    "to_endpoint", "status", "budget_hops_used", "budget_ttl_remaining_ms", "sent_at",
    "delivered_at", "processed_at", "error",
]  # fmt: skip
_TRACE_METADATA = TRACE_COLUMNS[2:4] + TRACE_COLUMNS[5:7] + TRACE_COLUMNS[8:10]


def _import_traces(relay: OldDatabase, report: ImportReport) -> None:
    def convert(old: dict[str, Any]) -> dict[str, Any]:
        status = LEGACY_TRACE_STATUSES.get(old["status"], old["status"])
        if status not in TRACE_STATUSES:
            raise _SkipError(f"status {old['status']!r} is unknown")
        message_id = _text(old["message_id"], "message_id")
        sent_at = _required_time(old["sent_at"], "sent_at")
        # Columns the new table has no place for are kept as metadata.
        metadata = {name: old[name] for name in _TRACE_METADATA if old[name] is not None}
        return {
            "id": legacy_ulid(f"trace:{message_id}", datetime.fromisoformat(sent_at)),
            "message_id": message_id,
            "trace_id": _text(old["trace_id"], "trace_id"),
            "subject": _text(old["subject"], "subject"),
            "status": status,
            "sent_at": sent_at,
            "delivered_at": _time(old["delivered_at"], "delivered_at"),
            "processed_at": _time(old["processed_at"], "processed_at"),
            "error_message": _optional_text(old["error"], "error"),
            "metadata": json.dumps(metadata) if metadata else None,
        }

    rows = _convert(
        _rows(relay, "message_traces", TRACE_COLUMNS), convert, "trace", "message_id", report
    )
    _insert(RelayTrace, rows, report, "trace", "message_id")


AGENT_COLUMNS = [
    "id", "name", "description", "project_path", "runtime", "capabilities_json",
    "registered_at", "registered_by", "last_seen_at", "last_seen_event", "namespace",
]  # fmt: skip


def _import_agents(mesh: OldDatabase, report: ImportReport) -> None:
    def convert(old: dict[str, Any]) -> dict[str, Any]:
        registered = _required_time(old["registered_at"], "registered_at")
        try:
            capabilities = check.text_tuple(
                json.loads(old["capabilities_json"] or "[]"), "capabilities"
            )
        except (ValueError, TypeError) as exc:
            raise _SkipError(f"capabilities_json is not a JSON array of strings: {exc}") from exc
        return {
            "id": _text(old["id"], "id"),
            "name": _text(old["name"], "name"),
            "runtime": _text(old["runtime"], "runtime"),
            "project_path": _text(old["project_path"], "project_path"),
            "namespace": _optional_text(old["namespace"], "namespace") or "default",
            "capabilities_json": json.dumps(capabilities),
            "description": _optional_text(old["description"], "description"),
            "approver": _optional_text(old["registered_by"], "registered_by"),
            "status": "active",
            "last_seen_at": _time(old["last_seen_at"], "last_seen_at"),
            "last_seen_event": _optional_text(old["last_seen_event"], "last_seen_event"),
            "registered_at": registered,
            "updated_at": registered,
        }

    rows = _convert(_rows(mesh, "agents", AGENT_COLUMNS), convert, "agent", "id", report)
    _insert(MeshAgent, rows, report, "agent", "id")


def _import_denials(mesh: OldDatabase, report: ImportReport, now: str) -> None:
    columns = ["path", "strategy", "reason", "denied_by", "denied_at"]

    def convert(old: dict[str, Any]) -> dict[str, Any]:
        try:
            path = check.canonical_path(old["path"], "path")
        except ValidationError as exc:
            raise _SkipError(str(exc)) from exc
        denied = _time(old["denied_at"], "denied_at") or now
        return {
            "id": legacy_ulid(f"denial:{path}", datetime.fromisoformat(denied)),
            "path": path,
            "reason": _optional_text(old["reason"], "reason"),
            "denier": _optional_text(old["denied_by"], "denied_by"),
            "created_at": denied,
        }

    rows = _convert(_rows(mesh, "denials", columns), convert, "denial", "path", report)
    _insert(AgentDenial, rows, report, "denial", "path")


def _import_buckets(mesh: OldDatabase, report: ImportReport) -> None:
    columns = ["agent_id", "bucket_minute", "call_count"]

    def convert(old: dict[str, Any]) -> dict[str, Any]:
        try:
            return {
                "agent_id": check.text(old["agent_id"], "agent_id"),
                "bucket_minute": check.integer(old["bucket_minute"], "bucket_minute", minimum=0),
                "count": check.integer(old["call_count"] or 0, "call_count", minimum=0),
            }
        except ValidationError as exc:
            raise _SkipError(str(exc)) from exc

    rows = _convert(_rows(mesh, "budget_counters", columns), convert, "bucket", "agent_id", report)
    _insert(RateLimitBucket, rows, report, "bucket", "agent_id+bucket_minute")
