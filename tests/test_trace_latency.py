"""The stored span latency: filled on delivery, backfilled by migration 003, read by get_metrics."""

from __future__ import annotations

import math
import random
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import peewee as pw
import pytest
from playhouse.test_utils import count_queries

import dorkstore
from dorkstore import TraceStore, migrate
from dorkstore.backends import current
from dorkstore.models.relay import RelayTrace
from dorkstore.timestamps import format_timestamp
from tests.helpers import FakeClock, metrics_figures

BEFORE_003 = "002_index_bucket_minute"
STATUSES = ("sent", "delivered", "failed", "timeout")


def expected_metrics_figures(spans: list[tuple[str, str, str, str | None]]) -> tuple[object, ...]:
    """The figures of (status, subject, sent_at, delivered_at) spans, computed here.

    Latency is delivered_at - sent_at in milliseconds over spans that have both;
    p95 is the nearest rank: the ceil(0.95 n)-th smallest (SPEC section 5).
    """
    latencies = sorted(
        (datetime.fromisoformat(delivered) - datetime.fromisoformat(sent))
        // timedelta(milliseconds=1)
        for _, _, sent, delivered in spans
        if delivered is not None
    )
    statuses = [status for status, *_ in spans]
    return (
        len(spans),
        statuses.count("delivered"),
        statuses.count("failed"),
        statuses.count("timeout"),
        sum(latencies) / len(latencies) if latencies else None,
        latencies[math.ceil(len(latencies) * 95 / 100) - 1] if latencies else None,
        len({subject for _, subject, *_ in spans}),
    )


def stored_latency(db: pw.Database, message_id: str) -> object:
    return (
        RelayTrace.select(RelayTrace.latency_ms).where(RelayTrace.message_id == message_id).scalar()
    )


def random_spans(
    chance: random.Random, count: int, subjects: int
) -> list[tuple[str, str, str, str | None]]:
    """(status, subject, sent_at, delivered_at) spans; some delivered early, some never."""
    start = datetime(2026, 2, 25, 14, 3, 7, 123000, tzinfo=UTC)
    spans = []
    for _ in range(count):
        sent = start + timedelta(milliseconds=chance.randrange(10**9))
        delivered = None
        if chance.random() < 0.8:  # any status may carry delivered_at
            delivered = format_timestamp(sent + timedelta(milliseconds=chance.randint(-50, 5000)))
        status = chance.choice(STATUSES)
        spans.append(
            (status, f"relay.s{chance.randrange(subjects)}", format_timestamp(sent), delivered)
        )
    return spans


def record(
    traces: TraceStore,
    clock: FakeClock,
    spans: list[tuple[str, str, str, str | None]],
    prefix: str = "M",
) -> None:
    """Record each span through the repository: sent at the clock's time, then updated."""
    for number, (status, subject, sent, delivered) in enumerate(spans):
        clock.now = datetime.fromisoformat(sent)
        traces.insert_span(f"{prefix}{number}", "T", subject)
        traces.update_span(f"{prefix}{number}", status=status, delivered_at=delivered)


@pytest.fixture
def traces(db: pw.SqliteDatabase, clock: FakeClock) -> TraceStore:
    return TraceStore(clock=clock)


def test_update_span_stores_the_latency(
    traces: TraceStore, clock: FakeClock, db: pw.Database
) -> None:
    """Setting delivered_at stores delivered_at - sent_at; other updates keep it."""
    traces.insert_span("M1", "T", "s")
    assert stored_latency(db, "M1") is None
    traces.update_span("M1", delivered_at=clock.now + timedelta(milliseconds=1234))
    assert 1234 == stored_latency(db, "M1")
    traces.update_span("M1", status="delivered", processed_at=clock.now + timedelta(seconds=9))
    assert 1234 == stored_latency(db, "M1")
    traces.update_span("M1", delivered_at=clock.now - timedelta(milliseconds=7))
    assert -7 == stored_latency(db, "M1")


def test_epoch_milliseconds_give_the_same_latency(
    traces: TraceStore, clock: FakeClock, db: pw.Database
) -> None:
    """A delivered_at in epoch milliseconds is stored, and measured, like its ISO form."""
    traces.insert_span("M1", "T", "s")
    delivered = clock.now + timedelta(milliseconds=250)
    traces.update_span("M1", delivered_at=int(delivered.timestamp() * 1000))
    assert 250 == stored_latency(db, "M1")


