"""RelayIndex: the derived, rebuildable index over the relay's Maildir message files."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import fields
from datetime import datetime
from pathlib import Path
from typing import Any

import peewee as pw

from dorkstore import validation as check
from dorkstore.backends import current, current_database, guarded, write_transaction
from dorkstore.errors import RefusedError, ValidationError
from dorkstore.maildir import MalformedFileError, envelope_paths, envelope_row
from dorkstore.models.relay import RelayMessage
from dorkstore.records import (
    MESSAGE_STATUSES,
    IndexedMessage,
    MessagePage,
    MessageStatus,
    RebuildResult,
    RelayMetrics,
)
from dorkstore.repositories.base import Repository
from dorkstore.statements import Statement, StatementFamily, assign, const, slot
from dorkstore.timestamps import parse_timestamp

__all__ = ["RelayIndex"]

logger: logging.Logger = logging.getLogger("dorkstore")

_NAMES = tuple(field.name for field in fields(IndexedMessage))
_COLUMNS = [RelayMessage._meta.columns[name] for name in _NAMES]
_NEWEST_FIRST = (RelayMessage.created_at.desc(), RelayMessage.id.desc())
_COUNT = pw.fn.COUNT(RelayMessage.id)

UPSERT_MESSAGE = Statement(
    lambda: RelayMessage.insert(assign(RelayMessage, _NAMES)).on_conflict(
        conflict_target=[RelayMessage.id],
        preserve=[column for column in _COLUMNS if column is not RelayMessage.id],
    )
)
UPDATE_STATUS = Statement(
    lambda: RelayMessage.update(assign(RelayMessage, ["status"])).where(
        RelayMessage.id == slot("id")
    )
)
GET_MESSAGE = Statement(
    lambda: RelayMessage.select(*_COLUMNS).where(RelayMessage.id == slot("id")),
    into=RelayMessage.to_record,
)
#: Messages whose `column` equals the slot of that name, newest first.
MESSAGES_WHERE = StatementFamily(
    lambda column: (
        RelayMessage.select(*_COLUMNS)
        .where(RelayMessage._meta.columns[column] == slot(column))
        .order_by(*_NEWEST_FIRST)
    ),
    into=RelayMessage.to_record,
)
COUNT_MESSAGES = Statement(lambda: RelayMessage.select(_COUNT))
COUNT_SENDER_SINCE = Statement(
    lambda: RelayMessage.select(_COUNT).where(
        (RelayMessage.sender == slot("sender")) & (RelayMessage.created_at > slot("start"))
    )
)
COUNT_PENDING = Statement(
    lambda: RelayMessage.select(_COUNT).where(
        (RelayMessage.endpoint_hash == slot("endpoint_hash"))
        & (RelayMessage.status == const("pending"))
    )
)


def _query_messages(filters: tuple[str, ...]) -> pw.Node:
    query = RelayMessage.select(*_COLUMNS)
    for name in filters:
        if name == "cursor":
            query = query.where(RelayMessage.id < slot("cursor"))
        else:
            query = query.where(RelayMessage._meta.columns[name] == slot(name))
    return query.order_by(RelayMessage.id.desc()).limit(slot("limit"))


QUERY_MESSAGES = StatementFamily(_query_messages, into=RelayMessage.to_record)
DELETE_EXPIRED = Statement(
    lambda: RelayMessage.delete().where(RelayMessage.expires_at < slot("now"))
)
DELETE_MESSAGE = Statement(lambda: RelayMessage.delete().where(RelayMessage.id == slot("id")))
ALL_ROWS = Statement(lambda: RelayMessage.select(*_COLUMNS))
COUNT_BY_STATUS = Statement(
    lambda: RelayMessage.select(RelayMessage.status, _COUNT.alias("count")).group_by(
        RelayMessage.status
    )
)
COUNT_BY_SUBJECT = Statement(
    lambda: (
        RelayMessage.select(RelayMessage.subject, _COUNT.alias("count"))
        .group_by(RelayMessage.subject)
        .order_by(_COUNT.desc(), RelayMessage.subject)
    )
)


class RelayIndex(Repository):
    """Derived, rebuildable index over the relay's Maildir message files."""

    @guarded
    def insert_message(
        self,
        id: str,
        subject: str,
        endpoint_hash: str,
        *,
        status: MessageStatus = "pending",
        created_at: datetime | str | None = None,
        expires_at: datetime | str | None = None,
        sender: str | None = None,
        payload: Any = None,
        metadata: Any = None,
    ) -> IndexedMessage:
        """Insert a message, or replace the one with this id; return it as stored."""
        message = IndexedMessage(
            id=id,
            subject=subject,
            endpoint_hash=endpoint_hash,
            sender=sender,
            status=status,
            expires_at=expires_at,  # type: ignore[arg-type]  # to_row normalises it
            payload=payload,
            metadata=metadata,
            created_at=self._now() if created_at is None else created_at,  # type: ignore[arg-type]
        )
        row = RelayMessage.to_row(message)
        with write_transaction():
            UPSERT_MESSAGE.run(**row)
        return RelayMessage.to_record([row[name] for name in _NAMES])

    @guarded
    def insert_many(self, messages: Iterable[IndexedMessage]) -> int:
        """Insert or replace every message in one transaction; return how many.

        Nothing is written if any message is invalid.
        """
        if isinstance(messages, IndexedMessage) or not isinstance(messages, Iterable):
            raise ValidationError("messages must be an iterable of IndexedMessage")
        rows = [RelayMessage.to_row(message) for message in messages]
        with write_transaction():
            return UPSERT_MESSAGE.many(rows)

    @guarded
    def update_status(self, id: str, status: MessageStatus) -> bool:
        """Set a message's status; False if there is no such message."""
        changed = UPDATE_STATUS.run(
            status=check.choice(status, "status", MESSAGE_STATUSES), id=check.text(id, "id")
        )
        return bool(changed)

    @guarded
    def get_message(self, id: str) -> IndexedMessage | None:
        """Return the message with this id, or None."""
        return GET_MESSAGE.one(id=check.text(id, "id"))

    @guarded
    def get_by_subject(self, subject: str) -> list[IndexedMessage]:
        """Return the messages on a subject, newest first."""
        return MESSAGES_WHERE["subject"].all(subject=check.text(subject, "subject"))

    @guarded
    def get_by_endpoint(self, endpoint_hash: str) -> list[IndexedMessage]:
        """Return the messages for an endpoint, newest first."""
        endpoint_hash = check.text(endpoint_hash, "endpoint_hash")
        return MESSAGES_WHERE["endpoint_hash"].all(endpoint_hash=endpoint_hash)

    @guarded
    def count_sender_in_window(self, sender: str, window_start: datetime | str) -> int:
        """Return how many messages `sender` created strictly after `window_start`."""
        return int(
            COUNT_SENDER_SINCE.scalar(
                sender=check.text(sender, "sender"),
                start=parse_timestamp(window_start, "window_start"),
            )
        )

    @guarded
    def count_pending_by_endpoint(self, endpoint_hash: str) -> int:
        """Return how many pending messages an endpoint has (for backpressure)."""
        endpoint_hash = check.text(endpoint_hash, "endpoint_hash")
        return int(COUNT_PENDING.scalar(endpoint_hash=endpoint_hash))

    @guarded
    def query_messages(
        self,
        *,
        subject: str | None = None,
        status: MessageStatus | None = None,
        sender: str | None = None,
        endpoint_hash: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> MessagePage:
        """Return one page of matching messages, by id descending.

        `cursor` is the previous page's `next_cursor`; walking every page yields
        each matching message exactly once.
        """
        # One below the 64-bit maximum: the query asks for limit + 1 rows.
        limit = check.integer(limit, "limit", minimum=1, maximum=check.INT64_MAX - 1)
        filters: dict[str, str] = {}
        if subject is not None:
            filters["subject"] = check.text(subject, "subject")
        if status is not None:
            filters["status"] = check.choice(status, "status", MESSAGE_STATUSES)
        if sender is not None:
            filters["sender"] = check.text(sender, "sender")
        if endpoint_hash is not None:
            filters["endpoint_hash"] = check.text(endpoint_hash, "endpoint_hash")
        if cursor is not None:
            filters["cursor"] = check.text(cursor, "cursor")
        # One more row than asked tells whether a page follows.
        found = QUERY_MESSAGES[tuple(filters)].all(limit=limit + 1, **filters)
        messages = found[:limit]
        return MessagePage(messages, messages[-1].id if len(found) > limit else None)

    @guarded
    def delete_expired(self) -> int:
        """Delete messages whose `expires_at` is strictly before now; return how many."""
        return DELETE_EXPIRED.run(now=self._now_text())

    @guarded
    def rebuild(
        self,
        maildir_root: str | os.PathLike[str],
        *,
        report: Callable[[Path, str | None], None] | None = None,
    ) -> int:
        """Make the index hold exactly the Maildir tree's messages; return how many it holds.

        `reconcile` with ``force=True``: whatever the tree holds, the index
        follows, even an empty tree. Raises ValidationError if the root is not
        a readable directory.
        """
        return self.reconcile(maildir_root, report=report, force=True).indexed

    @guarded
    def reconcile(
        self,
        maildir_root: str | os.PathLike[str],
        *,
        report: Callable[[Path, str | None], None] | None = None,
        dry_run: bool = False,
        force: bool = False,
    ) -> RebuildResult:
        """Rebuild the index from the Maildir tree; return what changed (or would, `dry_run`).

        The tree is read and parsed first, without a lock. Then, in one
        transaction holding the write lock, the folders are listed again:
        files that appeared or moved meanwhile are read too, every message
        whose envelope file exists is written, and a row is deleted only when
        no envelope file for it exists any more (or its file cannot be
        indexed). So a relay writing beside the rebuild loses nothing, and a
        failure or a kill leaves the previous index intact. A dry run reads
        the same way but takes no write lock, and writes nothing.

        Unless `force`, a rebuild that would delete more than half of a
        non-empty index (a tree that is empty, or the wrong directory) raises
        RefusedError and changes nothing: the index is derived, but rebuilding
        it from the right tree takes time, and the mistake is easy.

        A file that cannot be read or parsed is skipped and logged at WARNING;
        `report`, if given, is called with each message file's path and None
        (indexed) or the reason it was skipped (``"<kind>: <detail>"``, kind
        one of unreadable, not JSON, not a JSON object, id mismatch, invalid
        envelope, duplicate id; an unreadable folder is reported once, as its
        path). The same message id under two endpoints is indexed from the
        first (in path order) and reported for the others. Raises
        ValidationError if the root is not a readable directory.
        """
        root = Path(check.canonical_path(maildir_root, "maildir_root"))
        try:
            is_directory = root.is_dir()
        except OSError as exc:  # a name too long, say
            raise ValidationError(f"cannot use maildir_root {root}: {exc.strerror}") from exc
        if not is_directory:
            raise ValidationError(f"maildir_root {root} is not a directory")
        scan = _Scan(report)
        read = {
            path: scan.read(path, status, problem) for path, status, problem in envelope_paths(root)
        }
        # A dry run writes nothing, so a snapshot will do: it never waits for writers.
        with current_database().atomic() if dry_run else write_transaction():
            rows: dict[str, dict[str, Any]] = {}
            for path, status, problem in envelope_paths(root):  # again, under the lock
                row = read[path] if path in read else scan.read(path, status, problem)
                if row is not None:
                    rows[row["id"]] = row  # a later folder (cur/ after new/) wins
            # Only what differs is written: an index in step with its files costs a read.
            indexed = {row["id"]: row for row in ALL_ROWS.all()}
            changed = [row for id, row in rows.items() if indexed.get(id) != row]
            gone = indexed.keys() - rows.keys()
            result = RebuildResult(len(rows), len(indexed), len(changed), len(gone), dry_run)
            if not (force or dry_run) and result.loses_over_half:
                raise RefusedError(
                    f"refusing to rebuild: {root} holds {len(rows)} messages, and the index "
                    f"would lose {len(gone)} of its {len(indexed)}; check the directory, or "
                    "force it (--force)"
                )
            if not dry_run:
                UPSERT_MESSAGE.many(changed)
                DELETE_MESSAGE.many({"id": id} for id in gone)
            return result

    @guarded
    def get_metrics(self) -> RelayMetrics:
        """Return the number of messages, per status (those that occur) and per subject."""
        with current_database().atomic():  # one snapshot for the three queries
            total = COUNT_MESSAGES.scalar()
            by_status = COUNT_BY_STATUS.all()
            by_subject = COUNT_BY_SUBJECT.all()
        return RelayMetrics(
            total_messages=int(total),
            by_status={row["status"]: int(row["count"]) for row in by_status},
            by_subject=[(row["subject"], int(row["count"])) for row in by_subject],
        )

    @guarded
    def is_wal_mode(self) -> bool:
        """Return True when the database runs in write-ahead-log mode."""
        return current().is_wal_mode(current_database())


class _Scan:
    """Reads envelope files for a rebuild, reporting each file once."""

    def __init__(self, report: Callable[[Path, str | None], None] | None) -> None:
        self.report = report
        #: id -> (endpoint, path) where it was first read.
        self._first: dict[str, tuple[str, str]] = {}

    def read(self, path: str, status: MessageStatus, problem: str | None) -> dict[str, Any] | None:
        """Return the row of one envelope file, or None after reporting why it was skipped.

        The same id under a second endpoint is skipped: one id, one message.
        """
        try:
            if problem:
                raise MalformedFileError(problem)
            row = envelope_row(path, status)
            endpoint, first = self._first.setdefault(row["id"], (row["endpoint_hash"], path))
            if endpoint != row["endpoint_hash"]:
                raise MalformedFileError(f"duplicate id: also in {first}")
        except MalformedFileError as exc:
            logger.warning("skipping %s: %s", path, exc)
            if self.report:
                self.report(Path(path), str(exc))
            return None
        if self.report:
            self.report(Path(path), None)
        return row
