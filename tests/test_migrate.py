"""The migration runner: idempotence, rollback, data safety, concurrency, refusals, backups."""

from __future__ import annotations

import hashlib
import os
import re
import time
from pathlib import Path

import filelock
import peewee as pw
import pytest
from playhouse.apsw_ext import APSWDatabase

import dorkstore
from dorkstore import migrate
from dorkstore.backends.sqlite import PRAGMAS
from dorkstore.errors import MigrationError, SchemaVersionError
from tests.helpers import TABLES, init_db_through, run_in_processes, stdlib_sqlite, write_migration

SHIPPED = migrate.available_migrations()


def add_schedule_with_runs(db: pw.Database, schedule_id: str, runs: int) -> None:
    db.execute_sql(
        "INSERT INTO pulse_schedules (id, name, cron, prompt, created_at, updated_at)"
        " VALUES (?, 'n', '* * * * *', 'p', 't', 't')",
        (schedule_id,),
    )
    for number in range(runs):
        db.execute_sql(
            "INSERT INTO pulse_runs (id, schedule_id, status, started_at, created_at)"
            " VALUES (?, ?, 'completed', 't', 't')",
            (f"{schedule_id}-{number}", schedule_id),
        )


def count(db: pw.Database, table: str) -> int:
    return int(db.execute_sql(f'SELECT count(*) FROM "{table}"').fetchone()[0])


def history(db: pw.SqliteDatabase) -> list[str]:
    return migrate.applied_migrations(db)


def test_new_database_records_every_shipped_migration(db: pw.SqliteDatabase) -> None:
    """After init_db the history names each shipped migration once, in order."""
    assert SHIPPED == history(db)
    assert SHIPPED, "no migrations are shipped"


def test_migrating_twice_is_a_no_op(file_db: pw.SqliteDatabase, db_path: Path) -> None:
    """A second init_db applies nothing and leaves the history as it was."""
    dorkstore.close_db()
    assert [] == dorkstore.migrate_db(db_path)
    assert SHIPPED == history(dorkstore.database.obj)
    assert [] == migrate.apply_pending(dorkstore.database.obj)
    dorkstore.close_db()


@pytest.mark.sqlite_only  # SQLite's table rebuilds and foreign-key pragma
def test_history_names_are_unique(db: pw.SqliteDatabase) -> None:
    """The history table refuses a second row for one migration."""
    with pytest.raises(pw.IntegrityError, match="UNIQUE"):
        db.execute_sql(
            "INSERT INTO migratehistory (name, migrated_at) VALUES (?, 't')", (SHIPPED[0],)
        )


def test_history_timestamps_are_canonical(db: pw.SqliteDatabase) -> None:
    """migrated_at is stored in the one timestamp format."""
    (stamp,) = db.execute_sql("SELECT migrated_at FROM migratehistory").fetchone()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", stamp), stamp


def test_rollback_to_empty_and_forward_again(db: pw.SqliteDatabase) -> None:
    """Every migration rolls back, leaving only the history, and applies again."""
    assert SHIPPED[::-1] == migrate.rollback(db)
    assert ["migratehistory"] == db.get_tables()
    assert [] == history(db)
    assert SHIPPED == migrate.apply_pending(db)
    assert TABLES | {"migratehistory"} == set(db.get_tables())


def test_rollback_to_a_named_migration_keeps_it(
    db: pw.SqliteDatabase, migrations_dir: Path
) -> None:
    """rollback(to=name) undoes only the migrations after name."""
    write_migration(
        migrations_dir,
        "002_add_color",
        "migrator.add_fields('agents', color=pw.TextField(null=True))",
        "migrator.remove_fields('agents', 'color')",
    )
    assert ["002_add_color"] == migrate.apply_pending(db, directory=migrations_dir)
    assert ["002_add_color"] == migrate.rollback(db, to=SHIPPED[-1], directory=migrations_dir)
    assert SHIPPED == history(db)
    assert "color" not in [column.name for column in db.get_columns("agents")]


def test_migration_state_names_pending_and_unknown(db: pw.SqliteDatabase) -> None:
    """migration_state: applied, shipped but missing, and recorded but not shipped."""
    assert migrate.MigrationState(SHIPPED, [], []) == migrate.migration_state(db)
    migrate.rollback(db, count=1)
    db.execute(migrate.runner.MigrationHistory.insert(name="999_future", migrated_at="t"))
    try:
        assert migrate.MigrationState(
            [*SHIPPED[:-1], "999_future"], SHIPPED[-1:], ["999_future"]
        ) == (migrate.migration_state(db))
    finally:
        db.execute(
            migrate.runner.MigrationHistory.delete().where(
                migrate.runner.MigrationHistory.name == "999_future"
            )
        )
        migrate.apply_pending(db)


