"""dorkstore copy (SPEC section 10): a whole database to an empty one, any backend to any, verified.

Tests that need PostgreSQL skip without DORKSTORE_TEST_PG.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import peewee as pw
import pytest

import dorkstore
from dorkstore import copy
from dorkstore.backends.postgres import redacted
from dorkstore.copy import copy_database
from dorkstore.legacy import import_legacy
from dorkstore.models import MODELS, AgentDenial, RateLimitBucket, RelayMessage
from tests.helpers import TABLES, stdlib_sqlite
from tests.helpers import run_cli as run
from tests.old_layout import build
from tests.pg import PG_URL, needs_pg, new_database, password_of, run_sql

Dump = dict[str, list[tuple[Any, ...]]]
#: Keys that sort differently by locale than bytewise, and text beyond ASCII.
ODD_IDS = ("a", "B", "Z", "_", "~", "é", "ß", "日本", "😀", "\U0010fffd")


def dump(target: str | Path) -> Dump:
    """Return every row of every dorkstore table, read through the models (python values)."""
    dorkstore.init_db(target, migrate=False)
    try:
        return {
            model._meta.table_name: sorted(model.select().tuples(), key=repr) for model in MODELS
        }
    finally:
        dorkstore.close_db()


def fill(target: str | Path, old: Path) -> None:
    """Migrate `target` and put rows in every table: an old layout imported, then odd rows."""
    dorkstore.init_db(target)
    import_legacy(build(old))
    for number, odd in enumerate(ODD_IDS):
        AgentDenial.insert(
            id=odd, path=f"/odd/{odd}", reason=None, denier=odd, created_at=f"t{number}"
        ).execute()
        RateLimitBucket.insert(agent_id=odd, bucket_minute=2**62 - number, count=number).execute()
        RateLimitBucket.insert(agent_id=odd, bucket_minute=-number, count=2**40).execute()
    # Text another client stored that is not JSON is copied as it is.
    RelayMessage.insert(
        id="M-bad-json", subject="s", endpoint_hash="e", payload="{not json", created_at="t"
    ).execute()
    dorkstore.close_db()


@pytest.fixture(autouse=True)
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches of 3 rows, so that every table is read, written and compared in several."""
    monkeypatch.setattr(copy, "BATCH", 3)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A SQLite file with rows in every table."""
    path = tmp_path / "source.db"
    fill(path, tmp_path / "old")
    return path


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A new, empty PostgreSQL database (nothing migrated); its URL has a password."""
    if PG_URL is None:
        pytest.skip("DORKSTORE_TEST_PG is not set")
    with new_database() as url:
        yield url


