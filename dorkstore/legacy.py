"""Import the databases dorkstore replaces (SPEC section 8).

The old layout under DORK_HOME: ``schedules.json``, ``pulse.db`` (``runs``),
``relay/index.db`` (``messages``, ``message_traces``) and ``mesh/mesh.db``
(``agents``, ``denials``, ``budget_counters``). Any of them may be missing or
be at an older version of its own schema: columns are read if they exist.

- Old files are opened read-only (``mode=ro``) and never changed; no file is
  created beside them unless a ``-wal`` file already exists (see
  `dorkstore.sqlite_files.open_read_only`).
- The import streams: rows are read, checked and written in batches, each in
  its own short transaction holding the write lock, so a live server keeps
  writing beside it and memory stays flat however big the old files are.
- It is idempotent: a row whose key is already present is left alone and
  counted as present, so running it again adds nothing, and an interrupted
  import completes on the next run.
- Each row that cannot be imported (a bad value of any kind) is skipped and
  reported with its table, key and reason; the others are imported.
- Schedule and run ids that are not ULIDs become ULIDs whose random part is
  a hash of the old id and whose time part is the row's own recorded creation
  time (the epoch when it has none): a pure function of the old row, so runs
  keep pointing at their schedules and edits or ``touch`` change nothing. A
  schedule or run is present when a row with the same random part exists, so
  ids made by earlier releases (which took a missing time from the file's
  mtime) are recognised too.
- Old timestamps are ISO strings or epoch milliseconds; an ISO string without
  an offset is taken as UTC (the old tools wrote UTC).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any

import peewee as pw
from ulid import ULID

from dorkstore import sqlite_files
from dorkstore import validation as check
from dorkstore.backends import guarded, write_transaction
from dorkstore.db import default_path
from dorkstore.errors import ValidationError
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
from dorkstore.statements import StatementFamily, assign, const, slot
from dorkstore.timestamps import EPOCH, Clock, format_timestamp, parse_timestamp, utc_now

__all__ = ["ImportReport", "count_legacy_rows", "import_legacy", "legacy_ulid"]

#: Old rows per batch, and so per transaction (a few tens of milliseconds each).
BATCH = 5000
#: The random part of a ULID: its last 16 characters.
_RANDOM = slice(10, None)
_INTEGER = re.compile(r"-?[0-9]{1,19}")

OldDatabase = sqlite_files.ReadOnlyConnection
Progress = Callable[[int], None]


@dataclass
class ImportReport:
    """What `import_legacy` found: rows added and already present per table, and what it skipped."""

    imported: Counter[str] = field(default_factory=Counter)
    present: Counter[str] = field(default_factory=Counter)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def lines(self, *, each_skipped: bool = True) -> list[str]:
        """Return the report as lines for people; skipped rows one per line, or counted."""
        lines = [f"not found: {source}" for source in self.missing]
        for table in sorted(self.imported.keys() | self.present.keys()):
            lines.append(
                f"{table}: imported {self.imported[table]}, already present {self.present[table]}"
            )
        if each_skipped:
            lines += [f"skipped {what}: {why}" for what, why in self.skipped]
        elif self.skipped:
            lines.append(f"skipped {len(self.skipped)} rows or files (-v names each, and why)")
        return lines or ["nothing to import"]

    def as_dict(self) -> dict[str, Any]:
        """Return the report as plain data, for JSON."""
        return {
            "imported": dict(sorted(self.imported.items())),
            "present": dict(sorted(self.present.items())),
            "skipped": [{"what": what, "why": why} for what, why in self.skipped],
            "missing": list(self.missing),
        }


class _SkipError(Exception):
    """An old row that cannot be imported; the message says why."""


def legacy_ulid(old_id: str, created: datetime | None) -> str:
    """Return `old_id` if it is a ULID, else a ULID of `created` (or the epoch) and a hash of it."""
    try:
        return str(ULID.from_str(old_id))
    except ValueError:
        pass
    milliseconds = 0 if created is None else (created - EPOCH) // timedelta(milliseconds=1)
    milliseconds = min(max(milliseconds, 0), 2**48 - 1)
    randomness = hashlib.sha256(old_id.encode("utf-8", "surrogatepass")).digest()[:10]
    return str(ULID.from_bytes(milliseconds.to_bytes(6, "big") + randomness))


@guarded
def import_legacy(
    source: str | os.PathLike[str] | None = None,
    *,
    clock: Clock | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Copy the old databases under `source` (default: DORK_HOME) into `dorkstore.database`.

    `clock` (default: the real clock) dates the rows the old databases left
    undated (a denial without ``denied_at``). `progress`, if given, is called
    with the number of old rows each batch handled (`count_legacy_rows` is the
    total). Returns the report; raises DatabaseError when an old file is not a
    readable SQLite database, and ValidationError when `source` is not a directory.
    """
    home = _home(source)
    job = _Job(ImportReport(), format_timestamp((clock or utc_now)()), progress)
    schedule_ids = _import_schedules(job, home / "schedules.json")
    with _old_database(home / "pulse.db", job.report) as pulse:
        if pulse:
            _import_runs(job, pulse, schedule_ids)
    with _old_database(home / "relay" / "index.db", job.report) as relay:
        if relay:
            _import_messages(job, relay)
            _import_traces(job, relay)
    with _old_database(home / "mesh" / "mesh.db", job.report) as mesh:
        if mesh:
            _import_agents(job, mesh)
            _import_denials(job, mesh)
            _import_buckets(job, mesh)
    return job.report


