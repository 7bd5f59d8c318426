"""Scenario: import-legacy of a big old relay database, against insert_many of the same rows.

Each measurement runs in a fresh spawned process on a freshly migrated copy,
so that its peak memory (``VmHWM``) is its own. The first import is
compared with `RelayIndex.insert_many` of the same messages (the issue's
yardstick: at most 2x), the no-op rerun with the first import (at most a
third), and the import's peak memory with a 200 MB limit.
"""

from __future__ import annotations

import multiprocessing
import shutil
import statistics
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import apsw
from data import START, migrated_copy, migrated_pair, stamp
from measure import Result

import dorkstore

OLD_STATUSES = ("new", "cur", "failed")
NEW_STATUSES = {"new": "pending", "cur": "delivered", "failed": "failed"}
MEMORY_LIMIT_MB = 200.0


def old_rows(count: int) -> list[tuple[Any, ...]]:
    """Rows of the old relay's ``messages`` table: id, subject, sender, endpoint, status, ..."""
    return [
        (
            f"01KG{number:022d}",
            f"relay.agent.{number % 50}",
            f"agent-{number * 13 % 100}",
            f"ep{number * 7 % 200:04d}",
            OLD_STATUSES[number % 3],
            stamp(START + timedelta(milliseconds=number * 10)),
            None,
        )
        for number in range(count)
    ]


def write_old_relay(home: Path, count: int) -> None:
    """Write ``home/relay/index.db`` with `count` messages, as the old relay did."""
    path = home / "relay" / "index.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    old = apsw.Connection(str(path))
    old.execute(
        "CREATE TABLE messages (id TEXT PRIMARY KEY, subject TEXT NOT NULL, sender TEXT, "
        "endpoint_hash TEXT NOT NULL, status TEXT NOT NULL, created_at TEXT NOT NULL, "
        "ttl INTEGER)"
    )
    with old:
        old.executemany("INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?, ?)", old_rows(count))
    old.close()


def insert_many_child(path: str, count: int, results: Any) -> None:
    """Time insert_many of the old rows as records (built before the clock starts)."""
    messages = [
        dorkstore.IndexedMessage(
            id=row[0], subject=row[1], endpoint_hash=row[3], sender=row[2],
            status=NEW_STATUSES[row[4]], expires_at=None, payload=None, metadata=None,
            created_at=row[5],
        )
        for row in old_rows(count)
    ]  # fmt: skip
    dorkstore.init_db(path)
    started = time.perf_counter()
    dorkstore.RelayIndex().insert_many(messages)
    results.put(time.perf_counter() - started)


def import_child(path: str, home: str, results: Any) -> None:
    """Time a first import and a no-op rerun; report them and this process's peak memory."""
    from dorkstore.legacy import import_legacy

    dorkstore.init_db(path)
    started = time.perf_counter()
    import_legacy(home)
    first = time.perf_counter() - started
    started = time.perf_counter()
    import_legacy(home)
    rerun = time.perf_counter() - started
    results.put((first, rerun, peak_memory_mb()))


def peak_memory_mb() -> float:
    """Return this process's peak resident memory since it started (its exec).

    ``ru_maxrss`` would not do: Linux carries it across exec, so a spawned
    child would report the parent's size at fork time.
    """
    status = Path("/proc/self/status").read_text()
    (kib,) = (line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(kib) / 1024


def in_child(target: Any, *args: Any) -> Any:
    """Run `target(*args, results)` in a fresh spawned process; return what it put."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    process = context.Process(target=target, args=(*args, results))
    process.start()
    outcome = results.get(timeout=3600)
    process.join(60)
    return outcome


def bench_legacy_import(work: Path, rounds: int, count: int) -> list[Result]:
    """import-legacy of `count` old messages: first run, no-op rerun, peak memory."""
    template, home = work / "legacy-template.db", work / "old-home"
    migrated_pair(template, work / "legacy-template-copy.db")
    write_old_relay(home, count)
    inserts, firsts, reruns, peaks = [], [], [], []
    for number in range(rounds):
        ours = migrated_copy(template, work / f"legacy-{number}.db")
        ours_insert = migrated_copy(template, work / f"insert-{number}.db")
        order = [("insert", ours_insert), ("import", ours)]
        for kind, path in order if number % 2 == 0 else order[::-1]:
            if kind == "insert":
                inserts.append(in_child(insert_many_child, str(path), count))
            else:
                first, rerun, peak = in_child(import_child, str(path), str(home))
                firsts.append(first)
                reruns.append(rerun)
                peaks.append(peak)
        for path in (ours, ours_insert):
            path.unlink()
    shutil.rmtree(home)
    first, rerun = statistics.median(firsts), statistics.median(reruns)
    label = f"import-legacy, {count:,} old messages"
    return [
        Result("legacy", f"{label} (raw: insert_many)", "s", first,
               statistics.median(inserts), 2.0, rows=count),
        Result("legacy", f"{label}, no-op rerun (raw: first run)", "s", rerun, first, 1 / 3,
               rows=count),
        Result("legacy", f"{label}, peak memory (raw: the limit)", "MB",
               statistics.median(peaks), MEMORY_LIMIT_MB, 1.0, rows=count),
    ]  # fmt: skip
