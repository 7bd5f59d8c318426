"""init_db and close_db: targets, file modes, pragmas and refusals (SPEC section 2)."""

from __future__ import annotations

import hashlib
import stat
import sys
from pathlib import Path
from typing import Literal

import apsw
import peewee as pw
import pytest

import dorkstore
from dorkstore import db as dbmodule
from dorkstore.backends.sqlite import check_sqlite_version
from dorkstore.errors import DatabaseError, ValidationError
from tests.helpers import run_in_threads, stdlib_sqlite

EXPECTED_PRAGMAS = {
    "journal_mode": "wal",
    "synchronous": 1,
    "busy_timeout": 5000,
    "foreign_keys": 1,
    "cache_size": -16 * 1024,  # 16 MiB
    "wal_autocheckpoint": 10_000,
}


def read_pragmas(database: pw.SqliteDatabase) -> dict[str, object]:
    return {name: database.pragma(name) for name in EXPECTED_PRAGMAS}


def pragma_in_every_thread(name: str) -> list[object]:
    """Return what `name` is on the connections of three new threads, then of this one."""
    seen: list[object] = []

    def read() -> None:
        seen.append(dorkstore.database.execute_sql(f"PRAGMA {name}").fetchone()[0])
        dorkstore.close_db()

    run_in_threads(read, 3)
    read()
    return seen


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_pragmas_hold_on_the_opening_connection(file_db: pw.SqliteDatabase) -> None:
    """The connection init_db opens runs with the pragmas dorkstore sets."""
    assert EXPECTED_PRAGMAS == read_pragmas(file_db)


def test_pragmas_hold_on_connections_of_other_threads(file_db: pw.SqliteDatabase) -> None:
    """Each thread gets its own connection, configured the same way."""
    seen: list[dict[str, object]] = []
    connections: list[object] = []

    def probe() -> None:
        seen.append(read_pragmas(dorkstore.database))
        connections.append(dorkstore.database.connection())
        dorkstore.close_db()

    run_in_threads(probe, 3)
    assert [EXPECTED_PRAGMAS] * 3 == seen
    assert 3 == len({id(connection) for connection in connections} - {id(file_db.connection())})


def test_sqlite_library_is_new_enough() -> None:
    """The SQLite dorkstore runs on is free of the WAL-reset bug."""
    version = tuple(int(part) for part in apsw.sqlitelibversion().split("."))
    assert version >= (3, 51, 3)


@pytest.mark.parametrize("version", ["3.7.0", "3.40.1", "3.51.1", "3.51.2"])
def test_libraries_with_the_wal_reset_bug_are_refused(version: str) -> None:
    """A SQLite between 3.7.0 and 3.51.2 raises DatabaseError naming the bug."""
    with pytest.raises(DatabaseError, match="WAL-reset bug"):
        check_sqlite_version(version)