@guarded
def count_legacy_rows(source: str | os.PathLike[str] | None = None) -> int:
    """Return how many old rows `import_legacy(source)` would read (for a progress bar)."""
    home = _home(source)
    total = len(_read_schedules(home / "schedules.json", ImportReport()))
    for path, tables in _OLD_TABLES.items():
        with _old_database(home / path, ImportReport()) as old:
            if old:
                total += sum(sqlite_files.count_rows(old, table) for table in tables)
    return total


_OLD_TABLES = {
    "pulse.db": ("runs",),
    "relay/index.db": ("messages", "message_traces"),
    "mesh/mesh.db": ("agents", "denials", "budget_counters"),
}


def _home(source: str | os.PathLike[str] | None) -> Path:
    home = Path(check.canonical_path(source, "source")) if source else default_path().parent
    if not home.is_dir():
        raise ValidationError(f"{home} is not a directory")
    return home


# --- reading the old files ------------------------------------------------------------


@contextmanager
def _old_database(path: Path, report: ImportReport) -> Iterator[OldDatabase | None]:
    """Yield an old SQLite file opened read-only, or None (and report it) if it is missing."""
    if not path.is_file():
        report.missing.append(str(path))
        yield None
        return
    with sqlite_files.read_only(path) as connection:
        yield connection


def _time(value: object, name: str) -> str | None:
    """Normalise an old timestamp: ISO (no offset means UTC), epoch ms, or None."""
    if value is None or value == "":
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and _INTEGER.fullmatch(value):
        value = int(value)
    try:
        if isinstance(value, str):
            moment = datetime.fromisoformat(check.text(value, name))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            return format_timestamp(moment)
        return parse_timestamp(value, name, epoch_ms=True)
    except (ValueError, OverflowError) as exc:  # ValidationError is a ValueError
        raise _SkipError(f"{name} {_shown(value)} is not a timestamp") from exc


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


def _count(value: object, name: str) -> int | None:
    """Return a non-negative 64-bit int, None for None; a bool or anything else is skipped."""
    if value is None:
        return None
    try:
        return check.integer(value, name, minimum=0)
    except ValidationError as exc:
        raise _SkipError(str(exc)) from exc


