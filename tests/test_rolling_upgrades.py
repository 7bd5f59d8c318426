"""Rolling upgrades: a previous release beside a newer one on one database.

Two installed versions are two copies of the shipped migrations directory, one
with migrations the other lacks; a release is `init_db` with its own copy as the
packaged migrations (`default_directory`), which is all that differs between
installed versions as far as the runner is concerned. Each test gets a new
SQLite file and, with ``DORKSTORE_TEST_PG``, a new PostgreSQL database.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import dorkstore
from dorkstore import migrate
from dorkstore.errors import SchemaVersionError
from dorkstore.migrate import runner
from tests.helpers import write_migration

SHIPPED = migrate.available_migrations()
PG_URL = os.environ.get("DORKSTORE_TEST_PG")
_numbers = itertools.count()

#: A nullable column with an index, and a new table: additive.
ADD_COLOR = (
    "migrator.add_fields('agents', color=pw.TextField(null=True, index=True))",
    """
    migrator.drop_index('agents', 'color')
    migrator.remove_fields('agents', 'color')
    """,
)
ADD_NOTES = (
    """
    @migrator.create_model
    class Note(pw.Model):
        text = pw.TextField()

        class Meta:
            table_name = "notes"
    """,
    "migrator.remove_model('notes')",
)
#: A column every row must fill: the previous release's inserts would fail.
ADD_REQUIRED = (
    "migrator.add_fields('agent_denials', origin=pw.TextField(default='cli'))",
    "migrator.remove_fields('agent_denials', 'origin')",
)

Release = Callable[[Path], list[str]]


@pytest.fixture(params=["file", *(["postgres"] if PG_URL else [])])
def target(request: pytest.FixtureRequest, db_path: Path) -> Iterator[str]:
    """A database that does not exist yet: a SQLite file or a new PostgreSQL database."""
    if request.param == "file":
        yield str(db_path)
        dorkstore.close_db()
        return
    import psycopg

    assert PG_URL is not None
    name = f"dorkstore_roll_{os.getpid()}_{next(_numbers)}"
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_URL.rsplit("/", 1)[0] + "/" + name
        dorkstore.close_db()
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def release(target: str, monkeypatch: pytest.MonkeyPatch) -> Release:
    """Open `target` as the release whose packaged migrations are `directory`."""

    def open_as(directory: Path) -> list[str]:
        monkeypatch.setattr(runner, "default_directory", lambda: directory)
        return dorkstore.migrate_db(target)

    return open_as


def install(
    tmp_path: Path, name: str, *, without: tuple[str, ...] = (), extra: tuple[Any, ...] = ()
) -> Path:
    """Copy the shipped migrations to `tmp_path / name`, less `without`, plus `extra`.

    Each of `extra` is (migration name, additive, migrate body, rollback body);
    additive is True, False, or the text to set ``ADDITIVE`` to.
    """
    directory = tmp_path / name
    shutil.copytree(
        migrate.default_directory(), directory, ignore=shutil.ignore_patterns("__pycache__")
    )
    for shipped in without:
        (directory / f"{shipped}.py").unlink()
    for migration, additive, body, undo in extra:
        path = write_migration(directory, migration, body, undo)
        if additive is not False:
            flag = "True" if additive is True else additive
            path.write_text(path.read_text() + f"\n\nADDITIVE = {flag}\n")
    return directory


def history() -> list[tuple[str, bool]]:
    return migrate.applied_history(dorkstore.database.obj)


def snapshot(target: str) -> Any:
    """Return what would show any change to `target`: its bytes, or its schema and history."""
    if "://" not in target:
        path = Path(target)
        files = sorted(p.name for p in path.parent.glob(f"{path.name}*"))
        return files, hashlib.sha256(path.read_bytes()).hexdigest()
    import psycopg

    with psycopg.connect(target) as connection:
        return [
            connection.execute(sql).fetchall()
            for sql in (
                "SELECT table_name, column_name, data_type, is_nullable, column_default "
                "FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2",
                "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1",
                "SELECT * FROM migratehistory ORDER BY id",
            )
        ]


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "dorkstore" and record.levelno == logging.WARNING
    ]


@pytest.fixture
def versions(tmp_path: Path) -> tuple[Path, Path]:
    """The current release, and a newer one with two additive migrations."""
    current = install(tmp_path, "current")
    newer = install(
        tmp_path,
        "newer",
        extra=(("004_add_agent_color", True, *ADD_COLOR), ("005_add_notes", True, *ADD_NOTES)),
    )
    return current, newer


def test_the_history_records_which_shipped_migrations_are_additive(db: Any) -> None:
    """002 (an index) is additive; 001 and 003 (whose latencies old writers miss) are not."""
    expected = [(name, name == "002_index_bucket_minute") for name in SHIPPED]
    assert expected == migrate.applied_history(db)
    assert ["001_initial", "002_index_bucket_minute", "003_store_span_latency"] == SHIPPED


def test_an_older_release_proceeds_past_additive_migrations_with_a_warning(
    release: Release, versions: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    """The current release opens a database a newer one migrated: one warning, nothing applied."""
    current, newer = versions
    assert SHIPPED == release(current)
    assert ["004_add_agent_color", "005_add_notes"] == release(newer)
    caplog.clear()
    caplog.set_level(logging.WARNING, logger="dorkstore")
    assert [] == release(current)
    (warning,) = warnings_of(caplog)
    assert "004_add_agent_color, 005_add_notes not in this version, all additive" in warning
    expected = [*((name, name == "002_index_bucket_minute") for name in SHIPPED)]
    assert [*expected, ("004_add_agent_color", True), ("005_add_notes", True)] == history()


def test_the_older_releases_repositories_work_on_the_newer_schema(
    release: Release, versions: tuple[Path, Path]
) -> None:
    """Writes and reads of the current release succeed on the new column, index and table."""
    current, newer = versions
    release(newer)
    release(current)
    agents, denials, budgets = (
        dorkstore.AgentRegistry(),
        dorkstore.DenialList(),
        dorkstore.BudgetMapper(),
    )
    agent = agents.insert("a", "claude", "/work/a")
    assert agents.update(agent.id, description="old release")
    denials.deny("/work/b", reason="no")
    assert budgets.try_consume(agent.id, 5).allowed
    assert ["old release"] == [found.description for found in agents.list()]
    assert denials.is_denied("/work/b")
    assert 1 == budgets.check_budget(agent.id, 5).used
    written = agents.get(agent.id)
    release(newer)
    row = dorkstore.database.execute_sql("SELECT color FROM agents").fetchall()
    assert [(None,)] == [tuple(found) for found in row]
    assert written == dorkstore.AgentRegistry().get(agent.id)


def test_a_non_additive_unknown_migration_is_refused_and_nothing_changes(
    release: Release, target: str, tmp_path: Path
) -> None:
    """One unknown migration that is not additive: SchemaVersionError naming it, and no change."""
    newer = install(
        tmp_path,
        "newer",
        extra=(
            ("004_add_agent_color", True, *ADD_COLOR),
            ("005_add_denial_origin", False, *ADD_REQUIRED),
        ),
    )
    release(newer)
    dorkstore.close_db()
    before = snapshot(target)
    with pytest.raises(SchemaVersionError, match="005_add_denial_origin") as refused:
        release(install(tmp_path, "current"))
    assert "004_add_agent_color" not in str(refused.value)
    assert before == snapshot(target)


def test_the_shipped_latency_migration_refuses_a_release_without_it(
    release: Release, tmp_path: Path
) -> None:
    """003 is not additive: a release shipping only 001 and 002 is refused."""
    release(install(tmp_path, "current"))
    without = install(tmp_path, "previous", without=("003_store_span_latency",))
    with pytest.raises(SchemaVersionError, match="003_store_span_latency"):
        release(without)


def test_the_shipped_index_migration_lets_a_release_without_it_proceed(
    release: Release, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """002 is additive: a release shipping only 001 opens a database migrated to 002."""
    latest = ("003_store_span_latency",)
    release(install(tmp_path, "newer", without=latest))
    caplog.set_level(logging.WARNING, logger="dorkstore")
    assert [] == release(install(tmp_path, "older", without=("002_index_bucket_minute", *latest)))
    (warning,) = warnings_of(caplog)
    assert "002_index_bucket_minute not in this version, all additive" in warning


def test_a_migration_without_a_flag_in_the_history_is_not_additive(
    release: Release, versions: tuple[Path, Path], target: str
) -> None:
    """A row a release before the flag wrote (NULL) refuses like an unknown non-additive one."""
    current, _ = versions
    release(current)
    dorkstore.database.execute_sql(
        "INSERT INTO migratehistory (name, migrated_at) VALUES ('999_from_the_future', 't')"
    )
    dorkstore.close_db()
    before = snapshot(target)
    with pytest.raises(SchemaVersionError, match="999_from_the_future"):
        release(current)
    assert before == snapshot(target)


def test_only_additive_true_marks_a_migration_additive(release: Release, tmp_path: Path) -> None:
    """``ADDITIVE = "yes"`` is recorded as not additive, and refuses the older release."""
    release(install(tmp_path, "newer", extra=(("004_add_agent_color", '"yes"', *ADD_COLOR),)))
    assert ("004_add_agent_color", False) == history()[-1]
    with pytest.raises(SchemaVersionError, match="004_add_agent_color"):
        release(install(tmp_path, "current"))


def test_an_older_release_with_a_migration_the_database_lacks_is_refused(
    release: Release, versions: tuple[Path, Path], target: str, tmp_path: Path
) -> None:
    """Unknown additive migrations beside a pending one of its own: diverged, nothing changes."""
    _, newer = versions
    release(newer)
    dorkstore.close_db()
    before = snapshot(target)
    other = install(tmp_path, "other", extra=(("004_other_change", True, *ADD_REQUIRED),))
    with pytest.raises(SchemaVersionError, match="lacks 004_other_change"):
        release(other)
    assert before == snapshot(target)


def test_an_older_release_cannot_roll_back_under_unknown_migrations(
    release: Release, versions: tuple[Path, Path], target: str
) -> None:
    """Rolling back beneath a newer release's migrations is refused, however additive."""
    current, newer = versions
    release(newer)
    release(current)
    with pytest.raises(SchemaVersionError, match="cannot roll back"):
        migrate.rollback(dorkstore.database.obj)
    assert 5 == len(history())


