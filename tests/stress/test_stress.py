"""The torture suite: contention, held locks, kill -9, full disks, read-only files, forks.

Each test does the damage for real, then checks counts exactly, PRAGMA
integrity_check = ok and an empty PRAGMA foreign_key_check. Run with
``tox -e stress`` (CI runs it); sizes are bounded so that it stays under ten
minutes on two cores.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import random
import shutil
import signal
import subprocess
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playhouse.apsw_ext import APSWDatabase

import dorkstore
from dorkstore import legacy, migrate
from dorkstore.backends.sqlite import PRAGMAS
from tests.helpers import TABLES, run_in_processes, stdlib_sqlite, write_migration
from tests.old_layout import build
from tests.stress.workers import (
    OPS_PER_CYCLE,
    consume_forever,
    describe,
    hold_write_lock,
    import_legacy_once,
    insert_batches_forever,
    migrate_once,
    mixed_writes,
    rebuild_forever,
)

pytestmark = pytest.mark.stress
CONTEXT = multiprocessing.get_context("spawn")
ROUNDS = int(os.environ.get("DORKSTORE_KILL_ROUNDS", "20"))


def check_whole(path: Path) -> dict[str, int]:
    """Assert integrity_check ok and no foreign-key violation; return row counts per table."""
    result = stdlib_sqlite(
        path,
        f"""
        result = {{
            "integrity": conn.execute("PRAGMA integrity_check").fetchall(),
            "orphans": conn.execute("PRAGMA foreign_key_check").fetchall(),
            "counts": {{t: conn.execute(f'SELECT count(*) FROM "{{t}}"').fetchone()[0]
                        for t in {sorted(TABLES)!r}
                        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?",
                                        (t,)).fetchone()}},
        }}
        """,
    )
    assert [["ok"]] == result["integrity"]
    assert [] == result["orphans"]
    return dict(result["counts"])


def kill_at_random(target: Any, args: tuple[Any, ...], at_most: float) -> None:
    """Start `target` in a spawned process, wait until it says it started, SIGKILL it soon after."""
    started = CONTEXT.Event()
    child = CONTEXT.Process(target=target, args=(*args, started))
    child.start()
    assert started.wait(timeout=60), "the child never started"
    time.sleep(random.uniform(0, at_most))
    os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
    child.join(timeout=30)
    assert child.exitcode in (-signal.SIGKILL, 0), child.exitcode


# --- 1. contention --------------------------------------------------------------------


def test_eight_processes_writing_everything_lose_nothing(db_path: Path) -> None:
    """8 processes x 300 mixed writes across every repository: all present, zero errors."""
    dorkstore.init_db(db_path)
    dorkstore.close_db()
    cycles = 300 // OPS_PER_CYCLE
    errors = run_in_processes(mixed_writes, [(str(db_path), n, cycles) for n in range(8)])
    assert [[]] * 8 == errors, describe(errors)
    counts = check_whole(db_path)
    expected = 8 * cycles
    del counts["rate_limit_buckets"]  # one per agent and minute; their sum is checked below
    assert dict.fromkeys(TABLES - {"rate_limit_buckets"}, expected) == counts
    totals = stdlib_sqlite(
        db_path,
        """
        one = lambda sql: conn.execute(sql).fetchone()[0]
        result = [
            one("SELECT count(*) FROM pulse_runs WHERE status = 'completed'"),
            one("SELECT count(*) FROM relay_index WHERE status = 'delivered'"),
            one("SELECT count(*) FROM relay_traces WHERE status = 'delivered'"),
            one("SELECT sum(count) FROM rate_limit_buckets"),
        ]
        """,
    )
    assert [expected] * 4 == totals


# --- 2. a lock held too long -------------------------------------------------------------


@contextlib.contextmanager
def write_lock_held(path: Path, seconds: float) -> Iterator[Any]:
    holding = CONTEXT.Event()
    holder = CONTEXT.Process(target=hold_write_lock, args=(str(path), seconds, holding))
    holder.start()
    assert holding.wait(timeout=60)
    try:
        yield holder
    finally:
        holder.join(timeout=60)


@pytest.mark.parametrize("operation", ["create_schedule", "try_consume", "insert_many"])
def test_a_lock_held_past_busy_timeout_is_a_typed_error(db_path: Path, operation: str) -> None:
    """Past busy_timeout the library raises DatabaseBusyError, never a driver exception."""
    dorkstore.init_db(db_path)
    dorkstore.database.execute_sql("PRAGMA busy_timeout = 300")
    calls = {
        "create_schedule": lambda: dorkstore.PulseStore().create_schedule("n", "p", "* * * * *"),
        "try_consume": lambda: dorkstore.BudgetMapper().try_consume("a", 10),
        "insert_many": lambda: dorkstore.RelayIndex().insert_many(
            [dorkstore.IndexedMessage("M", "s", "e", None, "pending", None, None, None,
                                      "2026-01-01T00:00:00.000Z")]
        ),
    }  # fmt: skip
    with write_lock_held(db_path, 2.0), pytest.raises(dorkstore.DatabaseBusyError):
        calls[operation]()
    assert 0 == sum(check_whole(db_path).values())
    calls[operation]()  # the condition cleared: normal service
    dorkstore.close_db()


def test_a_short_holder_is_waited_out(db_path: Path) -> None:
    """A lock held for less than busy_timeout delays the write, which then succeeds."""
    dorkstore.init_db(db_path)
    dorkstore.database.execute_sql("PRAGMA busy_timeout = 3000")
    with write_lock_held(db_path, 0.5):
        started = time.monotonic()
        dorkstore.PulseStore().create_schedule("n", "p", "* * * * *")
        waited = time.monotonic() - started
    dorkstore.close_db()
    assert waited > 0.1
    assert 1 == check_whole(db_path)["pulse_schedules"]


# --- 3. kill -9 --------------------------------------------------------------------------


def test_kill_during_insert_many_leaves_whole_batches(tmp_path: Path) -> None:
    """A process killed during insert_many leaves only complete batches, every round."""
    path = tmp_path / "dork.db"
    for number in range(ROUNDS):
        # New ids every round, so a partial batch could not hide among old rows.
        kill_at_random(insert_batches_forever, (str(path), f"R{number:02d}", 2000), at_most=0.3)
        assert 0 == check_whole(path)["relay_index"] % 2000


def test_kill_during_rebuild_leaves_the_old_or_the_new_index(tmp_path: Path) -> None:
    """After a kill mid-rebuild the index is exactly the previous one or the new one."""
    maildir = tmp_path / "maildir"
    folder = maildir / "ep" / "new"
    folder.mkdir(parents=True)
    new_ids = {f"N{n:05d}" for n in range(3000)}
    for message_id in new_ids:
        (folder / f"{message_id}.json").write_text(
            json.dumps({"id": message_id, "subject": "s", "createdAt": "2026-01-01T00:00:00Z"})
        )
    path = tmp_path / "dork.db"
    dorkstore.init_db(path)
    old = [
        dorkstore.IndexedMessage(f"OLD{n}", "s", "e", None, "pending", None, None, None,
                                 "2026-01-01T00:00:00.000Z")
        for n in range(500)
    ]  # fmt: skip
    for _ in range(ROUNDS):
        dorkstore.database.execute_sql("DELETE FROM relay_index")
        dorkstore.RelayIndex().insert_many(old)
        dorkstore.close_db()
        kill_at_random(rebuild_forever, (str(path), str(maildir)), at_most=0.6)
        check_whole(path)
        ids = {
            row[0]
            for row in stdlib_sqlite(
                path, "result = conn.execute('SELECT id FROM relay_index').fetchall()"
            )
        }
        assert ids in ({m.id for m in old}, new_ids)
        dorkstore.init_db(path)
    dorkstore.close_db()


def test_kill_during_import_legacy_is_completed_by_the_next_run(tmp_path: Path) -> None:
    """After a kill at any moment of import-legacy, running it again gives the whole import."""
    home = build(tmp_path / "old")
    started = time.monotonic()
    dorkstore.init_db(tmp_path / "reference.db")
    legacy.import_legacy(home)
    dorkstore.close_db()
    duration = time.monotonic() - started
    full = check_whole(tmp_path / "reference.db")
    interrupted = []
    for number in range(ROUNDS):
        path = tmp_path / f"import-{number}.db"
        # Spawning takes longer than importing: aim the kill at the import itself.
        kill_at_random(import_legacy_once, (str(path), str(home)), at_most=duration * 1.5)
        dorkstore.init_db(path)  # completes a migration the kill may have interrupted
        interrupted.append(check_whole(path) != full)
        legacy.import_legacy(home)
        dorkstore.close_db()
        assert full == check_whole(path)
    assert any(interrupted), "no round was killed before the import finished"


def test_kill_during_a_migration_is_completed_by_the_next_init(tmp_path: Path) -> None:
    """A migration killed midway is applied whole by the next opener, and recorded once."""
    migrations = tmp_path / "migrations"
    shutil.copytree(
        migrate.default_directory(), migrations, ignore=shutil.ignore_patterns("__pycache__")
    )
    rows = 200_000
    write_migration(
        migrations,
        "003_fill",
        f"""
        migrator.sql(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows}) "
            "INSERT INTO agent_denials (id, path, created_at) "
            "SELECT printf('D%07d', i), printf('/p/%d', i), 't' FROM n"
        )
        """,
    )
    started = time.monotonic()
    db = APSWDatabase(str(tmp_path / "reference.db"), pragmas=PRAGMAS)
    migrate.open_database(db, directory=migrations)
    db.close()
    duration = time.monotonic() - started
    interrupted = 0
    for number in range(ROUNDS):
        path = tmp_path / f"migrate-{number}.db"
        kill_at_random(migrate_once, (str(path), str(migrations)), at_most=duration * 1.2)
        interrupted += not path.exists() or "003_fill" not in stdlib_sqlite(
            path,
            "t = conn.execute(\"SELECT 1 FROM sqlite_master WHERE name = 'migratehistory'\")\n"
            "result = [r[0] for r in conn.execute('SELECT name FROM migratehistory')]"
            " if t.fetchone() else []",
        )
        db = APSWDatabase(str(path), pragmas=PRAGMAS)
        migrate.open_database(db, directory=migrations)
        history = migrate.applied_migrations(db)
        db.close()
        assert migrate.available_migrations(migrations) == history
        assert rows == check_whole(path)["agent_denials"]
    assert interrupted, "no round was killed before the migration committed"


def test_kill_during_try_consume_loses_no_counted_call(tmp_path: Path) -> None:
    """Every call a killed process saw allowed is counted; beyond that, at most one per kill."""
    path, log = tmp_path / "dork.db", tmp_path / "allowed.log"
    for kills in range(1, ROUNDS + 1):
        kill_at_random(consume_forever, (str(path), str(log)), at_most=0.3)
        counted = stdlib_sqlite(
            path,
            "result = conn.execute("
            "'SELECT coalesce(sum(count), 0) FROM rate_limit_buckets').fetchone()[0]",
        )
        seen = len(log.read_text().splitlines()) if log.exists() else 0
        # A kill between the commit and the log line leaves one call counted, not logged.
        assert seen <= counted <= seen + kills
        check_whole(path)


# --- 4. disk full and read-only ------------------------------------------------------


def test_a_full_disk_is_a_clear_error_and_writes_nothing(file_db: Any, db_path: Path) -> None:
    """With no room left (max_page_count), writes fail whole; with room again they work."""
    relay = dorkstore.RelayIndex()
    (pages,) = file_db.execute_sql("PRAGMA page_count").fetchone()
    file_db.execute_sql(f"PRAGMA max_page_count = {pages + 2}")
    batch = [
        dorkstore.IndexedMessage(f"M{n:05d}", "s", "e", None, "pending", None, {"x": "y" * 200},
                                 None, "2026-01-01T00:00:00.000Z")
        for n in range(5000)
    ]  # fmt: skip
    with pytest.raises(dorkstore.DatabaseError, match="full"):
        relay.insert_many(batch)
    with pytest.raises(dorkstore.DatabaseError, match="full"):
        dorkstore.PulseStore().create_schedule("n", "p" * 50_000, "* * * * *")
    assert 0 == relay.get_metrics().total_messages
    file_db.execute_sql("PRAGMA max_page_count = 1073741823")
    assert 5000 == relay.insert_many(batch)
    dorkstore.close_db()
    assert 5000 == check_whole(db_path)["relay_index"]


@contextlib.contextmanager
def immutable(path: Path) -> Iterator[None]:
    """Make `path` immutable with chattr +i (root cannot write it either), or skip."""
    done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False)
    if done.returncode:
        pytest.skip(f"chattr +i is not available here: {done.stderr.decode().strip()}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_a_read_only_file_is_a_clear_error(tmp_path: Path) -> None:
    """An immutable database file: a dorkstore error on write, its bytes kept; then service."""
    path = tmp_path / "dork.db"
    dorkstore.init_db(path)
    dorkstore.close_db()
    before = path.read_bytes()
    with immutable(path):
        dorkstore.init_db(path)  # SQLite falls back to reading it
        with pytest.raises(dorkstore.DatabaseError, match="readonly"):
            dorkstore.PulseStore().create_schedule("n", "p", "* * * * *")
        dorkstore.close_db()
        assert before == path.read_bytes()
    dorkstore.init_db(path)
    dorkstore.PulseStore().create_schedule("n", "p", "* * * * *")
    dorkstore.close_db()
    assert 1 == check_whole(path)["pulse_schedules"]


def test_a_read_only_directory_is_a_clear_error(tmp_path: Path) -> None:
    """A directory where nothing can be created: a dorkstore error, then service once writable."""
    folder = tmp_path / "home"
    folder.mkdir()
    with immutable(folder), pytest.raises(dorkstore.DatabaseError, match="cannot create"):
        dorkstore.init_db(folder / "dork.db")
    assert [] == list(folder.iterdir())
    dorkstore.init_db(folder / "dork.db")
    dorkstore.close_db()
    check_whole(folder / "dork.db")


# --- 5. not a database -----------------------------------------------------------------


def test_a_truncated_database_is_refused_unchanged(tmp_path: Path) -> None:
    """A database cut short is a clear error, and its bytes are left as they were."""
    path = tmp_path / "dork.db"
    dorkstore.init_db(path)
    dorkstore.RelayIndex().insert_many(
        dorkstore.IndexedMessage(f"M{n}", "s", "e", None, "pending", None, None, None,
                                 "2026-01-01T00:00:00.000Z")
        for n in range(3000)
    )  # fmt: skip
    dorkstore.close_db()
    with path.open("r+b") as file:
        file.truncate(path.stat().st_size // 2)
    before = path.read_bytes()
    with pytest.raises(dorkstore.DatabaseError, match="its header says"):
        dorkstore.init_db(path)
    assert before == path.read_bytes()


@pytest.mark.parametrize("kind", ["text", "directory", "random bytes"])
def test_what_is_not_a_database_is_refused_unchanged(tmp_path: Path, kind: str) -> None:
    """A text file, random bytes or a directory: one clear error, nothing changed."""
    path = tmp_path / "dork.db"
    if kind == "directory":
        path.mkdir()
    else:
        path.write_bytes(b"notes\n" * 500 if kind == "text" else random.randbytes(8192))
    before = None if kind == "directory" else path.read_bytes()
    with pytest.raises(dorkstore.DatabaseError):
        dorkstore.init_db(path)
    assert before == (None if kind == "directory" else path.read_bytes())


# --- 6. fork ------------------------------------------------------------------------------


def test_a_forked_child_gets_its_own_connection(db_path: Path) -> None:
    """After fork the child opens a connection of its own; both processes keep working."""
    dorkstore.init_db(db_path)
    denials = dorkstore.DenialList()
    denials.deny("/before-fork")
    parent_connection = dorkstore.database.connection()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads: we do not use them
        pid = os.fork()
    if pid == 0:  # the child
        status = 1
        try:
            if dorkstore.database.connection() is not parent_connection:
                denials.deny("/from-child")
                status = 0
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    assert 0 == os.waitstatus_to_exitcode(status)
    denials.deny("/parent-after-fork")
    assert dorkstore.database.connection() is parent_connection
    dorkstore.close_db()
    assert 3 == check_whole(db_path)["agent_denials"]
