"""RelayIndex, the rebuildable index over Maildir files, and TraceStore, delivery telemetry."""

from __future__ import annotations

import errno
import json
import logging
import math
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import peewee as pw

from dorkstore import dialect
from dorkstore import validation as check
from dorkstore.db import database
from dorkstore.errors import ValidationError
from dorkstore.models.relay import MESSAGE_STATUSES, TRACE_STATUSES, RelayMessage, RelayTrace
from dorkstore.repositories.base import (
    Repository,
    fetch_all,
    fetch_one,
    guarded,
    slot,
    write,
    write_many,
    write_transaction,
)
from dorkstore.timestamps import format_timestamp, parse_timestamp

__all__ = [
    "LEGACY_TRACE_STATUSES",
    "MAILDIR_STATUSES",
    "DeliveryMetrics",
    "IndexedMessage",
    "MessagePage",
    "RelayIndex",
    "RelayMetrics",
    "TraceSpan",
    "TraceStore",
    "message_files",
]

logger = logging.getLogger("dorkstore")

#: Maildir subdirectory -> index status. ``tmp/`` holds half-written files and is ignored.
MAILDIR_STATUSES = {"new": "pending", "cur": "delivered", "failed": "failed"}
#: Status names older callers send -> the names stored now.
LEGACY_TRACE_STATUSES = {"pending": "sent", "processed": "delivered", "dead_lettered": "timeout"}

#: Rows per executemany batch in insert_many and rebuild.
_BATCH = 5000


@dataclass(frozen=True, slots=True)
class IndexedMessage:
    """One indexed Maildir message; `payload` and `metadata` are decoded JSON."""

    id: str
    subject: str
    endpoint_hash: str
    sender: str | None
    status: str
    expires_at: str | None
    payload: Any
    metadata: Any
    created_at: str


@dataclass(frozen=True, slots=True)
class MessagePage:
    """One page of `query_messages`; `next_cursor` is None on the last page."""

    messages: list[IndexedMessage]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class RelayMetrics:
    """Counts over the index: `by_subject` by count descending, then subject."""

    total_messages: int
    by_status: dict[str, int]
    by_subject: list[tuple[str, int]]


@dataclass(frozen=True, slots=True)
class TraceSpan:
    """One message's trip through the relay."""

    id: str
    message_id: str
    trace_id: str
    subject: str
    status: str
    sent_at: str
    delivered_at: str | None
    processed_at: str | None
    error_message: str | None
    metadata: Any


@dataclass(frozen=True, slots=True)
class DeliveryMetrics:
    """Delivery counts and latency (delivered_at - sent_at) over all spans."""

    total_messages: int
    delivered_count: int
    failed_count: int
    dead_lettered_count: int
    avg_delivery_latency_ms: float | None
    p95_delivery_latency_ms: int | None
    active_endpoints: int
    budget_rejections: dict[str, int]


_MESSAGE_FIELDS = tuple(IndexedMessage.__dataclass_fields__)
_MESSAGE_COLUMNS = [getattr(RelayMessage, name) for name in _MESSAGE_FIELDS]
_SPAN_FIELDS = tuple(TraceSpan.__dataclass_fields__)
_SPAN_COLUMNS = [getattr(RelayTrace, name) for name in _SPAN_FIELDS]
_NEWEST_FIRST = (RelayMessage.created_at.desc(), RelayMessage.id.desc())


def _message(row: tuple[Any, ...]) -> IndexedMessage:
    values = list(row)
    values[6] = None if values[6] is None else json.loads(values[6])
    values[7] = None if values[7] is None else json.loads(values[7])
    return IndexedMessage(*values)


def _span(row: tuple[Any, ...]) -> TraceSpan:
    values = list(row)
    values[-1] = None if values[-1] is None else json.loads(values[-1])
    return TraceSpan(*values)


def _message_row(
    id: object,
    subject: object,
    endpoint_hash: object,
    sender: object,
    status: object,
    expires_at: object,
    payload: object,
    metadata: object,
    created_at: object,
) -> tuple[Any, ...]:
    """Validate one message; return its column values in `_MESSAGE_FIELDS` order."""
    return (
        check.text(id, "id"),
        check.text(subject, "subject"),
        check.text(endpoint_hash, "endpoint_hash"),
        check.optional_text(sender, "sender"),
        check.choice(status, "status", MESSAGE_STATUSES),
        None if expires_at is None else parse_timestamp(expires_at, "expires_at"),
        check.json_text(payload, "payload"),
        check.json_text(metadata, "metadata"),
        parse_timestamp(created_at, "created_at"),
    )


