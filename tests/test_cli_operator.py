"""The command line as an operator uses it.

Options anywhere, JSON, verbosity, exit codes, history and rollback, the SQL
shell, completion.
"""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import sys
import time
from pathlib import Path

import filelock
import pytest
from click.testing import Result

import dorkstore
from dorkstore import migrate
from dorkstore.cli import EXIT_FINDINGS, EXIT_INTERRUPTED, EXIT_USAGE
from tests.helpers import one_line_error, stdlib_sqlite
from tests.helpers import run_cli as run
from tests.old_layout import build

SHIPPED = migrate.available_migrations()
SCRIPT = Path(sys.executable).with_name("dorkstore")
#: Makes migration 003 pending again (its column stays: only the history forgets it).
FORGET_003 = "conn.execute(\"DELETE FROM migratehistory WHERE name = '003_store_span_latency'\")"


def as_json(result: Result) -> object:
    assert (0, "") == (result.exit_code, result.stderr)
    return json.loads(result.stdout)


@pytest.fixture
def maildir(tmp_path: Path) -> Path:
    """A Maildir tree with one good envelope and two bad ones."""
    root = tmp_path / "maildir"
    (root / "ep" / "new").mkdir(parents=True)
    (root / "ep" / "new" / "M1.json").write_text(
        json.dumps({"id": "M1", "subject": "s", "createdAt": "2026-01-01T00:00:00Z"})
    )
    (root / "ep" / "new" / "M2.json").write_text("{broken")
    (root / "ep" / "new" / "M3.json").write_text(json.dumps({"id": "M4"}))
    return root


# --- options anywhere ---------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["--db", "{db}", "--json", "status"],
        ["status", "--db", "{db}", "--json"],
        ["--json", "status", "--db={db}"],
        ["-q", "--db", "{db}", "status", "--json"],
    ],
)
def test_shared_options_go_before_or_after_the_command(existing: Path, args: list[str]) -> None:
    """--db, --json and -q mean the same before and after the command's name."""
    info = as_json(run(*(arg.format(db=existing) for arg in args)))
    assert isinstance(info, dict)
    assert (str(existing), 1) == (info["path"], info["tables"]["agent_denials"])


