"""The database proxy every model is bound to, and the one place that opens it."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import apsw
import peewee as pw
from playhouse.apsw_ext import APSWDatabase

from dorkstore.errors import DatabaseError, ValidationError

__all__ = [
    "BUSY_TIMEOUT_MS",
    "MIN_SQLITE_VERSION",
    "PRAGMAS",
    "Target",
    "check_sqlite_version",
    "close_db",
    "database",
    "default_path",
    "init_db",
    "is_memory",
    "migrate_db",
    "open_read_only",
]

#: An `init_db` target: a path, or ``":memory:"``.
Target = str | os.PathLike[str]

#: Versions 3.7.0 to 3.51.2 carry the WAL-reset bug: two connections writing or
#: checkpointing one WAL database at the same moment can corrupt it.
MIN_SQLITE_VERSION = (3, 51, 3)

BUSY_TIMEOUT_MS = 5000
TIMEOUT_S = BUSY_TIMEOUT_MS / 1000

#: Applied in this order on every new connection, in every thread. busy_timeout
#: comes first so that the journal_mode switch waits for other connections.
PRAGMAS = (
    ("busy_timeout", BUSY_TIMEOUT_MS),
    ("journal_mode", "wal"),
    ("synchronous", "normal"),
    ("foreign_keys", 1),
)

MEMORY = ":memory:"

database = pw.DatabaseProxy()


def check_sqlite_version(version: str) -> None:
    """Refuse a SQLite library that carries the WAL-reset bug.

    Raises DatabaseError when `version` (``"3.51.2"``) is older than 3.51.3.
    """
    parts = tuple(int(part) for part in version.split(".")[:3])
    if parts < MIN_SQLITE_VERSION:
        wanted = ".".join(map(str, MIN_SQLITE_VERSION))
        raise DatabaseError(
            f"SQLite {version} can corrupt a WAL database written by several connections "
            f"(the WAL-reset bug); dorkstore needs SQLite {wanted} or newer: upgrade apsw"
        )


def default_path() -> Path:
    """Return ``$DORK_HOME/dork.db``; `DORK_HOME` defaults to ``~/.dork``."""
    home = os.environ.get("DORK_HOME") or "~/.dork"
    return Path(home).expanduser() / "dork.db"


def init_db(target: Target | None = None, *, migrate: bool = True) -> pw.SqliteDatabase:
    """Open the database, point `dorkstore.database` at it and return it.

    `target` is a file path, ``":memory:"`` or None for `default_path()`. A new
    file gets mode 0600 and a created `DORK_HOME` 0700. With `migrate`, pending
    migrations are applied before this returns. An earlier database is closed
    only once the new one has opened, so a failure leaves the proxy as it was;
    connections other threads hold to it close when they call `close_db()` or
    end. ``":memory:"`` is a new, empty database shared by every thread, kept
    until `init_db` points elsewhere.

    Raises DatabaseError when the file cannot be used as a database,
    SchemaVersionError when it was migrated by a newer dorkstore, and
    MigrationError when a migration fails.
    """
    return _open(target, migrate=migrate)[0]


def migrate_db(target: Target | None = None) -> list[str]:
    """Open `target` as `init_db` does and return the names of the migrations it applied."""
    return _open(target, migrate=True)[1]


def close_db() -> None:
    """Close this thread's connection to `dorkstore.database`, if it has one.

    Connections are per thread: a thread that is done with the database calls
    this for its own. The next query in that thread reconnects.
    """
    if database.obj is not None:
        database.obj.close()


def _open(target: Target | None, *, migrate: bool) -> tuple[pw.SqliteDatabase, list[str]]:
    # Imported here: migrate imports the models, and the models import this module.
    from dorkstore import migrate as migrations  # noqa: PLC0415

    check_sqlite_version(apsw.sqlitelibversion())
    if target is None:
        path = default_path()
        _create_home(path.parent)
    elif _fspath(target) == MEMORY:
        db, keeper = _memory_database()
        try:
            applied = migrations.apply_pending(db) if migrate else []
        except BaseException:
            db.close()
            keeper.close()
            raise
        return _activate(db, keeper), applied
    else:
        # One file, one lock file, whatever symlinks or ".." lead to it.
        path = Path(os.path.realpath(_fspath(target)))

    _create_file(path)
    db = APSWDatabase(str(path), pragmas=PRAGMAS, timeout=TIMEOUT_S)
    try:
        applied = migrations.open_database(db, apply=migrate)
    except BaseException:
        db.close()
        raise
    return _activate(db), applied


def is_memory(db: pw.Database) -> bool:
    """Return True for an in-memory database (`init_db(":memory:")` makes one)."""
    name = str(db.database)
    return name in ("", MEMORY) or name.startswith(_MEMORY_URI) or "mode=memory" in name


def open_read_only(path: Path) -> apsw.Connection:
    """Open a SQLite file read-only, creating no file beside it where SQLite allows.

    A read-only connection to a WAL-mode file still creates ``-wal`` and ``-shm``
    files and leaves them behind. When there is no ``-wal`` file, nobody has the
    database open and no log waits to be read, so ``immutable=1`` reads the main
    file alone. When there is one, it holds committed transactions that must be
    read, so SQLite gets its ``-shm`` as usual. Raises apsw.Error.
    """
    with path.open("rb") as file:
        header = file.read(20)
    # Bytes 18 and 19 of the header are 2 in WAL mode (https://sqlite.org/fileformat.html).
    in_wal_mode = len(header) == 20 and header[18] == 2
    no_log = not path.with_name(path.name + "-wal").exists()
    query = "?mode=ro&immutable=1" if in_wal_mode and no_log else "?mode=ro"
    connection = apsw.Connection(
        path.absolute().as_uri() + query, flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI
    )
    connection.setbusytimeout(BUSY_TIMEOUT_MS)
    return connection


_MEMORY_URI = "file:/dorkstore-memory-"
#: Keeps the current in-memory database alive while its threads' connections come and go.
_memory_keeper: apsw.Connection | None = None


def _memory_database() -> tuple[pw.SqliteDatabase, apsw.Connection]:
    """Make a new in-memory database that every thread's connection shares.

    Plain ":memory:" gives each connection its own empty database, and one
    connection shared by all threads mixes their transactions. SQLite's memdb
    VFS gives one database per name, with real locking between connections.
    """
    uri = f"{_MEMORY_URI}{uuid.uuid4().hex}?vfs=memdb"
    flags = apsw.SQLITE_OPEN_URI | apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE
    keeper = apsw.Connection(uri, flags=flags)
    return APSWDatabase(uri, pragmas=PRAGMAS, timeout=TIMEOUT_S, flags=flags), keeper


def _activate(db: pw.SqliteDatabase, keeper: apsw.Connection | None = None) -> pw.SqliteDatabase:
    global _memory_keeper  # noqa: PLW0603 - one proxy, so one kept in-memory database
    close_db()
    database.initialize(db)
    if _memory_keeper is not None:
        _memory_keeper.close()
    _memory_keeper = keeper
    return db


def _fspath(target: object) -> str:
    try:
        path = os.fspath(target)  # type: ignore[call-overload]
    except TypeError as exc:
        raise ValidationError(
            f"database target must be a path, got {type(target).__name__}"
        ) from exc
    if not isinstance(path, str):
        raise ValidationError(f"database target must be a str path, got {type(path).__name__}")
    return path


def _create_home(home: Path) -> None:
    try:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise DatabaseError(f"cannot create DORK_HOME {home}: {exc.strerror}") from exc


def _create_file(path: Path) -> None:
    """Create `path` empty with mode 0600 unless it exists (0 bytes is a valid database)."""
    try:
        is_directory, parent_exists = path.is_dir(), path.parent.is_dir()
    except OSError as exc:  # a name too long, say
        raise DatabaseError(f"cannot use {path}: {exc.strerror}") from exc
    if is_directory:
        raise DatabaseError(f"{path} is a directory, not a database file")
    if not parent_exists:
        raise DatabaseError(f"cannot create {path}: directory {path.parent} does not exist")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    except OSError as exc:
        raise DatabaseError(f"cannot create {path}: {exc.strerror}") from exc
    os.close(fd)


#: Connections a forked child inherited, set aside so that the child never uses
#: them and does not close them itself. (CPython may still close them as the
#: child exits, or clear another thread's; SQLite then sees the parent's locks
#: and leaves its -wal alone.)
_inherited: list[object] = []


def _forget_connections_in_child() -> None:
    """After fork, make the child open its own connection instead of sharing the parent's."""
    db = database.obj
    if db is None:
        return
    state = db._state  # Peewee keeps the per-thread connection here
    if state.conn is not None:
        _inherited.append(state.conn)
        state.reset()
    if _memory_keeper is not None:
        _inherited.append(_memory_keeper)


os.register_at_fork(after_in_child=_forget_connections_in_child)
