"""The raw-APSW baselines: each scenario's work in plain SQL, with as little Python as possible.

Each baseline starts from the same input as dorkstore and produces the same
output: payloads are JSON-encoded on the way in and decoded on the way out.
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import apsw
from data import SUBFOLDERS, minute, raw_connect, stamp
from ulid import ULID

import dorkstore

INSERT_RAW = (
    "INSERT INTO relay_index (id, subject, endpoint_hash, sender, status, expires_at, payload,"
    " metadata, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
PRUNE = "DELETE FROM rate_limit_buckets WHERE bucket_minute < ?"
UPSERT = (
    "INSERT INTO rate_limit_buckets (agent_id, bucket_minute, count) VALUES (?, ?, 1)"
    " ON CONFLICT (agent_id, bucket_minute) DO UPDATE SET count = count + 1"
)
# BudgetMapper.try_consume's check and count as one statement (scenario 5).
CONSUME = (
    "INSERT INTO rate_limit_buckets (agent_id, bucket_minute, count)"
    " SELECT ?1, ?2, 1 WHERE (SELECT coalesce(sum(count), 0) FROM rate_limit_buckets"
    " WHERE agent_id = ?1 AND bucket_minute >= ?2 - 60) < ?3"
    " ON CONFLICT (agent_id, bucket_minute) DO UPDATE SET count = count + 1"
)


# --- scenario 1: opening ---------------------------------------------------------------


def read_migration_history(path: Path) -> None:
    """Open `path`, read the applied migrations (what init_db checks) and close it."""
    connection = raw_connect(path)
    connection.execute('SELECT "name" FROM migratehistory ORDER BY "id"').fetchall()
    connection.close()


# --- scenario 2: bulk -------------------------------------------------------------------


def insert_messages(raw: apsw.Connection, messages: list[dorkstore.IndexedMessage]) -> None:
    """Insert `messages` in one transaction."""
    # From the same records as dorkstore: payloads are serialised here too.
    with raw:
        raw.executemany(
            INSERT_RAW,
            [(m.id, m.subject, m.endpoint_hash, m.sender, m.status, m.expires_at,
              json.dumps(m.payload), None, m.created_at) for m in messages],
        )  # fmt: skip


def rebuild_from_maildir(raw: apsw.Connection, maildir: Path) -> None:
    """Replace relay_index with the envelopes found in `maildir`."""
    batch = []
    for endpoint in sorted(os.scandir(maildir), key=lambda e: e.name):
        for sub, status in SUBFOLDERS.items():
            folder = os.path.join(endpoint.path, sub)
            if not os.path.isdir(folder):
                continue
            for entry in sorted(os.scandir(folder), key=lambda e: e.name):
                with open(entry.path, "rb") as file:
                    envelope = json.loads(file.read())
                batch.append(
                    (envelope["id"], envelope["subject"], endpoint.name, envelope["from"],
                     status, None, None, None, envelope["createdAt"])
                )  # fmt: skip
    with raw:
        raw.execute("DELETE FROM relay_index")
        raw.executemany(INSERT_RAW, batch)


# --- scenario 3: queries ------------------------------------------------------------------


def decode(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Decode the JSON columns of result rows, as any caller of the raw SQL must."""
    if not rows or len(rows[0]) < 8:
        return rows  # a count
    if len(rows[0]) == 8:  # the index-less messages table: payload last
        return [(*row[:7], json.loads(row[7]) if row[7] else None) for row in rows]
    return [(*row[:6], json.loads(row[6]) if row[6] else None,
             json.loads(row[7]) if row[7] else None, row[8]) for row in rows]  # fmt: skip


def run_query(
    connection: apsw.Connection, sql: str, table: str, args: tuple[Any, ...], times: int
) -> None:
    """Run `sql` on `table` `times` times, decoding the rows each time."""
    statement = sql.format(table=table)
    for _ in range(times):
        decode(connection.execute(statement, args).fetchall())


# --- scenario 3c: one message at a time, and a subject's listing ---------------------------

# RelayIndex.insert_message's statement: insert, or replace every column of the same id.
UPSERT_MESSAGE = INSERT_RAW + (
    " ON CONFLICT (id) DO UPDATE SET subject = excluded.subject,"
    " endpoint_hash = excluded.endpoint_hash, sender = excluded.sender,"
    " status = excluded.status, expires_at = excluded.expires_at, payload = excluded.payload,"
    " metadata = excluded.metadata, created_at = excluded.created_at"
)
BY_SUBJECT = "SELECT * FROM {table} WHERE subject = ? ORDER BY created_at DESC, id DESC"


def insert_each(raw: apsw.Connection, batches: Any) -> None:
    """Insert the next batch of rows one statement (one transaction) each, payload encoded."""
    for row in next(batches):
        raw.execute(UPSERT_MESSAGE, (*row[:6], json.dumps(json.loads(row[6])), *row[7:]))


# --- scenario 3b: delivery metrics -------------------------------------------------------

TRACE_COUNTS = (
    "SELECT count(latency_ms), avg(latency_ms), (SELECT count(*) FROM relay_traces),"
    " (SELECT count(*) FROM relay_traces WHERE status = 'sent'),"
    " (SELECT count(*) FROM relay_traces WHERE status = 'failed'),"
    " (SELECT count(*) FROM relay_traces WHERE status = 'timeout')"
    " FROM relay_traces WHERE latency_ms IS NOT NULL"
)
# Distinct subjects by skip-scan: one probe of the subject index per subject.
TRACE_SUBJECTS = (
    "WITH RECURSIVE s(subject) AS (SELECT min(subject) FROM relay_traces UNION ALL"
    " SELECT (SELECT min(subject) FROM relay_traces WHERE subject > s.subject) FROM s"
    " WHERE s.subject IS NOT NULL) SELECT count(subject) FROM s"
)
TRACE_P95 = (
    "SELECT latency_ms FROM relay_traces WHERE latency_ms IS NOT NULL"
    " ORDER BY latency_ms DESC LIMIT 1 OFFSET ?"
)


