"""Reading the relay's Maildir tree (SPEC section 6): which files to index, and their rows.

``<root>/<endpoint_hash>/{tmp,new,cur,failed}/<message id>.json``; ``tmp/``,
``<id>.reason.json`` sidecars and non-``.json`` files are ignored.
"""

from __future__ import annotations

import errno
import json
import math
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dorkstore.errors import ValidationError
from dorkstore.models.relay import RelayMessage
from dorkstore.records import MAILDIR_STATUSES, IndexedMessage, MessageStatus
from dorkstore.timestamps import parse_timestamp

__all__ = ["MalformedFileError", "envelope_paths", "envelope_row", "message_files"]


class MalformedFileError(Exception):
    """A Maildir file that cannot be indexed; the message says why (``"<kind>: <detail>"``)."""


def message_files(root: Path) -> Iterator[tuple[Path, MessageStatus, str | None]]:
    """Yield (path, status, problem) for each envelope file the layout says to index.

    `problem` is None for a regular file to read, or why it cannot be indexed
    (an unreadable folder, a FIFO, a directory or a symlink loop named like an
    envelope). An error on one entry concerns that entry alone, never its
    folder. ``new/`` comes before ``cur/`` and ``failed/``, so a message caught
    mid-move is indexed with its later status. Raises ValidationError if `root`
    cannot be read.
    """
    for path, status, problem in envelope_paths(root):
        yield Path(path), status, problem


def envelope_paths(root: Path | str) -> Iterator[tuple[str, MessageStatus, str | None]]:
    """Yield what `message_files` yields, with each path as a str (cheaper by the 100,000)."""
    try:
        with os.scandir(root) as scan:
            names = sorted(entry.name for entry in scan)
    except OSError as exc:
        raise ValidationError(f"cannot read maildir_root {root}: {exc.strerror}") from exc
    for name in names:
        for subdirectory, status in MAILDIR_STATUSES.items():
            folder = os.path.join(root, name, subdirectory)
            try:
                if not os.path.isdir(folder):
                    continue
                with os.scandir(folder) as scan:
                    entries = sorted(
                        (entry for entry in scan if _is_envelope_name(entry.name)),
                        key=lambda entry: entry.name,
                    )
            except OSError as exc:
                yield folder, status, f"unreadable: folder: {exc.strerror or exc}"
                continue
            for entry in entries:
                yield entry.path, status, _entry_problem(entry)


def _is_envelope_name(name: str) -> bool:
    return name.endswith(".json") and not name.endswith(".reason.json")


def _entry_problem(entry: os.DirEntry[str]) -> str | None:
    """Return why a folder entry cannot be read as an envelope, or None if it can."""
    try:
        regular = entry.is_file()  # follows symlinks: a loop raises ELOOP here
    except OSError as exc:
        return f"unreadable: {exc.strerror or exc}"
    return None if regular else "unreadable: not a regular file"


def envelope_row(path: Path | str, status: MessageStatus) -> dict[str, Any]:
    """Read one envelope and return its index row; raise MalformedFileError saying why not."""
    path = os.fspath(path)
    try:
        envelope = json.loads(_read_regular_file(path))
    except OSError as exc:
        raise MalformedFileError(f"unreadable: {exc.strerror or exc}") from exc
    except (ValueError, RecursionError) as exc:
        raise MalformedFileError(f"not JSON: {exc}") from exc
    if not isinstance(envelope, dict):
        raise MalformedFileError("not a JSON object")
    message_id = os.path.basename(path).removesuffix(".json")
    if envelope.get("id") != message_id:
        raise MalformedFileError(
            f"id mismatch: the file name says {message_id!r}, the envelope {envelope.get('id')!r}"
        )
    try:
        ttl = _ttl(envelope.get("budget"))
        message = IndexedMessage(
            id=message_id,
            subject=envelope.get("subject"),  # type: ignore[arg-type]  # to_row checks types
            endpoint_hash=os.path.basename(os.path.dirname(os.path.dirname(path))),
            sender=envelope.get("from"),
            status=status,
            expires_at=parse_timestamp(ttl, "budget.ttl", epoch_ms=True) if ttl else None,
            payload=None,
            metadata=None,
            created_at=envelope.get("createdAt"),  # type: ignore[arg-type]
        )
        return RelayMessage.to_row(message)
    except ValidationError as exc:
        raise MalformedFileError(f"invalid envelope: {exc}") from exc


def _ttl(budget: object) -> int | None:
    """Return ``budget.ttl`` as epoch milliseconds (None or 0: no expiry)."""
    ttl = budget.get("ttl") if isinstance(budget, dict) else None
    if ttl is None or (isinstance(ttl, int) and not isinstance(ttl, bool)):
        return ttl
    if isinstance(ttl, float) and math.isfinite(ttl) and ttl.is_integer():
        return int(ttl)
    raise ValidationError(f"budget.ttl must be epoch milliseconds, got {ttl!r}")


def _read_regular_file(path: str) -> bytes:
    """Read a file, refusing (not blocking on) anything that became a FIFO or device."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        chunks = [os.read(fd, status.st_size + 1)]
        while chunks[-1]:  # it grew since fstat: read the rest
            chunks.append(os.read(fd, 1 << 16))
        return b"".join(chunks)
    finally:
        os.close(fd)
