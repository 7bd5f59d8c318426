"""Consistent copies of a live database through the SQLite backup API."""

from __future__ import annotations

import os
from pathlib import Path

import apsw
import peewee as pw

from dorkstore.errors import DatabaseError

__all__ = ["backup_database", "unused_path"]


def backup_database(db: pw.SqliteDatabase, dest: str | os.PathLike[str]) -> Path:
    """Copy `db` to the new file `dest` (mode 0600) and return its path.

    The copy is one snapshot: other connections may keep writing while it is
    taken. It is written under a temporary name and linked to `dest` when
    complete, so `dest` never holds a partial copy and is never overwritten.
    Raises DatabaseError when `dest` exists or cannot be written.
    """
    path = Path(dest)
    if path.exists():
        raise DatabaseError(f"cannot create backup {path}: it already exists")
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise DatabaseError(f"cannot create backup {path}: {exc.strerror}") from exc
    os.close(fd)
    try:
        target = apsw.Connection(str(partial))
        try:
            # step(-1) copies every page under one read transaction: a snapshot
            # that a concurrent writer cannot tear (in WAL mode it is not blocked).
            with target.backup("main", db.connection(), "main") as backup:
                backup.step(-1)
        finally:
            target.close()
        os.link(partial, path)  # fails, rather than overwrites, if dest appeared meanwhile
    except (apsw.Error, pw.DatabaseError, OSError) as exc:
        raise DatabaseError(f"backup to {path} failed: {exc}") from exc
    finally:
        partial.unlink(missing_ok=True)
    return path


def unused_path(directory: Path, name: str) -> Path:
    """Return ``directory/name``, or ``name-1``, ``name-2``... if that is taken."""
    candidate, suffix = directory / name, 0
    while candidate.exists():
        suffix += 1
        candidate = directory / f"{name}-{suffix}"
    return candidate
