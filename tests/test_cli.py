"""The dorkstore command (SPEC section 7): every command, and errors as one line."""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import sys
from pathlib import Path

import filelock
import pytest

import dorkstore
from dorkstore import migrate
from dorkstore.backends import sqlite as sqlite_backend
from tests.helpers import (
    TABLES,
    insert_denials_until,
    lock_held_by_another_process,
    one_line_error,
    stdlib_sqlite,
)
from tests.helpers import run_cli as run
from tests.old_layout import build

SHIPPED = migrate.available_migrations()


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["migrate"],
        ["status"],
        ["check-migrations"],
        ["rebuild-index"],
        ["import-legacy"],
        ["backup"],
        ["doctor"],
    ],
)
def test_every_command_has_help(args: list[str]) -> None:
    """--help describes every command and exits 0."""
    result = run(*args, "--help")
    assert (0, "") == (result.exit_code, result.stderr)
    assert "Usage: " in result.stdout


def test_migrate_lists_what_it_applied(db_path: Path) -> None:
    """migrate prints each applied migration, then that there is nothing to do."""
    assert (
        "".join(f"applied {name}\n" for name in SHIPPED)
        == run("--db", str(db_path), "migrate").stdout
    )
    assert "nothing to migrate\n" == run("--db", str(db_path), "migrate").stdout


def test_status_prints_one_line_per_table(existing: Path) -> None:
    """status shows path, size, SQLite, journal mode, migrations and a line per table."""
    result = run("--db", str(existing), "status")
    assert 0 == result.exit_code
    lines = result.stdout.splitlines()
    assert f"database: {existing}" == lines[0]
    assert "journal mode: wal" in lines
    assert f"applied migrations: {', '.join(SHIPPED)}" in lines
    assert "pending migrations: none" in lines
    assert {f"{table} {1 if table == 'agent_denials' else 0}" for table in TABLES} <= set(lines)


def test_status_json(existing: Path) -> None:
    """status --json gives the same facts to scripts."""
    info = json.loads(run("--db", str(existing), "status", "--json").stdout)
    assert (str(existing), "wal", SHIPPED, [], 1) == (
        info["path"],
        info["journal_mode"],
        info["applied_migrations"],
        info["pending_migrations"],
        info["tables"]["agent_denials"],
    )
    assert info["size_bytes"] > 0
    assert set(info["tables"]) == set(TABLES)


def test_check_migrations(migrations_dir: Path) -> None:
    """Exit 0 when models and migrations agree; drift is printed with exit 1."""
    agreed = run("check-migrations")
    assert (0, "migrations match the models\n") == (agreed.exit_code, agreed.stdout)
    initial = migrations_dir / "001_initial.py"
    initial.write_text(
        initial.read_text().replace("            without_rowid = not postgres\n", "")
    )
    result = run("check-migrations", "--directory", str(migrations_dir))
    assert (1, "") == (result.exit_code, result.stderr)
    assert "relay_index: + WITHOUT ROWID" in result.stdout


def test_rebuild_index_prints_only_a_summary_off_a_terminal(db_path: Path, tmp_path: Path) -> None:
    """Without a terminal there is no progress bar: one summary line with skip reasons."""
    root = tmp_path / "maildir"
    (root / "ep" / "new").mkdir(parents=True)
    (root / "ep" / "new" / "M1.json").write_text(
        json.dumps({"id": "M1", "subject": "s", "createdAt": "2026-01-01T00:00:00Z"})
    )
    (root / "ep" / "new" / "M2.json").write_text("{broken")
    (root / "ep" / "new" / "M3.json").write_text(json.dumps({"id": "M4"}))
    result = run("--db", str(db_path), "rebuild-index", str(root))
    assert (0, "") == (result.exit_code, result.stderr)
    assert (
        "indexed 1 messages (1 written, 0 deleted of 0); "
        "skipped 2 files (1 id mismatch, 1 not JSON)\n" == result.stdout
    )


def test_import_legacy_prints_its_report(db_path: Path, tmp_path: Path) -> None:
    """import-legacy --from DIR imports and reports; a second run imports nothing."""
    home = build(tmp_path / "old")
    first = run("--db", str(db_path), "import-legacy", "--from", str(home))
    assert (0, "") == (first.exit_code, first.stderr)
    assert "pulse_schedules: imported 3, already present 0" in first.stdout.splitlines()
    assert "skipped 1 rows or files (-v names each, and why)" in first.stdout.splitlines()
    second = run("--db", str(db_path), "import-legacy", "--from", str(home))
    assert "pulse_schedules: imported 0, already present 3" in second.stdout.splitlines()


