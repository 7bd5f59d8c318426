"""Spawn targets for the stress tests; each opens its own connection."""

from __future__ import annotations

import json
import time
import traceback
from pathlib import Path
from typing import Any

from playhouse.apsw_ext import APSWDatabase

import dorkstore
from dorkstore import legacy, migrate
from dorkstore.backends.sqlite import PRAGMAS

OPS_PER_CYCLE = 10


def mixed_writes(path: str, worker: int, cycles: int, barrier: Any, results: Any) -> None:
    """Write through every repository, `cycles` x 10 operations; put the errors (a list)."""
    errors: list[str] = []
    dorkstore.init_db(path)
    pulse, relay, traces = dorkstore.PulseStore(), dorkstore.RelayIndex(), dorkstore.TraceStore()
    agents, denials = dorkstore.AgentRegistry(), dorkstore.DenialList()
    budgets = dorkstore.BudgetMapper()
    barrier.wait()
    for cycle in range(cycles):
        key = f"w{worker}-c{cycle}"
        try:
            schedule = pulse.create_schedule(key, "p", "* * * * *")
            run = pulse.create_run(schedule.id)
            pulse.update_run(run.id, status="completed", duration_ms=cycle)
            relay.insert_message(f"M-{key}", "relay.stress", f"ep{worker}")
            relay.update_status(f"M-{key}", "delivered")
            traces.insert_span(f"M-{key}", f"T-{worker}", "relay.stress")
            traces.update_span(f"M-{key}", status="delivered", delivered_at=int(time.time() * 1000))
            agents.insert(key, "stress", f"/stress/{key}")
            denials.deny(f"/denied/{key}")
            budgets.record_call(f"agent-{worker}")
        except Exception:
            errors.append(traceback.format_exc())
    dorkstore.close_db()
    results.put(errors)


def insert_batches_forever(path: str, prefix: str, batch: int, started: Any) -> None:
    """insert_many batches of `batch` new messages (ids start with `prefix`) until killed."""
    dorkstore.init_db(path)
    relay = dorkstore.RelayIndex()
    number = 0
    while True:
        relay.insert_many(
            dorkstore.IndexedMessage(
                f"{prefix}-{number:07d}-{n:05d}", "s", "ep", None, "pending", None, {"n": n},
                None, "2026-01-01T00:00:00.000Z",
            )
            for n in range(batch)
        )  # fmt: skip
        number += 1
        started.set()


def rebuild_forever(path: str, maildir: str, started: Any) -> None:
    """Rebuild the index from `maildir` until killed."""
    dorkstore.init_db(path)
    relay = dorkstore.RelayIndex()
    started.set()
    while True:
        relay.rebuild(maildir)


def import_legacy_once(path: str, source: str, started: Any) -> None:
    """Open a new database and import the old one into it, once."""
    started.set()
    dorkstore.init_db(path)
    legacy.import_legacy(source)
    time.sleep(60)  # wait to be killed: the test kills at a random moment, maybe after this


def migrate_once(path: str, directory: str, started: Any) -> None:
    """Apply the migrations in `directory` to a new file, once."""
    started.set()
    db = APSWDatabase(path, pragmas=PRAGMAS)
    migrate.open_database(db, directory=Path(directory))
    time.sleep(60)


def consume_forever(path: str, log: str, started: Any) -> None:
    """try_consume in a loop, appending a line to `log` after each allowed call."""
    dorkstore.init_db(path)
    budgets = dorkstore.BudgetMapper()
    with open(log, "a", buffering=1) as out:
        started.set()
        while True:
            if budgets.try_consume("stress", 10**9).allowed:
                out.write("1\n")


def hold_write_lock(path: str, seconds: float, holding: Any) -> None:
    """Hold the write lock of `path` for `seconds` through another connection."""
    import apsw

    connection = apsw.Connection(path)
    connection.execute("BEGIN IMMEDIATE")
    holding.set()
    time.sleep(seconds)
    connection.execute("ROLLBACK")
    connection.close()


def describe(results: Any) -> str:
    """Join the error lists workers put, for an assertion message."""
    return json.dumps(results, indent=1)[:4000]
