"""Relay tables: the rebuildable Maildir index and delivery traces."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import peewee as pw

from dorkstore import validation as check
from dorkstore.errors import ValidationError
from dorkstore.models.base import BaseModel, enum_check, sql_default
from dorkstore.models.json_columns import decode_json
from dorkstore.records import MESSAGE_STATUSES, TRACE_STATUSES, IndexedMessage, TraceSpan
from dorkstore.timestamps import parse_timestamp

__all__ = ["RelayMessage", "RelayTrace"]


class RelayMessage(BaseModel):
    """One Maildir envelope, as indexed.

    The ``(column, id)`` indexes serve `query_messages`, which filters and then
    pages by id: SQLite picks an index that yields ``ORDER BY id`` only when
    ``id`` is declared in it (an implicit primary-key suffix loses to the
    ``(column, created_at)`` indexes and costs a sort). ``WITHOUT ROWID`` keeps
    the rows in one B-tree keyed by id.
    """

    id: pw.CharField[str] = pw.CharField(max_length=26, primary_key=True)
    subject: pw.TextField[str] = pw.TextField()
    endpoint_hash: pw.TextField[str] = pw.TextField()
    sender: pw.TextField[str | None] = pw.TextField(null=True)
    status: pw.TextField[str] = pw.TextField(
        default="pending",
        constraints=[sql_default("pending"), enum_check("status", MESSAGE_STATUSES)],
    )
    expires_at: pw.TextField[str | None] = pw.TextField(null=True, index=True)
    payload: pw.TextField[str | None] = pw.TextField(null=True)
    metadata: pw.TextField[str | None] = pw.TextField(null=True)
    created_at: pw.TextField[str] = pw.TextField()

    class Meta:
        table_name = "relay_index"
        without_rowid = True
        indexes: tuple[tuple[tuple[str, ...], bool], ...] = (
            (("subject", "created_at"), False),
            (("endpoint_hash", "created_at"), False),
            (("sender", "created_at"), False),
            (("subject", "id"), False),
            (("endpoint_hash", "id"), False),
            (("endpoint_hash", "status", "id"), False),
            (("sender", "id"), False),
            (("status", "id"), False),
        )

    @staticmethod
    def to_record(row: Sequence[Any]) -> IndexedMessage:
        """Return the record of a selected row (in the record's field order), JSON decoded.

        Text another client stored that is not strict JSON comes back as
        `InvalidJSON` (the text as stored), with a WARNING naming the row.
        """
        # Positional and unrolled: pages and subject listings build thousands of these.
        id, subject, endpoint_hash, sender, status, expires_at, payload, metadata, created = row
        if payload is not None:
            payload = decode_json(payload, "relay_index", id, "payload")
        if metadata is not None:
            metadata = decode_json(metadata, "relay_index", id, "metadata")
        return IndexedMessage(
            id, subject, endpoint_hash, sender, status, expires_at, payload, metadata, created
        )

    @staticmethod
    def to_row(message: IndexedMessage) -> dict[str, Any]:
        """Validate a message; return its column values by name, JSON encoded.

        Raises ValidationError naming the first field that cannot be stored.
        """
        if not isinstance(message, IndexedMessage):
            raise ValidationError(f"expected an IndexedMessage, got {type(message).__name__}")
        expires_at = message.expires_at
        return {
            "id": check.text(message.id, "id"),
            "subject": check.text(message.subject, "subject"),
            "endpoint_hash": check.text(message.endpoint_hash, "endpoint_hash"),
            "sender": check.optional_text(message.sender, "sender"),
            "status": check.choice(message.status, "status", MESSAGE_STATUSES),
            "expires_at": None if expires_at is None else parse_timestamp(expires_at, "expires_at"),
            "payload": check.json_text(message.payload, "payload"),
            "metadata": check.json_text(message.metadata, "metadata"),
            "created_at": parse_timestamp(message.created_at, "created_at"),
        }


class RelayTrace(BaseModel):
    """A delivery span: one message's trip through the relay.

    ``latency_ms`` is ``delivered_at - sent_at`` in whole milliseconds, stored
    (and indexed) when ``delivered_at`` is set, so that the delivery metrics
    read an index instead of computing a date difference per span. It is not
    part of the record: `TraceStore.update_span` keeps it, and a client that
    writes ``delivered_at`` itself must set it too (``dorkstore doctor`` reports
    spans where it disagrees).
    """

    id: pw.CharField[str] = pw.CharField(max_length=26, primary_key=True)
    message_id: pw.TextField[str] = pw.TextField(unique=True)
    trace_id: pw.TextField[str] = pw.TextField(index=True)
    subject: pw.TextField[str] = pw.TextField(index=True)
    status: pw.TextField[str] = pw.TextField(
        index=True, constraints=[enum_check("status", TRACE_STATUSES)]
    )
    sent_at: pw.TextField[str] = pw.TextField(index=True)
    delivered_at: pw.TextField[str | None] = pw.TextField(null=True)
    processed_at: pw.TextField[str | None] = pw.TextField(null=True)
    error_message: pw.TextField[str | None] = pw.TextField(null=True)
    metadata: pw.TextField[str | None] = pw.TextField(null=True)
    latency_ms: pw.BigIntegerField[int | None] = pw.BigIntegerField(null=True, index=True)

    class Meta:
        table_name = "relay_traces"

    @staticmethod
    def to_record(row: Sequence[Any]) -> TraceSpan:
        """Return the record of a selected row (in field order), its metadata decoded."""
        id, message_id, trace_id, subject, status, sent, delivered, processed, error, metadata = row
        if metadata is not None:
            metadata = decode_json(metadata, "relay_traces", id, "metadata")
        return TraceSpan(
            id, message_id, trace_id, subject, status, sent, delivered, processed, error, metadata
        )

    @staticmethod
    def latency(sent_at: str, delivered_at: str | None) -> int | None:
        """Return the latency_ms to store for two canonical timestamps; None if not delivered.

        The same value as the SQL `TraceStore.update_span` stores (through
        julianday() on SQLite, exact to the millisecond), for writers such as
        the legacy import that insert delivered spans.
        """
        if delivered_at is None:
            return None
        elapsed = datetime.fromisoformat(delivered_at) - datetime.fromisoformat(sent_at)
        return elapsed // timedelta(milliseconds=1)
