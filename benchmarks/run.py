"""dorkstore's benchmark suite: every scenario against raw SQLite, in the same run.

The baseline is the same SQLite library dorkstore uses (APSW's), on a file with
the same schema, indexes and pragmas, running the SQL each operation needs with
as little Python as possible: the physical limit on this machine. Each scenario
runs dorkstore and its baseline alternately for several rounds and reports the
median of each and their ratio. The index-less baseline is the relay index as
the original project's consolidated schema defined it: no index on subject,
endpoint, status or sender.

    python benchmarks/run.py            full sizes (1,000,000 rows); updates the
                                        committed results and the README table
    python benchmarks/run.py --quick    small sizes, under a minute; writes to
                                        benchmarks/scratch/ (what CI runs)
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import apsw
from ulid import ULID

import dorkstore
from dorkstore.db import PRAGMAS

HERE = Path(__file__).resolve().parent
README = HERE.parent / "README.md"
START = datetime(2026, 2, 25, tzinfo=UTC)
# Cardinalities of a busy relay: 1,000 endpoints, 500 subjects, 300 senders.
ENDPOINTS, SUBJECTS, SENDERS = 1000, 500, 300
STATUSES = ("pending", "delivered", "failed")


@dataclass
class Result:
    """One scenario's medians (seconds per operation unless `unit` says otherwise)."""

    group: str
    scenario: str
    unit: str
    dorkstore: float
    baseline: float | None = None
    target: float | None = None
    indexless: float | None = None
    rows: int | None = None

    @property
    def ratio(self) -> float | None:
        """Dorkstore / baseline (for throughput, baseline / dorkstore): lower is better."""
        if self.baseline is None:
            return None
        if self.unit == "calls/s":
            return self.baseline / self.dorkstore
        return self.dorkstore / self.baseline

    @property
    def speedup(self) -> float | None:
        """How many times faster than the index-less schema."""
        return None if self.indexless is None else self.indexless / self.dorkstore

    @property
    def met(self) -> bool | None:
        """Whether the target holds (ratio within it; 100x over index-less where measured)."""
        if self.target is None or self.ratio is None:
            return None
        return self.ratio <= self.target and (self.speedup is None or self.speedup >= 100)


def alternate(
    rounds: int,
    ours: Callable[[], Any],
    raw: Callable[[], Any],
    *,
    setup: Callable[[], Any] | None = None,
    per: int = 1,
) -> tuple[float, float]:
    """Time `ours` and `raw` alternately, `rounds` times each; return their median / `per`."""
    timings: dict[str, list[float]] = {"ours": [], "raw": []}
    for round_ in range(rounds):
        order = [("ours", ours), ("raw", raw)]
        for name, function in order if round_ % 2 == 0 else order[::-1]:
            if setup:
                setup()
            started = time.perf_counter()
            function()
            timings[name].append(time.perf_counter() - started)
    return statistics.median(timings["ours"]) / per, statistics.median(timings["raw"]) / per


def median_time(rounds: int, function: Callable[[], Any], per: int = 1) -> float:
    """Median seconds of `function` over `rounds` runs, divided by `per`."""
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times) / per


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


def stamp(moment: datetime) -> str:
    """Format `moment` the way dorkstore stores it."""
    return dorkstore.timestamps.format_timestamp(moment)


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


