"""PostgreSQL test support: throwaway databases, and spawn targets that each open their own.

Spawned children import this module by name, so everything here is top level
and takes plain, picklable arguments (URLs, not database objects).
"""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import dorkstore
from dorkstore.backends.postgres import POSTGRES


def connect(url: str, *, autocommit: bool = False) -> Any:
    """Return a psycopg connection of its own to `url`.

    psycopg is imported here, never at the top: it is the optional postgres
    extra, absent where only SQLite is tested.
    """
    import psycopg

    return psycopg.connect(url, autocommit=autocommit)


def is_driver_error(error: object) -> bool:
    """Return True for an exception of psycopg's own (one that must never reach a caller)."""
    import psycopg

    return isinstance(error, psycopg.Error)


def sibling_url(url: str, name: str) -> str:
    """Return `url` naming database `name` on the same server."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def with_password(url: str, password: str) -> str:
    """Return `url` with `password` (already URL-quoted) for its user."""
    parts = urlsplit(url)
    user, host = (parts.username or ""), parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{host}"))


@contextmanager
def new_database(server_url: str, name: str) -> Iterator[str]:
    """Create the empty database `name` (dropping any leftover), yield its URL, drop it."""
    with connect(server_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield sibling_url(server_url, name)
    finally:
        dorkstore.close_db()
        with connect(server_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def backend_pid() -> int:
    """Return the server process of this thread's connection to `dorkstore.database`."""
    return int(dorkstore.database.execute_sql("SELECT pg_backend_pid()").fetchone()[0])


def terminate(url: str, pid: int) -> None:
    """End server process `pid` from another connection and wait until it is gone."""
    with connect(url, autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)
        deadline = time.monotonic() + 10
        while admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone():
            assert time.monotonic() < deadline, f"backend {pid} still alive"
            time.sleep(0.01)


def failure(exc: BaseException) -> dict[str, Any]:
    """Describe an exception a child met, for the parent to assert on."""
    return {
        "type": type(exc).__name__,
        "dorkstore": isinstance(exc, dorkstore.DorkstoreError),
        "database_error": isinstance(exc, dorkstore.DatabaseError),
        "driver": is_driver_error(exc),
        "message": str(exc),
        "traceback": traceback.format_exc(),
    }


# --- spawn targets ------------------------------------------------------------------------


def consume(url: str, agent: str, calls: int, limit: int, barrier: Any, results: Any) -> None:
    """try_consume `calls` times once every process is ready; put (allowed, errors)."""
    errors: list[dict[str, Any]] = []
    allowed = 0
    dorkstore.init_db(url)
    budgets = dorkstore.BudgetMapper()
    barrier.wait()
    for _ in range(calls):
        try:
            allowed += budgets.try_consume(agent, limit).allowed
        except Exception as exc:
            errors.append(failure(exc))
    dorkstore.close_db()
    results.put((allowed, errors))


def insert_in_order(
    url: str, writer: str, ids: list[str], rounds: int, barrier: Any, results: Any
) -> None:
    """insert_many the messages `ids` in that order, `rounds` times, each round with the others.

    Each message's payload names the writer and the round. Puts the errors met.
    """
    errors: list[dict[str, Any]] = []
    dorkstore.init_db(url)
    relay = dorkstore.RelayIndex()
    for round_number in range(rounds):
        payload = {"writer": writer, "round": round_number}
        barrier.wait()
        try:
            relay.insert_many(
                dorkstore.IndexedMessage(
                    id, "relay.race", "ep", None, "pending", None, payload, None,
                    "2026-01-01T00:00:00.000Z",
                )
                for id in ids
            )  # fmt: skip
        except Exception as exc:
            errors.append(failure(exc))
    dorkstore.close_db()
    results.put(errors)


def open_new(url: str, barrier: Any, results: Any) -> None:
    """Open (and migrate) `url` once every process is ready; put what this process applied."""
    barrier.wait()
    try:
        results.put(("applied", dorkstore.migrate_db(url)))
    except Exception as exc:
        results.put(("error", failure(exc)))
    dorkstore.close_db()


def hold_migration_lock(url: str, seconds: float, holding: Any) -> None:
    """Hold the migration lock of `url`, as a migrating process does, for `seconds`."""
    db = POSTGRES.open(url)
    with POSTGRES.migration_lock(db, 60):
        holding.set()
        time.sleep(seconds)
    db.close()


def write_then_hang(url: str, ready: Any) -> None:
    """Write through several repositories inside one group, then wait there to be killed."""
    dorkstore.init_db(url)
    with dorkstore.write_transaction():
        dorkstore.RelayIndex().insert_many(
            dorkstore.IndexedMessage(
                f"KILLED{n:05d}", "relay.kill", "ep", None, "pending", None, None, None,
                "2026-01-01T00:00:00.000Z",
            )
            for n in range(500)
        )  # fmt: skip
        dorkstore.PulseStore().create_schedule("killed", "p", "* * * * *")
        assert dorkstore.BudgetMapper().try_consume("agent-killed", 10).allowed
        ready.set()
        time.sleep(120)


def write_through_outages(url: str, started: Any, stop: Any, written: Any, results: Any) -> None:
    """insert_message until told to stop, counting successes in `written`.

    Puts {"ok": ids written, "failed": [(id, failure), ...]}.
    """
    dorkstore.init_db(url)
    relay = dorkstore.RelayIndex()
    ok: list[str] = []
    failed: list[tuple[str, dict[str, Any]]] = []
    number = 0
    started.set()
    while not stop.is_set():
        id = f"OUT{os.getpid()}-{number:07d}"
        number += 1
        try:
            relay.insert_message(id, "relay.outage", "ep")
        except Exception as exc:
            failed.append((id, failure(exc)))
            time.sleep(0.02)
            continue
        ok.append(id)
        written.value = len(ok)
    results.put({"ok": ok, "failed": failed})
