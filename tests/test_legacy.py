"""Importing the old databases (SPEC section 8): nothing lost, nothing touched, nothing twice."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import signal
from datetime import UTC, datetime
from pathlib import Path

import peewee as pw
import pytest
from ulid import ULID

import dorkstore
from dorkstore.legacy import import_legacy, legacy_ulid
from tests.helpers import TABLES, import_and_hang, inserts_fail, stdlib_sqlite
from tests.old_layout import SCHEDULE_A, SCHEDULE_B, build


def checksums(home: Path) -> dict[str, str]:
    """Every file under `home` and the SHA-256 of its bytes."""
    return {
        str(path.relative_to(home)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(home.rglob("*"))
        if path.is_file()
    }


def counts(db: pw.SqliteDatabase) -> dict[str, int]:
    return {
        table: db.execute_sql(f'SELECT count(*) FROM "{table}"').fetchone()[0] for table in TABLES
    }


def rows(db: pw.SqliteDatabase, sql: str) -> list[tuple[object, ...]]:
    return [tuple(row) for row in db.execute_sql(sql).fetchall()]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return build(tmp_path / "old-home")


def test_legacy_ulid_is_deterministic_with_the_creation_time() -> None:
    """A UUID maps to the same ULID every time, its time part the row's creation."""
    created = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    first = legacy_ulid(SCHEDULE_A, created)
    assert first == legacy_ulid(SCHEDULE_A, created)
    assert first != legacy_ulid(SCHEDULE_B, created)
    assert created == ULID.from_str(first).datetime
    assert "01KG0000000000000000000001" == legacy_ulid("01KG0000000000000000000001", created)


def test_schedules_are_imported_value_by_value(db: pw.SqliteDatabase, home: Path) -> None:
    """Every schedule field is converted; a null timezone becomes UTC, defaults fill the gaps."""
    import_legacy(home)
    a = legacy_ulid(SCHEDULE_A, datetime(2026, 1, 5, 10, tzinfo=UTC))
    b = legacy_ulid(SCHEDULE_B, datetime(2026, 1, 7, 7, tzinfo=UTC))
    schedules = {s.id: s for s in dorkstore.PulseStore().list_schedules()}
    assert 3 == len(schedules)
    assert (
        "nightly digest", "Summarise the day", "0 2 * * *", "Europe/Berlin", "/srv/app", True,
        600000, "bypassPermissions", "active",
        "2026-01-05T10:00:00.000Z", "2026-01-06T11:30:00.250Z",
    ) == (
        schedules[a].name, schedules[a].prompt, schedules[a].cron, schedules[a].timezone,
        schedules[a].cwd, schedules[a].enabled, schedules[a].max_runtime,
        schedules[a].permission_mode, schedules[a].status, schedules[a].created_at,
        schedules[a].updated_at,
    )  # fmt: skip
    assert ("UTC", None, False, None, "acceptEdits", "paused", "2026-01-07T07:00:00.000Z") == (
        schedules[b].timezone,
        schedules[b].cwd,
        schedules[b].enabled,
        schedules[b].max_runtime,
        schedules[b].permission_mode,
        schedules[b].status,
        schedules[b].created_at,
    )
    assert "pending_approval" in {s.status for s in schedules.values()}


def test_runs_keep_their_schedules_and_values(db: pw.SqliteDatabase, home: Path) -> None:
    """Run ids become ULIDs, schedule references follow, output_summary becomes output."""
    report = import_legacy(home)
    a = legacy_ulid(SCHEDULE_A, datetime(2026, 1, 5, 10, tzinfo=UTC))
    pulse = dorkstore.PulseStore()
    runs = {run.id: run for run in pulse.list_runs(limit=100)}
    assert 5 == len(runs)
    first = runs[legacy_ulid("run-1", datetime(2026, 1, 10, 2, tzinfo=UTC))]
    assert (
        a, "completed", "2026-01-10T02:00:00.000Z", "2026-01-10T02:01:00.000Z",
        60000, "done", "s-1", "scheduled",
    ) == (
        first.schedule_id, first.status, first.started_at, first.finished_at, first.duration_ms,
        first.output, first.session_id, first.trigger,
    )  # fmt: skip
    second = runs[legacy_ulid("run-2", datetime(2026, 1, 11, 2, tzinfo=UTC))]
    assert ("running", "manual", second.created_at) == (
        second.status,
        second.trigger,
        second.started_at,
    )
    assert {"running", "completed", "failed", "cancelled", "timeout"} == {
        r.status for r in runs.values()
    }
    assert {"scheduled", "manual", "agent"} == {r.trigger for r in runs.values()}
    assert 3 == pulse.count_runs(a)
    assert (
        "run 'run-orphan'",
        "its schedule 'deleted-schedule' is not in schedules.json or was skipped",
    ) in report.skipped


