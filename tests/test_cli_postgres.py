"""The dorkstore command on PostgreSQL (SPEC sections 7 and 10), and how it picks its database.

Each test that needs the server gets a new database of its own; they skip
without DORKSTORE_TEST_PG. Every URL carries a password, and no output may show it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import Result

import dorkstore
import dorkstore.db
from dorkstore import migrate
from dorkstore.backends import postgres as postgres_backend
from dorkstore.backends.postgres import redacted
from tests import helpers
from tests.helpers import TABLES
from tests.helpers import run_cli as run
from tests.old_layout import build
from tests.pg import needs_pg, new_database, password_of, run_sql

SHIPPED = migrate.available_migrations()
#: A server that is not there: refused at once, whatever runs the tests.
NOWHERE = "postgresql://dork:hunter2-pw@127.0.0.1:1/dork"


def no_password(result: Result, url: str) -> None:
    assert password_of(url) not in result.stdout + result.stderr


def one_line_error(result: Result, fragment: str, url: str) -> None:
    helpers.one_line_error(result, fragment)
    no_password(result, url)


@pytest.fixture
def url() -> Iterator[str]:
    """A new, empty PostgreSQL database (nothing migrated); its URL has a password."""
    with new_database() as database:
        yield database


@pytest.fixture
def migrated(url: str) -> str:
    """The URL of a migrated PostgreSQL database holding one denial."""
    dorkstore.init_db(url)
    dorkstore.DenialList().deny("/secret")
    dorkstore.close_db()
    return url


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty DORK_HOME, and no DORK_DATABASE_URL unless a test sets it."""
    monkeypatch.setenv("DORK_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DORK_DATABASE_URL", raising=False)
    return tmp_path / "home"


# --- choosing the database ------------------------------------------------------------


