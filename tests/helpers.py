"""Helpers shared by tests, importable by spawned child processes."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import peewee as pw
from click.testing import CliRunner, Result

import dorkstore
from dorkstore.cli import cli

#: The seven tables of SPEC section 4.
TABLES = frozenset(
    {
        "pulse_schedules",
        "pulse_runs",
        "relay_index",
        "relay_traces",
        "agents",
        "agent_denials",
        "rate_limit_buckets",
    }
)


def run_in_processes(
    target: Callable[..., None], arguments: list[tuple[Any, ...]], timeout: float = 300
) -> list[Any]:
    """Run `target(*args, barrier, results)` in one spawned process per tuple, released together.

    Returns what each process put on `results`, in the order they finished, after
    checking that every process exited cleanly.
    """
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(len(arguments)), context.Queue()
    processes = [
        context.Process(target=target, args=(*args, barrier, results)) for args in arguments
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=timeout) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    assert [0] * len(processes) == [process.exitcode for process in processes]
    return outcomes


def run_in_threads(target: Callable[[], object], count: int) -> None:
    """Run `target` in `count` threads at once and wait for all of them."""
    threads = [threading.Thread(target=target) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def write_migration(directory: Path, name: str, migrate: str, rollback: str = "pass") -> Path:
    """Write migration `name` (``NNN_name``) whose functions run the given bodies."""
    path = directory / f"{name}.py"
    path.write_text(
        "import peewee as pw\n\n\n"
        "def migrate(migrator, database, *, fake=False):\n"
        + textwrap.indent(textwrap.dedent(migrate).strip(), "    ")
        + "\n\n\ndef rollback(migrator, database, *, fake=False):\n"
        + textwrap.indent(textwrap.dedent(rollback).strip(), "    ")
        + "\n"
    )
    return path


def stdlib_sqlite(path: Path, script: str) -> Any:
    """Run `script` in a child process with the standard sqlite3 module; return its JSON output.

    The script sees `conn` (a sqlite3 connection to `path`) and sets `result`. A
    child process keeps the standard library's SQLite away from the APSW copy
    that dorkstore uses in this one (two copies in one process drop each
    other's POSIX locks).
    """
    program = (
        "import json, sqlite3, sys\n"
        "conn = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "result = None\n" + textwrap.dedent(script) + "\nconn.close()\nprint(json.dumps(result))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program, str(path)], capture_output=True, text=True, check=False
    )
    if done.returncode:
        raise AssertionError(f"child sqlite3 failed:\n{done.stderr}")
    return json.loads(done.stdout)


class FakeClock:
    """A clock for repositories: returns `now` until told to move."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        """Return the fake now."""
        return self.now

    def advance(self, **delta: float) -> datetime:
        """Move the clock forward by a timedelta's keyword arguments; return the new time."""
        self.now += timedelta(**delta)
        return self.now


def try_consume_many(
    path: str, agent_id: str, limit: int, attempts: int, barrier: Any, results: Any
) -> None:
    """Call BudgetMapper.try_consume `attempts` times after the barrier; put the successes.

    A spawn target: opens its own connection to `path`.
    """
    dorkstore.init_db(path)
    budgets = dorkstore.BudgetMapper()
    barrier.wait()
    results.put(sum(budgets.try_consume(agent_id, limit).allowed for _ in range(attempts)))
    dorkstore.close_db()


def import_and_hang(path: str, source: str, inside: Any) -> None:
    """Run import_legacy and hang after its first batch, until killed (spawn target).

    Sets `inside` once the first batch is committed, then sleeps in the progress
    callback, between two transactions.
    """
    import time

    from dorkstore import legacy

    def hang(_rows: int) -> None:
        inside.set()
        time.sleep(600)

    dorkstore.init_db(path)
    legacy.import_legacy(source, progress=hang)


def insert_denials_until(path: str, started: Any, stop: Any) -> None:
    """Insert denial rows, each in its own transaction, until `stop` is set (spawn target)."""
    dorkstore.init_db(path)
    denials = dorkstore.DenialList()
    number = 0
    while not stop.is_set():
        denials.deny(f"/writer/{number}", reason="x" * 200)
        number += 1
        if number == 50:
            started.set()
    dorkstore.close_db()


def init_db_through(path: str, barrier: Any, results: Any) -> None:
    """Like init_db_after, but put the outcome on `results` instead of failing (spawn target)."""
    barrier.wait()
    try:
        dorkstore.init_db(path)
        dorkstore.close_db()
    except Exception as exc:
        results.put(f"{type(exc).__module__}.{type(exc).__name__}: {exc}")
    else:
        results.put("ok")


@contextlib.contextmanager
def inserts_fail(db: Any, table: str, message: str, *, only_id: str | None = None) -> Any:
    """Make the database itself refuse inserts into `table` (all, or of one id) for a while.

    A trigger, on either backend: a real failure midway through a write, with
    no function of dorkstore patched.
    """
    postgres = isinstance(db, pw.PostgresqlDatabase)
    condition = f"NEW.id = '{only_id}'" if only_id else "true"
    if postgres:
        db.execute_sql(
            "CREATE FUNCTION dorkstore_test_refuse() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN RAISE EXCEPTION '{message}'; END $$"
        )
        db.execute_sql(
            f"CREATE TRIGGER refuse BEFORE INSERT ON {table} FOR EACH ROW "
            f"WHEN ({condition}) EXECUTE FUNCTION dorkstore_test_refuse()"
        )
    else:
        db.execute_sql(
            f"CREATE TEMP TRIGGER refuse BEFORE INSERT ON main.{table} WHEN {condition} "
            f"BEGIN SELECT RAISE(ABORT, '{message}'); END"
        )
    try:
        yield
    finally:
        if postgres:
            db.execute_sql(f"DROP TRIGGER refuse ON {table}")
            db.execute_sql("DROP FUNCTION dorkstore_test_refuse()")
        else:
            db.execute_sql("DROP TRIGGER refuse")


def metrics_figures(metrics: dorkstore.DeliveryMetrics) -> tuple[object, ...]:
    """The delivery metrics as (total, delivered, failed, dead-lettered, avg, p95, endpoints)."""
    return (
        metrics.total_messages,
        metrics.delivered_count,
        metrics.failed_count,
        metrics.dead_lettered_count,
        metrics.avg_delivery_latency_ms,
        metrics.p95_delivery_latency_ms,
        metrics.active_endpoints,
    )


@contextlib.contextmanager
def lock_held_by_another_process(path: Path, seconds: float) -> Any:
    """Have a child process (the standard sqlite3 module) hold `path`'s write lock for a while.

    Yields once the lock is held; the child lets go after `seconds` and is waited for.
    """
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sqlite3, sys, time\n"
         "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
         "c.execute('BEGIN IMMEDIATE'); print('held', flush=True); time.sleep(float(sys.argv[2]))",
         str(path), str(seconds)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert "held\n" == holder.stdout.readline()  # type: ignore[union-attr]
        yield holder
    finally:
        holder.kill()
        holder.wait(30)
        holder.stdout.close()  # type: ignore[union-attr]


def one_line_error(result: Any, fragment: str, status: int = 3) -> None:
    """Check a CliRunner result: exit `status`, one line on stderr naming `fragment`."""
    assert (status, 1) == (result.exit_code, len(result.stderr.splitlines())), result.stderr
    assert fragment in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def run_cli(*args: str) -> Result:
    """Run the dorkstore command in this process; an exception it lets through propagates."""
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)
