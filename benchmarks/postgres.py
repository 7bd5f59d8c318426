"""The PostgreSQL column: dorkstore on PostgreSQL against raw psycopg running the same SQL.

Runs when ``DORKSTORE_BENCH_PG`` (or ``DORKSTORE_TEST_PG``) names a server, for
example inside ``python tools/pg_cluster.py run -- ...``; otherwise it is
skipped with a note. Two databases on that server get the same migrated
schema; dorkstore works in one, the raw baseline in the other, with the
statements dorkstore's repositories send written out by hand.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from functools import partial
from typing import Any

from data import as_messages, message_rows, minute
from measure import Result, alternate

import dorkstore

PG_URL = os.environ.get("DORKSTORE_BENCH_PG") or os.environ.get("DORKSTORE_TEST_PG")
COLUMNS = ("id", "subject", "endpoint_hash", "sender", "status", "expires_at", "payload",
           "metadata", "created_at")  # fmt: skip
UPSERT = (
    f"INSERT INTO relay_index ({', '.join(COLUMNS)}) VALUES ({', '.join(['%s'] * 9)}) "
    "ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in COLUMNS if c != "id")
)
PAGE = (
    f"SELECT {', '.join(COLUMNS)} FROM relay_index WHERE endpoint_hash = %s AND status = %s "
    "ORDER BY id DESC LIMIT %s"
)
CONSUME_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))"
PRUNE = "DELETE FROM rate_limit_buckets WHERE bucket_minute < %s"
USED = (
    "SELECT coalesce(sum(count), 0) FROM rate_limit_buckets "
    "WHERE agent_id = %s AND bucket_minute >= %s"
)
COUNT_CALL = (
    "INSERT INTO rate_limit_buckets (agent_id, bucket_minute, count) VALUES (%s, %s, 1) "
    "ON CONFLICT (agent_id, bucket_minute) DO UPDATE SET count = rate_limit_buckets.count + 1"
)


def database_url(name: str) -> str:
    """Return the URL of database `name` on the benchmark server."""
    if PG_URL is None:
        raise SystemExit("no PostgreSQL server named")
    return PG_URL.rsplit("/", 1)[0] + "/" + name


def fresh_database(name: str) -> str:
    """(Re)create database `name`, migrate it with dorkstore, and return its URL."""
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    url = database_url(name)
    dorkstore.init_db(url)
    dorkstore.close_db()
    return url


def raw_connect(url: str) -> Any:
    """Return a raw psycopg connection in autocommit mode: each baseline call commits itself."""
    import psycopg

    return psycopg.connect(url, autocommit=True)


def empty(raw: Any) -> None:
    """Empty relay_index on both sides."""
    dorkstore.database.execute_sql("TRUNCATE relay_index")
    raw.execute("TRUNCATE relay_index")


def raw_insert_many(raw: Any, rows: list[tuple[Any, ...]]) -> None:
    """insert_many's work by hand: one transaction, the rows in id order, executemany."""
    with raw.transaction(), raw.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(1)")
        cursor.executemany(UPSERT, sorted(rows))


def raw_page(raw: Any, times: int) -> None:
    """Read a page of 50 by endpoint and status, decoded as dorkstore decodes it."""
    for _ in range(times):
        rows = raw.execute(PAGE, ("ep0001", "pending", 51)).fetchall()
        [(row[0], json.loads(row[6]) if row[6] else None) for row in rows[:50]]


def raw_get(raw: Any, ids: list[str]) -> None:
    """get_message by id."""
    for message_id in ids:
        raw.execute(f"SELECT {', '.join(COLUMNS)} FROM relay_index WHERE id = %s", (message_id,))


def raw_consume(raw: Any, times: int) -> None:
    """try_consume by hand: lock the agent, prune, sum, count the call."""
    for _ in range(times):
        now = minute()
        with raw.transaction():
            raw.execute(CONSUME_LOCK, ("b",))
            raw.execute(PRUNE, (now - 120,))
            (used,) = raw.execute(USED, ("b", now - 60)).fetchone()
            if used < 10**9:
                raw.execute(COUNT_CALL, ("b", now))


def ours_page(times: int) -> None:
    """query_messages' page of 50 by endpoint and status, `times` times."""
    index = dorkstore.RelayIndex()
    for _ in range(times):
        index.query_messages(endpoint_hash="ep0001", status="pending", limit=50)


