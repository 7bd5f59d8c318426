"""The torture suite on PostgreSQL: races, kill -9, a server restart, operators beside writers.

Needs ``DORKSTORE_TEST_PG`` (skipped without it). The restart test restarts the
server itself with ``pg_ctl``, so it runs only where that server's data
directory is on this machine (``tools/pg_cluster.py``'s cluster is).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

import dorkstore
import dorkstore.legacy
from tests.helpers import run_in_processes
from tests.pg_workers import connect, insert_in_order, write_through_outages
from tests.stress.workers import insert_batches_forever

pytestmark = pytest.mark.stress
PG_URL = os.environ.get("DORKSTORE_TEST_PG")
CONTEXT = multiprocessing.get_context("spawn")
ROUNDS = int(os.environ.get("DORKSTORE_KILL_ROUNDS", "10"))


def query(url: str, sql: str) -> list[tuple[Any, ...]]:
    """Run `sql` in a session of its own and return its rows."""
    with connect(url, autocommit=True) as session:
        return session.execute(sql).fetchall()


def relay_ids(url: str) -> set[str]:
    return {id for (id,) in query(url, "SELECT id FROM relay_index")}


# --- bulk writes: no deadlock, whole batches --------------------------------------------


def test_bulk_writes_of_the_same_rows_in_opposite_orders_never_deadlock(pg_url: str) -> None:
    """Two processes, 10 rounds of insert_many over 5,000 ids in opposite orders: no error.

    Every id is there once, and all hold the payload of one batch: the last
    committed replaced every row, never only some of them.
    """
    ids = [f"RACE{n:05d}" for n in range(5000)]
    outcomes = run_in_processes(
        insert_in_order, [(pg_url, "ascending", ids, 10), (pg_url, "descending", ids[::-1], 10)]
    )
    assert [[], []] == outcomes
    assert [(5000, 5000, 1)] == query(
        pg_url, "SELECT count(*), count(DISTINCT id), count(DISTINCT payload) FROM relay_index"
    )
    ((payload,),) = query(pg_url, "SELECT DISTINCT payload FROM relay_index")
    assert json.loads(payload) in ({"writer": w, "round": 9} for w in ("ascending", "descending"))


def test_kill_9_during_bulk_writes_leaves_whole_batches_and_no_lock(pg_url: str) -> None:
    """insert_many batches killed at random moments: only whole batches stay, the lock is free."""
    batch = 2000
    for round_number in range(ROUNDS):
        started = CONTEXT.Event()
        prefix = f"K{round_number:02d}"
        child = CONTEXT.Process(
            target=insert_batches_forever, args=(pg_url, prefix, batch, started)
        )
        child.start()
        try:
            assert started.wait(60)
            time.sleep(random.uniform(0, 0.5))
        finally:
            os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
            child.join(30)
        ((rows,),) = query(pg_url, f"SELECT count(*) FROM relay_index WHERE id LIKE '{prefix}-%'")
        assert 0 == rows % batch, (round_number, rows)
        assert rows >= batch
    start = time.monotonic()
    assert 1 == dorkstore.RelayIndex().insert_many(
        [
            dorkstore.IndexedMessage(
                "AFTER", "s", "ep", None, "pending", None, None, None, "2026-01-01T00:00:00Z"
            )
        ]
    )
    assert time.monotonic() - start < 2


# --- a server restart under load ----------------------------------------------------------


def restart_server(url: str) -> None:
    """Restart the server of `url` with pg_ctl (fast shutdown), or skip where that is impossible."""
    from tools import pg_cluster

    try:
        ((data,),) = query(url, "SHOW data_directory")
    except Exception as exc:  # no right to read it, say
        pytest.skip(f"cannot read the server's data directory: {exc}")
    if not Path(data).is_dir():
        pytest.skip(f"the server's data directory {data} is not on this machine")
    try:
        pg_ctl = pg_cluster.binary("pg_ctl")
    except SystemExit:
        pytest.skip("pg_ctl not found")
    # The server outlives pg_ctl: give it a log file (pg_cluster's, if that is its own),
    # never our pipes, which would stay open as long as it runs.
    log = Path(data).parent / "server.log"
    command = [pg_ctl, "-D", data, "-m", "fast", "-w", "restart"]
    command += ["-l", str(log)] if log.is_file() else []
    subprocess.run(
        pg_cluster.as_server_user(command),
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120,
    )  # fmt: skip


def test_a_server_restart_under_load_fails_calls_cleanly_and_service_resumes(pg_url: str) -> None:
    """Writers through a restart: failed calls are DatabaseErrors, then every writer writes again.

    Every write reported done is in the index, and nothing is there that was not tried.
    """
    started = [CONTEXT.Event() for _ in range(2)]
    written = [CONTEXT.Value("q", 0) for _ in range(2)]
    stop, results = CONTEXT.Event(), CONTEXT.Queue()
    writers = [
        CONTEXT.Process(
            target=write_through_outages, args=(pg_url, started[n], stop, written[n], results)
        )
        for n in range(2)
    ]
    for writer in writers:
        writer.start()
    try:
        assert all(event.wait(60) for event in started)
        time.sleep(0.5)
        restart_server(pg_url)
        after_restart = [count.value for count in written]
        deadline = time.monotonic() + 60
        while any(
            count.value < mark + 20 for count, mark in zip(written, after_restart, strict=True)
        ):
            assert time.monotonic() < deadline, "a writer did not resume after the restart"
            time.sleep(0.05)
    finally:
        stop.set()
        outcomes = [results.get(timeout=60) for _ in writers]
        for writer in writers:
            writer.join(60)
    assert [0, 0] == [writer.exitcode for writer in writers]
    failures = [failure for outcome in outcomes for _, failure in outcome["failed"]]
    assert [] == [f for f in failures if not f["database_error"] or f["driver"]]
    assert all(outcome["failed"] for outcome in outcomes), "a writer did not notice the restart"
    ok = {id for outcome in outcomes for id in outcome["ok"]}
    tried = ok | {id for outcome in outcomes for id, _ in outcome["failed"]}
    present = relay_ids(pg_url)
    assert ok <= present
    assert present <= tried
