"""TraceStore: delivery telemetry, one span per message, and the metrics over them."""

from __future__ import annotations

import math
from dataclasses import fields
from datetime import datetime
from typing import Any

import peewee as pw

from dorkstore import validation as check
from dorkstore.backends import current, current_database, guarded
from dorkstore.models.relay import RelayTrace
from dorkstore.records import (
    LEGACY_TRACE_STATUSES,
    TRACE_STATUSES,
    DeliveryMetrics,
    LegacyTraceStatus,
    TraceSpan,
    TraceStatus,
)
from dorkstore.repositories.base import Repository
from dorkstore.statements import Statement, StatementFamily, assign, const, slot
from dorkstore.timestamps import format_timestamp, parse_timestamp

__all__ = ["TraceStore"]

_NAMES = tuple(field.name for field in fields(TraceSpan))
_COLUMNS = [RelayTrace._meta.columns[name] for name in _NAMES]
_BUDGET_REJECTIONS = ("hop_limit", "ttl_expired", "cycle_detected", "budget_exhausted")

#: Distinct subjects are counted by skip-scan (one index probe per subject)
#: while each subject has this many spans or more on average; below that, a
#: scan of the subject index (one step per span) is cheaper.
SKIP_SCAN_SPANS_PER_SUBJECT = 100
#: The fewest subjects a skip-scan looks for before giving way to the scan.
MIN_SKIP_SCAN = 100


def _latency(delivered_at: pw.Node) -> pw.ColumnBase:
    """Return delivered_at - sent_at in whole milliseconds, as stored in latency_ms."""
    return pw.Cast(current().latency_ms(delivered_at, RelayTrace.sent_at), "BIGINT")


def _update_span(names: tuple[str, ...]) -> pw.Node:
    values: dict[pw.Field, pw.Node] = dict(assign(RelayTrace, names))
    if "delivered_at" in names:
        # From the new delivered_at (the column still holds the old one in this UPDATE).
        values[RelayTrace.latency_ms] = _latency(slot("delivered_at", RelayTrace.delivered_at))
    return RelayTrace.update(values).where(RelayTrace.message_id == slot("message_id"))


INSERT_SPAN = Statement(lambda: RelayTrace.insert(assign(RelayTrace, _NAMES)))
UPDATE_SPAN = StatementFamily(_update_span)
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


def _count(status: str | None = None) -> pw.ModelSelect[RelayTrace]:
    """Return a subquery counting the spans (of one status) through an index."""
    counted = RelayTrace.alias("counted")
    query = counted.select(pw.fn.COUNT(pw.SQL("*")))
    return query if status is None else query.where(counted.status == const(status))


#: Every count in one statement, one snapshot: the latencies through their index,
#: the spans (SQLite counts a whole index by its pages) and each status but
#: 'delivered' through the status index. Delivered spans are the rest: counting
#: them would step through most of the index.
TRACE_COUNTS = Statement(
    lambda: RelayTrace.select(
        pw.fn.COUNT(RelayTrace.latency_ms).alias("timed"),
        pw.fn.AVG(RelayTrace.latency_ms).alias("average"),
        pw.Alias(_count(), "total"),
        pw.Alias(_count("sent"), "sent"),
        pw.Alias(_count("failed"), "failed"),
        pw.Alias(_count("timeout"), "timeout"),
    ).where(RelayTrace.latency_ms.is_null(False))
)


def _skip_scan_subjects() -> pw.Node:
    """Count distinct subjects by jumping from each to the next in the index, up to "cap"."""
    later = RelayTrace.alias("later")
    subjects = RelayTrace.select(pw.fn.MIN(RelayTrace.subject), const(1)).cte(
        "subjects", recursive=True, columns=("subject", "depth")
    )
    following = later.select(pw.fn.MIN(later.subject)).where(later.subject > subjects.c.subject)
    step = pw.Select((subjects,), (following, subjects.c.depth + const(1))).where(
        subjects.c.subject.is_null(False) & (subjects.c.depth < slot("cap"))
    )
    walk = subjects.union_all(step)
    return walk.select_from(pw.fn.COUNT(walk.c.subject).alias("subjects"))


