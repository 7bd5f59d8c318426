"""Files dorkstore must not leave behind: killed backups, lock files, backups into the cwd."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import dorkstore
from dorkstore import admin, migrate
from tests.helpers import run_cli as run
from tests.helpers import write_migration

FILLER_MB = 80  # big enough that a backup takes a while to copy


@pytest.fixture(autouse=True)
def _closed() -> Iterator[None]:
    yield
    dorkstore.close_db()


@pytest.fixture(scope="module")
def big_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated database of about 80 MB, closed (the proxy points elsewhere afterwards)."""
    path = tmp_path_factory.mktemp("big") / "dork.db"
    db = dorkstore.init_db(path)
    db.execute_sql("CREATE TABLE filler (data BLOB)")
    db.execute_sql(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
        "INSERT INTO filler SELECT zeroblob(1048576) FROM n",
        (FILLER_MB,),
    )
    dorkstore.close_db()
    dorkstore.init_db(":memory:")
    return path


def dead_pid() -> int:
    """Return the pid of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def kill_mid_backup(db: Path, dest: Path) -> int:
    """Start a backup of `db` to `dest` in a child process and kill -9 it midway; return its pid."""
    program = (
        "import sys\nfrom pathlib import Path\nimport dorkstore\nfrom dorkstore import admin\n"
        "dorkstore.init_db(sys.argv[1], migrate=False)\n"
        "admin.backup(Path(sys.argv[2]))\n"
    )
    for _ in range(5):  # a fast disk may finish a backup before we see it: try again
        child = subprocess.Popen([sys.executable, "-c", program, str(db), str(dest)])
        partial = dest.with_name(f".{dest.name}.partial-{child.pid}")
        deadline = time.monotonic() + 60
        while child.poll() is None and time.monotonic() < deadline:
            if partial.exists() and partial.stat().st_size > 4 * 1024 * 1024:
                os.kill(child.pid, signal.SIGKILL)
                break
            time.sleep(0.001)
        child.wait()
        if child.returncode == -signal.SIGKILL:
            return child.pid
        dest.unlink(missing_ok=True)
    raise AssertionError("every backup finished before it could be killed")


def test_a_killed_backup_is_cleaned_up_by_the_next(big_db: Path, tmp_path: Path) -> None:
    """kill -9 mid-backup leaves .partial-PID (and its journal); the next backup removes them."""
    pid = kill_mid_backup(big_db, tmp_path / "first.db")
    left = sorted(path.name for path in tmp_path.iterdir())
    assert f".first.db.partial-{pid}" in left
    dorkstore.init_db(big_db, migrate=False)
    admin.backup(tmp_path / "second.db")
    assert ["second.db"] == sorted(path.name for path in tmp_path.iterdir())


def test_a_live_process_partial_backup_is_left_alone(tmp_path: Path) -> None:
    """A partial backup whose process still runs is never touched; a dead one's is removed."""
    dorkstore.init_db(tmp_path / "dork.db")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead = dead_pid()
        live = [f".copy.db.partial-{sleeper.pid}", f".copy.db.partial-{sleeper.pid}-journal"]
        stale = [f".old.db.partial-{dead}", f".old.db.partial-{dead}-journal"]
        for name in live + stale:
            (tmp_path / name).write_bytes(b"half a backup")
        admin.backup(tmp_path / "new.db")
        names = {path.name for path in tmp_path.iterdir()}
    finally:
        sleeper.kill()
        sleeper.wait()
    assert set(live) <= names
    assert not set(stale) & names
    assert "new.db" in names


def test_a_backup_before_migrating_cleans_up_too(tmp_path: Path, migrations_dir: Path) -> None:
    """The backup taken before a migration removes a killed earlier one's partial file."""
    db_path = tmp_path / "dork.db"
    db = dorkstore.init_db(db_path)
    dead = dead_pid()
    stale = tmp_path / f".dork.db.bak-002_index_bucket_minute-20260101T000000Z.partial-{dead}"
    stale.write_bytes(b"half a backup")
    write_migration(
        migrations_dir,
        "099_add_note",
        "migrator.add_fields('agents', note=pw.TextField(null=True))",
    )
    assert ["099_add_note"] == migrate.apply_pending(db, directory=migrations_dir)
    assert not stale.exists()
    assert 1 == len(list(tmp_path.glob("dork.db.bak-*")))


def test_only_partial_names_are_cleaned_up(tmp_path: Path) -> None:
    """Files that merely look similar, or are not files, stay."""
    dorkstore.init_db(tmp_path / "dork.db")
    dead = dead_pid()
    keep = [f"old.db.partial-{dead}", f".old.db.partial-{dead}.txt", f".old.db.partial-x{dead}"]
    for name in keep:
        (tmp_path / name).write_bytes(b"someone's file")
    (tmp_path / f".dir.partial-{dead}").mkdir()
    admin.backup(tmp_path / "new.db")
    names = {path.name for path in tmp_path.iterdir()}
    assert {*keep, f".dir.partial-{dead}", "new.db"} <= names


@pytest.mark.parametrize("command", ["status", "doctor"])
def test_status_and_doctor_create_no_lock_file(tmp_path: Path, command: str) -> None:
    """On a file that is not a database: one error line, and no .lock file beside it."""
    text = tmp_path / "notes.db"
    text.write_text("not a database\n" * 100)
    result = run("--db", str(text), command)
    assert 3 == result.exit_code
    assert ["notes.db"] == sorted(path.name for path in tmp_path.iterdir())


def test_status_on_a_database_creates_no_lock_file(tmp_path: Path) -> None:
    """status reads a database without creating the migration lock file."""
    path = tmp_path / "dork.db"
    dorkstore.init_db(path)
    dorkstore.close_db()
    (tmp_path / "dork.db.lock").unlink()
    assert 0 == run("--db", str(path), "status").exit_code
    assert not (tmp_path / "dork.db.lock").exists()


def test_migrating_still_takes_the_lock_file(tmp_path: Path) -> None:
    """init_db with migrate=True locks dork.db.lock, as before."""
    dorkstore.init_db(tmp_path / "dork.db")
    assert (tmp_path / "dork.db.lock").exists()


def test_backup_to_an_empty_destination_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """backup '': one line on stderr, a non-zero exit, and nothing written to the cwd."""
    path = tmp_path / "db" / "dork.db"
    path.parent.mkdir()
    dorkstore.init_db(path)
    dorkstore.close_db()
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    result = run("--db", str(path), "backup", "")
    assert 2 == result.exit_code
    assert 1 == len(result.stderr.splitlines())
    assert "path is empty" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert [] == list(cwd.iterdir())