def test_a_history_from_before_the_flag_gets_it_when_a_newer_release_migrates(
    release: Release, versions: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    """The additive column is added to an older history and filled from the files."""
    current, newer = versions
    release(current)
    dorkstore.database.execute_sql("ALTER TABLE migratehistory DROP COLUMN additive")
    assert [(name, False) for name in SHIPPED] == history()
    assert ["004_add_agent_color", "005_add_notes"] == release(newer)
    expected = [(name, name == "002_index_bucket_minute") for name in SHIPPED]
    assert [*expected, ("004_add_agent_color", True), ("005_add_notes", True)] == history()
    caplog.set_level(logging.WARNING, logger="dorkstore")
    assert [] == release(current)
    assert 1 == len(warnings_of(caplog))


def test_the_newer_release_rolls_its_additive_migrations_back_for_the_older_one(
    release: Release, versions: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    """After the newer release rolls back what it added, the older one opens without a warning."""
    current, newer = versions
    release(newer)
    assert ["005_add_notes", "004_add_agent_color"] == migrate.rollback(
        dorkstore.database.obj, to=SHIPPED[-1]
    )
    caplog.set_level(logging.WARNING, logger="dorkstore")
    assert [] == release(current)
    assert [] == warnings_of(caplog)
    assert SHIPPED == migrate.applied_migrations(dorkstore.database.obj)
