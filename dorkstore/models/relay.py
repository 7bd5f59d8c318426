"""Relay tables: the rebuildable Maildir index and delivery traces."""

from __future__ import annotations

import peewee as pw

from dorkstore.models.base import BaseModel, enum_check, sql_default

__all__ = ["MESSAGE_STATUSES", "TRACE_STATUSES", "RelayMessage", "RelayTrace"]

MESSAGE_STATUSES = ("pending", "delivered", "failed")
TRACE_STATUSES = ("sent", "delivered", "failed", "timeout")


class RelayMessage(BaseModel):
    """One Maildir envelope, as indexed.

    The ``(column, id)`` indexes serve `query_messages`, which filters and then
    pages by id: SQLite picks an index that yields ``ORDER BY id`` only when
    ``id`` is declared in it (an implicit primary-key suffix loses to the
    ``(column, created_at)`` indexes and costs a sort). ``WITHOUT ROWID`` keeps
    the rows in one B-tree keyed by id.
    """

    id = pw.CharField(max_length=26, primary_key=True)
    subject = pw.TextField()
    endpoint_hash = pw.TextField()
    sender = pw.TextField(null=True)
    status = pw.TextField(
        default="pending",
        constraints=[sql_default("pending"), enum_check("status", MESSAGE_STATUSES)],
    )
    expires_at = pw.TextField(null=True, index=True)
    payload = pw.TextField(null=True)
    metadata = pw.TextField(null=True)
    created_at = pw.TextField()

    class Meta:
        table_name = "relay_index"
        without_rowid = True
        indexes = (
            (("subject", "created_at"), False),
            (("endpoint_hash", "created_at"), False),
            (("sender", "created_at"), False),
            (("subject", "id"), False),
            (("endpoint_hash", "id"), False),
            (("endpoint_hash", "status", "id"), False),
            (("sender", "id"), False),
            (("status", "id"), False),
        )


class RelayTrace(BaseModel):
    """A delivery span: one message's trip through the relay."""

    id = pw.CharField(max_length=26, primary_key=True)
    message_id = pw.TextField(unique=True)
    trace_id = pw.TextField(index=True)
    subject = pw.TextField(index=True)
    status = pw.TextField(index=True, constraints=[enum_check("status", TRACE_STATUSES)])
    sent_at = pw.TextField(index=True)
    delivered_at = pw.TextField(null=True)
    processed_at = pw.TextField(null=True)
    error_message = pw.TextField(null=True)
    metadata = pw.TextField(null=True)

    class Meta:
        table_name = "relay_traces"