@pytest.fixture(params=["file", "postgres"])
def empty_dest(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A destination that does not exist yet: a file path, or a new PostgreSQL database."""
    if request.param == "postgres":
        url: str = request.getfixturevalue("pg_url")
        return url
    return str(tmp_path / "dest.db")


def files_of(path: Path) -> list[Path]:
    return sorted(path.parent.glob(path.name + "*"))


# --- copying -------------------------------------------------------------------------------


def test_source_has_rows_in_every_table(source: Path) -> None:
    """The fixture database the copies start from holds rows in every table."""
    assert set(TABLES) == {table for table, rows in dump(source).items() if rows}


def test_sqlite_file_to_sqlite_file(source: Path, tmp_path: Path) -> None:
    """A copy from file to file holds exactly the same rows, and the report says so."""
    dest = tmp_path / "dest.db"
    report = copy_database(source, dest)
    assert report.verified
    assert dump(source) == dump(dest)
    assert {table: len(rows) for table, rows in dump(source).items()} == {
        table.table: table.copied for table in report.tables
    }


@needs_pg
def test_round_trip_sqlite_postgres_sqlite(source: Path, pg_url: str, tmp_path: Path) -> None:
    """SQLite -> PostgreSQL -> SQLite: every row of every table equal at each step."""
    there = copy_database(source, pg_url)
    back = copy_database(pg_url, tmp_path / "back.db")
    assert (True, True) == (there.verified, back.verified)
    original = dump(source)
    assert original == dump(pg_url)
    assert original == dump(tmp_path / "back.db")
    assert [(False,)] == run_sql(
        pg_url, "SELECT enabled FROM pulse_schedules WHERE name = 'weekly report'"
    )


def test_report_lines(source: Path, empty_dest: str) -> None:
    """The report: where from and to, one line per table in copy order, then the verdict."""
    report = copy_database(source, empty_dest)
    counts = {table: len(rows) for table, rows in dump(source).items()}
    assert [
        f"copied {source} to {redacted(empty_dest)}",
        *(
            f"{model._meta.table_name}: {counts[model._meta.table_name]} rows copied, verified"
            for model in MODELS
        ),
        "verified: every row of 7 tables is the same in both",
    ] == report.lines()


def test_into_a_migrated_empty_destination(source: Path, empty_dest: str) -> None:
    """A destination already migrated (dorkstore migrate first) but empty is filled."""
    dorkstore.init_db(empty_dest)
    dorkstore.close_db()
    assert copy_database(source, empty_dest).verified
    assert dump(source) == dump(empty_dest)


def test_the_current_database_is_left_alone(source: Path, tmp_path: Path) -> None:
    """copy_database opens its own two databases: dorkstore.database keeps pointing where it did."""
    current = dorkstore.init_db(":memory:")
    try:
        copy_database(source, tmp_path / "dest.db")
        assert current is dorkstore.database.obj
        assert [] == dorkstore.DenialList().list()
    finally:
        dorkstore.close_db()


# --- refusals -----------------------------------------------------------------------------


def test_refuses_a_destination_holding_rows(source: Path, empty_dest: str) -> None:
    """A destination with one row anywhere is refused, and nothing in it changes."""
    dorkstore.init_db(empty_dest)
    dorkstore.DenialList().deny("/mine")
    dorkstore.close_db()
    before = dump(empty_dest)
    with pytest.raises(dorkstore.DatabaseError, match=r"is not empty \(rows in agent_denials: 1\)"):
        copy_database(source, empty_dest)
    assert before == dump(empty_dest)


def test_refusing_a_destination_file_leaves_its_bytes(source: Path, tmp_path: Path) -> None:
    """A destination file holding rows is not written at all."""
    dest = tmp_path / "dest.db"
    dorkstore.init_db(dest)
    dorkstore.DenialList().deny("/mine")
    dorkstore.close_db()
    before = dest.read_bytes()
    with pytest.raises(dorkstore.DatabaseError, match="is not empty"):
        copy_database(source, dest)
    assert before == dest.read_bytes()


@pytest.mark.parametrize("where", ["file", "postgres"])
def test_refuses_a_source_from_a_newer_dorkstore(
    where: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A source migrated by a newer release is refused; the destination is never created."""
    future = "INSERT INTO migratehistory (name, migrated_at) VALUES ('999_future', 't')"
    if where == "postgres":
        src: str | Path = request.getfixturevalue("pg_url")
        dorkstore.init_db(src)
        dorkstore.close_db()
        run_sql(str(src), future)
    else:
        src = tmp_path / "source.db"
        dorkstore.init_db(src)
        dorkstore.close_db()
        stdlib_sqlite(src, f'conn.execute("{future}")')
    dest = tmp_path / "dest.db"
    with pytest.raises(dorkstore.SchemaVersionError, match="999_future"):
        copy_database(src, dest)
    assert [] == files_of(dest)


def test_refuses_a_source_with_pending_migrations(source: Path, tmp_path: Path) -> None:
    """A source behind this release must be migrated first; the destination is not created."""
    last = dorkstore.migrate.available_migrations()[-1]
    stdlib_sqlite(source, f"conn.execute(\"DELETE FROM migratehistory WHERE name = '{last}'\")")
    dest = tmp_path / "dest.db"
    with pytest.raises(dorkstore.DatabaseError, match=f"lacks migrations {last}: run dorkstore"):
        copy_database(source, dest)
    assert [] == files_of(dest)


def test_refuses_a_file_that_is_not_dorkstore(tmp_path: Path) -> None:
    """An old pulse.db is refused without being opened for writing (not even WAL mode)."""
    old = build(tmp_path / "old") / "pulse.db"
    before = old.read_bytes()
    with pytest.raises(dorkstore.DatabaseError, match="not a dorkstore database"):
        copy_database(old, tmp_path / "dest.db")
    assert before == old.read_bytes()
    assert ["delete"] == stdlib_sqlite(
        old, "result = conn.execute('PRAGMA journal_mode').fetchone()"
    )


def test_refuses_a_missing_source(tmp_path: Path) -> None:
    """A source file that does not exist is not created, and neither is the destination."""
    with pytest.raises(dorkstore.DatabaseError, match="no database at"):
        copy_database(tmp_path / "nothing.db", tmp_path / "dest.db")
    assert [] == files_of(tmp_path / "nothing.db") + files_of(tmp_path / "dest.db")


@needs_pg
def test_a_row_postgresql_refuses_leaves_the_destination_empty(source: Path, pg_url: str) -> None:
    """Text with NUL (another client stored it; PostgreSQL cannot): an error, nothing copied."""
    dorkstore.init_db(source)
    AgentDenial.insert(id="nul", path="/a\x00b", created_at="t").execute()
    dorkstore.close_db()
    with pytest.raises(dorkstore.DatabaseError, match="cannot copy agent_denials"):
        copy_database(source, pg_url)
    assert all(not rows for rows in dump(pg_url).values())
    dorkstore.init_db(source)
    AgentDenial.delete().where(AgentDenial.id == "nul").execute()
    dorkstore.close_db()
    assert copy_database(source, pg_url).verified  # once fixed, the copy goes through


# --- verification -------------------------------------------------------------------------


#: Triggers on the destination that lose a denial, change a schedule and invent a bucket
#: as the copy writes: real damage for the verification to find, no function patched.
SQLITE_TAMPERING = (
    "CREATE TRIGGER lose AFTER INSERT ON agent_denials WHEN NEW.id = 'B' "
    "BEGIN DELETE FROM agent_denials WHERE id = NEW.id; END",
    "CREATE TRIGGER change AFTER INSERT ON pulse_schedules WHEN NOT NEW.enabled "
    "BEGIN UPDATE pulse_schedules SET enabled = 1, name = 'renamed' WHERE id = NEW.id; END",
    "CREATE TRIGGER invent AFTER INSERT ON rate_limit_buckets WHEN NEW.agent_id <> 'new' "
    "BEGIN INSERT OR IGNORE INTO rate_limit_buckets VALUES ('new', 1, 1); END",
)
POSTGRES_TAMPERING = (
    # Nested IFs: PL/pgSQL resolves every field of a condition, even past a false AND.
    "CREATE FUNCTION tamper() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "IF TG_TABLE_NAME = 'agent_denials' THEN IF NEW.id = 'B' THEN "
    "DELETE FROM agent_denials WHERE id = NEW.id; END IF; END IF; "
    "IF TG_TABLE_NAME = 'pulse_schedules' THEN IF NOT NEW.enabled THEN "
    "UPDATE pulse_schedules SET enabled = TRUE, name = 'renamed' WHERE id = NEW.id; "
    "END IF; END IF; "
    "IF TG_TABLE_NAME = 'rate_limit_buckets' THEN IF NEW.agent_id <> 'new' THEN "
    "INSERT INTO rate_limit_buckets VALUES ('new', 1, 1) ON CONFLICT DO NOTHING; "
    "END IF; END IF; "
    "RETURN NULL; END $$",
    *(
        f"CREATE TRIGGER tamper AFTER INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION tamper()"
        for table in ("agent_denials", "pulse_schedules", "rate_limit_buckets")
    ),
)


@pytest.fixture
def lossy(empty_dest: str) -> None:
    """Migrate the destination and give it triggers that damage what the copy writes."""
    db = dorkstore.init_db(empty_dest)
    postgres = isinstance(db, pw.PostgresqlDatabase)
    for statement in POSTGRES_TAMPERING if postgres else SQLITE_TAMPERING:
        db.execute_sql(statement)
    dorkstore.close_db()


@pytest.mark.usefixtures("lossy")
def test_verification_names_missing_changed_and_extra_rows(source: Path, empty_dest: str) -> None:
    """Rows lost, changed or added by the copy are each found and named by key."""
    report = copy_database(source, empty_dest)
    assert not report.verified
    tables = {table.table: table for table in report.tables}
    assert ("'B' missing",) == tables["agent_denials"].differences
    (changed,) = tables["pulse_schedules"].differences
    assert changed.endswith("differs in name, enabled")
    assert ("('new', 1) extra",) == tables["rate_limit_buckets"].differences
    assert {"agent_denials", "pulse_schedules", "rate_limit_buckets"} == {
        name for name, table in tables.items() if not table.verified
    }
    assert report.lines()[-1] == (
        "FAILED verification: pulse_schedules, agent_denials, rate_limit_buckets differ"
    )


# --- the command ----------------------------------------------------------------------------


def test_command_prints_the_report(source: Path, empty_dest: str) -> None:
    """dorkstore copy SOURCE DEST prints the report and exits 0; never a password."""
    result = run("copy", str(source), empty_dest)
    assert (0, "") == (result.exit_code, result.stderr)
    lines = result.stdout.splitlines()
    assert f"copied {source} to {redacted(empty_dest)}" == lines[0]
    assert "verified: every row of 7 tables is the same in both" == lines[-1]
    assert 9 == len(lines)
    if "://" in empty_dest:
        assert password_of(empty_dest) not in result.stdout


@pytest.mark.usefixtures("lossy")
def test_command_exits_1_when_verification_fails(source: Path, empty_dest: str) -> None:
    """A difference is a finding: the report on stdout, exit status 1, nothing on stderr."""
    denials = len(dump(source)["agent_denials"])
    result = run("copy", str(source), empty_dest)
    assert (1, "") == (result.exit_code, result.stderr)
    assert (
        f"agent_denials: {denials} rows copied; {denials} in the source, {denials - 1} in the "
        "destination, 1 different; 'B' missing"
    ) in result.stdout.splitlines()
    assert result.stdout.splitlines()[-1].startswith("FAILED verification: ")


def test_command_refusal_is_one_line(source: Path, empty_dest: str) -> None:
    """A destination holding rows: one line on stderr, exit 3, without the password."""
    dorkstore.init_db(empty_dest)
    dorkstore.DenialList().deny("/mine")
    dorkstore.close_db()
    result = run("copy", str(source), empty_dest)
    assert (3, "") == (result.exit_code, result.stdout)
    assert 1 == len(result.stderr.splitlines())
    assert "is not empty" in result.stderr
    if "://" in empty_dest:
        assert password_of(empty_dest) not in result.stderr


@pytest.mark.parametrize("args", [["copy"], ["copy", "a.db"], ["copy", "", "b.db"]])
def test_command_arguments_are_checked(args: list[str]) -> None:
    """Missing or empty SOURCE and DEST: one line on stderr, exit 2."""
    result = run(*args)
    assert (2, 1) == (result.exit_code, len(result.stderr.splitlines()))


def test_command_has_help() -> None:
    """copy --help describes the command."""
    result = run("copy", "--help")
    assert (0, "") == (result.exit_code, result.stderr)
    assert "Usage: " in result.stdout
    assert "SOURCE" in result.stdout