def test_rollback_of_the_newest_count(db: pw.SqliteDatabase) -> None:
    """rollback(count=n) undoes the newest n migrations; 0 undoes nothing."""
    assert [] == migrate.rollback(db, count=0)
    assert SHIPPED[:0:-1] == migrate.rollback(db, count=len(SHIPPED) - 1)
    assert SHIPPED[:1] == migrate.applied_migrations(db)
    migrate.apply_pending(db)


@pytest.mark.parametrize("arguments", [{"to": "001_initial", "count": 1}, {"count": -1}])
def test_rollback_refuses_contradictory_arguments(
    db: pw.SqliteDatabase, arguments: dict[str, object]
) -> None:
    """to and count together, or a negative count: ValidationError, nothing undone."""
    with pytest.raises(dorkstore.ValidationError):
        migrate.rollback(db, **arguments)  # type: ignore[arg-type]
    assert SHIPPED == migrate.applied_migrations(db)


def test_rollback_asks_under_the_lock_and_a_refusal_changes_nothing(
    db: pw.SqliteDatabase,
) -> None:
    """confirm sees exactly what would be undone; raising from it changes nothing."""
    asked: list[list[str]] = []

    def refuse(names: list[str]) -> None:
        asked.append(names)
        raise dorkstore.RefusedError("no")

    with pytest.raises(dorkstore.RefusedError):
        migrate.rollback(db, count=1, confirm=refuse)
    assert ([SHIPPED[-1:]], SHIPPED) == (asked, migrate.applied_migrations(db))


def test_rollback_to_an_unapplied_migration_is_refused(db: pw.SqliteDatabase) -> None:
    """Naming a migration that is not applied raises MigrationError and changes nothing."""
    with pytest.raises(MigrationError, match="not applied"):
        migrate.rollback(db, to="999_nope")
    assert SHIPPED == history(db)


@pytest.mark.sqlite_only  # SQLite's table rebuilds and foreign-key pragma
def test_rebuilding_the_parent_table_keeps_every_child_row(
    db: pw.SqliteDatabase, migrations_dir: Path
) -> None:
    """A migration that changes a pulse_schedules column keeps every pulse_runs row."""
    add_schedule_with_runs(db, "S1", 25)
    add_schedule_with_runs(db, "S2", 17)
    write_migration(
        migrations_dir,
        "002_widen_cron",
        "migrator.change_fields('pulse_schedules', cron=pw.CharField(max_length=500))",
        "migrator.change_fields('pulse_schedules', cron=pw.TextField())",
    )
    assert ["002_widen_cron"] == migrate.apply_pending(db, directory=migrations_dir)
    assert 42 == count(db, "pulse_runs")
    assert 2 == count(db, "pulse_schedules")
    assert 1 == db.pragma("foreign_keys")
    (cron_type,) = [c.data_type for c in db.get_columns("pulse_schedules") if c.name == "cron"]
    assert "VARCHAR(500)" == cron_type


@pytest.mark.sqlite_only  # SQLite's table rebuilds and foreign-key pragma
def test_a_migration_that_breaks_a_foreign_key_is_undone(
    db: pw.SqliteDatabase, migrations_dir: Path
) -> None:
    """Dangling rows after migrating raise MigrationError and nothing is applied."""
    add_schedule_with_runs(db, "S1", 3)
    write_migration(
        migrations_dir,
        "002_orphan_runs",
        """
        migrator.add_fields('agents', color=pw.TextField(null=True))
        migrator.sql("DELETE FROM pulse_schedules")
        """,
    )
    with pytest.raises(MigrationError, match="foreign key"):
        migrate.apply_pending(db, directory=migrations_dir)
    assert SHIPPED == history(db)
    assert 1 == count(db, "pulse_schedules")
    assert 3 == count(db, "pulse_runs")
    assert "color" not in [column.name for column in db.get_columns("agents")]
    assert 1 == db.pragma("foreign_keys")


def test_pending_migrations_apply_all_or_nothing(
    db: pw.SqliteDatabase, migrations_dir: Path
) -> None:
    """When the second of two pending migrations fails, the first is undone too."""
    write_migration(
        migrations_dir, "002_good", "migrator.add_fields('agents', color=pw.TextField(null=True))"
    )
    write_migration(migrations_dir, "003_bad", "migrator.sql('ALTER TABLE nowhere ADD COLUMN x')")
    with pytest.raises(MigrationError, match="003_bad"):
        migrate.apply_pending(db, directory=migrations_dir)
    assert SHIPPED == history(db)
    assert "color" not in [column.name for column in db.get_columns("agents")]


