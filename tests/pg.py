"""New PostgreSQL databases for tests that need one of their own (the command line, copy).

The `db` fixture shares one migrated database per session; these tests need a
database that is new (nothing migrated), or two at once. They skip without
``DORKSTORE_TEST_PG`` (conftest makes that an error where it is required).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import pytest

PG_URL = os.environ.get("DORKSTORE_TEST_PG")
#: A password to put in URLs that have none: the test cluster trusts 127.0.0.1,
#: so it is accepted and ignored, and output can be checked for it.
PASSWORD = "s3cret-Pa55"  # noqa: S105  # a test value the server ignores

needs_pg = pytest.mark.skipif(PG_URL is None, reason="DORKSTORE_TEST_PG is not set")


def with_password(url: str) -> str:
    """Return `url` with a password: its own, or `PASSWORD` when it has none."""
    parts = urlsplit(url)
    if parts.password is not None or parts.username is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace("@", f":{PASSWORD}@", 1)))


def password_of(url: str) -> str:
    """Return the password in `url` (tests check that no output shows it)."""
    password = urlsplit(url).password
    assert password, url
    return password


@contextmanager
def new_database() -> Iterator[str]:
    """Create an empty database on the test server; yield its URL (with a password); drop it."""
    assert PG_URL is not None
    import psycopg

    name = f"dorkstore_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield with_password(PG_URL.rsplit("/", 1)[0] + "/" + name)
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run_sql(url: str, sql: str) -> list[tuple[object, ...]]:
    """Run `sql` on `url` in its own connection (autocommit); return the rows, if any."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        cursor = connection.execute(sql)
        return cursor.fetchall() if cursor.description else []