def test_init_db_refuses_an_affected_library(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """init_db itself checks the library it runs on, before touching the file."""
    monkeypatch.setattr(apsw, "sqlitelibversion", lambda: "3.51.2")
    with pytest.raises(DatabaseError, match=r"3\.51\.2"):
        dorkstore.init_db(db_path)
    assert not db_path.exists()


@pytest.mark.parametrize("version", ["3.51.3", "3.52.0", "3.54.1", "4.0.0"])
def test_fixed_libraries_are_accepted(version: str) -> None:
    """3.51.3 and later pass the check."""
    check_sqlite_version(version)


def test_default_target_is_dork_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With no target, the database is $DORK_HOME/dork.db; DORK_HOME is created 0700."""
    home = tmp_path / "home" / ".dork"
    monkeypatch.setenv("DORK_HOME", str(home))
    database = dorkstore.init_db()
    try:
        assert str(home / "dork.db") == database.database
        assert 0o700 == mode(home)
        assert 0o600 == mode(home / "dork.db")
    finally:
        dorkstore.close_db()


def test_dork_home_defaults_to_dot_dork(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without DORK_HOME the default path is ~/.dork/dork.db."""
    monkeypatch.delenv("DORK_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert tmp_path / ".dork" / "dork.db" == dbmodule.default_path()


def test_new_file_and_its_wal_are_private(file_db: pw.SqliteDatabase, db_path: Path) -> None:
    """A new database file gets 0600, and its -wal and -shm follow it."""
    file_db.execute_sql("INSERT INTO agent_denials (id, path, created_at) VALUES ('D', '/d', 't')")
    assert 0o600 == mode(db_path)
    assert 0o600 == mode(db_path.with_name("dork.db-wal"))
    assert 0o600 == mode(db_path.with_name("dork.db-shm"))


def test_existing_file_keeps_its_mode(db_path: Path) -> None:
    """init_db does not change the mode of a file that already exists."""
    db_path.touch(mode=0o640)
    db_path.chmod(0o640)
    dorkstore.init_db(db_path)
    dorkstore.close_db()
    assert 0o640 == mode(db_path)


def test_path_like_and_str_targets_open_the_same_file(db_path: Path) -> None:
    """A str and an os.PathLike name the same database."""
    dorkstore.init_db(db_path)
    dorkstore.database.execute_sql(
        "INSERT INTO agent_denials (id, path, created_at) VALUES ('D', '/d', 't')"
    )
    dorkstore.init_db(str(db_path))
    try:
        (count,) = dorkstore.database.execute_sql("SELECT count(*) FROM agent_denials").fetchone()
        assert 1 == count
    finally:
        dorkstore.close_db()


def test_memory_database_is_migrated_and_shared_by_threads() -> None:
    """The ":memory:" target gives one migrated database that every thread sees."""
    database = dorkstore.init_db(":memory:")
    try:
        database.execute_sql(
            "INSERT INTO agent_denials (id, path, created_at) VALUES ('D', '/d', 't')"
        )
        counts: list[int] = []
        run_in_threads(
            lambda: counts.append(
                dorkstore.database.execute_sql("SELECT count(*) FROM agent_denials").fetchone()[0]
            ),
            1,
        )
        assert [1] == counts
        assert "pulse_runs" in database.get_tables()
    finally:
        dorkstore.close_db()


def test_memory_database_survives_threads_closing_their_connections() -> None:
    """A worker thread's close_db closes its own connection, not the in-memory database."""
    dorkstore.init_db(":memory:")
    try:
        run_in_threads(dorkstore.close_db, 3)
        dorkstore.close_db()
        assert "pulse_runs" in dorkstore.database.get_tables()
    finally:
        dorkstore.close_db()


def test_memory_databases_are_separate() -> None:
    """Each init_db(":memory:") starts from a new, empty, migrated database."""
    dorkstore.init_db(":memory:")
    dorkstore.DenialList().deny("/first")
    dorkstore.init_db(":memory:")
    try:
        assert [] == dorkstore.DenialList().list()
    finally:
        dorkstore.close_db()


def test_migrate_false_creates_no_tables(db_path: Path) -> None:
    """With migrate=False the file is opened and nothing is created in it."""
    database = dorkstore.init_db(db_path, migrate=False)
    try:
        assert [] == database.get_tables()
    finally:
        dorkstore.close_db()


def test_init_db_again_repoints_the_proxy_and_closes_the_old(tmp_path: Path) -> None:
    """A second init_db points dorkstore.database at the new database and closes the first."""
    first = dorkstore.init_db(tmp_path / "one.db")
    second = dorkstore.init_db(tmp_path / "two.db")
    try:
        assert first.is_closed()
        assert second is dorkstore.database.obj
        assert str(tmp_path / "two.db") == dorkstore.database.database
    finally:
        dorkstore.close_db()


def test_failed_init_db_leaves_the_proxy_as_it_was(db: pw.SqliteDatabase, tmp_path: Path) -> None:
    """When the new target cannot be opened, the previous database stays in use."""
    with pytest.raises(DatabaseError):
        dorkstore.init_db(tmp_path)
    assert db is dorkstore.database.obj
    assert not db.is_closed()


def test_close_db_closes_the_connection(db: pw.SqliteDatabase) -> None:
    """close_db closes this thread's connection."""
    dorkstore.close_db()
    assert db.is_closed()


def test_directory_target_is_refused(tmp_path: Path) -> None:
    """A directory is not a database file."""
    with pytest.raises(DatabaseError, match="is a directory"):
        dorkstore.init_db(tmp_path)


def test_missing_parent_directory_is_refused(tmp_path: Path) -> None:
    """init_db creates DORK_HOME, but not the parents of an explicit path."""
    target = tmp_path / "missing" / "dork.db"
    with pytest.raises(DatabaseError, match="does not exist"):
        dorkstore.init_db(target)
    assert not target.parent.exists()


def test_text_file_is_refused_and_left_unchanged(tmp_path: Path) -> None:
    """A file that is not SQLite raises DatabaseError and keeps its bytes."""
    target = tmp_path / "notes.db"
    target.write_text("these are my notes, not a database\n" * 200)
    before = digest(target)
    with pytest.raises(DatabaseError, match="not a SQLite database"):
        dorkstore.init_db(target)
    assert before == digest(target)
    assert not target.with_name("notes.db-wal").exists()


def test_a_path_the_system_refuses_is_a_database_error(tmp_path: Path) -> None:
    """A file name too long for the filesystem is a DatabaseError, not an OSError."""
    with pytest.raises(DatabaseError):
        dorkstore.init_db(tmp_path / ("a" * 300))


def test_a_hot_journal_is_not_mistaken_for_truncation(tmp_path: Path) -> None:
    """A rollback-journal file shorter than its header, beside a -journal, is left to SQLite."""
    path = tmp_path / "dork.db"
    stdlib_sqlite(
        path,
        "conn.execute('CREATE TABLE t (x)')\n"
        "conn.executemany('INSERT INTO t VALUES (?)', [('x' * 500,)] * 2000)",
    )
    header_says = path.stat().st_size
    with path.open("r+b") as file:
        file.truncate(header_says // 2)
    path.with_name("dork.db-journal").write_bytes(b"")
    with pytest.raises(DatabaseError) as caught:
        dorkstore.init_db(path)
    assert "truncated" not in str(caught.value).replace(str(tmp_path), "")


def test_zero_byte_file_is_migrated(db_path: Path) -> None:
    """An empty file is a valid empty database and gets the schema."""
    db_path.touch()
    database = dorkstore.init_db(db_path)
    try:
        assert "pulse_schedules" in database.get_tables()
    finally:
        dorkstore.close_db()


class BadPath:
    """An os.PathLike whose __fspath__ returns something that is not a path."""

    def __fspath__(self) -> object:
        return 42


@pytest.mark.parametrize("target", [42, b"/tmp/dork.db", 3.5, BadPath()])
def test_target_of_the_wrong_type_is_a_validation_error(target: object) -> None:
    """Only str and os.PathLike[str] name a database."""
    with pytest.raises(ValidationError):
        dorkstore.init_db(target)  # type: ignore[arg-type]


@pytest.mark.parametrize(("durability", "level"), [("normal", 1), ("full", 2)])
def test_durability_applies_to_every_thread(
    db_path: Path, durability: Literal["normal", "full"], level: int
) -> None:
    """init_db(durability=...) sets synchronous on every connection of every thread."""
    dorkstore.init_db(db_path, durability=durability)
    assert [level] * 4 == pragma_in_every_thread("synchronous")


def test_cache_size_applies_to_every_thread(db_path: Path) -> None:
    """init_db(cache_mb=...) sets each connection's page cache, in every thread."""
    dorkstore.init_db(db_path, cache_mb=64)
    assert [-64 * 1024] * 4 == pragma_in_every_thread("cache_size")


@pytest.mark.parametrize("cache_mb", [0, -1, True, 1.5, "16", 2**20 + 1])
def test_a_bad_cache_size_is_refused(db_path: Path, cache_mb: object) -> None:
    """cache_mb is a whole number of MiB from 1 to 2**20; nothing is created otherwise."""
    with pytest.raises(ValidationError, match="cache_mb"):
        dorkstore.init_db(db_path, cache_mb=cache_mb)  # type: ignore[arg-type]
    assert not db_path.exists()


def test_an_unknown_durability_is_refused(db_path: Path) -> None:
    """Only 'normal' and 'full' are durabilities; nothing is created for another."""
    with pytest.raises(ValidationError, match="durability"):
        dorkstore.init_db(db_path, durability="paranoid")  # type: ignore[arg-type]
    assert not db_path.exists()


def test_a_url_without_the_postgres_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without psycopg installed, a PostgreSQL URL is one DatabaseError naming the extra."""
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg now fails
    with pytest.raises(DatabaseError, match=r"pip install 'dorkstore\[postgres\]'"):
        dorkstore.init_db("postgresql://user:secret@127.0.0.1:1/dork")