def test_db_after_the_command_wins_over_the_environment(
    existing: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--db after the command wins over $DORK_DATABASE_URL, as it does before it."""
    monkeypatch.setenv("DORK_DATABASE_URL", str(tmp_path / "elsewhere.db"))
    info = as_json(run("status", "--json", "--db", str(existing)))
    assert isinstance(info, dict)
    assert str(existing) == info["path"]


def test_dork_home_is_the_default_for_every_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --db or $DORK_DATABASE_URL, commands use $DORK_HOME/dork.db."""
    monkeypatch.delenv("DORK_DATABASE_URL", raising=False)
    monkeypatch.setenv("DORK_HOME", str(tmp_path / "home"))
    assert {"applied": SHIPPED} == as_json(run("migrate", "--json"))
    history = as_json(run("history", "--json"))
    assert isinstance(history, dict)
    assert SHIPPED == [entry["name"] for entry in history["applied"]]
    assert (tmp_path / "home" / "dork.db").is_file()


# --- JSON on every reporting command --------------------------------------------------


def test_migrate_json(db_path: Path) -> None:
    """migrate --json: the migrations applied, then none."""
    assert {"applied": SHIPPED} == as_json(run("migrate", "--db", str(db_path), "--json"))
    assert {"applied": []} == as_json(run("migrate", "--db", str(db_path), "--json"))


def test_doctor_json_names_problems_and_exits_1(existing: Path) -> None:
    """doctor --json: ok and every check; a problem makes ok false and the exit 1."""
    healthy = as_json(run("doctor", "--db", str(existing), "--json"))
    assert isinstance(healthy, dict)
    assert (True, []) == (healthy["ok"], healthy["checks"]["migrations"])
    stdlib_sqlite(existing, FORGET_003)
    result = run("doctor", "--db", str(existing), "--json")
    assert (EXIT_FINDINGS, "") == (result.exit_code, result.stderr)
    report = json.loads(result.stdout)
    assert (False, ["pending 003_store_span_latency"]) == (
        report["ok"],
        report["checks"]["migrations"],
    )


def test_backup_json(existing: Path, tmp_path: Path) -> None:
    """backup --json: the path written."""
    dest = tmp_path / "copy.db"
    assert {"path": str(dest)} == as_json(run("backup", str(dest), "--db", str(existing), "--json"))


def test_rebuild_index_json_names_each_skipped_file(db_path: Path, maildir: Path) -> None:
    """rebuild-index --json: how many indexed, and every skipped file with its reason."""
    report = as_json(run("rebuild-index", str(maildir), "--db", str(db_path), "--json"))
    assert isinstance(report, dict)
    assert 1 == report["indexed"]
    assert [
        (str(maildir / "ep" / "new" / "M2.json"), "not JSON"),
        (str(maildir / "ep" / "new" / "M3.json"), "id mismatch"),
    ] == [(skip["path"], skip["reason"].split(":")[0]) for skip in report["skipped"]]


def test_import_legacy_json(db_path: Path, tmp_path: Path) -> None:
    """import-legacy --json: imported and present per table, skipped rows, missing sources."""
    home = build(tmp_path / "old")
    report = as_json(run("import-legacy", "--from", str(home), "--db", str(db_path), "--json"))
    assert isinstance(report, dict)
    assert (3, 0) == (report["imported"]["pulse_schedules"], report["present"]["pulse_schedules"])
    assert ["run 'run-orphan'"] == [skip["what"] for skip in report["skipped"]]
    assert [] == report["missing"]


def test_check_migrations_json() -> None:
    """check-migrations --json: ok and nothing missing."""
    assert {"ok": True, "missing": None} == as_json(run("check-migrations", "--json"))


def test_copy_json(existing: Path, tmp_path: Path) -> None:
    """copy --json: every table, verified."""
    report = as_json(run("copy", str(existing), str(tmp_path / "dest.db"), "--json"))
    assert isinstance(report, dict)
    assert report["verified"]
    assert {"agent_denials": 1} == {
        table["table"]: table["copied"] for table in report["tables"] if table["copied"]
    }


# --- verbosity ------------------------------------------------------------------------


def test_rebuild_index_verbose_names_each_skipped_file(db_path: Path, maildir: Path) -> None:
    """-v: one line per skipped file with its reason, then the summary."""
    result = run("rebuild-index", str(maildir), "--db", str(db_path), "-v")
    assert (0, "") == (result.exit_code, result.stderr)
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"skipped {maildir / 'ep' / 'new' / 'M2.json'}: not JSON")
    assert lines[1].startswith(f"skipped {maildir / 'ep' / 'new' / 'M3.json'}: id mismatch")
    assert (
        "indexed 1 messages (1 written, 0 deleted of 0); "
        "skipped 2 files (1 id mismatch, 1 not JSON)" == lines[2]
    )


def test_import_legacy_verbose_names_each_skipped_row(db_path: Path, tmp_path: Path) -> None:
    """import-legacy -v names each skipped row and why; without -v it counts them."""
    home = build(tmp_path / "old")
    result = run("-v", "--db", str(db_path), "import-legacy", "--from", str(home))
    assert (0, "") == (result.exit_code, result.stderr)
    assert (
        "skipped run 'run-orphan': its schedule 'deleted-schedule' is not in schedules.json"
        " or was skipped"
    ) in result.stdout.splitlines()


def test_quiet_prints_nothing_when_all_is_well(existing: Path, maildir: Path) -> None:
    """-q: a successful command prints nothing."""
    for args in (["migrate"], ["status"], ["doctor"], ["rebuild-index", str(maildir)]):
        result = run("-q", "--db", str(existing), *args)
        assert (0, "", "") == (result.exit_code, result.stdout, result.stderr)


def test_quiet_still_prints_problems(existing: Path) -> None:
    """-q: doctor still names what it found, and exits 1."""
    stdlib_sqlite(existing, FORGET_003)
    result = run("doctor", "-q", "--db", str(existing))
    assert (EXIT_FINDINGS, "migrations: pending 003_store_span_latency\n") == (
        result.exit_code,
        result.stdout,
    )


# --- history and rollback -------------------------------------------------------------


def test_history_lists_applied_migrations_with_dates(existing: Path) -> None:
    """history: each applied migration with its canonical UTC time; additive ones say so."""
    result = run("history", "--db", str(existing))
    assert (0, "") == (result.exit_code, result.stderr)
    lines = result.stdout.splitlines()
    assert SHIPPED == [line.split()[0] for line in lines]
    stamps = [line.split()[1] for line in lines]
    assert all(stamp.endswith("Z") and len(stamp) == 24 for stamp in stamps), stamps
    assert ["002_index_bucket_minute"] == [line.split()[0] for line in lines if "additive" in line]