def test_backup_to_a_file_and_into_a_directory(existing: Path, tmp_path: Path) -> None:
    """backup DEST writes DEST; into a directory it writes dated copies, -1 on a clash."""
    copy = tmp_path / "copy.db"
    assert f"backed up to {copy}\n" == run("--db", str(existing), "backup", str(copy)).stdout
    folder = tmp_path / "backups"
    folder.mkdir()
    run("--db", str(existing), "backup", str(folder))
    run("--db", str(existing), "backup", str(folder))
    names = sorted(p.name for p in folder.iterdir())
    assert 2 == len(names)
    assert names[0].startswith("dork.db.backup-")
    assert names[1] == names[0] + "-1" or names[1].startswith("dork.db.backup-")
    assert [["/secret"]] == stdlib_sqlite(
        copy, "result = conn.execute('SELECT path FROM agent_denials').fetchall()"
    )


def test_backup_refuses_to_overwrite(existing: Path, tmp_path: Path) -> None:
    """An existing DEST file is an error, and it is left as it was."""
    dest = tmp_path / "taken.db"
    dest.write_text("mine")
    one_line_error(run("--db", str(existing), "backup", str(dest)), "cannot create backup")
    assert "mine" == dest.read_text()


@pytest.mark.slow
def test_backup_while_another_process_writes_is_consistent(existing: Path, tmp_path: Path) -> None:
    """Copies taken while another process inserts pass integrity_check."""
    context = multiprocessing.get_context("spawn")
    started, stop = context.Event(), context.Event()
    writer = context.Process(target=insert_denials_until, args=(str(existing), started, stop))
    writer.start()
    try:
        assert started.wait(timeout=60)
        copies = [tmp_path / f"copy{n}.db" for n in range(5)]
        for copy in copies:
            assert 0 == run("--db", str(existing), "backup", str(copy)).exit_code
    finally:
        stop.set()
        writer.join(timeout=60)
    assert 0 == writer.exitcode
    for copy in copies:
        checked = stdlib_sqlite(
            copy,
            "result = [conn.execute('PRAGMA integrity_check').fetchone()[0],"
            " conn.execute('SELECT count(*) FROM agent_denials').fetchone()[0]]",
        )
        assert "ok" == checked[0]
        assert checked[1] > 50


def test_doctor_on_a_healthy_database(existing: Path) -> None:
    """doctor prints ok for each check and exits 0."""
    result = run("--db", str(existing), "doctor")
    checks = ("integrity_check", "foreign_key_check", "json", "latency", "migrations")
    assert (0, "".join(f"{check}: ok\n" for check in checks)) == (
        result.exit_code,
        result.stdout,
    )


def test_doctor_names_a_broken_foreign_key(existing: Path) -> None:
    """A run whose schedule is gone is found and named; exit status 1."""
    stdlib_sqlite(
        existing,
        'conn.execute("INSERT INTO pulse_runs (id, schedule_id, status, started_at, created_at)'
        " VALUES ('R', 'gone', 'running', 't', 't')\")",
    )
    result = run("--db", str(existing), "doctor")
    assert 1 == result.exit_code
    assert "foreign_key_check: pulse_runs rowid 1 has no pulse_schedules row" in result.stdout


def test_doctor_names_pending_and_unknown_migrations(existing: Path) -> None:
    """Migration state problems are findings: exit 1, each named."""
    stdlib_sqlite(
        existing,
        "conn.execute(\"UPDATE migratehistory SET name = '999_future'"
        f" WHERE name = '{SHIPPED[0]}'\")",
    )
    result = run("--db", str(existing), "doctor")
    assert 1 == result.exit_code
    assert (
        f"migrations: pending {SHIPPED[0]}; unknown 999_future (written by a newer dorkstore)"
        in result.stdout
    )