def test_unknown_migration_in_history_raises_and_changes_nothing(db_path: Path) -> None:
    """A database migrated by a newer dorkstore raises SchemaVersionError; its bytes stay."""
    dorkstore.init_db(db_path)
    dorkstore.database.execute_sql(
        "INSERT INTO migratehistory (name, migrated_at) VALUES ('999_from_the_future', 't')"
    )
    dorkstore.close_db()
    before = hashlib.sha256(db_path.read_bytes()).hexdigest()
    with pytest.raises(SchemaVersionError, match="999_from_the_future"):
        dorkstore.init_db(db_path)
    assert before == hashlib.sha256(db_path.read_bytes()).hexdigest()
    assert ["dork.db", "dork.db.lock"] == sorted(p.name for p in db_path.parent.iterdir())


def test_newer_rollback_journal_database_is_not_switched_to_wal(db_path: Path) -> None:
    """The history is read before the WAL switch: a refused file keeps its journal mode."""
    dorkstore.init_db(db_path)
    dorkstore.close_db()
    stdlib_sqlite(
        db_path,
        """
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.execute("INSERT INTO migratehistory (name, migrated_at) VALUES ('999_x', 't')")
        """,
    )
    before = db_path.read_bytes()
    with pytest.raises(SchemaVersionError):
        dorkstore.init_db(db_path)
    assert before == db_path.read_bytes()
    assert not db_path.with_name("dork.db-wal").exists()


@pytest.mark.slow
def test_six_processes_migrating_one_new_file_all_succeed(db_path: Path) -> None:
    """Six spawned processes opening one new file together all succeed; each migration runs once."""
    assert ["ok"] * 6 == run_in_processes(init_db_through, [(str(db_path),)] * 6)
    rows = stdlib_sqlite(
        db_path, "result = conn.execute('SELECT name FROM migratehistory').fetchall()"
    )
    assert [[name] for name in SHIPPED] == rows


@pytest.mark.slow
def test_processes_reaching_one_file_by_different_paths_share_the_lock(tmp_path: Path) -> None:
    """One new file opened as itself, via a symlink and via '..': all succeed, each once."""
    real, home = tmp_path / "real", tmp_path / "home"
    real.mkdir()
    home.mkdir()
    (home / "dork.db").symlink_to(real / "dork.db")  # dangling until someone creates it
    spellings = [real / "dork.db", home / "dork.db", real / ".." / "real" / "dork.db"]
    outcomes = run_in_processes(init_db_through, [(str(spellings[n % 3]),) for n in range(6)])
    assert ["ok"] * 6 == outcomes
    assert (["dork.db.lock"], []) == (
        [p.name for p in real.glob("*.lock")],
        list(home.glob("*.lock")),
    )
    rows = stdlib_sqlite(
        real / "dork.db", "result = conn.execute('SELECT name FROM migratehistory').fetchall()"
    )
    assert [[name] for name in SHIPPED] == rows


def test_a_dangling_symlink_target_is_created(tmp_path: Path) -> None:
    """A symlink to a file that does not exist yet opens (and creates) its target."""
    (tmp_path / "dork.db").symlink_to(tmp_path / "elsewhere.db")
    dorkstore.init_db(tmp_path / "dork.db")
    try:
        assert str(tmp_path / "elsewhere.db") == dorkstore.database.database
        assert SHIPPED == history(dorkstore.database.obj)
    finally:
        dorkstore.close_db()