def trace_metrics(raw: apsw.Connection) -> tuple[Any, ...]:
    """TraceStore.get_metrics: counts, average, nearest-rank p95 and subjects, in one snapshot."""
    with raw:
        timed, average, total, sent, failed, timeout = raw.execute(TRACE_COUNTS).fetchone()
        (subjects,) = raw.execute(TRACE_SUBJECTS).fetchone()
        rank = -(-timed * 95 // 100)
        p95 = raw.execute(TRACE_P95, (timed - rank,)).fetchone()[0] if timed else None
    return (total, total - sent - failed - timeout, failed, timeout, average, p95, subjects)


# --- scenario 4: single-row operations ----------------------------------------------------


class RawSingleRowCalls:
    """The raw side of scenario 4: each method makes `per` calls, each with its own commit."""

    def __init__(
        self, raw: apsw.Connection, per: int, counter: Any, schedule_id: str, agent_id: str
    ) -> None:
        self.raw, self.per, self.counter = raw, per, counter
        self.schedule_id, self.agent_id = schedule_id, agent_id
        self.ids = [f"01KG{n:022d}" for n in range(per)]
        self.runs: list[str] = []

    def create_run(self) -> None:
        """PulseStore.create_run: a new run of the schedule, stamped now."""
        self.runs[:] = []
        for _ in range(self.per):
            moment = datetime.now(UTC)
            run_id, at = str(ULID.from_datetime(moment)), stamp(moment)
            self.raw.execute(
                "INSERT INTO pulse_runs (id, schedule_id, status, started_at, trigger, created_at)"
                " VALUES (?, ?, 'running', ?, 'scheduled', ?)",
                (run_id, self.schedule_id, at, at),
            )
            self.runs.append(run_id)

    def update_run(self) -> None:
        """PulseStore.update_run: complete each run made by `create_run` and read it back."""
        for run_id in self.runs:
            with self.raw:
                self.raw.execute(
                    "UPDATE pulse_runs SET status = 'completed', duration_ms = 5 WHERE id = ?",
                    (run_id,),
                )
                self.raw.execute("SELECT * FROM pulse_runs WHERE id = ?", (run_id,)).fetchall()

    def insert_span(self) -> None:
        """TraceStore.insert_span: a new span for a new message."""
        base = next(self.counter) * self.per
        for n in range(self.per):
            moment = datetime.now(UTC)
            self.raw.execute(
                "INSERT INTO relay_traces (id, message_id, trace_id, subject, status, sent_at)"
                " VALUES (?, ?, 't', 's', 'sent', ?)",
                (str(ULID.from_datetime(moment)), f"m{base + n}", stamp(moment)),
            )

    def update_status(self) -> None:
        """RelayIndex.update_status: mark each seeded message delivered."""
        for message_id in self.ids:
            self.raw.execute(
                "UPDATE relay_index SET status = 'delivered' WHERE id = ?", (message_id,)
            )

    def record_call(self) -> None:
        """BudgetMapper.record_call: prune old buckets and count a call in this minute's."""
        for _ in range(self.per):
            now_minute = minute()
            with self.raw:
                self.raw.execute(PRUNE, (now_minute - 120,))
                self.raw.execute(UPSERT, ("a", now_minute))

    def try_consume(self) -> None:
        """BudgetMapper.try_consume: prune, sum the last hour and count the call if under."""
        raw = self.raw
        for _ in range(self.per):
            now_minute = minute()
            raw.execute("BEGIN IMMEDIATE")
            raw.execute(PRUNE, (now_minute - 120,))
            (used,) = raw.execute(
                "SELECT coalesce(sum(count), 0) FROM rate_limit_buckets"
                " WHERE agent_id = ? AND bucket_minute >= ?",
                ("b", now_minute - 60),
            ).fetchone()
            if used < 10**9:
                raw.execute(UPSERT, ("b", now_minute))
            raw.execute("COMMIT")

    def is_denied(self) -> None:
        """DenialList.is_denied: look the resolved path up."""
        for _ in range(self.per):
            self.raw.execute(
                "SELECT 1 FROM agent_denials WHERE path = ?", (os.path.realpath("/denied"),)
            ).fetchall()

    def get(self) -> None:
        """AgentRegistry.get: read the agent's row and decode its capabilities."""
        for _ in range(self.per):
            row = self.raw.execute("SELECT * FROM agents WHERE id = ?", (self.agent_id,)).fetchone()
            json.loads(row[5])  # capabilities_json, decoded as the API returns it


# --- scenario 5: try_consume from several processes ---------------------------------------


def consume_worker(path: str, calls: int, barrier: Any, results: Any) -> None:
    """Make `calls` budget calls after the barrier; put the seconds taken (spawn target)."""
    connection = raw_connect(Path(path))
    barrier.wait()
    started = time.perf_counter()
    for _ in range(calls):
        connection.execute(CONSUME, ("shared", minute(), 10**9))
    results.put(time.perf_counter() - started)
    connection.close()