def _shown(value: object) -> str:
    """Return a short repr of a hostile value, for a report line."""
    shown = repr(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."


# --- writing, in batches ------------------------------------------------------------------

#: Inserts every given column; a row a unique key refuses is left out (ON CONFLICT DO
#: NOTHING, unlike OR IGNORE, still fails on a NOT NULL or CHECK violation).
INSERT_NEW = StatementFamily(
    lambda shape: shape[0].insert(assign(shape[0], shape[1])).on_conflict(action="NOTHING")
)


def _existing_keys(shape: tuple[type[pw.Model], tuple[str, ...], int]) -> pw.Node:
    """SELECT the key columns of the rows whose key is one of `count` slots."""
    model, names, count = shape
    columns = [model._meta.columns[name] for name in names]
    if len(columns) == 1:
        wanted = columns[0].in_([slot(f"k{n}") for n in range(count)])
    else:
        wanted = pw.Tuple(*columns).in_(
            [pw.Tuple(*(slot(f"k{n}_{i}") for i in range(len(columns)))) for n in range(count)]
        )
    return model.select(*columns).where(wanted)


EXISTING_KEYS = StatementFamily(_existing_keys)
#: Rows whose id ends with one of `count` random parts: a schedule or run imported before.
EXISTING_RANDOM_PARTS = StatementFamily(
    lambda shape: (
        shape[0]
        .select(shape[0].id)
        .where(pw.fn.SUBSTR(shape[0].id, const(11)).in_([slot(f"k{n}") for n in range(shape[1])]))
    )
)


@dataclass
class _Job:
    """One import: its report, the time it started and its progress callback."""

    report: ImportReport
    now: str
    progress: Progress | None


@dataclass
class _Table:
    """How one old table is imported: its key, how a row converts, where it goes."""

    model: type[pw.Model]
    what: str
    key: tuple[str, ...]
    #: Returns the key of an old row cheaply, before converting it (may raise _SkipError).
    key_of: Callable[[dict[str, Any]], tuple[Any, ...]]
    convert: Callable[[dict[str, Any]], dict[str, Any]]
    #: Another unique column may refuse a new row (two agents on one project_path).
    other_unique: bool = False
    #: Keys are random parts of ids, matched with SUBSTR (schedules and runs).
    by_random_part: bool = False


def _stream(
    job: _Job, table: _Table, rows: Iterable[dict[str, Any]], *, remember: bool = False
) -> dict[tuple[Any, ...], str]:
    """Import `rows` batch by batch, one transaction each.

    With `remember`, return key -> stored id of every row imported or present
    (schedules: their runs need the ids); otherwise nothing is kept, so memory
    does not grow with the old table.
    """
    stored: dict[tuple[Any, ...], str] = {}
    iterator = iter(rows)
    while batch := list(islice(iterator, BATCH)):
        with write_transaction():
            kept = _import_batch(job.report, table, batch)
        if remember:
            stored |= kept
        if job.progress:
            job.progress(len(batch))
    return stored


def _import_batch(
    report: ImportReport, table: _Table, batch: list[dict[str, Any]]
) -> dict[tuple[Any, ...], str]:
    """Import one batch of old rows; return key -> id of each imported or present row."""
    name = table.model._meta.table_name
    keyed: dict[tuple[Any, ...], dict[str, Any]] = {}
    for old in batch:
        try:
            key = table.key_of(old)
        except _SkipError as exc:
            report.skipped.append((f"{table.what} {_label(old, table)}", str(exc)))
            continue
        if key in keyed:
            report.skipped.append(
                (f"{table.what} {_label(old, table)}", "the old database holds it twice; "
                 "the first was imported")
            )  # fmt: skip
            continue
        keyed[key] = old
    present = _present(table, list(keyed))
    report.present[name] += len(present)
    rows: dict[tuple[Any, ...], dict[str, Any]] = {}
    for key, old in keyed.items():
        if key in present:
            continue
        try:
            rows[key] = _converted(table, old)
        except _SkipError as exc:
            report.skipped.append((f"{table.what} {_label(old, table)}", str(exc)))
    if rows:
        columns = tuple(next(iter(rows.values())))
        INSERT_NEW[(table.model, columns)].many(rows.values())
    inserted = set(rows)
    if table.other_unique and rows:
        inserted = set(_present(table, list(rows)))
        for key in rows.keys() - inserted:
            report.skipped.append((f"{table.what} {_label(keyed[key], table)}", _clash(rows[key])))
    report.imported[name] += len(inserted)
    return present | {key: rows[key].get("id", "") for key in inserted}


def _converted(table: _Table, old: dict[str, Any]) -> dict[str, Any]:
    """Convert an old row; any bad value (a type, a size, a depth) is a _SkipError."""
    try:
        return table.convert(old)
    except _SkipError:
        raise
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise _SkipError(f"{type(exc).__name__}: {exc}") from exc


def _present(table: _Table, keys: list[tuple[Any, ...]]) -> dict[tuple[Any, ...], str]:
    """Return key -> stored id (or "") for the keys already in the table."""
    if not keys:
        return {}
    if table.by_random_part:
        values = {f"k{n}": key[0] for n, key in enumerate(keys)}
        found = EXISTING_RANDOM_PARTS[(table.model, len(keys))].all(**values)
        return {(row["id"][_RANDOM],): row["id"] for row in found}
    if len(table.key) == 1:
        values = {f"k{n}": key[0] for n, key in enumerate(keys)}
    else:
        values = {f"k{n}_{i}": part for n, key in enumerate(keys) for i, part in enumerate(key)}
    found = EXISTING_KEYS[(table.model, table.key, len(keys))].all(**values)
    return {tuple(row[name] for name in table.key): "" for row in found}


def _label(old: dict[str, Any], table: _Table) -> str:
    return _shown(old.get(table.key[0]))


def _clash(row: dict[str, Any]) -> str:
    if "project_path" in row:
        return f"project_path {row['project_path']!r} belongs to another agent"
    return "another row already holds one of its unique values"


def _random_part(old_id: object) -> tuple[str]:
    """Return the key of a schedule or run: the random part of the ULID its old id maps to."""
    return (legacy_ulid(_text(old_id, "id"), None)[_RANDOM],)


def _stored_id(row_id: str, created: str | None) -> str:
    return legacy_ulid(row_id, None if created is None else datetime.fromisoformat(created))


# --- the tables -------------------------------------------------------------------------


def _read_schedules(path: Path, report: ImportReport) -> list[Any]:
    """Return schedules.json's array; report the file and return [] when it cannot be used."""
    if not path.is_file():
        report.missing.append(str(path))
        return []
    try:
        schedules = json.loads(path.read_bytes(), parse_constant=_refuse_constant)
    except (OSError, ValueError, RecursionError) as exc:
        report.skipped.append((str(path), f"cannot read it: {type(exc).__name__}: {exc}"))
        return []
    if not isinstance(schedules, list):
        report.skipped.append((str(path), "it does not hold a JSON array of schedules"))
        return []
    return schedules


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _import_schedules(job: _Job, path: Path) -> dict[str, str]:
    """Import schedules.json; return old id -> stored id for every schedule kept."""
    rows = [
        old if isinstance(old, dict) else {"id": None, "not an object": old}
        for old in _read_schedules(path, job.report)
    ]

    def key_of(old: dict[str, Any]) -> tuple[str]:
        if "not an object" in old:
            raise _SkipError("not a JSON object")
        return _random_part(old.get("id"))

    table = _Table(PulseSchedule, "schedule", ("id",), key_of, _schedule, by_random_part=True)
    stored = _stream(job, table, rows, remember=True)
    return {
        old["id"]: stored[key]
        for old in rows
        if isinstance(old.get("id"), str)
        and (key := (legacy_ulid(old["id"], None)[_RANDOM],)) in stored
    }


def _schedule(old: dict[str, Any]) -> dict[str, Any]:
    created = _time(old.get("createdAt"), "createdAt")
    status = old.get("status") or "active"
    if status not in SCHEDULE_STATUSES:
        raise _SkipError(f"status {_shown(status)} is unknown")
    enabled = old.get("enabled", True)
    if not isinstance(enabled, bool | int) or enabled not in (True, False, 0, 1):
        raise _SkipError(f"enabled {_shown(enabled)} is not a boolean")
    updated = _time(old.get("updatedAt"), "updatedAt")
    stamp = created or updated or format_timestamp(EPOCH)
    return {
        "id": _stored_id(_text(old.get("id"), "id"), created),
        "name": _text(old.get("name"), "name"),
        "description": _optional_text(old.get("description"), "description"),
        "cron": _text(old.get("cron"), "cron"),
        "timezone": _optional_text(old.get("timezone"), "timezone") or "UTC",
        "prompt": _text(old.get("prompt"), "prompt"),
        "cwd": _optional_text(old.get("cwd"), "cwd"),
        "enabled": bool(enabled),
        "max_runtime": _count(old.get("maxRuntime"), "maxRuntime"),
        "permission_mode": _optional_text(old.get("permissionMode"), "permissionMode")
        or "acceptEdits",
        "status": status,
        "created_at": stamp,
        "updated_at": updated or stamp,
    }


RUN_COLUMNS = [
    "id", "schedule_id", "status", "started_at", "finished_at", "duration_ms", "output_summary",
    "error", "session_id", "trigger", "created_at",
]  # fmt: skip


def _import_runs(job: _Job, pulse: OldDatabase, schedule_ids: dict[str, str]) -> None:
    def convert(old: dict[str, Any]) -> dict[str, Any]:
        schedule_id = schedule_ids.get(old["schedule_id"])
        if schedule_id is None:
            raise _SkipError(
                f"its schedule {_shown(old['schedule_id'])} is not in schedules.json or was skipped"
            )
        created = _required_time(old["created_at"] or old["started_at"], "created_at")
        status, trigger = old["status"], old["trigger"] or "scheduled"
        if status not in RUN_STATUSES:
            raise _SkipError(f"status {_shown(status)} is unknown")
        if trigger not in RUN_TRIGGERS:
            raise _SkipError(f"trigger {_shown(trigger)} is unknown")
        return {
            "id": _stored_id(_text(old["id"], "id"), created),
            "schedule_id": schedule_id,
            "status": status,
            "started_at": _time(old["started_at"], "started_at") or created,
            "finished_at": _time(old["finished_at"], "finished_at"),
            "duration_ms": _count(old["duration_ms"], "duration_ms"),
            "output": _optional_text(old["output_summary"], "output_summary"),
            "error": _optional_text(old["error"], "error"),
            "session_id": _optional_text(old["session_id"], "session_id"),
            "trigger": trigger,
            "created_at": created,
        }

    key_of = lambda old: _random_part(old["id"])  # noqa: E731
    table = _Table(PulseRun, "run", ("id",), key_of, convert, by_random_part=True)
    _stream(job, table, sqlite_files.read_table(pulse, "runs", RUN_COLUMNS))


def _import_messages(job: _Job, relay: OldDatabase) -> None:
    columns = ["id", "subject", "sender", "endpoint_hash", "status", "created_at", "ttl"]

    def convert(old: dict[str, Any]) -> dict[str, Any]:
        status = MAILDIR_STATUSES.get(old["status"]) if isinstance(old["status"], str) else None
        if status is None:
            raise _SkipError(f"status {_shown(old['status'])} is unknown")
        return {
            "id": old["id"],
            "subject": _text(old["subject"], "subject"),
            "endpoint_hash": _text(old["endpoint_hash"], "endpoint_hash"),
            "sender": _optional_text(old["sender"], "sender"),
            "status": status,
            "expires_at": _time(old["ttl"], "ttl") if old["ttl"] else None,
            "payload": None,
            "metadata": None,
            "created_at": _required_time(old["created_at"], "created_at"),
        }

    key_of = lambda old: (_text(old["id"], "id"),)  # noqa: E731
    table = _Table(RelayMessage, "message", ("id",), key_of, convert)
    _stream(job, table, sqlite_files.read_table(relay, "messages", columns))


TRACE_COLUMNS = [
    "message_id", "trace_id", "span_id", "parent_span_id", "subject", "from_endpoint",
    "to_endpoint", "status", "budget_hops_used", "budget_ttl_remaining_ms", "sent_at",
    "delivered_at", "processed_at", "error",
]  # fmt: skip
_TRACE_METADATA = TRACE_COLUMNS[2:4] + TRACE_COLUMNS[5:7] + TRACE_COLUMNS[8:10]


def _import_traces(job: _Job, relay: OldDatabase) -> None:
    def convert(old: dict[str, Any]) -> dict[str, Any]:
        status = old["status"]
        status = LEGACY_TRACE_STATUSES.get(status, status) if isinstance(status, str) else None
        if status not in TRACE_STATUSES:
            raise _SkipError(f"status {_shown(old['status'])} is unknown")
        message_id = old["message_id"]
        sent_at = _required_time(old["sent_at"], "sent_at")
        delivered_at = _time(old["delivered_at"], "delivered_at")
        # Columns the new table has no place for are kept as metadata, strict JSON only.
        metadata = {name: old[name] for name in _TRACE_METADATA if old[name] is not None}
        return {
            "id": legacy_ulid(f"trace:{message_id}", datetime.fromisoformat(sent_at)),
            "message_id": message_id,
            "trace_id": _text(old["trace_id"], "trace_id"),
            "subject": _text(old["subject"], "subject"),
            "status": status,
            "sent_at": sent_at,
            "delivered_at": delivered_at,
            # Stored as update_span stores it: the delivery metrics read it.
            "latency_ms": RelayTrace.latency(sent_at, delivered_at),
            "processed_at": _time(old["processed_at"], "processed_at"),
            "error_message": _optional_text(old["error"], "error"),
            "metadata": json.dumps(metadata, allow_nan=False) if metadata else None,
        }

    key_of = lambda old: (_text(old["message_id"], "message_id"),)  # noqa: E731
    table = _Table(RelayTrace, "trace", ("message_id",), key_of, convert)
    _stream(job, table, sqlite_files.read_table(relay, "message_traces", TRACE_COLUMNS))


AGENT_COLUMNS = [
    "id", "name", "description", "project_path", "runtime", "capabilities_json",
    "registered_at", "registered_by", "last_seen_at", "last_seen_event", "namespace",
]  # fmt: skip


def _import_agents(job: _Job, mesh: OldDatabase) -> None:
    def convert(old: dict[str, Any]) -> dict[str, Any]:
        registered = _required_time(old["registered_at"], "registered_at")
        try:
            decoded = json.loads(old["capabilities_json"] or "[]", parse_constant=_refuse_constant)
            capabilities = check.text_tuple(decoded, "capabilities")
        except (ValueError, TypeError, RecursionError) as exc:
            raise _SkipError(f"capabilities_json is not a JSON array of strings: {exc}") from exc
        return {
            "id": old["id"],
            "name": _text(old["name"], "name"),
            "runtime": _text(old["runtime"], "runtime"),
            "project_path": _text(old["project_path"], "project_path"),
            "namespace": _optional_text(old["namespace"], "namespace") or "default",
            "capabilities_json": json.dumps(capabilities),
            "entrypoint": None,
            "version": None,
            "description": _optional_text(old["description"], "description"),
            "approver": _optional_text(old["registered_by"], "registered_by"),
            "status": "active",
            "last_seen_at": _time(old["last_seen_at"], "last_seen_at"),
            "last_seen_event": _optional_text(old["last_seen_event"], "last_seen_event"),
            "registered_at": registered,
            "updated_at": registered,
        }

    key_of = lambda old: (_text(old["id"], "id"),)  # noqa: E731
    table = _Table(MeshAgent, "agent", ("id",), key_of, convert, other_unique=True)
    _stream(job, table, sqlite_files.read_table(mesh, "agents", AGENT_COLUMNS))


def _import_denials(job: _Job, mesh: OldDatabase) -> None:
    columns = ["path", "strategy", "reason", "denied_by", "denied_at"]

    def key_of(old: dict[str, Any]) -> tuple[str]:
        try:
            return (check.canonical_path(old["path"], "path"),)
        except ValidationError as exc:
            raise _SkipError(str(exc)) from exc

    def convert(old: dict[str, Any]) -> dict[str, Any]:
        (path,) = key_of(old)
        denied = _time(old["denied_at"], "denied_at")
        return {
            "id": legacy_ulid(f"denial:{path}", None if denied is None else
                              datetime.fromisoformat(denied)),
            "path": path,
            "reason": _optional_text(old["reason"], "reason"),
            "denier": _optional_text(old["denied_by"], "denied_by"),
            "created_at": denied or job.now,
        }  # fmt: skip

    table = _Table(AgentDenial, "denial", ("path",), key_of, convert)
    _stream(job, table, sqlite_files.read_table(mesh, "denials", columns))


def _import_buckets(job: _Job, mesh: OldDatabase) -> None:
    columns = ["agent_id", "bucket_minute", "call_count"]

    def key_of(old: dict[str, Any]) -> tuple[str, int]:
        agent_id, minute = _text(old["agent_id"], "agent_id"), old["bucket_minute"]
        if not isinstance(minute, int) or isinstance(minute, bool) or not 0 <= minute < 2**63:
            raise _SkipError(f"bucket_minute {_shown(minute)} is not a minute")
        return agent_id, minute

    def convert(old: dict[str, Any]) -> dict[str, Any]:
        agent_id, minute = key_of(old)
        count = _count(old["call_count"] or 0, "call_count")
        return {"agent_id": agent_id, "bucket_minute": minute, "count": count}

    table = _Table(RateLimitBucket, "bucket", ("agent_id", "bucket_minute"), key_of, convert)
    _stream(job, table, sqlite_files.read_table(mesh, "budget_counters", columns))
