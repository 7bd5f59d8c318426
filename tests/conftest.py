"""Fixtures: every test gets its own freshly migrated database, on every backend.

The `db` fixture runs each test on a SQLite file, on SQLite in memory and, when
``DORKSTORE_TEST_PG`` holds a PostgreSQL URL (``tools/pg_cluster.py run`` sets
it), on PostgreSQL: one database migrated once per session, its tables emptied
before each test. Tests of SQLite mechanics are marked ``sqlite_only``.
``DORKSTORE_REQUIRE_PG=1`` (the postgres tox env, so CI) makes a missing server
an error instead of fewer tests.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import peewee as pw
import pytest

import dorkstore
from dorkstore import migrate
from tests.helpers import TABLES, FakeClock


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Path of a database file that does not exist yet."""
    return tmp_path / "dork.db"


@pytest.fixture
def existing(db_path: Path) -> Path:
    """A migrated database file holding one denial, closed."""
    dorkstore.init_db(db_path)
    dorkstore.DenialList().deny("/secret")
    dorkstore.close_db()
    return db_path


PG_URL = os.environ.get("DORKSTORE_TEST_PG")
BACKENDS = ["file", "memory", *(["postgres"] if PG_URL else [])]


def pytest_configure(config: pytest.Config) -> None:
    """Refuse to run without PostgreSQL where it is required (CI's postgres env)."""
    if os.environ.get("DORKSTORE_REQUIRE_PG") and not PG_URL:
        raise pytest.UsageError(
            "DORKSTORE_REQUIRE_PG is set but DORKSTORE_TEST_PG is not: start a server with "
            "python tools/pg_cluster.py run -- ..."
        )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Drop the PostgreSQL variant of tests marked sqlite_only."""
    dropped = [
        item
        for item in items
        if item.get_closest_marker("sqlite_only")
        and getattr(item, "callspec", None) is not None
        and item.callspec.params.get("db") == "postgres"  # type: ignore[attr-defined]
    ]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if item not in dropped]


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """The URL of a PostgreSQL database for this session, migrated once."""
    assert PG_URL is not None
    import psycopg

    name = f"dorkstore_test_{os.getpid()}"
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    url = PG_URL.rsplit("/", 1)[0] + "/" + name
    dorkstore.init_db(url)
    dorkstore.close_db()
    yield url
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """The session's migrated PostgreSQL database, emptied and opened; skipped without a server."""
    if PG_URL is None:
        pytest.skip("DORKSTORE_TEST_PG is not set: no PostgreSQL server to test against")
    url: str = request.getfixturevalue("pg_database")
    dorkstore.init_db(url).execute_sql(f"TRUNCATE {', '.join(sorted(TABLES))} CASCADE")
    yield url
    dorkstore.close_db()


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, db_path: Path) -> Iterator[pw.Database]:
    """A freshly migrated, empty database (SQLite file, SQLite in memory, PostgreSQL)."""
    if request.param == "postgres":
        database = dorkstore.init_db(request.getfixturevalue("pg_database"))
        database.execute_sql(f"TRUNCATE {', '.join(sorted(TABLES))} CASCADE")
    else:
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