def _upsert() -> pw.Node:
    """Insert a message or replace the one with its id; slots "0".."8" are the columns in order."""
    return RelayMessage.insert(
        {column: slot(str(n)) for n, column in enumerate(_MESSAGE_COLUMNS)}
    ).on_conflict(
        conflict_target=[RelayMessage.id],
        preserve=[column for column in _MESSAGE_COLUMNS if column is not RelayMessage.id],
    )


def _upsert_all(rows: Iterable[tuple[Any, ...]]) -> int:
    """Insert or replace `rows` with one prepared statement (executemany), batched."""
    return write_many("upsert_messages", _upsert, rows)


def _filtered(key: str, condition: Callable[[], Any], **values: Any) -> list[IndexedMessage]:
    """Messages matching `condition`, newest first (created_at, then id)."""
    found = fetch_all(
        key,
        lambda: RelayMessage.select(*_MESSAGE_COLUMNS).where(condition()).order_by(*_NEWEST_FIRST),
        **values,
    )
    return [_message(row) for row in found]


def _count(key: str, condition: Callable[[], Any], **values: Any) -> int:
    row = fetch_one(
        key, lambda: RelayMessage.select(pw.fn.COUNT(RelayMessage.id)).where(condition()), **values
    )
    return int(row[0]) if row else 0