def test_a_locked_database_is_a_busy_error(
    db_path: Path, migrations_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write lock held past busy_timeout raises DatabaseBusyError, not a driver error."""
    dorkstore.init_db(db_path)
    write_migration(
        migrations_dir,
        "002_add_color",
        "migrator.add_fields('agents', color=pw.TextField(null=True))",
    )
    blocker = APSWDatabase(str(db_path), pragmas=PRAGMAS)
    blocker.connect()
    blocker.execute_sql("BEGIN IMMEDIATE")
    dorkstore.database.execute_sql("PRAGMA busy_timeout = 100")
    try:
        with pytest.raises(dorkstore.DatabaseBusyError, match="locked"):
            migrate.apply_pending(dorkstore.database.obj, directory=migrations_dir)
    finally:
        blocker.execute_sql("ROLLBACK")
        blocker.close()
    assert SHIPPED == history(dorkstore.database.obj)
    dorkstore.close_db()


def test_tables_made_by_another_program_are_refused(db_path: Path) -> None:
    """A file that already has an `agents` table but no history is not silently adopted."""
    stdlib_sqlite(db_path, "conn.execute('CREATE TABLE agents (id TEXT, manifest_json TEXT)')")
    with pytest.raises(MigrationError, match="agents"):
        dorkstore.init_db(db_path)
    tables = stdlib_sqlite(
        db_path,
        "result = [r[0] for r in conn.execute("
        "\"SELECT name FROM sqlite_master WHERE type = 'table'\")]",
    )
    assert ["agents"] == tables


def test_a_held_lock_times_out_with_a_clear_error(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If another process holds the migration lock too long, init_db raises MigrationError."""
    monkeypatch.setattr(migrate.runner, "LOCK_TIMEOUT_S", 0.2)
    with (
        filelock.FileLock(db_path.with_name("dork.db.lock")),
        pytest.raises(MigrationError, match="held"),
    ):
        dorkstore.init_db(db_path)
    dorkstore.init_db(db_path)
    dorkstore.close_db()


def test_new_database_is_not_backed_up(db: pw.SqliteDatabase, db_path: Path) -> None:
    """A database with no applied migration gets no backup."""
    assert [] == sorted(db_path.parent.glob("dork.db.bak-*"))


def test_database_with_data_is_backed_up_before_migrating(
    file_db: pw.SqliteDatabase, db_path: Path, migrations_dir: Path
) -> None:
    """The backup is named after the last applied migration and holds the data before the change."""
    add_schedule_with_runs(file_db, "S1", 2)
    write_migration(
        migrations_dir,
        "002_add_color",
        "migrator.add_fields('agents', color=pw.TextField(null=True))",
    )
    migrate.apply_pending(file_db, directory=migrations_dir)
    (backup,) = db_path.parent.glob("dork.db.bak-*")
    assert backup.name.startswith(f"dork.db.bak-{SHIPPED[-1]}-")
    stamp = backup.name.removeprefix(f"dork.db.bak-{SHIPPED[-1]}-")
    assert time.strptime(stamp, "%Y%m%dT%H%M%SZ")
    assert 0o600 == os.stat(backup).st_mode & 0o777
    copy = stdlib_sqlite(
        backup,
        """
        result = [
            conn.execute("SELECT count(*) FROM pulse_runs").fetchone()[0],
            [r[1] for r in conn.execute("PRAGMA table_info(agents)") if r[1] == "color"],
            conn.execute("PRAGMA integrity_check").fetchone()[0],
        ]
        """,
    )
    assert [2, [], "ok"] == copy


def test_pruning_never_deletes_files_it_did_not_make(
    file_db: pw.SqliteDatabase, db_path: Path, migrations_dir: Path
) -> None:
    """A user's own dork.db.bak-something survives however many migrations run."""
    mine = db_path.with_name("dork.db.bak-before-upgrade-by-hand")
    mine.write_text("my copy")
    for number in range(2, 6):
        write_migration(
            migrations_dir,
            f"00{number}_add_field_{number}",
            f"migrator.add_fields('agents', field_{number}=pw.TextField(null=True))",
        )
        migrate.apply_pending(file_db, directory=migrations_dir)
    assert "my copy" == mine.read_text()
    assert 4 == len(list(db_path.parent.glob("dork.db.bak-*")))


def test_rollback_takes_a_backup_first(file_db: pw.SqliteDatabase, db_path: Path) -> None:
    """Rolling back drops tables, so the data is copied aside first."""
    add_schedule_with_runs(file_db, "S1", 2)
    migrate.rollback(file_db)
    (backup,) = db_path.parent.glob("dork.db.bak-*")
    assert [[2]] == stdlib_sqlite(
        backup, "result = conn.execute('SELECT count(*) FROM pulse_runs').fetchall()"
    )


def test_only_the_three_newest_backups_are_kept(
    file_db: pw.SqliteDatabase, db_path: Path, migrations_dir: Path
) -> None:
    """Four migrations applied one by one leave the three newest backups."""
    for number in range(2, 6):
        write_migration(
            migrations_dir,
            f"00{number}_add_field_{number}",
            f"migrator.add_fields('agents', field_{number}=pw.TextField(null=True))",
        )
        assert [f"00{number}_add_field_{number}"] == migrate.apply_pending(
            file_db, directory=migrations_dir
        )
    kept = sorted(path.name.split("-")[1] for path in db_path.parent.glob("dork.db.bak-*"))
    assert ["002_add_field_2", "003_add_field_3", "004_add_field_4"] == kept
