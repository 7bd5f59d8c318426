"""SQLite files as files: creating them private, checking headers, reading them read-only.

Everything here works on a path, before or beside the database connection that
`init_db` opens: the migration runner reads the history of a file it has not
connected yet, and the legacy import reads the old databases it must never
change.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import apsw

from dorkstore.errors import DatabaseError, ValidationError

__all__ = [
    "BACKUP_STAMP",
    "BUSY_TIMEOUT_MS",
    "ReadOnlyConnection",
    "check_file_name",
    "count_rows",
    "create_private_file",
    "new_backup_path",
    "open_read_only",
    "partial_path",
    "read_only",
    "read_table",
    "read_table_names",
    "refuse_truncated",
    "remove_stale_partials",
    "unused_path",
]

#: How long a connection waits for another's lock before giving up.
BUSY_TIMEOUT_MS = 5000
#: The UTC time in every backup's name: ``20260225T140307Z``.
BACKUP_STAMP = "%Y%m%dT%H%M%SZ"
_HEADER = b"SQLite format 3\x00"
#: What `read_only` yields: a connection that `read_table` reads.
ReadOnlyConnection = apsw.Connection
#: A `partial_path`, or a journal beside one: ``.<name>.partial-<pid>[-journal]``.
_PARTIAL = re.compile(r"\.(?P<name>.+)\.partial-(?P<pid>[0-9]+)(?:-journal|-wal|-shm)?")
_logger = logging.getLogger("dorkstore")


def check_file_name(path: str | os.PathLike[str]) -> None:
    r"""Refuse a path SQLite cannot open, before any file is made for it.

    SQLite takes file names as UTF-8; a name holding bytes that are not UTF-8
    reaches Python as lone surrogates (``os.fsdecode(b"x\xff")``), which
    cannot be encoded. Raises ValidationError naming the path.
    """
    name = os.fspath(path)
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        try:
            shown = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        except UnicodeEncodeError:
            shown = name.encode("utf-8", "backslashreplace").decode("utf-8")
        raise ValidationError(
            f"cannot use {shown}: SQLite needs file names in UTF-8, and this path "
            "holds bytes that are not"
        ) from None


def create_private_file(path: Path) -> None:
    """Create `path` empty with mode 0600 unless it exists (0 bytes is a valid database).

    Raises DatabaseError when `path` is a directory, its directory is missing,
    or the file cannot be created.
    """
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


def refuse_truncated(path: Path) -> None:
    """Refuse a file shorter than its header says (cut short by a copy or a full disk).

    Only without a -wal or hot -journal file: with one, the missing pages may be
    in the log, or the journal rolls the file back to its full length.
    """
    if any(path.with_name(path.name + suffix).exists() for suffix in ("-wal", "-journal")):
        return
    try:
        with path.open("rb") as file:
            header = file.read(100)
    except OSError as exc:
        raise DatabaseError(f"cannot read {path}: {exc.strerror}") from exc
    if len(header) < 100 or not header.startswith(_HEADER):
        return  # not SQLite at all: opening it says so
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    # The page count is valid when the version-valid-for number matches the change counter.
    valid = header[92:96] == header[24:28] and pages > 0
    size = path.stat().st_size
    if valid and size < pages * page_size:
        raise DatabaseError(
            f"{path} is truncated: {size} bytes, but its header says {pages} pages of "
            f"{page_size} bytes; restore it from a backup"
        )


def open_read_only(path: Path) -> apsw.Connection:
    """Open a SQLite file read-only, creating no file beside it where SQLite allows.

    A read-only connection to a WAL-mode file still creates ``-wal`` and ``-shm``
    files and leaves them behind. When there is no ``-wal`` file, nobody has the
    database open and no log waits to be read, so ``immutable=1`` reads the main
    file alone. When there is one, it holds committed transactions that must be
    read, so SQLite gets its ``-shm`` as usual. Raises OSError or apsw.Error.
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


@contextmanager
def read_only(path: Path) -> Iterator[apsw.Connection]:
    """Yield a read-only connection to the SQLite file `path`, closed afterwards.

    Raises DatabaseError when it is not a readable SQLite database.
    """
    try:
        connection = open_read_only(path)
    except (OSError, apsw.Error) as exc:
        raise DatabaseError(f"cannot read {path}: {exc}") from exc
    try:
        try:
            connection.execute("SELECT count(*) FROM sqlite_master").fetchall()
        except apsw.Error as exc:
            raise DatabaseError(f"cannot read {path}: {exc}") from exc
        yield connection
    finally:
        connection.close()


def read_table_names(connection: apsw.Connection) -> set[str]:
    """Return the names of the tables in a connection's main database."""
    rows = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    return {str(name) for (name,) in rows}


def read_table(
    connection: apsw.Connection, table: str, columns: list[str]
) -> Iterator[dict[str, Any]]:
    """Yield `table`'s rows as dicts of `columns`; a column the table lacks is None.

    Yields nothing when the table does not exist. Raises DatabaseError when it
    cannot be read.
    """
    try:
        present = {row[1] for row in connection.execute(f'PRAGMA table_info("{table}")')}
        if not present:
            return
        select = ", ".join(f'"{c}"' if c in present else f'NULL AS "{c}"' for c in columns)
        for values in connection.execute(f'SELECT {select} FROM "{table}"'):
            yield dict(zip(columns, values, strict=True))
    except apsw.Error as exc:
        raise DatabaseError(f"cannot read table {table}: {exc}") from exc


def count_rows(connection: apsw.Connection, table: str) -> int:
    """Return how many rows `table` holds (0 when it does not exist)."""
    if table not in read_table_names(connection):
        return 0
    try:
        row = connection.execute(f'SELECT count(*) FROM "{table}"').fetchone()
    except apsw.Error as exc:
        raise DatabaseError(f"cannot read table {table}: {exc}") from exc
    return int(row[0]) if row else 0


def unused_path(directory: Path, name: str) -> Path:
    """Return ``directory/name``, or ``name-1``, ``name-2``... if that is taken."""
    candidate, suffix = directory / name, 0
    while candidate.exists():
        suffix += 1
        candidate = directory / f"{name}-{suffix}"
    return candidate


def partial_path(dest: Path) -> Path:
    """Return the name this process writes a backup to `dest` under until it is complete."""
    return dest.with_name(f".{dest.name}.partial-{os.getpid()}")


def remove_stale_partials(directory: Path) -> list[Path]:
    """Remove backups that a killed process left half-written in `directory`; return them.

    Only names of `partial_path`'s form, and their ``-journal``, ``-wal`` and
    ``-shm``, whose process no longer exists: a backup that a live process is
    writing is never touched. Processes are looked up on this machine (and in
    this pid namespace).
    """
    removed: list[Path] = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed  # the backup itself reports an unusable directory
    for entry in entries:
        match = _PARTIAL.fullmatch(entry.name)
        if match is None or _process_exists(int(match["pid"])):
            continue
        try:
            if entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except FileNotFoundError:
            pass  # another backup cleaned it up first
        except OSError as exc:
            _logger.warning("cannot remove stale partial backup %s: %s", entry.path, exc.strerror)
    return removed


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # another user's process, or no pid we could have written: leave it
    return True


def new_backup_path(directory: Path, prefix: str, moment: datetime) -> Path:
    """Return an unused ``directory/<prefix><UTC stamp>`` for a backup taken at `moment`."""
    return unused_path(directory, prefix + moment.strftime(BACKUP_STAMP))