INSERT_RAW = (
    "INSERT INTO relay_index (id, subject, endpoint_hash, sender, status, expires_at, payload,"
    " metadata, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# The original relay index: no index on subject, endpoint, status or sender, but
# its created_at index is kept, so the window count below is not a strawman.
INDEXLESS_SCHEMA = """
CREATE TABLE messages (
    id TEXT PRIMARY KEY, subject TEXT NOT NULL, sender TEXT, endpoint_hash TEXT NOT NULL,
    status TEXT NOT NULL, created_at TEXT NOT NULL, ttl INTEGER, payload TEXT
);
CREATE INDEX idx_messages_created ON messages (created_at);
"""


# --- scenario 1: opening ---------------------------------------------------------------


def bench_open(work: Path, rounds: int) -> list[Result]:
    """Scenario 1: opening an up-to-date database, and a new one."""
    path = work / "open.db"
    dorkstore.init_db(path)
    dorkstore.close_db()

    def ours() -> None:
        dorkstore.init_db(path)
        dorkstore.close_db()

    def raw() -> None:
        connection = raw_connect(path)
        connection.execute('SELECT "name" FROM migratehistory ORDER BY "id"').fetchall()
        connection.close()

    warm, baseline = alternate(rounds * 10, ours, raw)
    counter = iter(range(10**9))

    def cold() -> None:
        dorkstore.init_db(work / f"cold-{next(counter)}.db")
        dorkstore.close_db()

    return [
        Result("open", "warm init_db (up to date)", "s", warm, baseline, target=5),
        Result("open", "cold init_db (new file, migrated)", "s", median_time(rounds, cold)),
    ]


# --- scenario 2: bulk -------------------------------------------------------------------


def bench_bulk(work: Path, rounds: int, count: int) -> list[Result]:
    """Scenario 2: insert_many and rebuild of `count` messages."""
    ours_path, raw_path = work / "bulk-ours.db", work / "bulk-raw.db"
    dorkstore.init_db(ours_path)
    dorkstore.close_db()
    migrated_copy(ours_path, raw_path)
    rows = message_rows(count)
    messages = as_messages(rows)
    raw = raw_connect(raw_path)
    dorkstore.init_db(ours_path)
    index = dorkstore.RelayIndex()

    def empty() -> None:
        dorkstore.database.execute_sql("DELETE FROM relay_index")
        raw.execute("DELETE FROM relay_index")

    def raw_insert() -> None:
        # From the same records as dorkstore: payloads are serialised here too.
        with raw:
            raw.executemany(
                INSERT_RAW,
                [(m.id, m.subject, m.endpoint_hash, m.sender, m.status, m.expires_at,
                  json.dumps(m.payload), None, m.created_at) for m in messages],
            )  # fmt: skip

    insert = alternate(rounds, lambda: index.insert_many(messages), raw_insert, setup=empty)

    maildir = work / "maildir"
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
    subfolders = {"new": "pending", "cur": "delivered", "failed": "failed"}

    def raw_rebuild() -> None:
        batch = []
        for endpoint in sorted(os.scandir(maildir), key=lambda e: e.name):
            for sub, status in subfolders.items():
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

    rebuild = alternate(rounds, lambda: index.rebuild(maildir), raw_rebuild)
    dorkstore.close_db()
    raw.close()
    return [
        Result(
            "bulk", f"RelayIndex.insert_many, {count:,} messages", "s", *insert, 1.5, rows=count
        ),
        Result(
            "bulk", f"RelayIndex.rebuild, {count:,} envelope files", "s", *rebuild, 1.5, rows=count
        ),
    ]


# --- scenario 3: queries ------------------------------------------------------------------


def queries(count: int) -> dict[str, tuple[Callable[..., Any], str, tuple[Any, ...]]]:
    """Return the three filtered queries for a table of `count` rows (10 ms apart)."""
    # A recent window: the last hour of the table, or all of it if it is younger.
    window = stamp(START + timedelta(milliseconds=count * 10) - timedelta(hours=1))
    return {
        "page of 50 by endpoint + status": (
            lambda index: index.query_messages(endpoint_hash="ep0007", status="pending", limit=50),
            "SELECT * FROM {table} WHERE endpoint_hash = ? AND status = ? "
            "ORDER BY id DESC LIMIT 51",
            ("ep0007", "pending"),
        ),
        "page of 50 by subject": (
            lambda index: index.query_messages(subject="relay.agent.7", limit=50),
            "SELECT * FROM {table} WHERE subject = ? ORDER BY id DESC LIMIT 51",
            ("relay.agent.7",),
        ),
        "sender count in the last hour": (
            lambda index: index.count_sender_in_window("agent-7", window),
            "SELECT count(*) FROM {table} WHERE sender = ? AND created_at > ?",
            ("agent-7", window),
        ),
    }


def decode(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Decode the JSON columns of result rows, as any caller of the raw SQL must."""
    if not rows or len(rows[0]) < 8:
        return rows  # a count
    if len(rows[0]) == 8:  # the index-less messages table: payload last
        return [(*row[:7], json.loads(row[7]) if row[7] else None) for row in rows]
    return [(*row[:6], json.loads(row[6]) if row[6] else None,
             json.loads(row[7]) if row[7] else None, row[8]) for row in rows]  # fmt: skip


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


def bench_queries(work: Path, rounds: int, sizes: list[int]) -> tuple[list[Result], dict[str, Any]]:
    """Scenario 3: filtered queries at each size; results at the largest, a curve for all."""
    results, curve = [], {"sizes": sizes, "dorkstore": [], "raw": [], "indexless": []}
    repeat = 200
    for count in sizes:
        ours, raw_path, old_path = build_query_databases(work, count)
        dorkstore.init_db(ours)
        index = dorkstore.RelayIndex()
        raw, old = raw_connect(raw_path), raw_connect(old_path)
        for name, (call, sql, args) in queries(count).items():

            def run_ours(call: Any = call, index: Any = index) -> None:
                for _ in range(repeat):
                    call(index)

            def run_raw(sql: str = sql, args: Any = args, raw: Any = raw) -> None:
                statement = sql.format(table="relay_index")
                for _ in range(repeat):
                    decode(raw.execute(statement, args).fetchall())

            few = max(1, repeat // 50)  # the index-less schema is slow: fewer repeats

            def run_old(sql: str = sql, args: Any = args, old: Any = old, few: int = few) -> None:
                statement = sql.format(table="messages")
                for _ in range(few):
                    decode(old.execute(statement, args).fetchall())

            mine, baseline = alternate(rounds, run_ours, run_raw, per=repeat)
            indexless = median_time(rounds, run_old, per=few)
            if count == sizes[-1]:
                results.append(
                    Result(
                        "query", f"{name}, {count:,} rows", "s", mine, baseline, 2, indexless, count
                    )
                )
            if name.startswith("page of 50 by endpoint"):
                for key, value in (
                    ("dorkstore", mine),
                    ("raw", baseline),
                    ("indexless", indexless),
                ):
                    curve[key].append(value)
        dorkstore.close_db()
        raw.close()
        old.close()
    return results, curve


# --- scenario 4: single-row operations ----------------------------------------------------


def bench_single(work: Path, rounds: int, per: int) -> list[Result]:  # noqa: PLR0915
    """Scenario 4: single-row operations, each with its own commit, `per` at a time."""
    ours_path, raw_path = work / "single-ours.db", work / "single-raw.db"
    dorkstore.init_db(ours_path)
    pulse, relay, traces = dorkstore.PulseStore(), dorkstore.RelayIndex(), dorkstore.TraceStore()
    agents, denials, budgets = (
        dorkstore.AgentRegistry(),
        dorkstore.DenialList(),
        dorkstore.BudgetMapper(),
    )
    schedule = pulse.create_schedule("bench", "p", "* * * * *")
    agent = agents.insert("bench", "r", "/bench")
    denials.deny("/denied")
    relay.insert_many(as_messages(message_rows(per)))
    dorkstore.close_db()
    migrated_copy(ours_path, raw_path)
    dorkstore.init_db(ours_path)
    raw = raw_connect(raw_path)
    ids = [f"01KG{n:022d}" for n in range(per)]
    runs: list[str] = []
    raw_runs: list[str] = []
    counter = iter(range(10**9))

    def ours_create_run() -> None:
        runs[:] = [pulse.create_run(schedule.id).id for _ in range(per)]

    def raw_create_run() -> None:
        raw_runs[:] = []
        for _ in range(per):
            moment = datetime.now(UTC)
            run_id, at = str(ULID.from_datetime(moment)), stamp(moment)
            raw.execute(
                "INSERT INTO pulse_runs (id, schedule_id, status, started_at, trigger, created_at)"
                " VALUES (?, ?, 'running', ?, 'scheduled', ?)",
                (run_id, schedule.id, at, at),
            )
            raw_runs.append(run_id)

    def ours_update_run() -> None:
        for run_id in runs:
            pulse.update_run(run_id, status="completed", duration_ms=5)

    def raw_update_run() -> None:
        for run_id in raw_runs:
            with raw:
                raw.execute(
                    "UPDATE pulse_runs SET status = 'completed', duration_ms = 5 WHERE id = ?",
                    (run_id,),
                )
                raw.execute("SELECT * FROM pulse_runs WHERE id = ?", (run_id,)).fetchall()

    def ours_insert_span() -> None:
        base = next(counter) * per
        for n in range(per):
            traces.insert_span(f"m{base + n}", "t", "s")

    def raw_insert_span() -> None:
        base = next(counter) * per
        for n in range(per):
            moment = datetime.now(UTC)
            raw.execute(
                "INSERT INTO relay_traces (id, message_id, trace_id, subject, status, sent_at)"
                " VALUES (?, ?, 't', 's', 'sent', ?)",
                (str(ULID.from_datetime(moment)), f"m{base + n}", stamp(moment)),
            )

    def ours_update_status() -> None:
        for message_id in ids:
            relay.update_status(message_id, "delivered")

    def raw_update_status() -> None:
        for message_id in ids:
            raw.execute("UPDATE relay_index SET status = 'delivered' WHERE id = ?", (message_id,))

    def minute() -> int:
        return (datetime.now(UTC) - dorkstore.timestamps.EPOCH) // timedelta(minutes=1)

    prune = "DELETE FROM rate_limit_buckets WHERE bucket_minute < ?"
    upsert = (
        "INSERT INTO rate_limit_buckets (agent_id, bucket_minute, count) VALUES (?, ?, 1)"
        " ON CONFLICT (agent_id, bucket_minute) DO UPDATE SET count = count + 1"
    )

    def ours_record_call() -> None:
        for _ in range(per):
            budgets.record_call("a")

    def raw_record_call() -> None:
        for _ in range(per):
            now_minute = minute()
            with raw:
                raw.execute(prune, (now_minute - 120,))
                raw.execute(upsert, ("a", now_minute))

    def ours_try_consume() -> None:
        for _ in range(per):
            budgets.try_consume("b", 10**9)

    def raw_try_consume() -> None:
        for _ in range(per):
            now_minute = minute()
            raw.execute("BEGIN IMMEDIATE")
            raw.execute(prune, (now_minute - 120,))
            (used,) = raw.execute(
                "SELECT coalesce(sum(count), 0) FROM rate_limit_buckets"
                " WHERE agent_id = ? AND bucket_minute >= ?",
                ("b", now_minute - 60),
            ).fetchone()
            if used < 10**9:
                raw.execute(upsert, ("b", now_minute))
            raw.execute("COMMIT")

    def ours_is_denied() -> None:
        for _ in range(per):
            denials.is_denied("/denied")

    def raw_is_denied() -> None:
        for _ in range(per):
            raw.execute(
                "SELECT 1 FROM agent_denials WHERE path = ?", (os.path.realpath("/denied"),)
            ).fetchall()

    def ours_get() -> None:
        for _ in range(per):
            agents.get(agent.id)

    def raw_get() -> None:
        for _ in range(per):
            row = raw.execute("SELECT * FROM agents WHERE id = ?", (agent.id,)).fetchone()
            json.loads(row[5])  # capabilities_json, decoded as the API returns it

    pairs = {
        "PulseStore.create_run": (ours_create_run, raw_create_run),
        "PulseStore.update_run": (ours_update_run, raw_update_run),
        "TraceStore.insert_span": (ours_insert_span, raw_insert_span),
        "RelayIndex.update_status": (ours_update_status, raw_update_status),
        "BudgetMapper.record_call": (ours_record_call, raw_record_call),
        "BudgetMapper.try_consume": (ours_try_consume, raw_try_consume),
        "DenialList.is_denied": (ours_is_denied, raw_is_denied),
        "AgentRegistry.get": (ours_get, raw_get),
    }
    results = []
    for name, (ours, raw_fn) in pairs.items():
        if name == "PulseStore.update_run":  # needs the runs created just before
            ours_create_run()
            raw_create_run()
        mine, baseline = alternate(rounds, ours, raw_fn, per=per)
        results.append(Result("single", name, "s", mine, baseline, target=3))
    dorkstore.close_db()
    raw.close()
    return results


# --- scenario 5: try_consume from several processes ---------------------------------------


def consume_worker(path: str, raw: bool, calls: int, barrier: Any, results: Any) -> None:
    """Make `calls` budget calls after the barrier; put the seconds taken (spawn target)."""
    if raw:
        connection = raw_connect(Path(path))
        statement = (
            "INSERT INTO rate_limit_buckets (agent_id, bucket_minute, count)"
            " SELECT ?1, ?2, 1 WHERE (SELECT coalesce(sum(count), 0) FROM rate_limit_buckets"
            " WHERE agent_id = ?1 AND bucket_minute >= ?2 - 60) < ?3"
            " ON CONFLICT (agent_id, bucket_minute) DO UPDATE SET count = count + 1"
        )
        barrier.wait()
        started = time.perf_counter()
        for _ in range(calls):
            minute = (datetime.now(UTC) - dorkstore.timestamps.EPOCH) // timedelta(minutes=1)
            connection.execute(statement, ("shared", minute, 10**9))
        results.put(time.perf_counter() - started)
        connection.close()
        return
    dorkstore.init_db(path)
    budgets = dorkstore.BudgetMapper()
    barrier.wait()
    started = time.perf_counter()
    for _ in range(calls):
        budgets.try_consume("shared", 10**9)
    results.put(time.perf_counter() - started)
    dorkstore.close_db()


def bench_processes(work: Path, rounds: int, calls: int) -> list[Result]:
    """Scenario 5: try_consume throughput with 4 processes on one file."""
    context = multiprocessing.get_context("spawn")
    ours_path, raw_path = work / "procs-ours.db", work / "procs-raw.db"
    dorkstore.init_db(ours_path)
    dorkstore.close_db()
    migrated_copy(ours_path, raw_path)

    def throughput(path: Path, raw: bool) -> float:
        barrier, results = context.Barrier(4), context.Queue()
        workers = [
            context.Process(target=consume_worker, args=(str(path), raw, calls, barrier, results))
            for _ in range(4)
        ]
        for worker in workers:
            worker.start()
        slowest = max(results.get(timeout=600) for _ in workers)
        for worker in workers:
            worker.join()
        return 4 * calls / slowest

    ours, raw = [], []
    for round_ in range(rounds):
        for path, is_raw, into in [(ours_path, False, ours), (raw_path, True, raw)][
            :: 1 if round_ % 2 == 0 else -1
        ]:
            into.append(throughput(path, is_raw))
    return [
        Result("processes", f"try_consume, 4 processes x {calls:,} calls", "calls/s",
               statistics.median(ours), statistics.median(raw), target=3),
    ]  # fmt: skip


# --- output -----------------------------------------------------------------------------------


def human(seconds: float | None, unit: str) -> str:
    """Format a median for the table."""
    if seconds is None:
        return ""
    if unit == "calls/s":
        return f"{seconds:,.0f} calls/s"
    for scale, suffix in ((1, "s"), (1e-3, "ms"), (1e-6, "µs")):
        if seconds >= scale or suffix == "µs":
            return f"{seconds / scale:.3g} {suffix}"
    return ""


def markdown(results: list[Result], meta: dict[str, Any]) -> str:
    """Render the results as the README's Markdown table."""
    lines = [
        f"Measured {meta['date']} on {meta['machine']} ({meta['cpus']} cores), Python "
        f"{meta['python']}, SQLite {meta['sqlite']}; medians of {meta['rounds']} alternating",
        f"rounds ({meta['rounds'] * 10} for init_db, {meta['process_rounds']} for processes).",
        "Ratio = dorkstore / raw APSW on the same schema and pragmas (throughput: raw /",
        "dorkstore); raw starts from the same input and produces the same output (JSON",
        "encoded and decoded).",
        "",
        "| scenario | dorkstore | raw SQLite | ratio | target | index-less | vs index-less | met |",
        "|---|---:|---:|---:|---:|---:|---:|:-:|",
    ]
    for r in results:
        target = (
            ""
            if r.target is None
            else f"≤ {r.target:g}×" + (" and ≥ 100× faster" if r.indexless else "")
        )
        verdict = {True: "✓", False: "✗", None: ""}[r.met]
        ratio = "" if r.ratio is None else f"{r.ratio:.2f}×"
        speedup = ""
        if r.speedup is not None:
            digits = ",.0f" if r.speedup >= 10 else ".2g"
            speedup = f"{r.speedup:{digits}}× faster"
        lines.append(
            f"| {r.scenario} | {human(r.dorkstore, r.unit)} | {human(r.baseline, r.unit)} | "
            f"{ratio} | {target} | {human(r.indexless, r.unit)} | {speedup} | {verdict} |"
        )
    return "\n".join(lines) + "\n"


def chart(curve: dict[str, Any], path: Path) -> None:
    """Plot query latency against table size for dorkstore, raw and index-less."""
    import matplotlib  # only the benchmark environment has it

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(7, 4.5), dpi=120)
    for key, label, style in (
        ("dorkstore", "dorkstore (RelayIndex.query_messages)", "o-"),
        ("raw", "raw SQLite, same schema", "s--"),
        ("indexless", "index-less schema (original)", "^-"),
    ):
        axes.plot(curve["sizes"], [v * 1e3 for v in curve[key]], style, label=label)
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("rows in relay_index")
    axes.set_ylabel("median latency (ms), log scale")
    axes.set_title("Page of 50 by endpoint + status")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)


