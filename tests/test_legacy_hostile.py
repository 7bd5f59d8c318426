"""Importing the old databases: repeatable, and no bad value aborts it.

Old databases here are written with APSW, the SQLite copy dorkstore itself
uses in this process (the old tools' schemas, SPEC section 8), so that values
of every storage class can be planted.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import apsw
import peewee as pw
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dorkstore
from dorkstore.legacy import (
    AGENT_COLUMNS,
    RUN_COLUMNS,
    TRACE_COLUMNS,
    ImportReport,
    import_legacy,
    legacy_ulid,
)
from dorkstore.models import PulseSchedule
from tests.helpers import TABLES


def loose(table: str, columns: list[str]) -> str:
    """An old table with no types and no constraints: any value of any storage class fits."""
    return f'CREATE TABLE "{table}" ({", ".join(columns)});'


MESSAGE_COLUMNS = ["id", "subject", "sender", "endpoint_hash", "status", "created_at", "ttl"]
RUNS_SQL = loose("runs", RUN_COLUMNS)
RELAY_SQL = loose("messages", MESSAGE_COLUMNS) + loose("message_traces", TRACE_COLUMNS)
MESH_SQL = (
    loose("agents", AGENT_COLUMNS)
    + loose("denials", ["path", "strategy", "reason", "denied_by", "denied_at"])
    + loose("budget_counters", ["agent_id", "bucket_minute", "call_count"])
)

SCHEDULE = {
    "id": "6f1c2d3e-0000-4000-8000-0000000000aa",
    "name": "nightly",
    "prompt": "p",
    "cron": "0 2 * * *",
    "status": "active",
}
DEEP = "[" * 100_000 + "]" * 100_000


def counts(db: pw.Database) -> dict[str, int]:
    return {
        table: db.execute_sql(f'SELECT count(*) FROM "{table}"').fetchone()[0] for table in TABLES
    }


def old_database(path: Path, schema: str, rows: dict[str, list[tuple[Any, ...]]]) -> None:
    """Write an old database with APSW; any Python value becomes its SQLite storage class."""
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = apsw.Connection(str(path))
    connection.execute(schema)
    for table, values in rows.items():
        for row in values:
            marks = ", ".join("?" * len(row))
            connection.execute(f'INSERT INTO "{table}" VALUES ({marks})', row)
    connection.close()


def skipped_for(report: ImportReport, what: str) -> list[str]:
    return [why for label, why in report.skipped if label.startswith(what)]


# --- repeatable: ids are a function of the old row alone -------------------------------


def test_a_schedule_without_created_at_is_imported_once(db: pw.Database, tmp_path: Path) -> None:
    """Touching or editing schedules.json never makes a second 'nightly'."""
    path = tmp_path / "schedules.json"
    path.write_text(json.dumps([SCHEDULE]))
    first = import_legacy(tmp_path)
    os.utime(path, (2_000_000_000, 2_000_000_000))
    path.write_text(
        json.dumps([SCHEDULE | {"name": "nightly (edited)", "updatedAt": "2027-01-01Z"}])
    )
    second = import_legacy(tmp_path)
    assert 1 == counts(db)["pulse_schedules"]
    assert (1, 0) == (first.imported["pulse_schedules"], first.present["pulse_schedules"])
    assert (0, 1) == (second.imported["pulse_schedules"], second.present["pulse_schedules"])


def test_an_id_an_earlier_release_made_is_recognised(db: pw.Database, tmp_path: Path) -> None:
    """A schedule imported with a time part taken from the file's mtime is still present."""
    from datetime import UTC, datetime

    earlier = legacy_ulid(SCHEDULE["id"], datetime(2025, 6, 1, tzinfo=UTC))
    PulseSchedule.insert(
        id=earlier, name="nightly", cron="0 2 * * *", prompt="p",
        created_at="2025-06-01T00:00:00.000Z", updated_at="2025-06-01T00:00:00.000Z",
    ).execute()  # fmt: skip
    (tmp_path / "schedules.json").write_text(json.dumps([SCHEDULE]))
    old_database(
        tmp_path / "pulse.db",
        RUNS_SQL,
        {"runs": [("run-1", SCHEDULE["id"], "completed", None, None, 5, None, None, None,
                   "manual", "2026-01-01T00:00:00Z")]},
    )  # fmt: skip
    report = import_legacy(tmp_path)
    assert 1 == report.present["pulse_schedules"]
    assert [earlier] == [s.id for s in dorkstore.PulseStore().list_schedules()]
    assert [earlier] == [r.schedule_id for r in dorkstore.PulseStore().list_runs()]


# --- hostile values: skipped and reported, never an abort ---------------------------


def test_hostile_timestamps_and_numbers_skip_their_rows(db: pw.Database, tmp_path: Path) -> None:
    """Superscript digits, 4,301 digits and 2**70 skip their rows; the valid row is imported."""
    schedules = [
        SCHEDULE | {"id": "s-super", "createdAt": "²"},
        SCHEDULE | {"id": "s-long", "createdAt": "9" * 4301},
        SCHEDULE | {"id": "s-huge", "maxRuntime": 2**70},
        SCHEDULE | {"id": "s-ok", "createdAt": "2026-01-01T00:00:00Z"},
    ]
    (tmp_path / "schedules.json").write_text(json.dumps(schedules))
    report = import_legacy(tmp_path)
    assert 1 == report.imported["pulse_schedules"]
    assert 3 == len(skipped_for(report, "schedule"))