def test_doctor_names_corruption(existing: Path) -> None:
    """Damaged index pages fail integrity_check, and doctor says so."""
    dorkstore.init_db(existing)
    dorkstore.AgentRegistry().insert("a", "r", "/p")
    for n in range(300):
        dorkstore.DenialList().deny(f"/path/{n}")
    dorkstore.close_db()
    (root_page,) = stdlib_sqlite(
        existing,
        "result = conn.execute("
        "\"SELECT rootpage FROM sqlite_master WHERE name = 'agentdenial_path'\").fetchone()",
    )
    with existing.open("r+b") as file:
        file.seek((root_page - 1) * 4096)  # the B-tree page header: its type, cell count
        file.write(b"\xff" * 16)
    result = run("--db", str(existing), "doctor")
    assert 1 == result.exit_code
    assert "integrity_check: " in result.stdout
    assert "integrity_check: ok" not in result.stdout


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--db", "{tmp}", "migrate"], "is a directory"),
        (["--db", "{tmp}/text.db", "migrate"], "not a SQLite database"),
        (["--db", "{tmp}/text.db", "status"], "file is not a database"),
        (["--db", "{tmp}/missing.db", "status"], "no database at"),
        (["--db", "{tmp}/missing.db", "doctor"], "no database at"),
        (["--db", "{tmp}/missing.db", "backup", "{tmp}/b.db"], "no database at"),
        (["--db", "{tmp}/nodir/dork.db", "migrate"], "does not exist"),
        (["--db", "{tmp}/x.db", "rebuild-index", "{tmp}/nowhere"], "not a directory"),
        (["--db", "{tmp}/x.db", "import-legacy", "--from", "{tmp}/nowhere"], "not a directory"),
    ],
)
def test_errors_are_one_line_without_traceback(
    tmp_path: Path, args: list[str], fragment: str
) -> None:
    """Each error is one line on stderr, exit 3."""
    (tmp_path / "text.db").write_text("not a database\n" * 100)
    one_line_error(run(*(arg.format(tmp=tmp_path) for arg in args)), fragment)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["no-such-command"], "No such command"),
        (["status", "--bogus"], "No such option"),
        (["rebuild-index"], "Missing argument"),
        (["--db", "", "status"], "it is empty"),
        (["status", "-v", "-q"], "exclude each other"),
    ],
)
def test_usage_errors_exit_2(args: list[str], fragment: str) -> None:
    """A wrong command line is one line on stderr, exit 2."""
    one_line_error(run(*args), fragment, status=2)


def test_a_newer_schema_is_one_line(existing: Path) -> None:
    """A database from a newer dorkstore: one line naming the migration, file unchanged."""
    stdlib_sqlite(
        existing,
        'conn.execute("INSERT INTO migratehistory (name, migrated_at)'
        " VALUES ('999_future', 't')\")",
    )
    before = existing.read_bytes()
    one_line_error(run("--db", str(existing), "migrate"), "999_future")
    assert before == existing.read_bytes()


def test_a_held_migration_lock_is_one_line(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process holding the migration lock too long: one line, exit 3."""
    monkeypatch.setattr(migrate.runner, "LOCK_TIMEOUT_S", 0.2)
    with filelock.FileLock(db_path.with_name("dork.db.lock")):
        one_line_error(run("--db", str(db_path), "migrate"), "held")


def test_a_held_write_lock_is_one_line(
    existing: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write blocked past busy_timeout by another process: one line, exit 3."""
    home = build(tmp_path / "old")
    with lock_held_by_another_process(existing, 30):
        monkeypatch.setattr(sqlite_backend, "BUSY_TIMEOUT_MS", 200)
        one_line_error(run("--db", str(existing), "import-legacy", "--from", str(home)), "locked")


def test_console_script_status_and_migrate(db_path: Path) -> None:
    """The installed `dorkstore` script runs migrate and status as a real subprocess."""
    script = Path(sys.executable).with_name("dorkstore")
    for args in (["migrate"], ["status"]):
        done = subprocess.run(
            [str(script), "--db", str(db_path), *args], capture_output=True, text=True, check=False
        )
        assert (0, "") == (done.returncode, done.stderr)
    assert f"database: {db_path}" in done.stdout


def test_console_script_error_is_one_line(tmp_path: Path) -> None:
    """A real subprocess error: exit 3 and one line on stderr."""
    script = Path(sys.executable).with_name("dorkstore")
    done = subprocess.run(
        [str(script), "--db", str(tmp_path), "status"], capture_output=True, text=True, check=False
    )
    assert (3, 1) == (done.returncode, len(done.stderr.splitlines()))