def test_relay_messages_and_traces_are_converted(db: pw.SqliteDatabase, home: Path) -> None:
    """Statuses map to the new names, epoch milliseconds become ISO text, ids are kept."""
    import_legacy(home)
    assert [
        ("01KG0000000000000000000001", "ep1", "agent-x", "pending", "2026-01-20T10:00:00.000Z"),
        ("01KG0000000000000000000002", "ep1", None, "delivered", None),
        ("01KG0000000000000000000003", "ep2", "agent-y", "failed", None),
    ] == rows(
        db, "SELECT id, endpoint_hash, sender, status, expires_at FROM relay_index ORDER BY id"
    )
    traces = dorkstore.TraceStore()
    assert ["sent", "delivered", "delivered", "failed", "timeout"] == [
        traces.get_span(f"01KG000000000000000000000{n}").status  # type: ignore[union-attr]
        for n in range(1, 6)
    ]
    processed = traces.get_span("01KG0000000000000000000003")
    assert processed is not None
    assert ("2026-01-20T10:00:00.000Z", "2026-01-20T10:00:00.020Z", "2026-01-20T10:00:00.090Z") == (
        processed.sent_at,
        processed.delivered_at,
        processed.processed_at,
    )
    failed = traces.get_span("01KG0000000000000000000004")
    assert failed is not None
    assert "no route" == failed.error_message
    second = traces.get_span("01KG0000000000000000000002")
    assert second is not None
    assert {
        "span_id": "span-2", "parent_span_id": "span-1", "from_endpoint": "ep1",
        "to_endpoint": "ep2", "budget_hops_used": 2, "budget_ttl_remaining_ms": 4000,
    } == second.metadata  # fmt: skip
    assert 150 == traces.get_metrics().p95_delivery_latency_ms


def test_mesh_agents_denials_and_buckets(db: pw.SqliteDatabase, home: Path) -> None:
    """registered_by becomes approver, an empty namespace 'default', call_count count."""
    import_legacy(home)
    agents = dorkstore.AgentRegistry()
    coder = agents.get("01KF00000000000000000000A1")
    helper = agents.get("01KF00000000000000000000A2")
    assert coder is not None
    assert helper is not None
    assert (
        "coder", "writes code", "/src/app", "claude-code", ("code", "review"), "alice", "team",
        "2026-01-02T00:00:00.000Z", "heartbeat",
    ) == (
        coder.name, coder.description, coder.project_path, coder.runtime, coder.capabilities,
        coder.approver, coder.namespace, coder.last_seen_at, coder.last_seen_event,
    )  # fmt: skip
    assert ("default", (), None) == (helper.namespace, helper.capabilities, helper.approver)
    (denial,) = dorkstore.DenialList().list()
    assert ("/secret/project", "holds keys", "bob", "2026-01-04T00:00:00.000Z") == (
        denial.path,
        denial.reason,
        denial.denier,
        denial.created_at,
    )
    assert [
        ("01KF00000000000000000000A1", 29_000_000, 7),
        ("01KF00000000000000000000A1", 29_000_001, 3),
    ] == rows(
        db, "SELECT agent_id, bucket_minute, count FROM rate_limit_buckets ORDER BY bucket_minute"
    )


def test_report_counts_what_was_imported(db: pw.SqliteDatabase, home: Path) -> None:
    """The report names each table's imported rows and the skipped ones."""
    report = import_legacy(home)
    assert {
        "pulse_schedules": 3, "pulse_runs": 5, "relay_index": 3, "relay_traces": 5,
        "agents": 2, "agent_denials": 1, "rate_limit_buckets": 2,
    } == dict(report.imported)  # fmt: skip
    assert [] == report.missing
    assert "pulse_runs: imported 5, already present 0" in report.lines()


def test_a_second_import_adds_nothing(db: pw.SqliteDatabase, home: Path) -> None:
    """Running the import twice leaves the database as the first run did."""
    first = import_legacy(home)
    before = counts(db)
    second = import_legacy(home)
    assert before == counts(db)
    assert 0 == sum(second.imported.values())
    assert dict(first.imported) == dict(second.present)


def test_old_files_are_never_changed(db: pw.SqliteDatabase, home: Path) -> None:
    """Every old file keeps its bytes, and no file appears or disappears beside them."""
    before = checksums(home)
    import_legacy(home)
    import_legacy(home)
    assert before == checksums(home)


def test_committed_rows_still_in_the_wal_are_imported(
    db: pw.SqliteDatabase, home: Path, tmp_path: Path
) -> None:
    """A relay index.db whose -wal holds un-checkpointed transactions is read whole."""
    snapshot = tmp_path / "snapshot"
    (snapshot / "relay").mkdir(parents=True)
    stdlib_sqlite(
        home / "relay" / "index.db",
        f"""
        import shutil
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        conn.execute(
            "INSERT INTO messages VALUES ('01KG0000000000000000000009', 'late', NULL, 'ep1',"
            " 'new', '2026-01-21T00:00:00Z', NULL)"
        )
        for suffix in ("", "-wal"):
            shutil.copy(sys.argv[1] + suffix, {str(snapshot / "relay" / "index.db")!r} + suffix)
        """,
    )
    before = checksums(snapshot)
    report = import_legacy(snapshot)
    assert 4 == report.imported["relay_index"]
    assert dorkstore.RelayIndex().get_message("01KG0000000000000000000009") is not None
    after = checksums(snapshot)
    assert before == {name: digest for name, digest in after.items() if not name.endswith("-shm")}