#: The number of distinct subjects, or "cap" when there are at least that many.
COUNT_SUBJECTS_UP_TO = Statement(_skip_scan_subjects)
COUNT_SUBJECTS = Statement(lambda: RelayTrace.select(pw.fn.COUNT(RelayTrace.subject.distinct())))
#: The latency "offset" places below the largest, read from the top of its index.
LATENCY_FROM_TOP = Statement(
    lambda: (
        RelayTrace.select(RelayTrace.latency_ms)
        .where(RelayTrace.latency_ms.is_null(False))
        .order_by(RelayTrace.latency_ms.desc())
        .limit(const(1))
        .offset(slot("offset"))
    )
)


#: Spans whose stored latency_ms is not delivered_at - sent_at (written by another
#: client, say), the first "shown" by id, each with how many there are in all.
WRONG_LATENCIES = Statement(
    lambda: (
        RelayTrace.select(RelayTrace.id, pw.fn.COUNT(pw.SQL("*")).over().alias("found"))
        .where(
            (RelayTrace.latency_ms.is_null() != _latency(RelayTrace.delivered_at).is_null())
            | (RelayTrace.latency_ms != _latency(RelayTrace.delivered_at))
        )
        .order_by(RelayTrace.id)
        .limit(slot("shown"))
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
        status: TraceStatus | LegacyTraceStatus = "sent",
        metadata: Any = None,
    ) -> TraceSpan:
        """Record that a message was sent (now). Raises ConflictError if it has a span.

        An older status name is stored as its `TraceStatus` (see `LegacyTraceStatus`).
        """
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
        return RelayTrace.to_record([row[name] for name in _NAMES])

    @guarded
    def update_span(
        self,
        message_id: str,
        *,
        status: TraceStatus | LegacyTraceStatus | None = None,
        delivered_at: datetime | str | int | None = None,
        processed_at: datetime | str | int | None = None,
        error: str | None = None,
    ) -> bool:
        """Set the given fields (None keeps a field); False if the message has no span.

        Timestamps may also be Unix epoch milliseconds (an int), as older
        callers send them; `error` sets error_message.
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

        The database computes them from indexes, the stored latencies among
        them: no span is loaded into Python, and no statement reads the table.
        """
        with current_database().atomic():  # one snapshot for the three queries
            counts = TRACE_COUNTS.one() or {}
            total = int(counts.get("total") or 0)
            subjects = _count_subjects(total)
            timed, average = int(counts.get("timed") or 0), counts.get("average")
            p95 = None
            if timed:
                rank = math.ceil(timed * 95 / 100)  # nearest rank, 1-based
                # From the top, the nearer end: rank - 1 steps up from the bottom
                # would be 95% of the index, timed - rank down from the top is 5%.
                p95 = LATENCY_FROM_TOP.scalar(offset=timed - rank)
        others = {status: int(counts.get(status) or 0) for status in ("sent", "failed", "timeout")}
        return DeliveryMetrics(
            total_messages=total,
            # The CHECK on status allows only the four statuses.
            delivered_count=total - sum(others.values()),
            failed_count=others["failed"],
            dead_lettered_count=others["timeout"],
            avg_delivery_latency_ms=None if average is None else float(average),
            p95_delivery_latency_ms=None if p95 is None else int(p95),
            active_endpoints=subjects,
            budget_rejections=dict.fromkeys(_BUDGET_REJECTIONS, 0),
        )


def _count_subjects(spans: int) -> int:
    """Count the distinct subjects of `spans` spans: by skip-scan, or by scan when there are many.

    Past one subject in SKIP_SCAN_SPANS_PER_SUBJECT spans the skip-scan stops
    and the scan counts: at worst the probes made cost a tenth of the scan.
    """
    cap = max(MIN_SKIP_SCAN, spans // SKIP_SCAN_SPANS_PER_SUBJECT)
    found = int(COUNT_SUBJECTS_UP_TO.scalar(cap=cap) or 0)
    return found if found < cap else int(COUNT_SUBJECTS.scalar() or 0)


def _trace_status(status: object) -> TraceStatus:
    if isinstance(status, str):
        status = LEGACY_TRACE_STATUSES.get(status, status)
    return check.choice(status, "status", TRACE_STATUSES)