@needs_pg
def test_database_url_variable_is_used_without_db(
    migrated: str, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --db, DORK_DATABASE_URL names the database: no file is looked for or made."""
    monkeypatch.setenv("DORK_DATABASE_URL", migrated)
    result = run("status")
    assert (0, "") == (result.exit_code, result.stderr)
    assert f"database: {redacted(migrated)}" == result.stdout.splitlines()[0]
    assert not home.exists()
    no_password(result, migrated)


def test_db_wins_over_database_url(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--db FILE is used even when DORK_DATABASE_URL names a server."""
    monkeypatch.setenv("DORK_DATABASE_URL", NOWHERE)
    result = run("--db", str(tmp_path / "mine.db"), "migrate")
    assert (0, "") == (result.exit_code, result.stderr)
    assert (tmp_path / "mine.db").exists()


def test_database_url_wins_over_dork_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --db, DORK_DATABASE_URL is tried, not $DORK_HOME/dork.db: its error, one line."""
    monkeypatch.setenv("DORK_DATABASE_URL", NOWHERE)
    for command in ("migrate", "status", "doctor"):
        result = run(command)
        one_line_error(result, "dorkstore: error: ", NOWHERE)
        assert "no database at" not in result.stderr
    assert not home.exists()


def test_empty_database_url_means_dork_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty DORK_DATABASE_URL is unset: the database is $DORK_HOME/dork.db."""
    monkeypatch.setenv("DORK_DATABASE_URL", "")
    result = run("migrate")
    assert (0, "") == (result.exit_code, result.stderr)
    assert (home / "dork.db").exists()


def test_an_unreachable_server_is_one_line_without_password() -> None:
    """Every command that opens the database: one line, the URL without its password."""
    for args in (["migrate"], ["status"], ["doctor"], ["backup", "x.dump"], ["import-legacy"]):
        one_line_error(run("--db", NOWHERE, *args), "dorkstore: error: ", NOWHERE)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://dork:pa/ss-word@127.0.0.1:5432/dork",
        "postgresql://dork:pa#ss-word@127.0.0.1:5432/dork",
        "postgresql://dork:pa?ss-word@127.0.0.1:5432/dork",
        "postgresql://dork:pass-word@127.0.0.1:54x2/dork",
    ],
)
def test_a_malformed_url_is_one_line_showing_none_of_it(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A URL whose password breaks its syntax: one line naming the fix, no part of the password."""
    for result in (
        run("--db", url, "status"),
        run("copy", url, "dest.db"),
        run("copy", "source.db", url),
    ):
        one_line_error(result, "malformed database URL", "postgresql://x:ss-word@h/d")
        assert "pa" not in result.stderr.replace("PASSWORD", "").replace("password", "")
    monkeypatch.setenv("DORK_DATABASE_URL", url)
    one_line_error(run("doctor"), "malformed database URL", "postgresql://x:ss-word@h/d")


def test_a_message_holding_the_password_is_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    """Should a driver's message ever repeat the URL, the password is masked all the same."""

    def leaky(target: str, **_: object) -> None:
        raise dorkstore.DatabaseError(f"cannot use {target}")

    monkeypatch.setattr(dorkstore.db, "init_db", leaky)
    result = run(f"--db={NOWHERE}", "status")
    one_line_error(result, "cannot use postgresql://dork:***@127.0.0.1:1/dork", NOWHERE)


def test_check_migrations_needs_no_database(monkeypatch: pytest.MonkeyPatch) -> None:
    """check-migrations checks files: an unreachable DORK_DATABASE_URL does not matter.

    An explicit --db is refused (exit 2), without showing its password: the
    command would ignore it.
    """
    monkeypatch.setenv("DORK_DATABASE_URL", NOWHERE)
    result = run("check-migrations")
    assert (0, "migrations match the models\n") == (result.exit_code, result.stdout)
    refused = run("--db", NOWHERE, "check-migrations")
    helpers.one_line_error(refused, "--db does not apply", status=2)
    no_password(refused, NOWHERE)


# --- every command on PostgreSQL ------------------------------------------------------


@needs_pg
def test_migrate_lists_what_it_applied(url: str) -> None:
    """migrate creates the schema on the server and lists it; again, there is nothing to do."""
    first = run("--db", url, "migrate")
    assert (0, "".join(f"applied {name}\n" for name in SHIPPED)) == (
        first.exit_code,
        first.stdout,
    )
    assert "nothing to migrate\n" == run("--db", url, "migrate").stdout


@needs_pg
def test_status_shows_the_server_not_a_file(migrated: str) -> None:
    """status: the URL without its password, the size, the server version, migrations, rows."""
    result = run("--db", migrated, "status")
    assert (0, "") == (result.exit_code, result.stderr)
    lines = result.stdout.splitlines()
    assert f"database: {redacted(migrated)}" == lines[0]
    assert lines[1].startswith("size: ")
    assert lines[1].endswith(" bytes")
    assert lines[2].startswith("server: PostgreSQL 1")
    assert not any(line.startswith(("sqlite:", "journal mode:")) for line in lines)
    assert f"applied migrations: {', '.join(SHIPPED)}" in lines
    assert "pending migrations: none" in lines
    assert {f"{table} {1 if table == 'agent_denials' else 0}" for table in TABLES} <= set(lines)
    no_password(result, migrated)


@needs_pg
def test_status_json(migrated: str) -> None:
    """status --json names the backend and the server version, for scripts."""
    info = json.loads(run("--db", migrated, "status", "--json").stdout)
    assert (redacted(migrated), "postgresql", SHIPPED, [], 1) == (
        info["path"],
        info["backend"],
        info["applied_migrations"],
        info["pending_migrations"],
        info["tables"]["agent_denials"],
    )
    assert info["server_version"]
    assert info["size_bytes"] > 0
    assert "journal_mode" not in info


@needs_pg
def test_status_of_a_database_the_server_lacks(migrated: str) -> None:
    """A database name the server does not have: one line, not 'no database at' a file."""
    missing = migrated.rsplit("/", 1)[0] + "/dorkstore_not_there"
    one_line_error(run("--db", missing, "status"), 'database "dorkstore_not_there"', missing)


@needs_pg
def test_rebuild_index(url: str, tmp_path: Path) -> None:
    """rebuild-index fills the relay index on the server."""
    (tmp_path / "maildir" / "ep" / "new").mkdir(parents=True)
    (tmp_path / "maildir" / "ep" / "new" / "M1.json").write_text(
        json.dumps({"id": "M1", "subject": "s", "createdAt": "2026-01-01T00:00:00Z"})
    )
    result = run("--db", url, "rebuild-index", str(tmp_path / "maildir"))
    assert (0, "indexed 1 messages (1 written, 0 deleted of 0); skipped 0 files\n") == (
        result.exit_code,
        result.stdout,
    )
    assert [("M1",)] == run_sql(url, "SELECT id FROM relay_index")


@needs_pg
def test_import_legacy_into_postgres(url: str, tmp_path: Path) -> None:
    """import-legacy copies an old SQLite layout into PostgreSQL, once."""
    old = build(tmp_path / "old")
    first = run("--db", url, "import-legacy", "--from", str(old))
    assert (0, "") == (first.exit_code, first.stderr)
    lines = first.stdout.splitlines()
    assert "pulse_schedules: imported 3, already present 0" in lines
    assert "pulse_runs: imported 5, already present 0" in lines
    assert "rate_limit_buckets: imported 2, already present 0" in lines
    second = run("--db", url, "import-legacy", "--from", str(old))
    assert "pulse_schedules: imported 0, already present 3" in second.stdout.splitlines()
    tables = json.loads(run("--db", url, "status", "--json").stdout)["tables"]
    assert {
        "pulse_schedules": 3,
        "pulse_runs": 5,
        "relay_index": 3,
        "relay_traces": 5,
        "agents": 2,
        "agent_denials": 1,
        "rate_limit_buckets": 2,
    } == tables
    assert [(False,)] == run_sql(
        url, "SELECT enabled FROM pulse_schedules WHERE name = 'weekly report'"
    )


@needs_pg
def test_doctor_on_a_healthy_database(migrated: str) -> None:
    """doctor runs PostgreSQL's checks: ok each, exit 0."""
    result = run("--db", migrated, "doctor")
    checks = ("foreign_key_check", "json", "latency", "migrations")
    assert (0, "".join(f"{check}: ok\n" for check in checks)) == (
        result.exit_code,
        result.stdout,
    )


@needs_pg
def test_doctor_names_invalid_json(migrated: str) -> None:
    """Text another client stored that is not JSON is named; exit 1."""
    dorkstore.init_db(migrated)
    dorkstore.RelayIndex().insert_message("M1", "s", "ep")
    dorkstore.close_db()
    run_sql(migrated, "UPDATE relay_index SET payload = '{not json' WHERE id = 'M1'")
    result = run("--db", migrated, "doctor")
    assert 1 == result.exit_code
    assert "json: relay_index M1 payload" in result.stdout.splitlines()


@needs_pg
def test_doctor_names_a_broken_foreign_key(migrated: str) -> None:
    """A run whose schedule is gone (foreign keys switched off by hand) is found; exit 1."""
    run_sql(
        migrated,
        "ALTER TABLE pulse_runs DISABLE TRIGGER ALL; "
        "INSERT INTO pulse_runs (id, schedule_id, status, started_at, created_at) "
        "VALUES ('R', 'gone', 'running', 't', 't'); "
        "ALTER TABLE pulse_runs ENABLE TRIGGER ALL",
    )
    result = run("--db", migrated, "doctor")
    assert 1 == result.exit_code
    assert "foreign_key_check: pulse_runs R has no pulse_schedules gone" in result.stdout


@needs_pg
def test_doctor_names_pending_and_unknown_migrations(migrated: str) -> None:
    """Migration state problems are findings on PostgreSQL too."""
    run_sql(migrated, f"UPDATE migratehistory SET name = '999_future' WHERE name = '{SHIPPED[0]}'")
    result = run("--db", migrated, "doctor")
    assert 1 == result.exit_code
    assert (
        f"migrations: pending {SHIPPED[0]}; unknown 999_future (written by a newer dorkstore)"
        in result.stdout
    )


# --- backup: pg_dump --------------------------------------------------------------------


def pg_restore() -> str:
    found = shutil.which("pg_restore") or next(
        (str(p) for p in sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_restore"))), None
    )
    if found is None:
        pytest.skip("pg_restore is not installed")
    return found


@needs_pg
def test_backup_runs_pg_dump(migrated: str, tmp_path: Path) -> None:
    """backup DEST writes a pg_dump custom-format archive holding the tables and their rows."""
    dest = tmp_path / "dork.dump"
    result = run("--db", migrated, "backup", str(dest))
    assert (0, f"backed up to {dest}\n", "") == (result.exit_code, result.stdout, result.stderr)
    listing = subprocess.run(
        [pg_restore(), "--list", str(dest)], capture_output=True, text=True, check=True
    ).stdout
    assert "TABLE DATA public agent_denials" in listing
    restored = subprocess.run(
        [pg_restore(), "--data-only", "--table=agent_denials", "-f", "-", str(dest)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "/secret" in restored
    no_password(result, migrated)


@needs_pg
def test_backup_into_a_directory_names_the_database(migrated: str, tmp_path: Path) -> None:
    """Into a directory, the dump is named after the database, dated."""
    result = run("--db", migrated, "backup", str(tmp_path))
    assert 0 == result.exit_code
    (dump,) = tmp_path.iterdir()
    name = migrated.rsplit("/", 1)[1]
    assert dump.name.startswith(f"{name}.pg_dump.backup-")
    assert f"backed up to {dump}\n" == result.stdout


@needs_pg
def test_backup_refuses_to_overwrite(migrated: str, tmp_path: Path) -> None:
    """An existing DEST is an error, and it is left as it was."""
    dest = tmp_path / "taken.dump"
    dest.write_text("mine")
    one_line_error(run("--db", migrated, "backup", str(dest)), "already exists", migrated)
    assert "mine" == dest.read_text()


@needs_pg
def test_backup_without_pg_dump_is_one_clear_line(
    migrated: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No pg_dump on PATH nor in Debian's /usr/lib/postgresql: one line saying so, no file."""
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    # The backend also looks under /usr/lib/postgresql/*/bin: point that at nothing.
    nowhere = tmp_path / "no-postgresql"
    monkeypatch.setattr(
        postgres_backend,
        "Path",
        lambda path: nowhere if str(path) == "/usr/lib/postgresql" else Path(path),
    )
    dest = tmp_path / "dork.dump"
    one_line_error(run("--db", migrated, "backup", str(dest)), "needs pg_dump", migrated)
    assert not dest.exists()


# --- the console script ---------------------------------------------------------------


@needs_pg
def test_console_script_with_database_url(migrated: str, home: Path) -> None:
    """The installed script reads DORK_DATABASE_URL: status of the server, no password."""
    script = Path(sys.executable).with_name("dorkstore")
    environment = {"PATH": "/usr/bin:/bin", "DORK_HOME": str(home), "DORK_DATABASE_URL": migrated}
    done = subprocess.run(
        [str(script), "status"], capture_output=True, text=True, check=False, env=environment
    )
    assert (0, "") == (done.returncode, done.stderr)
    assert f"database: {redacted(migrated)}\n" in done.stdout
    assert password_of(migrated) not in done.stdout


def test_console_script_error_hides_the_password(home: Path) -> None:
    """A real subprocess failing to reach the server: one line, exit 3, no password."""
    script = Path(sys.executable).with_name("dorkstore")
    environment = {"PATH": "/usr/bin:/bin", "DORK_HOME": str(home)}
    done = subprocess.run(
        [str(script), f"--db={NOWHERE}", "status"],
        capture_output=True,
        text=True,
        check=False,
        env=environment,
    )
    assert (3, 1) == (done.returncode, len(done.stderr.splitlines()))
    assert password_of(NOWHERE) not in done.stderr


# --- history, rollback and the shell --------------------------------------------------


@needs_pg
def test_history_and_rollback(migrated: str) -> None:
    """history lists what is applied; rollback --yes undoes the newest; migrate redoes it."""
    history = json.loads(run("history", "--json", "--db", migrated).stdout)
    assert migrate.available_migrations() == [entry["name"] for entry in history["applied"]]
    result = run("rollback", "--yes", "--db", migrated)
    assert (0, "rolled back 003_store_span_latency\n") == (result.exit_code, result.stdout)
    history = json.loads(run("history", "--json", "--db", migrated).stdout)
    assert ["003_store_span_latency"] == history["pending"]
    assert "applied 003_store_span_latency\n" == run("migrate", "--db", migrated).stdout


def shell(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("dorkstore")
    return subprocess.run(
        [str(script), "shell", "--db", url, *args],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip


@needs_pg
def test_shell_runs_psql_read_only_unless_write(migrated: str) -> None:
    """shell runs psql without the password on its command line; writes need --write."""
    done = shell(migrated, "-q", "select count(*) from agent_denials")
    assert (0, "") == (done.returncode, done.stderr)
    assert "1" in done.stdout.split()
    refused = shell(migrated, "delete from agent_denials")
    assert 3 == refused.returncode
    assert "read-only transaction" in refused.stderr
    assert password_of(migrated) not in refused.stdout + refused.stderr
    assert 0 == shell(migrated, "--write", "delete from agent_denials").returncode
    assert "0" in shell(migrated, "select count(*) from agent_denials").stdout.split()
