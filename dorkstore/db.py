"""Opening the database: `init_db` is the one place that creates a database object."""

from __future__ import annotations

import os
from pathlib import Path

import peewee as pw

from dorkstore import validation as check
from dorkstore.backends import Backend, Target, backend_of
from dorkstore.backends.base import Durability
from dorkstore.backends.postgres import POSTGRES, is_url
from dorkstore.backends.sqlite import CACHE_MB, MEMORY, SQLITE
from dorkstore.errors import DatabaseError, ValidationError
from dorkstore.models.base import database
from dorkstore.sqlite_files import check_file_name

__all__ = [
    "DATABASE_URL_VARIABLE",
    "Target",
    "close_db",
    "database",
    "default_path",
    "init_db",
    "migrate_db",
]

#: Names a PostgreSQL database for `init_db()` without a target; wins over DORK_HOME.
DATABASE_URL_VARIABLE = "DORK_DATABASE_URL"


def default_path() -> Path:
    """Return ``$DORK_HOME/dork.db``; `DORK_HOME` defaults to ``~/.dork``.

    Raises DatabaseError when its ``~`` cannot be expanded: ``~name`` for a user
    that does not exist, or ``~`` with no HOME and no passwd entry for this uid.
    """
    home = os.environ.get("DORK_HOME") or "~/.dork"
    expanded = os.path.expanduser(home)
    if expanded.startswith("~"):
        raise DatabaseError(_unexpandable(home))
    return Path(expanded) / "dork.db"


def init_db(
    target: Target | None = None,
    *,
    migrate: bool = True,
    durability: Durability = "normal",
    cache_mb: int = CACHE_MB,
) -> pw.Database:
    """Open the database, point `dorkstore.database` at it and return it.

    `target` is a file path, ``":memory:"``, a PostgreSQL URL
    (``postgresql://user:password@host:port/dbname``, which needs
    ``pip install 'dorkstore[postgres]'``) or None: then ``$DORK_DATABASE_URL``
    when it is set, else `default_path()`. A new file gets mode 0600 and a
    created `DORK_HOME` 0700. With `migrate`, pending
    migrations are applied before this returns. An earlier database is closed
    only once the new one has opened, so a failure leaves the proxy as it was;
    connections other threads hold to it close when they call `close_db()` or
    end. ``":memory:"`` is a new, empty database shared by every thread, kept
    until `init_db` points elsewhere.

    Other threads may be inside a transaction (``database.atomic()``,
    `write_transaction`) meanwhile: each keeps the earlier database until its
    transaction ends, so its group of calls is never split between two
    databases, and commits or rolls back where it began.

    Raises DatabaseError when this thread is itself inside a transaction
    (nothing is opened or changed) or when the file cannot be used as a
    database, ValidationError for a path SQLite cannot spell (bytes that are
    not UTF-8), SchemaVersionError when it was migrated by a newer dorkstore,
    and MigrationError when a migration fails or its history is damaged.

    `durability` applies to every connection of every thread: "normal" (the
    default; on SQLite ``synchronous=NORMAL`` in WAL mode, which never
    corrupts the file but may lose the last commits to a power cut or an OS
    crash) or "full" (every commit waits until it is on disk: SQLite's
    ``synchronous=FULL``, PostgreSQL's ``synchronous_commit=on``).

    `cache_mb` is SQLite's page cache of each connection, in MiB (default 16):
    memory each thread's connection may use once it has read that much, so a
    pool of 8 threads may hold 8 times it. PostgreSQL's cache is the server's.
    """
    return _open(target, migrate=migrate, durability=durability, cache_mb=cache_mb)[0]


def migrate_db(target: Target | None = None) -> list[str]:
    """Open `target` as `init_db` does and return the names of the migrations it applied."""
    return _open(target, migrate=True)[1]


def close_db() -> None:
    """Close this thread's connections to `dorkstore.database` and to the databases it replaced.

    Connections are per thread: a thread that is done with the database calls
    this for its own. The next query in that thread reconnects. Raises
    DatabaseError inside a transaction, closing nothing.
    """
    current = _outside_transaction("close the database")
    for db in (current, *database.replaced_databases()):
        if db is not None:
            db.close()


def _outside_transaction(action: str) -> pw.Database | None:
    """Return this thread's database; raise DatabaseError if it is inside a transaction on it."""
    db: pw.Database | None = database.obj  # a replaced one while a transaction holds it
    if db is not None and db.in_transaction():
        raise DatabaseError(
            f"cannot {action} inside a transaction on {backend_of(db).location(db)}: "
            "end the transaction first"
        )
    return db


def _open(
    target: Target | None,
    *,
    migrate: bool,
    durability: Durability = "normal",
    cache_mb: int = CACHE_MB,
) -> tuple[pw.Database, list[str]]:
    # The migration machinery (peewee-migrate) is imported here, when a database
    # is opened, so that importing dorkstore and `dorkstore --help` stay fast.
    _outside_transaction("open a database")
    if durability not in ("normal", "full"):
        raise ValidationError(f"durability must be 'normal' or 'full', got {durability!r}")
    cache_mb = check.integer(cache_mb, "cache_mb", minimum=1, maximum=2**20)
    backend, resolved = _resolve(target)
    db = backend.open(resolved, durability=durability, cache_mb=cache_mb)
    try:
        from dorkstore.migrate.runner import open_database  # noqa: PLC0415

        applied = open_database(db, apply=migrate)
    except BaseException:
        db.close()
        backend.release(db)
        raise
    previous = database.obj
    close_db()
    database.initialize(db)
    if previous is not None:
        backend_of(previous).release(previous)
    return db, applied


def _resolve(target: Target | None) -> tuple[Backend, str]:
    """Return the backend and its target: a URL, ``":memory:"`` or a real path."""
    if target is None and os.environ.get(DATABASE_URL_VARIABLE):
        target = os.environ[DATABASE_URL_VARIABLE]
    if isinstance(target, str) and is_url(target):
        return POSTGRES, target
    return SQLITE, _sqlite_target(target)


def _sqlite_target(target: Target | None) -> str:
    """Return ``":memory:"`` or a real path (symlinks resolved); create DORK_HOME if needed."""
    if target is None:
        path = default_path()
        check_file_name(path)  # before DORK_HOME is created
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise DatabaseError(f"cannot create DORK_HOME {path.parent}: {exc.strerror}") from exc
        return str(path)
    try:
        spelled = os.fspath(target)
    except TypeError as exc:
        raise ValidationError(
            f"database target must be a path, got {type(target).__name__}"
        ) from exc
    if not isinstance(spelled, str):
        raise ValidationError(f"database target must be a str path, got {type(spelled).__name__}")
    if spelled == MEMORY:
        return MEMORY
    # One file, one lock file, whatever symlinks or ".." lead to it.
    resolved = os.path.realpath(spelled)
    check_file_name(resolved)
    return resolved


def _unexpandable(home: str) -> str:
    """Say why `os.path.expanduser` left the ``~`` of DORK_HOME `home` as it was."""
    where = f"DORK_HOME={home}" if os.environ.get("DORK_HOME") else f"the default DORK_HOME {home}"
    user = home[1:].split("/", 1)[0]
    if user:
        return f"cannot expand {where}: there is no user {user!r}"
    return (
        f"cannot expand {where}: HOME is not set and uid {os.getuid()} has no passwd entry; "
        "set HOME or DORK_HOME"
    )
