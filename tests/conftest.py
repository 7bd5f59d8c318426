"""Fixtures: every test gets its own freshly migrated database file."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import peewee as pw
import pytest

import dorkstore
from dorkstore import migrate


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Path of a database file that does not exist yet."""
    return tmp_path / "dork.db"


@pytest.fixture
def db(db_path: Path) -> Iterator[pw.SqliteDatabase]:
    """A freshly migrated database file, closed after the test."""
    database = dorkstore.init_db(db_path)
    yield database
    dorkstore.close_db()


@pytest.fixture
def migrations_dir(tmp_path: Path) -> Path:
    """A writable copy of the shipped migrations, for throwaway migrations."""
    target = tmp_path / "migrations"
    shutil.copytree(
        migrate.default_directory(), target, ignore=shutil.ignore_patterns("__pycache__")
    )
    return target
