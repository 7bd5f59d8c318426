"""The schema a new database gets matches SPEC section 4, read back from SQLite itself."""

from __future__ import annotations

from pathlib import Path

import peewee as pw
import pytest

from tests.helpers import TABLES, stdlib_sqlite

# The schema as SQLite stores it; PostgreSQL's is checked in tests/test_postgres.py.
pytestmark = pytest.mark.sqlite_only

# (table, columns, unique) for every key and index of SPEC section 4, plus the
# id-ordered indexes query_messages pages by; (status) and (endpoint_hash,
# status) carry a trailing id for the same reason. Primary keys are checked apart.
INDEXES = {
    ("pulse_runs", ("schedule_id", "created_at"), False),
    ("pulse_runs", ("status",), False),
    ("pulse_runs", ("created_at",), False),
    ("relay_index", ("subject", "created_at"), False),
    ("relay_index", ("endpoint_hash", "created_at"), False),
    ("relay_index", ("endpoint_hash", "status", "id"), False),
    ("relay_index", ("sender", "created_at"), False),
    ("relay_index", ("status", "id"), False),
    ("relay_index", ("expires_at",), False),
    ("relay_index", ("subject", "id"), False),
    ("relay_index", ("endpoint_hash", "id"), False),
    ("relay_index", ("sender", "id"), False),
    ("relay_traces", ("message_id",), True),
    ("relay_traces", ("trace_id",), False),
    ("relay_traces", ("subject",), False),
    ("relay_traces", ("sent_at",), False),
    ("relay_traces", ("status",), False),
    ("relay_traces", ("latency_ms",), False),
    ("agents", ("project_path",), True),
    ("agents", ("runtime",), False),
    ("agents", ("namespace",), False),
    ("agents", ("registered_at",), False),
    ("agent_denials", ("path",), True),
    ("rate_limit_buckets", ("agent_id", "bucket_minute"), True),
    ("rate_limit_buckets", ("bucket_minute",), False),
    ("migratehistory", ("name",), True),
}

# A row per table holding only the columns without a SQL default.
MINIMAL_ROWS = {
    "pulse_schedules": {
        "id": "S1",
        "name": "n",
        "cron": "* * * * *",
        "prompt": "p",
        "created_at": "2026-01-01T00:00:00.000Z",
        "updated_at": "2026-01-01T00:00:00.000Z",
    },
    "pulse_runs": {
        "id": "R1",
        "schedule_id": "S1",
        "status": "running",
        "started_at": "2026-01-01T00:00:00.000Z",
        "created_at": "2026-01-01T00:00:00.000Z",
    },
    "relay_index": {
        "id": "M1",
        "subject": "s",
        "endpoint_hash": "e",
        "created_at": "2026-01-01T00:00:00.000Z",
    },
    "relay_traces": {
        "id": "T1",
        "message_id": "M1",
        "trace_id": "t",
        "subject": "s",
        "status": "sent",
        "sent_at": "2026-01-01T00:00:00.000Z",
    },
    "agents": {
        "id": "A1",
        "name": "a",
        "runtime": "claude-code",
        "project_path": "/p",
        "registered_at": "2026-01-01T00:00:00.000Z",
        "updated_at": "2026-01-01T00:00:00.000Z",
    },
    "agent_denials": {"id": "D1", "path": "/d", "created_at": "2026-01-01T00:00:00.000Z"},
    "rate_limit_buckets": {"agent_id": "A1", "bucket_minute": 1},
}

SQL_DEFAULTS = {
    ("pulse_schedules", "timezone"): "UTC",
    ("pulse_schedules", "enabled"): 1,
    ("pulse_schedules", "permission_mode"): "acceptEdits",
    ("pulse_schedules", "status"): "active",
    ("pulse_runs", "trigger"): "scheduled",
    ("relay_index", "status"): "pending",
    ("agents", "namespace"): "default",
    ("agents", "capabilities_json"): "[]",
    ("agents", "status"): "active",
    ("rate_limit_buckets", "count"): 0,
}

ENUMERATIONS = [
    ("pulse_schedules", "status"),
    ("pulse_runs", "status"),
    ("pulse_runs", "trigger"),
    ("relay_index", "status"),
    ("relay_traces", "status"),
    ("agents", "status"),
]


def insert(db: pw.Database, table: str, row: dict[str, object]) -> None:
    """Insert `row` with plain SQL, as a client that knows nothing of Peewee would."""
    columns = ", ".join(f'"{column}"' for column in row)
    marks = ", ".join("?" for _ in row)
    db.execute_sql(f'INSERT INTO "{table}" ({columns}) VALUES ({marks})', tuple(row.values()))


def insert_minimal_rows(db: pw.Database) -> None:
    for table, row in MINIMAL_ROWS.items():
        insert(db, table, row)


def test_new_database_has_the_seven_tables_and_the_history(db: pw.SqliteDatabase) -> None:
    """A new database holds exactly the seven tables and migratehistory."""
    assert TABLES | {"migratehistory"} == set(db.get_tables())


def test_every_key_and_index_exists(db: pw.SqliteDatabase) -> None:
    """PRAGMA index_list shows every index and unique key the spec lists."""
    found = set()
    for table in [*TABLES, "migratehistory"]:
        for _, name, unique, origin, _ in db.execute_sql(f'PRAGMA index_list("{table}")'):
            if origin == "pk":
                continue
            columns = tuple(row[2] for row in db.execute_sql(f'PRAGMA index_info("{name}")'))
            found.add((table, columns, bool(unique)))
    assert INDEXES == found