def update_readme(table: str) -> None:
    """Replace the table between the README's benchmark markers."""
    text = README.read_text()
    start, end = "<!-- benchmarks:start -->", "<!-- benchmarks:end -->"
    if start not in text:
        raise SystemExit("README.md has no benchmarks markers")
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.DOTALL)
    README.write_text(pattern.sub(lambda _: f"{start}\n{table}{end}", text))


def main() -> None:
    """Run every scenario and write the results."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, under a minute")
    parser.add_argument("--out", type=Path, help="where results go (default: see above)")
    options = parser.parse_args()
    quick = options.quick
    out = options.out or (HERE / "scratch" if quick else HERE)
    out.mkdir(parents=True, exist_ok=True)
    rounds = 3 if quick else 5
    sizes = [1_000, 5_000, 20_000] if quick else [10_000, 100_000, 1_000_000]
    bulk = 5_000 if quick else 100_000
    with tempfile.TemporaryDirectory(prefix="dorkstore-bench-") as scratch:
        work = Path(scratch)
        results = bench_open(work, rounds)
        results += bench_bulk(work, rounds, bulk)
        query_results, curve = bench_queries(work, rounds, sizes)
        results += query_results
        results += bench_single(work, rounds, 100 if quick else 500)
        process_rounds = 1 if quick else 3
        results += bench_processes(work, process_rounds, 200 if quick else 2_000)
    meta = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "sqlite": apsw.sqlitelibversion(),
        "rounds": rounds,
        "process_rounds": process_rounds,
        "quick": quick,
    }
    payload = {
        "meta": meta,
        "results": [
            asdict(r) | {"ratio": r.ratio, "speedup": r.speedup, "met": r.met} for r in results
        ],
        "query_latency_curve": curve,
    }
    (out / "results.json").write_text(json.dumps(payload, indent=2) + "\n")
    table = markdown(results, meta)
    (out / "results.md").write_text(table)
    chart(curve, out / "query-latency.png")
    if not quick and options.out is None:
        update_readme(table)
    sys.stdout.write(table)
    missed = [r.scenario for r in results if r.met is False]
    if missed:
        sys.stdout.write(f"\ntargets missed: {'; '.join(missed)}\n")


if __name__ == "__main__":
    main()