def test_history_shows_pending_migrations(existing: Path) -> None:
    """A migration the database lacks is listed as pending, after the applied ones."""
    stdlib_sqlite(existing, FORGET_003)
    report = as_json(run("history", "--db", str(existing), "--json"))
    assert isinstance(report, dict)
    assert (SHIPPED[:-1], ["003_store_span_latency"]) == (
        [entry["name"] for entry in report["applied"]],
        report["pending"],
    )


def test_rollback_undoes_the_newest_migration(existing: Path) -> None:
    """rollback --yes undoes only the newest migration; the data of older ones stays."""
    result = run("rollback", "--yes", "--db", str(existing))
    assert (0, "rolled back 003_store_span_latency\n") == (result.exit_code, result.stdout)
    dorkstore.init_db(existing, migrate=False)
    try:
        assert SHIPPED[:-1] == migrate.applied_migrations(dorkstore.database)
        assert "latency_ms" not in {c.name for c in dorkstore.database.get_columns("relay_traces")}
        assert dorkstore.DenialList().is_denied("/secret")
    finally:
        dorkstore.close_db()


def test_rollback_to_a_migration(existing: Path) -> None:
    """rollback --to NAME undoes every migration after NAME, newest first."""
    report = as_json(run("rollback", "--to", SHIPPED[0], "--yes", "--json", "--db", str(existing)))
    assert {"rolled_back": SHIPPED[:0:-1]} == report
    assert {"applied": SHIPPED[1:]} == as_json(run("migrate", "--json", "--db", str(existing)))


def test_rollback_without_yes_off_a_terminal_changes_nothing(existing: Path) -> None:
    """Without --yes and nobody to ask: a usage error naming what would be lost, exit 2."""
    before = existing.read_bytes()
    one_line_error(run("rollback", "--db", str(existing)), "pass --yes", status=EXIT_USAGE)
    one_line_error(
        run("rollback", "--to", SHIPPED[0], "--db", str(existing)),
        "003_store_span_latency, 002_index_bucket_minute loses data",
        status=EXIT_USAGE,
    )
    assert before == existing.read_bytes()


def test_rollback_to_a_migration_not_applied_is_an_error(existing: Path) -> None:
    """--to a name that is not applied: exit 3, nothing rolled back."""
    one_line_error(run("rollback", "--to", "999_nope", "--yes", "--db", str(existing)), "999_nope")
    assert {"applied": []} == as_json(run("migrate", "--json", "--db", str(existing)))


# --- exit codes, version, completion --------------------------------------------------