class RelayIndex(Repository):
    """Derived, rebuildable index over the relay's Maildir message files."""

    @guarded
    def insert_message(
        self,
        id: str,
        subject: str,
        endpoint_hash: str,
        *,
        status: str = "pending",
        created_at: object = None,
        expires_at: object = None,
        sender: str | None = None,
        payload: Any = None,
        metadata: Any = None,
    ) -> IndexedMessage:
        """Insert a message, or replace the one with this id; return it as stored."""
        row = _message_row(
            id,
            subject,
            endpoint_hash,
            sender,
            status,
            expires_at,
            payload,
            metadata,
            self._now() if created_at is None else created_at,
        )
        with write_transaction():
            _upsert_all([row])
        return _message(row)

    @guarded
    def insert_many(self, messages: Iterable[IndexedMessage]) -> int:
        """Insert or replace every message in one transaction; return how many.

        Nothing is written if any message is invalid.
        """
        if isinstance(messages, IndexedMessage) or not isinstance(messages, Iterable):
            raise ValidationError("messages must be an iterable of IndexedMessage")
        rows = [_validated(message) for message in messages]
        with write_transaction():
            return _upsert_all(rows)

    @guarded
    def update_status(self, id: str, status: str) -> bool:
        """Set a message's status; False if there is no such message."""
        changed = write(
            "update_message_status",
            lambda: RelayMessage.update(status=slot("status")).where(RelayMessage.id == slot("id")),
            status=check.choice(status, "status", MESSAGE_STATUSES),
            id=check.text(id, "id"),
        )
        return bool(changed)

    @guarded
    def get_message(self, id: str) -> IndexedMessage | None:
        """Return the message with this id, or None."""
        row = fetch_one(
            "get_message",
            lambda: RelayMessage.select(*_MESSAGE_COLUMNS).where(RelayMessage.id == slot("id")),
            id=check.text(id, "id"),
        )
        return None if row is None else _message(row)

    @guarded
    def get_by_subject(self, subject: str) -> list[IndexedMessage]:
        """Return the messages on a subject, newest first."""
        return _filtered(
            "messages_by_subject",
            lambda: RelayMessage.subject == slot("subject"),
            subject=check.text(subject, "subject"),
        )

    @guarded
    def get_by_endpoint(self, endpoint_hash: str) -> list[IndexedMessage]:
        """Return the messages for an endpoint, newest first."""
        return _filtered(
            "messages_by_endpoint",
            lambda: RelayMessage.endpoint_hash == slot("endpoint"),
            endpoint=check.text(endpoint_hash, "endpoint_hash"),
        )

    @guarded
    def count_sender_in_window(self, sender: str, window_start: object) -> int:
        """Return how many messages `sender` created strictly after `window_start`."""
        return _count(
            "count_sender_in_window",
            lambda: (
                (RelayMessage.sender == slot("sender")) & (RelayMessage.created_at > slot("start"))
            ),
            sender=check.text(sender, "sender"),
            start=parse_timestamp(window_start, "window_start"),
        )

    @guarded
    def count_pending_by_endpoint(self, endpoint_hash: str) -> int:
        """Return how many pending messages an endpoint has (for backpressure)."""
        return _count(
            "count_pending_by_endpoint",
            lambda: (
                (RelayMessage.endpoint_hash == slot("endpoint"))
                & (RelayMessage.status == "pending")
            ),
            endpoint=check.text(endpoint_hash, "endpoint_hash"),
        )

    @guarded
    def query_messages(
        self,
        *,
        subject: str | None = None,
        status: str | None = None,
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
        values: dict[str, Any] = {"limit": limit + 1}  # one more row tells if a page follows
        if subject is not None:
            values["subject"] = check.text(subject, "subject")
        if status is not None:
            values["status"] = check.choice(status, "status", MESSAGE_STATUSES)
        if sender is not None:
            values["sender"] = check.text(sender, "sender")
        if endpoint_hash is not None:
            values["endpoint_hash"] = check.text(endpoint_hash, "endpoint_hash")
        if cursor is not None:
            values["cursor"] = check.text(cursor, "cursor")
        shape = tuple(sorted(set(values) - {"limit"}))

        def build() -> pw.Node:
            query = RelayMessage.select(*_MESSAGE_COLUMNS)
            for name in shape:
                column = RelayMessage.id if name == "cursor" else getattr(RelayMessage, name)
                query = query.where(
                    column < slot(name) if name == "cursor" else column == slot(name)
                )
            return query.order_by(RelayMessage.id.desc()).limit(slot("limit"))

        found = fetch_all(("query_messages", shape), build, **values)
        messages = [_message(row) for row in found[:limit]]
        return MessagePage(messages, messages[-1].id if len(found) > limit else None)

    @guarded
    def delete_expired(self) -> int:
        """Delete messages whose `expires_at` is strictly before now; return how many."""
        return write(
            "delete_expired",
            lambda: RelayMessage.delete().where(RelayMessage.expires_at < slot("now")),
            now=self._now_text(),
        )

    @guarded
    def rebuild(
        self,
        maildir_root: str | os.PathLike[str],
        *,
        report: Callable[[Path, str | None], None] | None = None,
    ) -> int:
        """Replace the whole index with the Maildir tree's messages; return how many.

        The tree is read first, then the index is replaced in one transaction, so
        a failure or a kill midway leaves the previous index intact. Messages
        indexed by other writers while the tree is read are replaced too, with
        what the files say. A file that
        cannot be read or parsed is skipped and logged at WARNING; `report`, if
        given, is called with each message file's path and None (indexed) or
        the reason it was skipped (``"<kind>: <detail>"``, kind one of
        unreadable, not JSON, not a JSON object, id mismatch, invalid envelope;
        an unreadable folder is reported once, as its path). Raises
        ValidationError if the root is not a readable directory.
        """
        root = Path(check.canonical_path(maildir_root, "maildir_root"))
        try:
            is_directory = root.is_dir()
        except OSError as exc:  # a name too long, say
            raise ValidationError(f"cannot use maildir_root {root}: {exc.strerror}") from exc
        if not is_directory:
            raise ValidationError(f"maildir_root {root} is not a directory")
        envelopes = []
        for path, status, problem in message_files(root):
            try:
                if problem:
                    raise _MalformedFileError(problem)
                envelopes.append(_envelope_row(path, status))
            except _MalformedFileError as exc:
                logger.warning("skipping %s: %s", path, exc)
                if report:
                    report(path, str(exc))
                continue
            if report:
                report(path, None)
        with write_transaction():
            write("delete_all_messages", RelayMessage.delete)
            _upsert_all(envelopes)
            return _count("count_messages", lambda: pw.SQL("1 = 1"))

    @guarded
    def get_metrics(self) -> RelayMetrics:
        """Return the number of messages, per status (those that occur) and per subject."""
        count = pw.fn.COUNT(RelayMessage.id)
        with database.atomic():  # one snapshot for the three queries
            total = _count("count_messages", lambda: pw.SQL("1 = 1"))
            by_status = fetch_all(
                "messages_by_status",
                lambda: RelayMessage.select(RelayMessage.status, count).group_by(
                    RelayMessage.status
                ),
            )
            by_subject = fetch_all(
                "messages_by_subject_count",
                lambda: (
                    RelayMessage.select(RelayMessage.subject, count)
                    .group_by(RelayMessage.subject)
                    .order_by(count.desc(), RelayMessage.subject)
                ),
            )
        return RelayMetrics(
            total_messages=total,
            by_status={status: int(n) for status, n in by_status},
            by_subject=[(subject, int(n)) for subject, n in by_subject],
        )

    @guarded
    def is_wal_mode(self) -> bool:
        """Return True when the database runs in write-ahead-log mode."""
        return dialect.is_wal_mode(database)


def _validated(message: object) -> tuple[Any, ...]:
    if not isinstance(message, IndexedMessage):
        raise ValidationError(f"expected an IndexedMessage, got {type(message).__name__}")
    m = message
    return _message_row(
        m.id, m.subject, m.endpoint_hash, m.sender, m.status, m.expires_at, m.payload, m.metadata,
        m.created_at,
    )  # fmt: skip


class _MalformedFileError(Exception):
    """A Maildir file that cannot be indexed; the message says why."""


def message_files(root: Path) -> Iterator[tuple[Path, str, str | None]]:
    """Yield (path, status, problem) for each envelope file the layout says to index.

    `problem` is None for a regular file to read, or why it cannot be indexed
    (an unreadable folder, a FIFO or directory named like an envelope). ``new/``
    comes before ``cur/`` and ``failed/``, so a message caught mid-move is
    indexed with its later status. Raises ValidationError if `root` cannot be read.
    """
    try:
        endpoints = sorted(p for p in root.iterdir() if p.is_dir())
    except OSError as exc:
        raise ValidationError(f"cannot read maildir_root {root}: {exc.strerror}") from exc
    for endpoint in endpoints:
        for subdirectory, status in MAILDIR_STATUSES.items():
            folder = endpoint / subdirectory
            try:
                if not folder.is_dir():
                    continue
                with os.scandir(folder) as scan:
                    entries = sorted(
                        (entry.name, entry.is_file())
                        for entry in scan
                        if entry.name.endswith(".json") and not entry.name.endswith(".reason.json")
                    )
            except OSError as exc:
                yield folder, status, f"unreadable: folder: {exc.strerror or exc}"
                continue
            for name, regular in entries:
                yield folder / name, status, None if regular else "unreadable: not a regular file"


def _envelope_row(path: Path, status: str) -> tuple[Any, ...]:
    """Read one envelope and return its index row; raise _MalformedFileError saying why not."""
    try:
        envelope = json.loads(_read_regular_file(path))
    except OSError as exc:
        raise _MalformedFileError(f"unreadable: {exc.strerror or exc}") from exc
    except (ValueError, RecursionError) as exc:
        raise _MalformedFileError(f"not JSON: {exc}") from exc
    if not isinstance(envelope, dict):
        raise _MalformedFileError("not a JSON object")
    message_id = path.name.removesuffix(".json")
    if envelope.get("id") != message_id:
        raise _MalformedFileError(
            f"id mismatch: the file name says {message_id!r}, the envelope {envelope.get('id')!r}"
        )
    budget = envelope.get("budget")
    ttl = budget.get("ttl") if isinstance(budget, dict) else None
    try:
        if ttl is not None and (not isinstance(ttl, int) or isinstance(ttl, bool)):
            if not (isinstance(ttl, float) and math.isfinite(ttl) and ttl.is_integer()):
                raise ValidationError(f"budget.ttl must be epoch milliseconds, got {ttl!r}")
            ttl = int(ttl)
        return _message_row(
            message_id,
            envelope.get("subject"),
            path.parent.parent.name,
            envelope.get("from"),
            status,
            parse_timestamp(ttl, "budget.ttl", epoch_ms=True) if ttl else None,
            None,
            None,
            envelope.get("createdAt"),
        )
    except ValidationError as exc:
        raise _MalformedFileError(f"invalid envelope: {exc}") from exc


def _read_regular_file(path: Path) -> bytes:
    """Read a file, refusing (not blocking on) anything that became a FIFO or device."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as file:
            return file.read()
    finally:
        os.close(fd)


class TraceStore(Repository):
    """Delivery spans, one per message, and the metrics over them."""

    @guarded
    def insert_span(
        self,
        message_id: str,
        trace_id: str,
        subject: str,
        *,
        status: str = "sent",
        metadata: Any = None,
    ) -> TraceSpan:
        """Record that a message was sent (now). Raises ConflictError if it has a span."""
        now = self._now()
        span = TraceSpan(
            id=self._new_id(now),
            message_id=check.text(message_id, "message_id"),
            trace_id=check.text(trace_id, "trace_id"),
            subject=check.text(subject, "subject"),
            status=_trace_status(status),
            sent_at=format_timestamp(now),
            delivered_at=None,
            processed_at=None,
            error_message=None,
            metadata=metadata,
        )
        row = {name: getattr(span, name) for name in _SPAN_FIELDS}
        row["metadata"] = check.json_text(metadata, "metadata")
        write(
            "insert_span",
            lambda: RelayTrace.insert({getattr(RelayTrace, n): slot(n) for n in _SPAN_FIELDS}),
            **row,
        )
        return _span(tuple(row.values()))

    @guarded
    def update_span(
        self,
        message_id: str,
        *,
        status: str | None = None,
        delivered_at: object = None,
        processed_at: object = None,
        error: str | None = None,
    ) -> bool:
        """Set the given fields (None keeps a field); False if the message has no span.

        Timestamps may also be Unix epoch milliseconds; `error` sets error_message.
        """
        message_id = check.text(message_id, "message_id")
        fields: dict[str, Any] = {}
        if status is not None:
            fields["status"] = _trace_status(status)
        if delivered_at is not None:
            fields["delivered_at"] = parse_timestamp(delivered_at, "delivered_at", epoch_ms=True)
        if processed_at is not None:
            fields["processed_at"] = parse_timestamp(processed_at, "processed_at", epoch_ms=True)
        if error is not None:
            fields["error_message"] = check.text(error, "error", empty=True)
        if not fields:
            return _span_by_message(message_id) is not None
        names = tuple(sorted(fields))
        changed = write(
            ("update_span", names),
            lambda: RelayTrace.update({getattr(RelayTrace, n): slot(n) for n in names}).where(
                RelayTrace.message_id == slot("message_id")
            ),
            message_id=message_id,
            **fields,
        )
        return bool(changed)

    @guarded
    def get_span(self, message_id: str) -> TraceSpan | None:
        """Return a message's span, or None."""
        return _span_by_message(check.text(message_id, "message_id"))

    @guarded
    def get_trace(self, trace_id: str) -> list[TraceSpan]:
        """Return a trace's spans ordered by sent_at, then id."""
        found = fetch_all(
            "get_trace",
            lambda: (
                RelayTrace.select(*_SPAN_COLUMNS)
                .where(RelayTrace.trace_id == slot("trace_id"))
                .order_by(RelayTrace.sent_at, RelayTrace.id)
            ),
            trace_id=check.text(trace_id, "trace_id"),
        )
        return [_span(row) for row in found]

    @guarded
    def get_metrics(self) -> DeliveryMetrics:
        """Return counts and the average and nearest-rank p95 delivery latency.

        The database computes the latencies: no span is loaded into Python.
        """

        def latency() -> pw.Node:
            expression = dialect.latency_ms(database, RelayTrace.delivered_at, RelayTrace.sent_at)
            return pw.Cast(expression, "INTEGER")

        with database.atomic():  # one snapshot for the three queries
            counts = fetch_one(
                "trace_counts",
                lambda: RelayTrace.select(
                    pw.fn.COUNT(RelayTrace.id),
                    _count_where(RelayTrace.status == "delivered"),
                    _count_where(RelayTrace.status == "failed"),
                    _count_where(RelayTrace.status == "timeout"),
                    pw.fn.COUNT(RelayTrace.subject.distinct()),
                ),
            )
            total, delivered_count, failed_count, timeout_count, subjects = counts or (0,) * 5
            timing = fetch_one(
                "trace_latency",
                lambda: RelayTrace.select(pw.fn.COUNT(latency()), pw.fn.AVG(latency())).where(
                    RelayTrace.delivered_at.is_null(False)
                ),
            )
            timed, average = timing or (0, None)
            p95 = None
            if timed:
                rank = math.ceil(timed * 95 / 100)  # nearest rank, 1-based
                row = fetch_one(
                    "trace_latency_rank",
                    lambda: (
                        RelayTrace.select(latency())
                        .where(RelayTrace.delivered_at.is_null(False))
                        .order_by(latency())
                        .limit(1)
                        .offset(slot("offset"))
                    ),
                    offset=rank - 1,
                )
                p95 = None if row is None else row[0]
        return DeliveryMetrics(
            total_messages=int(total),
            delivered_count=int(delivered_count or 0),
            failed_count=int(failed_count or 0),
            dead_lettered_count=int(timeout_count or 0),
            avg_delivery_latency_ms=None if average is None else float(average),
            p95_delivery_latency_ms=None if p95 is None else int(p95),
            active_endpoints=int(subjects),
            budget_rejections=dict.fromkeys(
                ("hop_limit", "ttl_expired", "cycle_detected", "budget_exhausted"), 0
            ),
        )


def _span_by_message(message_id: str) -> TraceSpan | None:
    row = fetch_one(
        "get_span",
        lambda: RelayTrace.select(*_SPAN_COLUMNS).where(RelayTrace.message_id == slot("id")),
        id=message_id,
    )
    return None if row is None else _span(row)


def _count_where(condition: pw.Node) -> pw.Node:
    return pw.fn.SUM(pw.Case(None, [(condition, 1)], 0))


def _trace_status(status: object) -> str:
    if isinstance(status, str):
        status = LEGACY_TRACE_STATUSES.get(status, status)
    return check.choice(status, "status", TRACE_STATUSES)
