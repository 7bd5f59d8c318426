"""TraceStore: delivery spans and metrics (SPEC section 5)."""

from __future__ import annotations

from datetime import timedelta

import peewee as pw
import pytest
from playhouse.test_utils import count_queries

from dorkstore import ConflictError, TraceStore, ValidationError
from tests.helpers import FakeClock, metrics_figures


@pytest.fixture
def traces(db: pw.SqliteDatabase, clock: FakeClock) -> TraceStore:
    return TraceStore(clock=clock)


def test_insert_span_is_sent_now(traces: TraceStore) -> None:
    """A new span is 'sent' at the clock's now, with an id and decoded metadata."""
    span = traces.insert_span("M1", "T1", "relay.a", metadata={"hops": [1, 2]})
    assert ("sent", "2026-02-25T14:03:07.123Z", {"hops": [1, 2]}, 26) == (
        span.status,
        span.sent_at,
        span.metadata,
        len(span.id),
    )
    assert span == traces.get_span("M1")


@pytest.mark.parametrize(
    ("legacy", "current"),
    [("pending", "sent"), ("processed", "delivered"), ("dead_lettered", "timeout")],
)
def test_legacy_status_names_are_mapped(traces: TraceStore, legacy: str, current: str) -> None:
    """Older callers' status names are stored under today's names, on insert and update."""
    assert current == traces.insert_span("M1", "T", "s", status=legacy).status
    traces.insert_span("M2", "T", "s")
    traces.update_span("M2", status=legacy)
    span = traces.get_span("M2")
    assert span is not None
    assert current == span.status


def test_unknown_status_is_refused(traces: TraceStore) -> None:
    """A status that is neither current nor legacy is a ValidationError."""
    with pytest.raises(ValidationError, match="status"):
        traces.insert_span("M1", "T", "s", status="lost")


def test_duplicate_message_id_is_a_conflict(traces: TraceStore) -> None:
    """One span per message."""
    traces.insert_span("M1", "T", "s")
    with pytest.raises(ConflictError):
        traces.insert_span("M1", "T2", "s2")


def test_update_span_sets_fields_and_accepts_epoch_ms(traces: TraceStore, clock: FakeClock) -> None:
    """Timestamps may be ISO strings or epoch milliseconds; error sets error_message."""
    traces.insert_span("M1", "T", "s")
    delivered = clock.now + timedelta(milliseconds=250)
    assert traces.update_span(
        "M1",
        status="failed",
        delivered_at=int(delivered.timestamp() * 1000),
        processed_at="2026-02-25T15:03:08+01:00",
        error="boom",
    )
    span = traces.get_span("M1")
    assert span is not None
    assert ("failed", "2026-02-25T14:03:07.373Z", "2026-02-25T14:03:08.000Z", "boom") == (
        span.status,
        span.delivered_at,
        span.processed_at,
        span.error_message,
    )


def test_update_span_of_a_missing_message_is_false(traces: TraceStore) -> None:
    """A missing span is False, with or without fields."""
    assert traces.update_span("nope", status="delivered") is False
    assert traces.update_span("nope") is False


def test_update_span_without_fields_keeps_the_span(traces: TraceStore) -> None:
    """Nothing to change: True for an existing span, and it is unchanged."""
    span = traces.insert_span("M1", "T", "s")
    assert traces.update_span("M1") is True
    assert span == traces.get_span("M1")


def test_get_trace_orders_by_sent_at_then_id(traces: TraceStore, clock: FakeClock) -> None:
    """Spans of one trace come back by sent_at, ties by id."""
    clock.advance(seconds=5)
    late = traces.insert_span("M1", "T", "s")
    clock.advance(seconds=-5)
    early = [traces.insert_span(f"M{n}", "T", "s") for n in (2, 3)]
    traces.insert_span("M9", "OTHER", "s")
    assert [*sorted(early, key=lambda span: span.id), late] == traces.get_trace("T")
    assert [] == traces.get_trace("missing")


def test_metrics_of_no_spans(traces: TraceStore) -> None:
    """No spans: zero counts and no latency."""
    metrics = traces.get_metrics()
    assert (0, 0, 0, 0, None, None, 0) == metrics_figures(metrics)
    assert {"hop_limit": 0, "ttl_expired": 0, "cycle_detected": 0, "budget_exhausted": 0} == (
        metrics.budget_rejections
    )


def test_metrics_counts_and_nearest_rank_latency(traces: TraceStore, clock: FakeClock) -> None:
    """Average and nearest-rank p95 over spans with both timestamps; counts by status."""
    latencies = [10 * n for n in range(1, 21)]  # 10 .. 200 ms: p95 is the 19th, 190
    for n, latency in enumerate(latencies):
        span = traces.insert_span(f"D{n}", "T", f"subject-{n % 3}")
        traces.update_span(
            span.message_id,
            status="delivered",
            delivered_at=clock.now + timedelta(milliseconds=latency),
        )
    traces.insert_span("F1", "T", "subject-0", status="failed")
    traces.insert_span("X1", "T", "subject-9", status="dead_lettered")
    traces.insert_span("S1", "T", "subject-0")
    assert (23, 20, 1, 1, 105.0, 190, 4) == metrics_figures(traces.get_metrics())


@pytest.mark.parametrize(
    ("count", "rank"), [(1, 1), (2, 2), (19, 19), (20, 19), (21, 20), (100, 95), (101, 96)]
)
def test_p95_is_the_nearest_rank(
    traces: TraceStore, clock: FakeClock, count: int, rank: int
) -> None:
    """p95 is the ceil(0.95 * n)-th smallest latency."""
    for n in range(count):
        traces.insert_span(f"M{n}", "T", "s")
        traces.update_span(f"M{n}", delivered_at=clock.now + timedelta(milliseconds=n + 1))
    assert rank == traces.get_metrics().p95_delivery_latency_ms


def test_metrics_are_computed_by_the_database(traces: TraceStore, clock: FakeClock) -> None:
    """get_metrics sends a fixed number of queries and fetches no span rows."""
    for n in range(50):
        traces.insert_span(f"M{n}", "T", "s")
        traces.update_span(f"M{n}", delivered_at=clock.now + timedelta(milliseconds=n))
    with count_queries() as counter:
        traces.get_metrics()
    statements = [record.msg[0] for record in counter.get_queries()]
    assert 3 == len(statements)
    assert all("COUNT" in sql or "LIMIT" in sql for sql in statements)
