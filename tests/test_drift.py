"""The drift check: models and migrations must agree (SPEC section 3)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import peewee as pw
import pytest

from dorkstore import migrate
from dorkstore.errors import MigrationError
from dorkstore.models import PulseSchedule


@pytest.fixture
def schedule_with_color() -> Iterator[None]:
    """PulseSchedule gains a `color` field for the test, with no migration."""
    PulseSchedule._meta.add_field("color", pw.TextField(null=True))
    try:
        yield
    finally:
        PulseSchedule._meta.remove_field("color")
        del PulseSchedule.color


def test_committed_tree_has_no_drift() -> None:
    """The shipped migrations produce exactly the schema the models describe."""
    assert migrate.check_migrations() is None


def test_a_new_field_without_a_migration_is_reported(schedule_with_color: None) -> None:
    """A model that gains a field makes the check return the migration that adds it."""
    missing = migrate.check_migrations()
    assert missing is not None
    assert "migrator.add_fields(" in missing
    assert "'pulse_schedules'" in missing
    assert "color=pw.TextField(null=True)" in missing


def test_a_dropped_check_constraint_is_reported(migrations_dir: Path) -> None:
    """A CHECK, which autogeneration cannot express, is listed for a hand-written migration."""
    initial = migrations_dir / "001_initial.py"
    check = """pw.Check(\"\"\""trigger" IN ('scheduled', 'manual', 'agent')\"\"\"),"""
    source = initial.read_text()
    assert 1 == source.count(check)
    initial.write_text(source.replace(check, ""))
    missing = migrate.check_migrations(migrations_dir)
    assert missing is not None
    assert """pulse_runs: + check "trigger" IN ('scheduled', 'manual', 'agent')""" in missing


def test_a_missing_without_rowid_is_reported(migrations_dir: Path) -> None:
    """relay_index built as a rowid table is drift."""
    initial = migrations_dir / "001_initial.py"
    initial.write_text(
        initial.read_text().replace("            without_rowid = not postgres\n", "")
    )
    missing = migrate.check_migrations(migrations_dir)
    assert missing is not None
    assert "relay_index: + WITHOUT ROWID" in missing


def test_a_missing_directory_is_an_error(tmp_path: Path) -> None:
    """Checking a directory that does not exist raises MigrationError and creates nothing."""
    with pytest.raises(MigrationError, match="does not exist"):
        migrate.check_migrations(tmp_path / "nowhere")
    assert not (tmp_path / "nowhere").exists()


def test_pw_migrate_finds_nothing_to_generate(migrations_dir: Path, tmp_path: Path) -> None:
    """The README's `pw_migrate create --auto` on the shipped tree writes no migration.

    In particular it generates no table for the abstract BaseModel, which
    migrations/conf.py ignores.
    """
    before = sorted(path.name for path in migrations_dir.iterdir())
    command = Path(sys.executable).with_name("pw_migrate")
    done = subprocess.run(
        [
            str(command),
            "create",
            "--auto",
            "--auto-source",
            "dorkstore.models",
            "--directory",
            str(migrations_dir),
            "--database",
            f"sqlite:///{tmp_path / 'scratch.db'}",
            "probe",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert 0 == done.returncode, done.stderr
    assert "No changes found" in done.stdout + done.stderr
    assert before == sorted(path.name for path in migrations_dir.iterdir())
