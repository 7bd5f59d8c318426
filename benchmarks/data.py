"""The data set: message rows, envelope files, and the database files they fill."""

from __future__ import annotations

import json
import random
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import apsw

import dorkstore
from dorkstore.backends.sqlite import PRAGMAS

START = datetime(2026, 2, 25, tzinfo=UTC)
# Cardinalities of a busy relay: 1,000 endpoints, 500 subjects, 300 senders.
ENDPOINTS, SUBJECTS, SENDERS = 1000, 500, 300
STATUSES = ("pending", "delivered", "failed")
# A relay maildir's subfolder for each status.
SUBFOLDERS = {"new": "pending", "cur": "delivered", "failed": "failed"}

# The original relay index: no index on subject, endpoint, status or sender, but
# its created_at index is kept, so the window count below is not a strawman.
INDEXLESS_SCHEMA = """
CREATE TABLE messages (
    id TEXT PRIMARY KEY, subject TEXT NOT NULL, sender TEXT, endpoint_hash TEXT NOT NULL,
    status TEXT NOT NULL, created_at TEXT NOT NULL, ttl INTEGER, payload TEXT
);
CREATE INDEX idx_messages_created ON messages (created_at);
"""


def raw_connect(path: Path) -> apsw.Connection:
    """Open a plain APSW connection with dorkstore's pragmas."""
    connection = apsw.Connection(str(path))
    for name, value in PRAGMAS:
        connection.execute(f"PRAGMA {name} = {value}")
    return connection


def migrated_copy(source: Path, target: Path) -> Path:
    """Copy a closed database file (with no -wal left) to `target`."""
    shutil.copyfile(source, target)
    return target


def migrated_pair(ours: Path, raw: Path) -> None:
    """Create a migrated database at `ours`, closed, and a copy of it at `raw`."""
    dorkstore.init_db(ours)
    dorkstore.close_db()
    migrated_copy(ours, raw)


def stamp(moment: datetime) -> str:
    """Format `moment` the way dorkstore stores it."""
    return dorkstore.timestamps.format_timestamp(moment)


def minute() -> int:
    """Return the current minute since the epoch, as the rate-limit buckets count it."""
    return (datetime.now(UTC) - dorkstore.timestamps.EPOCH) // timedelta(minutes=1)


def message_rows(count: int) -> list[tuple[Any, ...]]:
    """Rows for relay_index in column order: id, subject, endpoint, sender, status, ..."""
    return [
        (
            f"01KG{number:022d}",
            f"relay.agent.{number % SUBJECTS}",
            f"ep{number * 7 % ENDPOINTS:04d}",
            f"agent-{number * 13 % SENDERS}",
            STATUSES[number % 3],
            None,
            '{"text":"hello"}',
            None,
            stamp(START + timedelta(milliseconds=number * 10)),
        )
        for number in range(count)
    ]


def as_messages(rows: list[tuple[Any, ...]]) -> list[dorkstore.IndexedMessage]:
    """Return the same rows as the records dorkstore's API takes."""
    return [dorkstore.IndexedMessage(*row[:6], json.loads(row[6]), row[7], row[8]) for row in rows]


def write_maildir(rows: list[tuple[Any, ...]], maildir: Path) -> None:
    """Write one envelope file per row, in the relay's maildir layout."""
    for row in rows:
        folder = maildir / row[2] / ("new", "cur", "failed")[STATUSES.index(row[4])]
        folder.mkdir(parents=True, exist_ok=True)
        envelope = {
            "id": row[0], "subject": row[1], "from": row[3], "createdAt": row[8],
            "budget": {"hopCount": 1, "maxHops": 5, "ancestorChain": [], "ttl": 0,
                       "callBudgetRemaining": 3},
            "payload": {"text": "hello"},
        }  # fmt: skip
        (folder / f"{row[0]}.json").write_text(json.dumps(envelope))


def build_query_databases(work: Path, count: int) -> tuple[Path, Path, Path]:
    """Dorkstore's file, a raw copy of it, and the index-less schema, each with `count` rows."""
    ours, raw, indexless = (work / f"q{count}-{name}.db" for name in ("ours", "raw", "old"))
    rows = message_rows(count)
    dorkstore.init_db(ours)
    dorkstore.RelayIndex().insert_many(as_messages(rows))
    dorkstore.close_db()
    migrated_copy(ours, raw)
    connection = raw_connect(indexless)
    connection.execute(INDEXLESS_SCHEMA)
    with connection:
        connection.executemany(
            "INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?, NULL, ?)",
            [(r[0], r[1], r[3], r[2], r[4], r[8], r[6]) for r in rows],
        )
    connection.close()
    return ours, raw, indexless


def query_database_copies(work: Path, count: int) -> tuple[Path, Path]:
    """Return copies of scenario 3's dorkstore and raw files of `count` rows (built if need be)."""
    ours, raw = work / f"q{count}-ours.db", work / f"q{count}-raw.db"
    if not ours.exists():
        build_query_databases(work, count)
    return (
        migrated_copy(ours, work / f"g{count}-ours.db"),
        migrated_copy(raw, work / f"g{count}-raw.db"),
    )


def build_subject_databases(work: Path, matches: int) -> tuple[Path, Path]:
    """Dorkstore's file and a raw copy, 10 subjects of `matches` messages each."""
    ours, raw = work / f"s{matches}-ours.db", work / f"s{matches}-raw.db"
    rows = [(*row[:1], f"relay.agent.{n % 10}", *row[2:]) for n, row in
            enumerate(message_rows(matches * 10))]  # fmt: skip
    dorkstore.init_db(ours)
    dorkstore.RelayIndex().insert_many(as_messages(rows))
    dorkstore.close_db()
    return ours, migrated_copy(ours, raw)


# Spans of a relay that mostly delivers: statuses and their shares (per 100).
SPAN_STATUSES = (("delivered", 90), ("failed", 5), ("timeout", 2), ("sent", 3))
INSERT_SPAN = (
    "INSERT INTO relay_traces (id, message_id, trace_id, subject, status, sent_at, delivered_at,"
    " latency_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


def span_rows(count: int) -> list[tuple[Any, ...]]:
    """Rows for relay_traces: 500 subjects, sent 10 ms apart, delivered ones 1 ms to ~1 s later."""
    shares = [status for status, share in SPAN_STATUSES for _ in range(share)]
    chance = random.Random(7)  # noqa: S311 (benchmark data, not a secret)
    rows = []
    for number in range(count):
        sent = START + timedelta(milliseconds=number * 10)
        status = shares[chance.randrange(100)]
        latency = 1 + int(chance.expovariate(1 / 80)) if status == "delivered" else None
        delivered = None if latency is None else stamp(sent + timedelta(milliseconds=latency))
        rows.append(
            (f"01KH{number:022d}", f"m{number}", f"t{number // 4}",
             f"relay.agent.{number % SUBJECTS}", status, stamp(sent), delivered, latency)
        )  # fmt: skip
    return rows


def build_trace_databases(work: Path, count: int) -> tuple[Path, Path]:
    """Dorkstore's file and a raw copy of it, each with `count` spans."""
    ours, raw = work / f"spans{count}-ours.db", work / f"spans{count}-raw.db"
    migrated_pair(ours, raw)
    rows = span_rows(count)
    for path in (ours, raw):
        connection = raw_connect(path)
        with connection:
            connection.executemany(INSERT_SPAN, rows)
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        connection.close()
    return ours, raw
