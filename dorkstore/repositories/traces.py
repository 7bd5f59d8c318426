"""TraceStore: delivery telemetry, one span per message, and the metrics over them."""

from __future__ import annotations

import math
from dataclasses import fields
from typing import Any

import peewee as pw

from dorkstore import validation as check
from dorkstore.backends import current, current_database, guarded
from dorkstore.models.relay import RelayTrace
from dorkstore.records import LEGACY_TRACE_STATUSES, TRACE_STATUSES, DeliveryMetrics, TraceSpan
from dorkstore.repositories.base import Repository
from dorkstore.statements import Statement, StatementFamily, assign, const, slot
from dorkstore.timestamps import format_timestamp, parse_timestamp

__all__ = ["TraceStore"]

_NAMES = tuple(field.name for field in fields(TraceSpan))
_COLUMNS = [RelayTrace._meta.columns[name] for name in _NAMES]
_BUDGET_REJECTIONS = ("hop_limit", "ttl_expired", "cycle_detected", "budget_exhausted")

INSERT_SPAN = Statement(lambda: RelayTrace.insert(assign(RelayTrace, _NAMES)))
UPDATE_SPAN = StatementFamily(
    lambda names: RelayTrace.update(assign(RelayTrace, names)).where(
        RelayTrace.message_id == slot("message_id")
    )
)
GET_SPAN = Statement(
    lambda: RelayTrace.select(*_COLUMNS).where(RelayTrace.message_id == slot("message_id")),
    into=RelayTrace.to_record,
)
GET_TRACE = Statement(
    lambda: (
        RelayTrace.select(*_COLUMNS)
        .where(RelayTrace.trace_id == slot("trace_id"))
        .order_by(RelayTrace.sent_at, RelayTrace.id)
    ),
    into=RelayTrace.to_record,
)


def _count_where(status: str) -> pw.ColumnBase:
    return pw.fn.SUM(pw.Case(None, [(RelayTrace.status == const(status), const(1))], const(0)))


TRACE_COUNTS = Statement(
    lambda: RelayTrace.select(
        pw.fn.COUNT(RelayTrace.id).alias("total"),
        _count_where("delivered").alias("delivered"),
        _count_where("failed").alias("failed"),
        _count_where("timeout").alias("timeout"),
        pw.fn.COUNT(RelayTrace.subject.distinct()).alias("subjects"),
    )
)


def _latency() -> pw.Node:
    return pw.Cast(current().latency_ms(RelayTrace.delivered_at, RelayTrace.sent_at), "INTEGER")


TRACE_LATENCY = Statement(
    lambda: RelayTrace.select(
        pw.fn.COUNT(_latency()).alias("timed"), pw.fn.AVG(_latency()).alias("average")
    ).where(RelayTrace.delivered_at.is_null(False))
)
TRACE_LATENCY_AT_RANK = Statement(
    lambda: (
        RelayTrace.select(_latency())
        .where(RelayTrace.delivered_at.is_null(False))
        .order_by(_latency())
        .limit(const(1))
        .offset(slot("offset"))
    )
)


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
        row = {
            "id": self._new_id(now),
            "message_id": check.text(message_id, "message_id"),
            "trace_id": check.text(trace_id, "trace_id"),
            "subject": check.text(subject, "subject"),
            "status": _trace_status(status),
            "sent_at": format_timestamp(now),
            "delivered_at": None,
            "processed_at": None,
            "error_message": None,
            "metadata": check.json_text(metadata, "metadata"),
        }
        INSERT_SPAN.run(**row)
        return RelayTrace.to_record(row)

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
        values: dict[str, Any] = {}
        if status is not None:
            values["status"] = _trace_status(status)
        if delivered_at is not None:
            values["delivered_at"] = parse_timestamp(delivered_at, "delivered_at", epoch_ms=True)
        if processed_at is not None:
            values["processed_at"] = parse_timestamp(processed_at, "processed_at", epoch_ms=True)
        if error is not None:
            values["error_message"] = check.text(error, "error", empty=True)
        if not values:
            return GET_SPAN.one(message_id=message_id) is not None
        return bool(UPDATE_SPAN[tuple(sorted(values))].run(message_id=message_id, **values))

    @guarded
    def get_span(self, message_id: str) -> TraceSpan | None:
        """Return a message's span, or None."""
        return GET_SPAN.one(message_id=check.text(message_id, "message_id"))

    @guarded
    def get_trace(self, trace_id: str) -> list[TraceSpan]:
        """Return a trace's spans ordered by sent_at, then id."""
        return GET_TRACE.all(trace_id=check.text(trace_id, "trace_id"))

    @guarded
    def get_metrics(self) -> DeliveryMetrics:
        """Return counts and the average and nearest-rank p95 delivery latency.

        The database computes the latencies: no span is loaded into Python.
        """
        with current_database().atomic():  # one snapshot for the three queries
            counts = TRACE_COUNTS.one() or {}
            timing = TRACE_LATENCY.one() or {}
            timed, average = timing.get("timed") or 0, timing.get("average")
            p95 = None
            if timed:
                rank = math.ceil(timed * 95 / 100)  # nearest rank, 1-based
                p95 = TRACE_LATENCY_AT_RANK.scalar(offset=rank - 1)
        return DeliveryMetrics(
            total_messages=int(counts.get("total") or 0),
            delivered_count=int(counts.get("delivered") or 0),
            failed_count=int(counts.get("failed") or 0),
            dead_lettered_count=int(counts.get("timeout") or 0),
            avg_delivery_latency_ms=None if average is None else float(average),
            p95_delivery_latency_ms=None if p95 is None else int(p95),
            active_endpoints=int(counts.get("subjects") or 0),
            budget_rejections=dict.fromkeys(_BUDGET_REJECTIONS, 0),
        )


def _trace_status(status: object) -> str:
    if isinstance(status, str):
        status = LEGACY_TRACE_STATUSES.get(status, status)
    return check.choice(status, "status", TRACE_STATUSES)