def test_hostile_relay_and_mesh_values_skip_their_rows(db: pw.Database, tmp_path: Path) -> None:
    """A BLOB span id, Infinity, deep JSON and a BLOB id skip their rows; the rest is imported."""
    good_trace = ("m-ok", "t", None, None, "s", None, None, "delivered", 1, None,
                  1768903200000, 1768903200150, None, None)  # fmt: skip
    old_database(
        tmp_path / "relay" / "index.db",
        RELAY_SQL,
        {
            "messages": [
                ("m-ok", "s", None, "ep", "new", "2026-01-01T00:00:00Z", None),
                (b"\x00blob", "s", None, "ep", "new", "2026-01-01T00:00:00Z", None),
            ],
            "message_traces": [
                good_trace,
                ("m-blob", "t", b"\xff\x00", *good_trace[3:]),
                ("m-inf", "t", None, None, "s", None, None, "delivered", float("inf"),
                 *good_trace[9:]),
            ],
        },
    )  # fmt: skip
    old_database(
        tmp_path / "mesh" / "mesh.db",
        MESH_SQL,
        {
            "agents": [
                ("a-ok", "a", None, "/a", "claude", "[]", "2026-01-01T00:00:00Z",
                 None, None, None, None),
                ("a-deep", "a", None, "/b", "claude", DEEP, "2026-01-01T00:00:00Z",
                 None, None, None, None),
            ],
            "denials": [],
            "budget_counters": [("a-ok", -5, 1), ("a-ok", 29_000_000, 2)],
        },
    )  # fmt: skip
    report = import_legacy(tmp_path)
    assert {"relay_index": 1, "relay_traces": 1, "agents": 1, "rate_limit_buckets": 1} == {
        table: count for table, count in report.imported.items() if count
    }
    assert 1 == len(skipped_for(report, "message"))
    assert 2 == len(skipped_for(report, "trace"))
    assert 1 == len(skipped_for(report, "agent"))
    assert 1 == len(skipped_for(report, "bucket"))
    stored = db.execute_sql("SELECT metadata FROM relay_traces").fetchall()
    assert all(value is None or json.loads(value) is not None for (value,) in stored)


def test_deeply_nested_schedules_json_is_reported(db: pw.Database, tmp_path: Path) -> None:
    """A schedules.json too deep to parse is reported; the rest of the import goes on."""
    (tmp_path / "schedules.json").write_text(DEEP)
    old_database(
        tmp_path / "mesh" / "mesh.db",
        MESH_SQL,
        {"denials": [("/x", "manual", None, None, None)]},
    )
    report = import_legacy(tmp_path)
    assert 1 == report.imported["agent_denials"]
    assert any("schedules.json" in label for label, _ in report.skipped)


# --- Hypothesis: any old values at all ---------------------------------------------------

ANY_VALUE = st.one_of(
    st.none(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.binary(max_size=8),
    st.sampled_from(["²", "2026-01-01T00:00:00Z", "1768903200000", "new", "cur", "[]", '["x"]',
                     "delivered", "processed", "/p", "ep", "NaN"]),
)  # fmt: skip
ROWS = st.lists(st.tuples(*[ANY_VALUE] * 14), max_size=6)
SCHEDULES = st.lists(
    st.dictionaries(
        st.sampled_from(["id", "name", "prompt", "cron", "createdAt", "updatedAt", "status",
                         "enabled", "maxRuntime", "timezone", "cwd", "permissionMode"]),
        st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=10),
                  st.lists(st.integers(), max_size=2)),
    ),
    max_size=5,
)  # fmt: skip


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(messages=ROWS, traces=ROWS, agents=ROWS, buckets=ROWS, schedules=SCHEDULES)
def test_any_old_values_are_imported_or_reported(
    tmp_path_factory: pytest.TempPathFactory,
    messages: list[tuple[Any, ...]],
    traces: list[tuple[Any, ...]],
    agents: list[tuple[Any, ...]],
    buckets: list[tuple[Any, ...]],
    schedules: list[dict[str, Any]],
) -> None:
    """Every old row is imported, present or reported; a second run adds nothing."""
    home = tmp_path_factory.mktemp("old")
    (home / "schedules.json").write_text(json.dumps(schedules))
    old_database(
        home / "relay" / "index.db",
        RELAY_SQL,
        {"messages": [row[:7] for row in messages], "message_traces": traces},
    )
    old_database(
        home / "mesh" / "mesh.db",
        MESH_SQL,
        {"agents": [row[:11] for row in agents], "denials": [],
         "budget_counters": [row[:3] for row in buckets]},
    )  # fmt: skip
    db = dorkstore.init_db(":memory:")
    try:
        first = import_legacy(home)
        seen = sum(first.imported.values()) + sum(first.present.values()) + len(first.skipped)
        assert seen >= len(messages) + len(traces) + len(agents) + len(buckets)
        before = counts(db)
        second = import_legacy(home)
        assert before == counts(db)
        assert 0 == sum(second.imported.values())
        for (text,) in db.execute_sql(
            "SELECT payload FROM relay_index UNION ALL SELECT metadata FROM relay_traces "
            "UNION ALL SELECT capabilities_json FROM agents"
        ).fetchall():
            assert text is None or json.loads(text, parse_constant=_refuse) is not None
    finally:
        dorkstore.close_db()


def _refuse(name: str) -> None:
    raise AssertionError(f"{name} stored as JSON")