def test_older_schema_versions_are_tolerated(db: pw.SqliteDatabase, tmp_path: Path) -> None:
    """A mesh.db without namespace and a relay index.db without message_traces still import."""
    home = build(tmp_path / "older", old_mesh=True, old_relay=True)
    report = import_legacy(home)
    assert {"agents": 2, "relay_index": 3} == {
        t: report.imported[t] for t in ("agents", "relay_index")
    }
    assert 0 == report.imported["relay_traces"]
    assert {"default"} == {agent.namespace for agent in dorkstore.AgentRegistry().list()}


def test_missing_sources_are_reported_not_fatal(db: pw.SqliteDatabase, tmp_path: Path) -> None:
    """An empty DORK_HOME imports nothing and says which files it did not find."""
    report = import_legacy(tmp_path)
    assert 0 == sum(report.imported.values())
    assert {"schedules.json", "pulse.db", "index.db", "mesh.db"} == {
        Path(m).name for m in report.missing
    }


def clean_import_counts(tmp_path: Path, home: Path) -> dict[str, int]:
    """Row counts of an uninterrupted import of `home` into a new database."""
    reference = dorkstore.init_db(tmp_path / "reference.db")
    import_legacy(home)
    expected = counts(reference)
    dorkstore.close_db()
    return expected


def test_a_failure_midway_is_completed_by_the_next_run(
    db: pw.SqliteDatabase, home: Path, tmp_path: Path
) -> None:
    """If the last table fails, what came before stays, and the next run completes the import."""
    with (
        inserts_fail(db, "rate_limit_buckets", "disk I/O error"),
        pytest.raises(dorkstore.DorkstoreError, match="disk I/O error"),
    ):
        import_legacy(home)
    partial = counts(db)
    report = import_legacy(home)
    final = counts(db)
    expected = clean_import_counts(tmp_path, home)
    assert expected | {"rate_limit_buckets": 0} == partial
    assert expected == final
    imported = {table: count for table, count in report.imported.items() if count}
    assert {"rate_limit_buckets": expected["rate_limit_buckets"]} == imported


@pytest.mark.slow
def test_a_kill_midway_is_completed_by_the_next_run(
    file_db: pw.SqliteDatabase, db_path: Path, home: Path, tmp_path: Path
) -> None:
    """A process killed with SIGKILL between two batches leaves whole batches; a rerun completes."""
    context = multiprocessing.get_context("spawn")
    inside = context.Event()
    child = context.Process(target=import_and_hang, args=(str(db_path), str(home), inside))
    child.start()
    assert inside.wait(timeout=60), "the child never finished its first batch"
    os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
    child.join(timeout=30)
    assert -signal.SIGKILL == child.exitcode
    partial = counts(file_db)
    assert "ok" == file_db.execute_sql("PRAGMA integrity_check").fetchone()[0]
    import_legacy(home)
    final = counts(file_db)
    expected = clean_import_counts(tmp_path, home)
    assert 0 < sum(partial.values()) < sum(expected.values())
    assert expected == final


def test_a_skipped_schedule_takes_its_runs_and_nothing_else(
    db: pw.SqliteDatabase, home: Path
) -> None:
    """One invalid schedule is skipped with its runs; every other schedule and run is imported."""
    schedules = json.loads((home / "schedules.json").read_text())
    schedules[1]["name"] = ""  # SCHEDULE_B: invalid now
    (home / "schedules.json").write_text(json.dumps(schedules))
    report = import_legacy(home)
    assert (2, 3) == (report.imported["pulse_schedules"], report.imported["pulse_runs"])
    skipped = dict(report.skipped)
    assert "name must not be empty" == skipped[f"schedule {SCHEDULE_B!r}"]
    assert "was skipped" in skipped["run 'run-3'"]
    assert "was skipped" in skipped["run 'run-4'"]


def test_rows_a_unique_key_refuses_are_reported_not_dropped(
    db: pw.SqliteDatabase, tmp_path: Path
) -> None:
    """An old agent whose project_path a new agent already has is reported skipped, not dropped."""
    home = build(tmp_path / "old")
    dorkstore.AgentRegistry().insert("registered since", "claude-code", "/src/app")
    report = import_legacy(home)
    assert (1, 0) == (report.imported["agents"], report.present["agents"])
    assert (
        "agent '01KF00000000000000000000A1'",
        "project_path '/src/app' belongs to another agent",
    ) in report.skipped
    second = import_legacy(home)
    assert (0, 1) == (second.imported["agents"], second.present["agents"])


def test_a_malformed_schedules_file_is_reported_and_the_rest_imported(
    db: pw.SqliteDatabase, home: Path
) -> None:
    """schedules.json that is not a JSON array is reported; the other tables are imported."""
    (home / "schedules.json").write_text(json.dumps({"not": "a list"}))
    report = import_legacy(home)
    assert any("JSON array" in why for _, why in report.skipped)
    assert 0 == counts(db)["pulse_schedules"]
    assert 0 < counts(db)["relay_index"]