def test_ctrl_c_exits_130_in_one_line(db_path: Path) -> None:
    """SIGINT while migrate waits for another process's migration lock: one line, exit 130."""
    with filelock.FileLock(db_path.with_name("dork.db.lock")):
        command = subprocess.Popen(
            [str(SCRIPT), "--db", str(db_path), "migrate"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        time.sleep(1.5)  # it is waiting for the lock now (up to 60 s)
        command.send_signal(signal.SIGINT)
        stdout, stderr = command.communicate(timeout=30)
    # click starts a new line after the terminal's ^C; then the one line.
    assert (EXIT_INTERRUPTED, "", "dorkstore: error: interrupted") == (
        command.returncode,
        stdout,
        stderr.strip(),
    )


def test_version_is_the_package_version() -> None:
    """--version and -V print dorkstore.__version__."""
    for flag in ("--version", "-V"):
        assert (0, f"dorkstore, version {dorkstore.__version__}\n") == (
            run(flag).exit_code,
            run(flag).stdout,
        )


def test_help_documents_the_exit_codes() -> None:
    """--help lists every exit status."""
    shown = run("--help").stdout
    for line in ("0    ok", "1    findings", "2    bad usage", "3    error", "130  interrupted"):
        assert line in shown


def test_bash_completion_completes_commands() -> None:
    """The completion the README documents works: bash_source, then completing 'st'."""
    source = subprocess.run(
        [str(SCRIPT)], env={**os.environ, "_DORKSTORE_COMPLETE": "bash_source"},
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "_DORKSTORE_COMPLETE=bash_complete" in source.stdout
    done = subprocess.run(
        [str(SCRIPT)],
        env={**os.environ, "_DORKSTORE_COMPLETE": "bash_complete", "COMP_WORDS": "dorkstore st",
             "COMP_CWORD": "1"},
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "plain,status" in done.stdout.splitlines()


# --- the SQL shell --------------------------------------------------------------------


def shell(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), "shell", *args], capture_output=True, text=True, check=False, timeout=60
    )


@pytest.mark.sqlite_only
def test_shell_runs_sql_on_the_bundled_sqlite(existing: Path) -> None:
    """shell COMMAND: APSW's shell on the same SQLite as the library, with foreign keys on."""
    done = shell("--db", str(existing), "select sqlite_version()", "pragma foreign_keys")
    assert (0, "") == (done.returncode, done.stderr)
    import apsw

    assert [apsw.sqlite_lib_version(), "1"] == done.stdout.split()


@pytest.mark.sqlite_only
def test_shell_is_read_only_unless_write(existing: Path) -> None:
    """Without --write a change fails in one line, exit 3; with --write it is made."""
    refused = shell("--db", str(existing), "delete from agent_denials")
    assert (3, 1) == (refused.returncode, len(refused.stderr.splitlines())), refused.stderr
    assert "readonly" in refused.stderr.lower()
    dorkstore.init_db(existing, migrate=False)
    try:
        assert 1 == len(dorkstore.DenialList().list())
    finally:
        dorkstore.close_db()
    done = shell("--write", "--db", str(existing), "delete from agent_denials")
    assert (0, "") == (done.returncode, done.stderr)
    dorkstore.init_db(existing, migrate=False)
    try:
        assert [] == dorkstore.DenialList().list()
    finally:
        dorkstore.close_db()


def test_shell_on_memory_is_an_error() -> None:
    """An in-memory database has no file for a shell: one line, exit 3."""
    one_line_error(run("shell", "--db", ":memory:"), "in-memory")


# --- rebuild-index: dry run and the loss guard ------------------------------------------


@pytest.fixture
def indexed(db_path: Path, maildir: Path) -> Path:
    """A database whose index holds the maildir fixture's one good message, and 3 more."""
    dorkstore.init_db(db_path)
    index = dorkstore.RelayIndex()
    index.rebuild(maildir)
    for number in range(3):
        index.insert_message(f"X{number}", "s", "ep")
    dorkstore.close_db()
    return db_path


def index_ids(path: Path) -> set[str]:
    dorkstore.init_db(path, migrate=False)
    try:
        return {m.id for m in dorkstore.RelayIndex().query_messages(limit=100).messages}
    finally:
        dorkstore.close_db()


def test_rebuild_index_refuses_an_empty_tree_over_a_full_index(
    indexed: Path, tmp_path: Path
) -> None:
    """An empty (or mistyped) directory would empty the index: exit 1, nothing changed."""
    (tmp_path / "empty").mkdir()
    result = run("rebuild-index", str(tmp_path / "empty"), "--db", str(indexed))
    one_line_error(result, "would lose 4 of its 4", status=EXIT_FINDINGS)
    assert "--force" in result.stderr
    assert {"M1", "X0", "X1", "X2"} == index_ids(indexed)
    forced = run("rebuild-index", str(tmp_path / "empty"), "--force", "--db", str(indexed))
    assert (0, "indexed 0 messages (0 written, 4 deleted of 4); skipped 0 files\n") == (
        forced.exit_code,
        forced.stdout,
    )
    assert set() == index_ids(indexed)


def test_rebuild_index_refuses_to_lose_more_than_half(indexed: Path, maildir: Path) -> None:
    """The tree holds 1 of the index's 4 messages: losing 3 of 4 is refused."""
    result = run("rebuild-index", str(maildir), "--db", str(indexed))
    one_line_error(result, "would lose 3 of its 4", status=EXIT_FINDINGS)
    assert {"M1", "X0", "X1", "X2"} == index_ids(indexed)


def test_rebuild_index_dry_run_changes_nothing(indexed: Path, maildir: Path) -> None:
    """--dry-run says what would change, without the guard, and changes nothing."""
    result = run("rebuild-index", str(maildir), "--dry-run", "--db", str(indexed))
    assert (0, "") == (result.exit_code, result.stderr)
    assert result.stdout.startswith("would index 1 messages (0 to write, 3 to delete of 4); ")
    report = as_json(
        run("rebuild-index", str(maildir), "--dry-run", "--json", "--db", str(indexed))
    )
    assert isinstance(report, dict)
    assert (True, 1, 4, 0, 3) == (
        report["dry_run"],
        report["indexed"],
        report["previous"],
        report["written"],
        report["deleted"],
    )
    assert {"M1", "X0", "X1", "X2"} == index_ids(indexed)


# --- what the review found ------------------------------------------------------------


def test_a_dry_run_creates_nothing(tmp_path: Path) -> None:
    """--dry-run on a database that does not exist: exit 3, and no file appears."""
    (tmp_path / "mail").mkdir()
    missing = tmp_path / "missing.db"
    one_line_error(
        run("rebuild-index", str(tmp_path / "mail"), "--dry-run", "--db", str(missing)),
        "no database at",
    )
    assert not missing.exists()


def test_a_dry_run_migrates_nothing(existing: Path, maildir: Path) -> None:
    """--dry-run on a database with a pending migration: exit 3 naming it, file unchanged."""
    stdlib_sqlite(existing, FORGET_003)
    before = existing.read_bytes()
    one_line_error(
        run("rebuild-index", str(maildir), "--dry-run", "--db", str(existing)),
        "pending (003_store_span_latency): run dorkstore migrate first",
    )
    assert before == existing.read_bytes()


def test_a_dry_run_says_the_rebuild_would_be_refused(indexed: Path, tmp_path: Path) -> None:
    """A dry run over an empty tree says that the real run needs --force."""
    (tmp_path / "empty").mkdir()
    result = run("rebuild-index", str(tmp_path / "empty"), "--dry-run", "--db", str(indexed))
    assert (0, "") == (result.exit_code, result.stderr)
    assert "without --force, the rebuild would be refused" in result.stdout
    report = as_json(
        run("rebuild-index", str(tmp_path / "empty"), "--dry-run", "--json", "--db", str(indexed))
    )
    assert isinstance(report, dict)
    assert report["refused_without_force"]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--db", "x.db", "copy", "a.db", "b.db"], "--db does not apply"),
        (["--db", "x.db", "check-migrations"], "--db does not apply"),
        (["--json", "shell", "--db", ":memory:"], "--json does not apply"),
    ],
)
def test_an_option_a_command_does_not_use_is_refused(args: list[str], fragment: str) -> None:
    """An option given to a command that would ignore it is a usage error, exit 2."""
    one_line_error(run(*args), fragment, status=EXIT_USAGE)