def test_bucket_unique_key_has_its_spec_name(db: pw.SqliteDatabase) -> None:
    """The unique (agent_id, bucket_minute) key is named idx_rate_limit_agent_minute."""
    unique = [r[1] for r in db.execute_sql('PRAGMA index_list("rate_limit_buckets")') if r[2]]
    assert ["idx_rate_limit_agent_minute"] == unique


def test_bucket_pruning_uses_an_index(db: pw.SqliteDatabase) -> None:
    """Pruning every agent's old buckets searches an index instead of scanning the table."""
    plan = db.execute_sql(
        "EXPLAIN QUERY PLAN DELETE FROM rate_limit_buckets WHERE bucket_minute < ?", (1,)
    ).fetchall()
    assert "SEARCH rate_limit_buckets USING" in plan[0][-1]


@pytest.mark.parametrize("table", sorted(TABLES - {"rate_limit_buckets"}))
def test_primary_key_is_the_text_id(db: pw.SqliteDatabase, table: str) -> None:
    """Every table but the buckets has `id` as its only primary-key column."""
    keys = [row[1] for row in db.execute_sql(f'PRAGMA table_info("{table}")') if row[5]]
    assert ["id"] == keys


def test_relay_index_is_without_rowid(db: pw.SqliteDatabase) -> None:
    """relay_index has no rowid, so its secondary indexes end in id."""
    with pytest.raises(pw.OperationalError, match="rowid"):
        db.execute_sql('SELECT rowid FROM "relay_index"')


def test_defaults_exist_in_sql(db: pw.SqliteDatabase) -> None:
    """Rows inserted without the defaulted columns get the spec's defaults from SQL."""
    insert_minimal_rows(db)
    for (table, column), expected in SQL_DEFAULTS.items():
        (actual,) = db.execute_sql(f'SELECT "{column}" FROM "{table}"').fetchone()
        assert (table, column, expected) == (table, column, actual)


@pytest.mark.parametrize(("table", "column"), ENUMERATIONS)
def test_check_rejects_an_unknown_enumeration_value(
    db: pw.SqliteDatabase, table: str, column: str
) -> None:
    """A CHECK constraint refuses a value outside the enumeration, whoever writes it."""
    insert(db, "pulse_schedules", MINIMAL_ROWS["pulse_schedules"] | {"id": "PARENT"})
    row = MINIMAL_ROWS[table] | {"id": "X", column: "bogus"}
    if table == "pulse_runs":
        row["schedule_id"] = "PARENT"
    with pytest.raises(pw.IntegrityError, match="CHECK constraint failed"):
        insert(db, table, row)


def test_deleting_a_schedule_cascades_to_its_runs(db: pw.SqliteDatabase) -> None:
    """ON DELETE CASCADE removes a schedule's runs and no other schedule's."""
    insert(db, "pulse_schedules", MINIMAL_ROWS["pulse_schedules"])
    insert(db, "pulse_schedules", MINIMAL_ROWS["pulse_schedules"] | {"id": "S2"})
    for run_id, schedule_id in [("R1", "S1"), ("R2", "S1"), ("R3", "S2")]:
        insert(
            db,
            "pulse_runs",
            MINIMAL_ROWS["pulse_runs"] | {"id": run_id, "schedule_id": schedule_id},
        )
    db.execute_sql("DELETE FROM pulse_schedules WHERE id = 'S1'")
    remaining = db.execute_sql("SELECT id FROM pulse_runs ORDER BY id").fetchall()
    assert [("R3",)] == remaining


def test_run_of_an_unknown_schedule_is_rejected(db: pw.SqliteDatabase) -> None:
    """The foreign key refuses a run whose schedule does not exist."""
    with pytest.raises(pw.IntegrityError, match="FOREIGN KEY"):
        insert(db, "pulse_runs", MINIMAL_ROWS["pulse_runs"] | {"schedule_id": "NOPE"})


@pytest.mark.parametrize(
    ("table", "column"),
    [
        ("agents", "project_path"),
        ("relay_traces", "message_id"),
        ("agent_denials", "path"),
    ],
)
def test_duplicate_unique_value_is_rejected(db: pw.SqliteDatabase, table: str, column: str) -> None:
    """A second row with the same unique value is refused."""
    insert(db, table, MINIMAL_ROWS[table])
    with pytest.raises(pw.IntegrityError, match="UNIQUE"):
        insert(db, table, MINIMAL_ROWS[table] | {"id": "OTHER"})


def test_duplicate_bucket_is_rejected(db: pw.SqliteDatabase) -> None:
    """One bucket per agent per minute."""
    insert(db, "rate_limit_buckets", MINIMAL_ROWS["rate_limit_buckets"])
    with pytest.raises(pw.IntegrityError, match="UNIQUE"):
        insert(db, "rate_limit_buckets", MINIMAL_ROWS["rate_limit_buckets"])


def test_other_clients_get_defaults_and_checks(file_db: pw.SqliteDatabase, db_path: Path) -> None:
    """The standard sqlite3 module, in another process, gets the defaults and the checks."""
    file_db.close()
    result = stdlib_sqlite(
        db_path,
        """
        conn.execute(
            "INSERT INTO agents (id, name, runtime, project_path, registered_at, updated_at)"
            " VALUES ('A', 'a', 'r', '/p', 't', 't')"
        )
        row = conn.execute("SELECT namespace, capabilities_json, status FROM agents").fetchone()
        try:
            conn.execute("UPDATE agents SET status = 'gone'")
            refused = False
        except sqlite3.IntegrityError:
            refused = True
        result = [list(row), refused]
        """,
    )
    assert [["default", "[]", "active"], True] == result