def ours_get(ids: list[str]) -> None:
    """RelayIndex.get_message of each id."""
    index = dorkstore.RelayIndex()
    for message_id in ids:
        index.get_message(message_id)


def ours_consume(times: int) -> None:
    """BudgetMapper.try_consume under a limit never reached, `times` times."""
    budgets = dorkstore.BudgetMapper()
    for _ in range(times):
        budgets.try_consume("b", 10**9)


def consume_worker(url: str, calls: int, limit: int, raw: bool, barrier: Any, results: Any) -> None:
    """Make `calls` try_consume calls on one agent after the barrier; put (seconds, allowed)."""
    allowed = 0
    if raw:
        connection = raw_connect(url)
    else:
        dorkstore.init_db(url)
        budgets = dorkstore.BudgetMapper()
    barrier.wait()
    started = time.perf_counter()
    for _ in range(calls):
        if raw:
            now = minute()
            with connection.transaction():
                connection.execute(CONSUME_LOCK, ("shared",))
                (used,) = connection.execute(USED, ("shared", now - 60)).fetchone()
                if used < limit:
                    connection.execute(COUNT_CALL, ("shared", now))
                    allowed += 1
        else:
            allowed += budgets.try_consume("shared", limit).allowed
    results.put((time.perf_counter() - started, allowed))


def throughput(url: str, calls: int, raw: bool) -> tuple[float, int]:
    """Four processes x `calls`, limit half the calls: (calls per second, total allowed)."""
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(4), context.Queue()
    limit = 2 * calls
    workers = [
        context.Process(target=consume_worker, args=(url, calls, limit, raw, barrier, results))
        for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=600) for _ in workers]
    for worker in workers:
        worker.join(60)
    return 4 * calls / max(seconds for seconds, _ in outcomes), sum(n for _, n in outcomes)


def bench_postgres(rounds: int, bulk: int, per: int, calls: int) -> list[Result]:
    """Measure the PostgreSQL column; return [] when no server is named."""
    if not PG_URL:
        print("PostgreSQL scenarios skipped: set DORKSTORE_BENCH_PG (or run inside pg_cluster)")
        return []
    ours_url, raw_url = fresh_database("bench_ours"), fresh_database("bench_raw")
    dorkstore.init_db(ours_url)
    raw = raw_connect(raw_url)
    rows = message_rows(bulk)
    messages = as_messages(rows)
    index = dorkstore.RelayIndex()
    insert = alternate(
        rounds, partial(index.insert_many, messages), partial(raw_insert_many, raw, rows),
        setup=partial(empty, raw),
    )  # fmt: skip
    for table in ("relay_index",):
        dorkstore.database.execute_sql(f"ANALYZE {table}")
        raw.execute(f"ANALYZE {table}")
    ids = [row[0] for row in rows[:per]]
    get = alternate(rounds, partial(ours_get, ids), partial(raw_get, raw, ids), per=per)
    page = alternate(rounds, partial(ours_page, per), partial(raw_page, raw, per), per=per)
    consume = alternate(rounds, partial(ours_consume, per), partial(raw_consume, raw, per), per=per)
    dorkstore.close_db()
    raw.close()
    ours_rate, ours_allowed = throughput(fresh_database("bench_ours"), calls, raw=False)
    raw_rate, raw_allowed = throughput(fresh_database("bench_raw"), calls, raw=True)
    if (ours_allowed, raw_allowed) != (2 * calls, 2 * calls):
        raise SystemExit(f"try_consume was not exact: {ours_allowed}, {raw_allowed}")
    label = "PostgreSQL:"
    return [
        Result("postgres", f"{label} insert_many, {bulk:,} messages", "s", *insert, 1.5, rows=bulk),
        Result("postgres", f"{label} RelayIndex.get_message", "s", *get, 2.0),
        Result("postgres", f"{label} page of 50 by endpoint + status", "s", *page, 2.0),
        Result("postgres", f"{label} BudgetMapper.try_consume", "s", *consume, 3.0),
        Result("postgres", f"{label} try_consume, 4 processes x {calls} (exact)", "calls/s",
               ours_rate, raw_rate, 3.0),
    ]  # fmt: skip