def test_rollback_of_a_newer_database_asks_nothing(existing: Path) -> None:
    """A history naming a migration this release lacks: exit 3 before any question."""
    stdlib_sqlite(
        existing,
        "conn.execute(\"INSERT INTO migratehistory (name, migrated_at) VALUES ('999_x', 't')\")",
    )
    one_line_error(run("rollback", "--db", str(existing)), "newer dorkstore")


def rollback_answering(path: Path, answer: bytes) -> subprocess.CompletedProcess[bytes]:
    """Run `dorkstore rollback` with a terminal as stdin, answering its question."""
    leader, follower = pty.openpty()
    command = subprocess.Popen(
        [str(SCRIPT), "rollback", "--db", str(path)],
        stdin=follower, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    os.write(leader, answer)
    stdout, stderr = command.communicate(timeout=60)
    os.close(follower)
    os.close(leader)
    return subprocess.CompletedProcess(command.args, command.returncode, stdout, stderr)


def test_rollback_asks_on_a_terminal_and_a_no_changes_nothing(existing: Path) -> None:
    """On a terminal rollback asks on stderr; 'n' exits 1 and leaves every migration."""
    declined = rollback_answering(existing, b"n\n")
    assert (EXIT_FINDINGS, b"") == (declined.returncode, declined.stdout)
    assert b"Roll back 003_store_span_latency?" in declined.stderr
    assert b"nothing rolled back" in declined.stderr
    assert {"applied": []} == as_json(run("migrate", "--json", "--db", str(existing)))
    accepted = rollback_answering(existing, b"y\n")
    assert (0, b"rolled back 003_store_span_latency\n") == (accepted.returncode, accepted.stdout)


@pytest.mark.sqlite_only
def test_a_bad_dot_command_is_one_line(existing: Path) -> None:
    """A dot-command the shell does not know: one line, exit 3."""
    done = shell("--db", str(existing), ".nosuchcommand")
    assert (3, 1) == (done.returncode, len(done.stderr.splitlines())), done.stderr
    assert "please report" not in done.stderr
