"""Old DORK_HOME layouts for import tests, written the way the old tools wrote them.

The databases are created by the standard sqlite3 module in a child process
(see helpers.stdlib_sqlite), with the old schemas of SPEC section 8.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import stdlib_sqlite

SCHEDULE_A = "6f1c2d3e-0000-4000-8000-00000000000a"
SCHEDULE_B = "6f1c2d3e-0000-4000-8000-00000000000b"
SCHEDULES = [
    {
        "id": SCHEDULE_A,
        "name": "nightly digest",
        "prompt": "Summarise the day",
        "cron": "0 2 * * *",
        "timezone": "Europe/Berlin",
        "cwd": "/srv/app",
        "enabled": True,
        "maxRuntime": 600000,
        "permissionMode": "bypassPermissions",
        "status": "active",
        "createdAt": "2026-01-05T10:00:00.000Z",
        "updatedAt": "2026-01-06T11:30:00.250Z",
    },
    {
        # An older schedule: no timezone, cwd, maxRuntime or permissionMode yet.
        "id": SCHEDULE_B,
        "name": "weekly report",
        "prompt": "Write the report",
        "cron": "0 9 * * 1",
        "timezone": None,
        "enabled": False,
        "status": "paused",
        "createdAt": "2026-01-07T08:00:00+01:00",
        "updatedAt": "2026-01-07T08:00:00+01:00",
    },
    {
        "id": "6f1c2d3e-0000-4000-8000-00000000000c",
        "name": "awaiting approval",
        "prompt": "p",
        "cron": "* * * * *",
        "status": "pending_approval",
        "createdAt": "2026-01-08T00:00:00Z",
        "updatedAt": "2026-01-08T00:00:00Z",
    },
]

RUNS_SQL = """
CREATE TABLE runs (
    id TEXT PRIMARY KEY, schedule_id TEXT NOT NULL, status TEXT NOT NULL,
    started_at TEXT, finished_at TEXT, duration_ms INTEGER, output_summary TEXT,
    error TEXT, session_id TEXT, trigger TEXT DEFAULT 'scheduled', created_at TEXT NOT NULL
);
CREATE INDEX idx_runs_schedule ON runs(schedule_id, created_at);
PRAGMA user_version = 3;
"""
RUNS = [
    # id, schedule_id, status, started_at, finished_at, duration_ms, output, error, session, trigger, created_at
    ("run-1", SCHEDULE_A, "completed", "2026-01-10 02:00:00", "2026-01-10 02:01:00", 60000, "done", None, "s-1", "scheduled", "2026-01-10 02:00:00"),
    ("run-2", SCHEDULE_A, "running", None, None, None, None, None, None, "manual", "2026-01-11T02:00:00.000Z"),
    ("run-3", SCHEDULE_B, "failed", "2026-01-12T09:00:00Z", "2026-01-12T09:00:05Z", 5000, None, "boom", None, "agent", "2026-01-12T09:00:00Z"),
    ("run-4", SCHEDULE_B, "cancelled", "2026-01-13T09:00:00Z", None, None, None, None, None, "scheduled", "2026-01-13T09:00:00Z"),
    ("run-5", SCHEDULE_A, "timeout", "2026-01-14T02:00:00Z", "2026-01-14T02:10:00Z", 600000, None, "timed out", None, "scheduled", "2026-01-14T02:00:00Z"),
    ("run-orphan", "deleted-schedule", "completed", "2026-01-15T00:00:00Z", None, None, None, None, None, "scheduled", "2026-01-15T00:00:00Z"),
]  # fmt: skip

RELAY_SQL = """
PRAGMA journal_mode = WAL;
CREATE TABLE messages (
    id TEXT PRIMARY KEY, subject TEXT NOT NULL, sender TEXT, endpoint_hash TEXT NOT NULL,
    status TEXT NOT NULL, created_at TEXT NOT NULL, ttl INTEGER
);
CREATE INDEX idx_messages_created ON messages(created_at);
"""
TRACES_SQL = """
CREATE TABLE message_traces (
    message_id TEXT PRIMARY KEY, trace_id TEXT NOT NULL, span_id TEXT, parent_span_id TEXT,
    subject TEXT NOT NULL, from_endpoint TEXT, to_endpoint TEXT, status TEXT NOT NULL,
    budget_hops_used INTEGER, budget_ttl_remaining_ms INTEGER, sent_at INTEGER NOT NULL,
    delivered_at INTEGER, processed_at INTEGER, error TEXT
);
"""
MESSAGES = [
    ("01KG0000000000000000000001", "relay.agent.a", "agent-x", "ep1", "new", "2026-01-20T10:00:00.000Z", 1768903200000),
    ("01KG0000000000000000000002", "relay.agent.a", None, "ep1", "cur", "2026-01-20T10:00:01.000Z", 0),
    ("01KG0000000000000000000003", "relay.agent.b", "agent-y", "ep2", "failed", "2026-01-20T10:00:02.000Z", None),
]  # fmt: skip
SENT = 1768903200000  # 2026-01-20T10:00:00.000Z
TRACES = [
    ("01KG0000000000000000000001", "T1", "span-1", None, "relay.agent.a", "ep0", "ep1", "pending", 1, 5000, SENT, None, None, None),
    ("01KG0000000000000000000002", "T1", "span-2", "span-1", "relay.agent.a", "ep1", "ep2", "delivered", 2, 4000, SENT, SENT + 150, None, None),
    ("01KG0000000000000000000003", "T2", "span-3", None, "relay.agent.b", "ep0", "ep2", "processed", 1, None, SENT, SENT + 20, SENT + 90, None),
    ("01KG0000000000000000000004", "T2", "span-4", None, "relay.agent.b", None, None, "failed", None, None, SENT, None, None, "no route"),
    ("01KG0000000000000000000005", "T3", None, None, "relay.agent.c", None, None, "dead_lettered", 5, 0, SENT, None, None, "hop limit"),
]  # fmt: skip

MESH_SQL = """
CREATE TABLE agents (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT, project_path TEXT NOT NULL UNIQUE,
    runtime TEXT NOT NULL, capabilities_json TEXT, manifest_json TEXT, registered_at TEXT NOT NULL,
    registered_by TEXT, last_seen_at TEXT, last_seen_event TEXT, {namespace} scan_root TEXT
);
CREATE TABLE denials (
    path TEXT PRIMARY KEY, strategy TEXT, reason TEXT, denied_by TEXT, denied_at TEXT
);
CREATE TABLE budget_counters (
    agent_id TEXT NOT NULL, bucket_minute INTEGER NOT NULL, call_count INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (agent_id, bucket_minute)
);
"""
AGENTS = [
    ("01KF00000000000000000000A1", "coder", "writes code", "/src/app", "claude-code", '["code","review"]', '{"big":"manifest"}', "2026-01-01T00:00:00Z", "alice", "2026-01-02T00:00:00Z", "heartbeat", "team", "/src"),
    ("01KF00000000000000000000A2", "helper", None, "/src/lib", "codex", None, None, "2026-01-03T00:00:00Z", None, None, None, "", None),
]  # fmt: skip
DENIALS = [("/secret/project", "manual", "holds keys", "bob", "2026-01-04T00:00:00Z")]
BUCKETS = [
    ("01KF00000000000000000000A1", 29_000_000, 7),
    ("01KF00000000000000000000A1", 29_000_001, 3),
]


def _create(path: Path, schema: str, inserts: dict[str, list[tuple[object, ...]]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    stdlib_sqlite(
        path,
        f"""
        conn.executescript({schema!r})
        for table, rows in {inserts!r}.items():
            if rows:
                marks = ", ".join("?" * len(rows[0]))
                conn.executemany(f"INSERT INTO {{table}} VALUES ({{marks}})", rows)
        """,
    )


def build(home: Path, *, old_mesh: bool = False, old_relay: bool = False) -> Path:
    """Write a whole old DORK_HOME under `home`.

    `old_mesh`: mesh.db from before agents had a namespace column.
    `old_relay`: relay/index.db from before message_traces existed.
    """
    home.mkdir(parents=True, exist_ok=True)
    (home / "schedules.json").write_text(json.dumps(SCHEDULES, indent=2))
    _create(home / "pulse.db", RUNS_SQL, {"runs": RUNS})
    relay_schema = RELAY_SQL if old_relay else RELAY_SQL + TRACES_SQL
    relay_rows = {"messages": MESSAGES} | ({} if old_relay else {"message_traces": TRACES})
    _create(home / "relay" / "index.db", relay_schema, relay_rows)
    agents = [row[:11] + row[12:] for row in AGENTS] if old_mesh else AGENTS
    namespace = "" if old_mesh else "namespace TEXT DEFAULT '',"
    _create(
        home / "mesh" / "mesh.db",
        MESH_SQL.format(namespace=namespace),
        {"agents": agents, "denials": DENIALS, "budget_counters": BUCKETS},
    )
    return home