def test_python_latency_equals_the_sql_latency(db: pw.Database) -> None:
    """RelayTrace.latency agrees with the backend's SQL, over years 1 to 9999, both signs."""
    chance = random.Random(3)
    last = datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)
    pairs = []
    for _ in range(2000):
        sent = datetime(1, 1, 1, tzinfo=UTC) + timedelta(
            milliseconds=chance.randrange(315_000_000_000_000)
        )
        scale = chance.choice((10, 10**3, 10**6, 10**9, 10**11))
        later = min(last, sent + timedelta(milliseconds=chance.randrange(scale)))
        pairs.append((format_timestamp(sent), format_timestamp(later)))
    pairs += [(later, sent) for sent, later in pairs[:300]]
    for sent, delivered in pairs:
        latency = current().latency_ms(pw.Value(delivered), pw.Value(sent))
        (in_sql,) = db.execute(pw.Select(columns=[pw.Cast(latency, "BIGINT")])).fetchone()
        assert in_sql == RelayTrace.latency(sent, delivered), (sent, delivered)
    assert RelayTrace.latency("2026-01-01T00:00:00.000Z", None) is None


@pytest.mark.parametrize(("count", "subjects"), [(1, 1), (7, 3), (300, 12), (400, 400)])
def test_metrics_equal_figures_computed_in_python(
    traces: TraceStore, clock: FakeClock, count: int, subjects: int
) -> None:
    """Average, nearest-rank p95, counts and subjects equal an independent computation."""
    spans = random_spans(random.Random(count), count, subjects)
    record(traces, clock, spans)
    assert expected_metrics_figures(spans) == metrics_figures(traces.get_metrics())


def test_many_subjects_are_counted_exactly(traces: TraceStore, clock: FakeClock) -> None:
    """Past the skip-scan's reach (a subject per few spans) the count is still exact."""
    spans = [("sent", f"s{n // 2}", format_timestamp(clock.now), None) for n in range(500)]
    record(traces, clock, spans)
    assert 250 == traces.get_metrics().active_endpoints


@pytest.mark.sqlite_only  # PostgreSQL's plans: tests/test_postgres.py
def test_metrics_read_indexes_not_the_table(
    traces: TraceStore, clock: FakeClock, db: pw.Database
) -> None:
    """No statement of get_metrics scans relay_traces or sorts; latencies come from their index."""
    record(traces, clock, random_spans(random.Random(1), 50, 5))
    plans = []
    for many_subjects in (False, True):
        if many_subjects:  # past the skip-scan: the count of distinct subjects scans an index
            many = [("sent", f"x{n}", format_timestamp(clock.now), None) for n in range(200)]
            record(traces, clock, many, prefix="X")
        with count_queries() as queries:
            traces.get_metrics()
        for sql, params in (entry.msg for entry in queries.get_queries()):
            plans.append((sql, current().query_plan(db, sql, tuple(params))))
    assert 7 == len(plans)  # counts, subjects, p95; then a second subjects statement
    for sql, plan in plans:
        # A bare SCAN reads a whole table; the skip-scan's own CTE ("subjects") is no table.
        assert not [s for s in plan if re.fullmatch(r"SCAN (?!subjects$)\w+", s)], (sql, plan)
        assert not [step for step in plan if "TEMP B-TREE" in step], (sql, plan)
        if "latency_ms" in sql:
            assert any("INDEX relaytrace_latency_ms" in step for step in plan), (sql, plan)
        if "subject" in sql:
            assert any("INDEX relaytrace_subject" in step for step in plan), (sql, plan)


def test_migration_003_backfills_delivered_spans(db_path: Path) -> None:
    """A database at 002 with delivered spans gets their latencies, and the same metrics."""
    db = dorkstore.init_db(db_path)
    assert [] != migrate.rollback(db, to=BEFORE_003)
    assert "latency_ms" not in [column.name for column in db.get_columns("relay_traces")]
    spans = random_spans(random.Random(9), 200, 20)
    for number, (status, subject, sent, delivered) in enumerate(spans):
        db.execute_sql(
            "INSERT INTO relay_traces (id, message_id, trace_id, subject, status, sent_at,"
            " delivered_at) VALUES (?, ?, 'T', ?, ?, ?, ?)",
            (f"S{number:04d}", f"M{number}", subject, status, sent, delivered),
        )
    dorkstore.close_db()

    db = dorkstore.init_db(db_path)
    try:
        assert migrate.available_migrations() == migrate.applied_migrations(db)
        for number, (_, _, sent, delivered) in enumerate(spans):
            assert RelayTrace.latency(sent, delivered) == stored_latency(db, f"M{number}")
        assert expected_metrics_figures(spans) == metrics_figures(TraceStore().get_metrics())
    finally:
        dorkstore.close_db()
