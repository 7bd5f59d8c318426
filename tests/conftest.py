"""Fixtures: every test gets its own freshly migrated database file."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import peewee as pw
import pytest

import dorkstore
from dorkstore import migrate
from tests.helpers import FakeClock


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Path of a database file that does not exist yet."""
    return tmp_path / "dork.db"


@pytest.fixture(params=["file", "memory"])
def db(request: pytest.FixtureRequest, db_path: Path) -> Iterator[pw.Database]:
    """A freshly migrated database, a file and then in memory, closed after the test."""
    database = dorkstore.init_db(db_path if request.param == "file" else ":memory:")
    yield database
    dorkstore.close_db()


@pytest.fixture
def file_db(db_path: Path) -> Iterator[pw.Database]:
    """A freshly migrated database file at `db_path`, for tests of the file itself."""
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


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock at 2026-02-25T14:03:07.123Z, for repositories' `clock=`."""
    return FakeClock(datetime(2026, 2, 25, 14, 3, 7, 123000, tzinfo=UTC))
