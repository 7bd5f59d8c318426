"""init_db on targets and histories it cannot use: dorkstore errors, and nothing left behind."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

import dorkstore
from dorkstore import DatabaseError, MigrationError, SchemaVersionError, ValidationError, admin
from dorkstore import migrate as migrations
from dorkstore.cli import cli

HISTORY = migrations.HISTORY_TABLE

BLOB_NAME = (f"INSERT INTO {HISTORY} (name, migrated_at) VALUES (x'00ff', 'x')",)
NO_NAME_COLUMN = (
    f'ALTER TABLE {HISTORY} RENAME TO "old_history"',
    f"CREATE TABLE {HISTORY} (id INTEGER PRIMARY KEY, label TEXT)",
    f"INSERT INTO {HISTORY} (label) VALUES ('001_initial')",
)


def undecodable(directory: Path, name: bytes) -> str:
    """Return a path in `directory` whose name holds bytes that are not UTF-8, as fsdecode does."""
    return os.fsdecode(os.fsencode(directory) + b"/" + name)


def files_in(directory: Path) -> list[bytes]:
    return sorted(os.listdir(os.fsencode(directory)))


@pytest.fixture(autouse=True)
def _closed() -> Iterator[None]:
    yield
    dorkstore.close_db()


@pytest.mark.parametrize("spelling", [str, Path], ids=["str", "Path"])
def test_a_path_that_is_not_utf8_is_refused_before_any_file(tmp_path: Path, spelling: type) -> None:
    """A name with a byte that is not UTF-8: ValidationError naming it, and no file is made."""
    target = spelling(undecodable(tmp_path, b"x\xff.db"))
    with pytest.raises(ValidationError, match=r"x\\xff\.db.*UTF-8"):
        dorkstore.init_db(target)
    assert [] == files_in(tmp_path)


def test_a_dork_home_that_is_not_utf8_is_refused_before_it_is_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DORK_HOME with a byte that is not UTF-8: ValidationError, and no directory is made."""
    monkeypatch.setenv("DORK_HOME", undecodable(tmp_path, b"home\xff"))
    with pytest.raises(ValidationError, match="UTF-8"):
        dorkstore.init_db()
    assert [] == files_in(tmp_path)


def test_the_command_line_names_a_path_that_is_not_utf8(tmp_path: Path) -> None:
    """The same refusal from the command line: one line on stderr, no traceback, no file."""
    result = CliRunner().invoke(cli, ["--db", undecodable(tmp_path, b"x\xff.db"), "migrate"])
    assert 3 == result.exit_code
    assert [r"dorkstore: error: cannot use"] == [line[:28] for line in result.stderr.splitlines()]
    assert "\\xff" in result.stderr
    assert [] == files_in(tmp_path)


def test_a_backup_name_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    """backup to a name SQLite cannot spell: ValidationError, and no partial file is left."""
    dorkstore.init_db(tmp_path / "dork.db")
    before = files_in(tmp_path)
    with pytest.raises(ValidationError, match="UTF-8"):
        admin.backup(Path(undecodable(tmp_path, b"copy\xff.db")))
    assert before == files_in(tmp_path)


def test_dork_home_of_an_unknown_user_is_a_database_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DORK_HOME=~nosuchuser/x: DatabaseError saying there is no such user."""
    monkeypatch.setenv("DORK_HOME", "~dorkstore-no-such-user/x")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DatabaseError, match="there is no user 'dorkstore-no-such-user'"):
        dorkstore.init_db()
    assert [] == files_in(tmp_path)


def unused_uid() -> int:
    uid = 54321
    while True:
        try:
            pwd.getpwuid(uid)
        except KeyError:
            return uid
        uid += 1


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become a uid without a passwd entry")
def test_no_home_and_no_passwd_entry_is_a_database_error() -> None:
    """No HOME, no DORK_HOME and a uid without a passwd entry: DatabaseError, in a real process."""
    uid = unused_uid()
    program = (
        "import json, os, sys\n"
        "import dorkstore\n"
        "os.environ.pop('HOME', None); os.environ.pop('DORK_HOME', None)\n"
        "os.setgid(int(sys.argv[1])); os.setuid(int(sys.argv[1]))\n"
        "try:\n"
        "    dorkstore.init_db()\n"
        "except Exception as exc:\n"
        "    print(json.dumps([type(exc).__name__, str(exc)]))\n"
        "else:\n"
        "    print(json.dumps(['ok', '']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program, str(uid)], capture_output=True, text=True, check=False
    )
    assert 0 == done.returncode, done.stderr
    assert [
        "DatabaseError",
        f"cannot expand the default DORK_HOME ~/.dork: HOME is not set and uid {uid} has no "
        "passwd entry; set HOME or DORK_HOME",
    ] == json.loads(done.stdout)


def write_history(path: Path, *statements: str) -> bytes:
    """Migrate a file, run `statements` on it, close it; return its bytes."""
    db = dorkstore.init_db(path)
    for statement in statements:
        db.execute_sql(statement)
    dorkstore.close_db()
    return path.read_bytes()


def test_a_blob_in_the_history_is_reported_as_damage(tmp_path: Path) -> None:
    """A history name that is not text: MigrationError saying so (not 'a newer dorkstore')."""
    path = tmp_path / "dork.db"
    before = write_history(path, *BLOB_NAME)
    with pytest.raises(MigrationError, match="not text") as raised:
        dorkstore.init_db(path)
    assert not isinstance(raised.value, SchemaVersionError)
    assert before == path.read_bytes()


def test_a_blob_in_the_history_is_reported_by_status(tmp_path: Path) -> None:
    """status (which reads the history through its connection) says the same in one line."""
    path = tmp_path / "dork.db"
    write_history(path, *BLOB_NAME)
    result = CliRunner().invoke(cli, ["--db", str(path), "status"])
    assert 3 == result.exit_code
    assert 1 == len(result.stderr.splitlines())
    assert "holds a migration name that is not text" in result.stderr


def test_a_history_without_a_name_column_is_not_mistaken_for_a_newer_one(tmp_path: Path) -> None:
    """No name column: MigrationError saying it is not a dorkstore history, file unchanged."""
    path = tmp_path / "dork.db"
    before = write_history(path, *NO_NAME_COLUMN)
    with pytest.raises(MigrationError, match="has no name column") as raised:
        dorkstore.init_db(path)
    assert not isinstance(raised.value, SchemaVersionError)
    assert "not a dorkstore migration history" in str(raised.value)
    assert before == path.read_bytes()


@pytest.mark.parametrize(
    ("statements", "message"),
    [(BLOB_NAME, "not text"), (NO_NAME_COLUMN, "has no name column")],
    ids=["blob", "no-name-column"],
)
def test_the_runner_reads_the_history_as_strictly(statements: tuple[str], message: str) -> None:
    """applied_migrations (used where the early read-only read is not, e.g. in memory) agrees."""
    db = dorkstore.init_db(":memory:")
    for statement in statements:
        db.execute_sql(statement)
    with pytest.raises(MigrationError, match=message):
        migrations.applied_migrations(db)
