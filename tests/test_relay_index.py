"""RelayIndex: the rebuildable Maildir index (SPEC sections 5 and 6)."""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import apsw
import peewee as pw
import pytest
from playhouse.test_utils import count_queries

import dorkstore
from dorkstore import (
    DatabaseError,
    DorkstoreError,
    IndexedMessage,
    RebuildResult,
    RefusedError,
    RelayIndex,
    ValidationError,
    backends,
)
from tests.helpers import FakeClock, inserts_fail

START = datetime(2026, 2, 25, 12, 0, tzinfo=UTC)


@pytest.fixture
def index(db: pw.SqliteDatabase, clock: FakeClock) -> RelayIndex:
    return RelayIndex(clock=clock)


def message(number: int, **fields: Any) -> IndexedMessage:
    """A message whose id sorts by `number` and whose created_at is `number` seconds in."""
    values: dict[str, Any] = {
        "id": f"01KJ{number:022d}",
        "subject": "relay.agent.a",
        "endpoint_hash": "ep1",
        "sender": "agent-a",
        "status": "pending",
        "expires_at": None,
        "payload": {"n": number},
        "metadata": None,
        "created_at": (START + timedelta(seconds=number)).isoformat(),
    }
    return IndexedMessage(**(values | fields))


def test_insert_message_defaults(index: RelayIndex) -> None:
    """status defaults to pending and created_at to now; JSON round-trips."""
    inserted = index.insert_message("M1", "s", "ep", payload={"a": [1, "x"]}, metadata={"k": None})
    assert (
        IndexedMessage(
            "M1",
            "s",
            "ep",
            None,
            "pending",
            None,
            {"a": [1, "x"]},
            {"k": None},
            "2026-02-25T14:03:07.123Z",
        )
        == inserted
    )
    assert inserted == index.get_message("M1")


def test_insert_message_replaces_by_id(index: RelayIndex) -> None:
    """Re-indexing a message is idempotent: one row, the latest values."""
    index.insert_message("M1", "s", "ep")
    index.insert_message("M1", "s2", "ep", status="delivered")
    again = index.insert_message("M1", "s2", "ep", status="delivered")
    assert again == index.get_message("M1")
    assert 1 == index.get_metrics().total_messages


def test_insert_message_refuses_bad_values(index: RelayIndex) -> None:
    """An unknown status or a naive timestamp is a ValidationError and writes nothing."""
    with pytest.raises(ValidationError, match="status"):
        index.insert_message("M1", "s", "ep", status="new")
    with pytest.raises(ValidationError, match="expires_at"):
        index.insert_message("M1", "s", "ep", expires_at="2026-01-01T00:00:00")
    assert index.get_message("M1") is None


def test_insert_many_in_one_transaction(index: RelayIndex) -> None:
    """insert_many stores every message; a bad one in the batch stores none."""
    assert 3 == index.insert_many(message(n) for n in range(3))
    assert 3 == index.get_metrics().total_messages
    with pytest.raises(ValidationError):
        index.insert_many([message(10), message(11, status="bogus")])
    assert index.get_message(message(10).id) is None


def test_insert_many_is_one_statement_per_batch(index: RelayIndex) -> None:
    """12,000 messages go in as three executemany batches, visible to query counting."""
    with count_queries() as counter:
        assert 12_000 == index.insert_many(message(n) for n in range(12_000))
    batches = [record.msg[1] for record in counter.get_queries() if "INSERT" in record.msg[0]]
    assert ["<5000 rows>", "<5000 rows>", "<2000 rows>"] == batches


def test_insert_many_refuses_a_single_message(index: RelayIndex) -> None:
    """A lone IndexedMessage is not an iterable of them."""
    with pytest.raises(ValidationError):
        index.insert_many(message(1))  # type: ignore[arg-type]


def test_update_status(index: RelayIndex) -> None:
    """update_status changes a message's status; False for a missing one."""
    index.insert_many([message(1)])
    assert index.update_status(message(1).id, "delivered") is True
    found = index.get_message(message(1).id)
    assert found is not None
    assert "delivered" == found.status
    assert index.update_status("missing", "delivered") is False
    with pytest.raises(ValidationError):
        index.update_status(message(1).id, "cur")


def test_get_by_subject_and_endpoint_are_newest_first(index: RelayIndex) -> None:
    """Lookups by subject and endpoint sort by created_at, then id, descending."""
    records = [message(1), message(2, subject="other"), message(3), message(4, endpoint_hash="ep2")]
    tie = message(5, created_at=records[2].created_at)
    index.insert_many([*records, tie])
    by_subject = [m.id for m in index.get_by_subject("relay.agent.a")]
    assert [records[3].id, tie.id, records[2].id, records[0].id] == by_subject
    by_endpoint = [m.id for m in index.get_by_endpoint("ep1")]
    assert [tie.id, records[2].id, records[1].id, records[0].id] == by_endpoint
    assert [] == index.get_by_subject("nothing")


def test_count_sender_in_window_is_strictly_after(index: RelayIndex) -> None:
    """Messages created exactly at window_start are not counted."""
    index.insert_many([message(n) for n in range(5)] + [message(9, sender="agent-b")])
    window_start = START + timedelta(seconds=2)
    assert 2 == index.count_sender_in_window("agent-a", window_start)
    assert 2 == index.count_sender_in_window("agent-a", window_start.isoformat())
    assert 0 == index.count_sender_in_window("nobody", window_start)


def test_count_pending_by_endpoint(index: RelayIndex) -> None:
    """Only pending messages of that endpoint count."""
    index.insert_many(
        [message(1), message(2), message(3, status="delivered"), message(4, endpoint_hash="ep2")]
    )
    assert (2, 1, 0) == (
        index.count_pending_by_endpoint("ep1"),
        index.count_pending_by_endpoint("ep2"),
        index.count_pending_by_endpoint("ep3"),
    )


def test_delete_expired_is_strictly_before_now(index: RelayIndex, clock: FakeClock) -> None:
    """expires_at before now goes; at now, later, or never stays."""
    now = clock.now
    index.insert_many(
        [
            message(1, expires_at=(now - timedelta(milliseconds=1)).isoformat()),
            message(2, expires_at=now.isoformat()),
            message(3, expires_at=(now + timedelta(hours=1)).isoformat()),
            message(4),
        ]
    )
    assert 1 == index.delete_expired()
    assert [message(n).id for n in (4, 3, 2)] == [m.id for m in index.query_messages().messages]


def test_get_metrics(index: RelayIndex) -> None:
    """Totals, statuses that occur, and subjects by count then name."""
    index.insert_many(
        [
            message(1, subject="b"),
            message(2, subject="b"),
            message(3, subject="a", status="failed"),
            message(4, subject="c"),
        ]
    )
    metrics = index.get_metrics()
    assert 4 == metrics.total_messages
    assert {"pending": 3, "failed": 1} == metrics.by_status
    assert [("b", 2), ("a", 1), ("c", 1)] == metrics.by_subject


def test_metrics_of_an_empty_index(index: RelayIndex) -> None:
    """An empty index has zero messages and no statuses or subjects."""
    metrics = index.get_metrics()
    assert (0, {}, []) == (metrics.total_messages, metrics.by_status, metrics.by_subject)


def test_is_wal_mode(file_db: pw.Database) -> None:
    """A file database runs in WAL mode."""
    assert RelayIndex().is_wal_mode() is True


def test_an_in_memory_database_is_not_in_wal_mode() -> None:
    """SQLite keeps an in-memory database's journal in memory: no WAL."""
    dorkstore.init_db(":memory:")
    try:
        assert RelayIndex().is_wal_mode() is False
    finally:
        dorkstore.close_db()


# --- pagination ----------------------------------------------------------------------

FILTERS = [
    {},
    {"subject": "relay.s1"},
    {"status": "delivered"},
    {"sender": "agent-2"},
    {"endpoint_hash": "ep-1"},
    {"endpoint_hash": "ep-1", "status": "pending"},
    {"subject": "relay.s0", "sender": "agent-1"},
]


@pytest.fixture
def many(index: RelayIndex) -> list[IndexedMessage]:
    """360 messages spread over subjects, statuses, senders and endpoints."""
    records = [
        message(
            n,
            subject=f"relay.s{n % 3}",
            status=("pending", "delivered", "failed")[n % 4 % 3],
            sender=f"agent-{n % 5}",
            endpoint_hash=f"ep-{n % 2}",
        )
        for n in range(360)
    ]
    index.insert_many(records)
    return records


@pytest.mark.parametrize("filters", FILTERS)
@pytest.mark.parametrize("limit", [1, 7, 50])
def test_walking_pages_yields_every_match_once(
    index: RelayIndex, many: list[IndexedMessage], filters: dict[str, str], limit: int
) -> None:
    """Every matching id appears exactly once, in descending id order."""
    expected = sorted(
        (m.id for m in many if all(getattr(m, k) == v for k, v in filters.items())), reverse=True
    )
    seen: list[str] = []
    cursor = None
    while True:
        page = index.query_messages(**filters, cursor=cursor, limit=limit)
        assert len(page.messages) <= limit
        seen += [m.id for m in page.messages]
        if page.next_cursor is None:
            break
        assert page.messages[-1].id == page.next_cursor
        cursor = page.next_cursor
    assert expected == seen


def test_last_page_exactly_full_has_no_cursor(index: RelayIndex) -> None:
    """When the rows end exactly at a page boundary, next_cursor is None."""
    index.insert_many([message(n) for n in range(10)])
    first = index.query_messages(limit=5)
    second = index.query_messages(limit=5, cursor=first.next_cursor)
    assert (5, 5, None) == (len(first.messages), len(second.messages), second.next_cursor)


def test_query_of_an_empty_index(index: RelayIndex) -> None:
    """No messages: one empty page."""
    page = index.query_messages()
    assert ([], None) == (page.messages, page.next_cursor)


@pytest.mark.parametrize(
    "arguments",
    [{"limit": 0}, {"limit": -5}, {"status": "new"}, {"cursor": 5}, {"subject": "a\x00"}],
)
def test_query_refuses_bad_arguments(index: RelayIndex, arguments: dict[str, object]) -> None:
    """A limit below 1, an unknown status or a malformed filter is a ValidationError."""
    with pytest.raises(ValidationError):
        index.query_messages(**arguments)  # type: ignore[arg-type]


def query_plan(db: pw.SqliteDatabase, index: RelayIndex, **filters: Any) -> str:
    """Run query_messages and return SQLite's plan for the statement it sent."""
    with count_queries() as counter:
        index.query_messages(**filters)
    (record,) = counter.get_queries()
    sql, params = record.msg
    return "\n".join(backends.current().query_plan(db, sql, tuple(params)))


@pytest.mark.parametrize(
    "filters",
    [
        {"subject": "relay.s1"},
        {"status": "delivered"},
        {"sender": "agent-2"},
        {"endpoint_hash": "ep-1"},
        {"endpoint_hash": "ep-1", "status": "pending"},
        {"subject": "relay.s1", "cursor": "01KJ0000000000000000000200"},
        {"endpoint_hash": "ep-1", "status": "pending", "cursor": "01KJ0000000000000000000200"},
    ],
)
def test_filtered_queries_use_an_index_that_yields_the_order(
    db: pw.SqliteDatabase, index: RelayIndex, many: list[IndexedMessage], filters: dict[str, str]
) -> None:
    """No full scan of relay_index and no temporary B-tree for ORDER BY id."""
    plan = query_plan(db, index, **filters)
    if isinstance(db, pw.PostgresqlDatabase):
        # A few hundred rows, not analysed: whether PostgreSQL sorts a handful of
        # rows is its choice. tests/test_postgres.py checks the order on real data.
        assert "Index" in plan, plan
        assert "Seq Scan" not in plan, plan
        return
    # Peewee aliases relay_index as t1; it is the query's only table.
    assert re.fullmatch(r"SEARCH t1 USING (COVERING )?INDEX \w+ \(.*\)", plan), plan
    assert "SCAN" not in plan, plan
    assert "TEMP B-TREE" not in plan, plan


#: Each query shape RelayIndex issues (ARCHITECTURE.md lists them) and the index that
#: serves it on SQLite. A shape's index must also yield its order.
SHAPES: dict[str, tuple[Callable[[RelayIndex], object], str]] = {
    "get_by_subject": (lambda i: i.get_by_subject("relay.s1"), "subject_created_at"),
    "get_by_endpoint": (lambda i: i.get_by_endpoint("ep-1"), "endpoint_hash_created_at"),
    "count_sender_in_window": (
        lambda i: i.count_sender_in_window("agent-2", START),
        "sender_created_at",
    ),
    "count_pending_by_endpoint": (
        lambda i: i.count_pending_by_endpoint("ep-1"),
        "endpoint_hash_status_id",
    ),
    "query_messages(subject)": (lambda i: i.query_messages(subject="relay.s1"), "subject_id"),
    "query_messages(endpoint_hash)": (
        lambda i: i.query_messages(endpoint_hash="ep-1"),
        "endpoint_hash_id",
    ),
    "query_messages(endpoint_hash, status)": (
        lambda i: i.query_messages(endpoint_hash="ep-1", status="pending"),
        "endpoint_hash_status_id",
    ),
    "query_messages(sender)": (lambda i: i.query_messages(sender="agent-2"), "sender_id"),
    "query_messages(status)": (lambda i: i.query_messages(status="pending"), "status_id"),
    "delete_expired": (lambda i: i.delete_expired(), "expires_at"),
}


def plans_of(db: pw.Database, call: Callable[[], object]) -> list[str]:
    """Return SQLite's plan of each statement `call` sends, one string each."""
    with count_queries() as counter:
        call()
    return [
        "\n".join(backends.current().query_plan(db, sql, tuple(params or ())))
        for sql, params in (record.msg for record in counter.get_queries())
        if not sql.startswith(("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE"))
    ]


@pytest.mark.sqlite_only
@pytest.mark.parametrize("shape", SHAPES)
def test_each_query_shape_is_served_by_its_index(
    db: pw.Database, index: RelayIndex, many: list[IndexedMessage], shape: str
) -> None:
    """Each shape searches the index named for it: no scan, no temporary B-tree."""
    call, name = SHAPES[shape]
    (plan,) = plans_of(db, lambda: call(index))
    pattern = rf"SEARCH (t1|relay_index) USING (COVERING )?INDEX relaymessage_{name} \(.*\)"
    assert re.fullmatch(pattern, plan), plan


@pytest.mark.sqlite_only
def test_every_index_serves_a_query_shape(db: pw.Database) -> None:
    """No index of relay_index is there for nothing: each serves a shape above."""
    names = {index.name for index in db.get_indexes("relay_index")}
    assert {f"relaymessage_{name}" for _, name in SHAPES.values()} == names


# --- rebuild -------------------------------------------------------------------------


def envelope(message_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": message_id,
        "subject": "relay.agent.x",
        "from": "agent-x",
        "replyTo": "relay.agent.y",
        "budget": {
            "hopCount": 1,
            "maxHops": 5,
            "ancestorChain": [],
            "ttl": 1_772_028_187_123,
            "callBudgetRemaining": 10,
        },
        "createdAt": "2026-02-25T14:03:07.123+00:00",
        "payload": {"text": "hi"},
    } | fields


def write(root: Path, endpoint: str, folder: str, name: str, content: object) -> Path:
    path = root / endpoint / folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


@pytest.fixture
def maildir(tmp_path: Path) -> Path:
    """A Maildir tree with every case of SPEC section 6."""
    root = tmp_path / "mailboxes"
    write(root, "ep1", "new", "M1.json", envelope("M1"))
    write(root, "ep1", "cur", "M2.json", envelope("M2", budget={"ttl": 0}))
    write(root, "ep1", "failed", "M3.json", envelope("M3", budget={}))
    write(root, "ep1", "failed", "M3.reason.json", {"reason": "hop limit"})
    write(root, "ep1", "tmp", "M4.json", envelope("M4"))
    write(root, "ep2", "new", "M5.json", envelope("M5", **{"from": None}))
    write(root, "ep2", "new", "notes.txt", "not an envelope")
    write(root, "ep2", "new", "M6.json", "{not json")
    write(root, "ep2", "new", "M7.json", envelope("OTHER"))
    write(
        root, "ep2", "new", "M8.json", {k: v for k, v in envelope("M8").items() if k != "subject"}
    )
    write(root, "ep2", "new", "M9.json", envelope("M9", createdAt="2026-02-25T14:03:07"))
    write(root, "ep2", "new", "M10.json", [1, 2])
    return root


def test_rebuild_indexes_the_maildir(index: RelayIndex, maildir: Path) -> None:
    """Statuses come from the folder, endpoint from the directory, expiry from budget.ttl."""
    assert 4 == index.rebuild(maildir)
    rows = {
        m.id: (m.endpoint_hash, m.status, m.sender, m.expires_at, m.created_at)
        for m in index.query_messages().messages
    }
    assert {
        "M1": ("ep1", "pending", "agent-x", "2026-02-25T14:03:07.123Z", "2026-02-25T14:03:07.123Z"),
        "M2": ("ep1", "delivered", "agent-x", None, "2026-02-25T14:03:07.123Z"),
        "M3": ("ep1", "failed", "agent-x", None, "2026-02-25T14:03:07.123Z"),
        "M5": ("ep2", "pending", None, "2026-02-25T14:03:07.123Z", "2026-02-25T14:03:07.123Z"),
    } == rows


def test_rebuild_reports_and_logs_each_skipped_file(
    index: RelayIndex, maildir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Malformed envelopes are skipped, reported and logged; ignored files are not."""
    reports: dict[str, str | None] = {}
    with caplog.at_level(logging.WARNING, logger="dorkstore"):
        index.rebuild(maildir, report=lambda path, reason: reports.__setitem__(path.name, reason))
    skipped = {name for name, reason in reports.items() if reason is not None}
    assert {"M6.json", "M7.json", "M8.json", "M9.json", "M10.json"} == skipped
    assert {"M1.json", "M2.json", "M3.json", "M5.json"} == set(reports) - skipped
    assert 5 == len(caplog.records)
    assert all(record.levelno == logging.WARNING for record in caplog.records)
    assert any(
        "M7.json" in record.getMessage() and "id mismatch" in record.getMessage()
        for record in caplog.records
    )


def test_rebuild_replaces_the_whole_index(index: RelayIndex, maildir: Path) -> None:
    """Rows not in the Maildir are gone after a rebuild, and a second rebuild changes nothing."""
    index.insert_many([message(1)])
    index.rebuild(maildir)
    assert index.get_message(message(1).id) is None
    before = index.query_messages().messages
    assert 4 == index.rebuild(maildir)
    assert before == index.query_messages().messages


def test_reconcile_says_what_changed(index: RelayIndex, maildir: Path) -> None:
    """reconcile returns what the index held, what it wrote and deleted, and what it holds."""
    assert RebuildResult(4, 0, 4, 0, dry_run=False) == index.reconcile(maildir)
    index.insert_many([message(1)])
    assert RebuildResult(4, 5, 0, 1, dry_run=False) == index.reconcile(maildir)
    assert RebuildResult(4, 4, 0, 0, dry_run=False) == index.reconcile(maildir)


def test_a_dry_run_changes_nothing(index: RelayIndex, maildir: Path) -> None:
    """A dry run counts what a rebuild would do and writes nothing."""
    index.insert_many([message(1)])
    before = index.query_messages().messages
    assert RebuildResult(4, 1, 4, 1, dry_run=True) == index.reconcile(maildir, dry_run=True)
    assert before == index.query_messages().messages


def test_reconcile_refuses_to_empty_the_index(index: RelayIndex, tmp_path: Path) -> None:
    """An empty tree over a non-empty index: RefusedError and the index intact; force empties it."""
    index.insert_many([message(n) for n in range(4)])
    (tmp_path / "empty").mkdir()
    with pytest.raises(RefusedError, match="would lose 4 of its 4"):
        index.reconcile(tmp_path / "empty")
    assert 4 == index.get_metrics().total_messages
    assert RebuildResult(0, 4, 0, 4, dry_run=False) == index.reconcile(
        tmp_path / "empty", force=True
    )
    assert 0 == index.get_metrics().total_messages


def test_reconcile_refuses_to_lose_more_than_half(index: RelayIndex, maildir: Path) -> None:
    """Losing 5 of 9 rows is refused; losing 4 of 8 (exactly half) is not."""
    assert 4 == index.rebuild(maildir)
    index.insert_many([message(n) for n in range(5)])
    with pytest.raises(RefusedError, match="would lose 5 of its 9"):
        index.reconcile(maildir)
    assert 9 == index.get_metrics().total_messages
    index.rebuild(maildir)
    index.insert_many([message(n) for n in range(4)])
    assert RebuildResult(4, 8, 0, 4, dry_run=False) == index.reconcile(maildir)


def test_rebuild_follows_an_empty_tree(index: RelayIndex, tmp_path: Path) -> None:
    """rebuild (SPEC: replaces the whole index) empties it for an empty tree, as before."""
    index.insert_many([message(n) for n in range(4)])
    (tmp_path / "empty").mkdir()
    assert 0 == index.rebuild(tmp_path / "empty")
    assert 0 == index.get_metrics().total_messages


def test_a_message_caught_mid_move_takes_its_later_status(
    index: RelayIndex, tmp_path: Path
) -> None:
    """The same id in new/ and cur/ is indexed once, as delivered."""
    write(tmp_path, "ep", "new", "M1.json", envelope("M1"))
    write(tmp_path, "ep", "cur", "M1.json", envelope("M1"))
    assert 1 == index.rebuild(tmp_path)
    found = index.get_message("M1")
    assert found is not None
    assert "delivered" == found.status


def test_a_failed_rebuild_keeps_the_previous_index(
    index: RelayIndex, maildir: Path, db: pw.Database
) -> None:
    """When writing the new index fails midway, the old index is intact."""
    index.insert_many([message(n) for n in range(3)])
    # The database itself refuses the last envelope's row, after the others were written.
    with (
        inserts_fail(db, "relay_index", "disk I/O error", only_id="M5"),
        pytest.raises(DorkstoreError, match="disk I/O error"),
    ):
        index.rebuild(maildir)
    assert [message(n).id for n in (2, 1, 0)] == [m.id for m in index.query_messages().messages]


def test_rebuild_of_an_unusable_root_name_is_refused(index: RelayIndex, tmp_path: Path) -> None:
    """A root name the filesystem refuses is a ValidationError, not an OSError."""
    with pytest.raises(ValidationError):
        index.rebuild(tmp_path / ("a" * 300))


def test_rebuild_of_a_missing_root_is_refused(index: RelayIndex, tmp_path: Path) -> None:
    """A root that is not a directory is a ValidationError, not an empty index."""
    index.insert_many([message(1)])
    with pytest.raises(ValidationError, match="not a directory"):
        index.rebuild(tmp_path / "nowhere")
    assert index.get_message(message(1).id) is not None


@pytest.mark.sqlite_only  # an APSW limit
def test_driver_errors_from_bulk_writes_are_dorkstore_errors(
    db: pw.SqliteDatabase, index: RelayIndex
) -> None:
    """A value SQLite refuses (over its length limit) is a DatabaseError, not an apsw error."""
    db.connection().limit(apsw.SQLITE_LIMIT_LENGTH, 10_000)
    with pytest.raises(DatabaseError):
        index.insert_message("M1", "s", "ep", payload="x" * 20_000)
    with pytest.raises(DatabaseError):
        index.insert_many([message(1, payload="x" * 20_000)])


def test_the_largest_limit_is_accepted_and_one_more_refused(index: RelayIndex) -> None:
    """limit goes up to 2**63 - 2 (the query asks for one more row)."""
    index.insert_many([message(1)])
    assert 1 == len(index.query_messages(limit=2**63 - 2).messages)
    with pytest.raises(ValidationError):
        index.query_messages(limit=2**63 - 1)


def test_rebuild_skips_a_fifo_without_blocking(index: RelayIndex, tmp_path: Path) -> None:
    """A FIFO named like an envelope is reported, never opened for a blocking read."""
    write(tmp_path, "ep", "new", "M1.json", envelope("M1"))
    os.mkfifo(tmp_path / "ep" / "new" / "M2.json")
    (tmp_path / "ep" / "new" / "M3.json").mkdir()
    reports: dict[str, str | None] = {}
    assert 1 == index.rebuild(tmp_path, report=lambda p, why: reports.__setitem__(p.name, why))
    assert {
        "M1.json": None,
        "M2.json": "unreadable: not a regular file",
        "M3.json": "unreadable: not a regular file",
    } == reports


def test_rebuild_reports_an_unreadable_folder(
    index: RelayIndex, maildir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder that cannot be listed is reported once and the rest is indexed."""
    real_scandir = os.scandir

    def scandir(path: Any) -> Any:
        if Path(path) == maildir / "ep1" / "cur":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    reports: dict[Path, str | None] = {}
    assert 3 == index.rebuild(maildir, report=reports.__setitem__)
    assert "unreadable: folder: Permission denied" == reports[maildir / "ep1" / "cur"]


def test_a_symlink_loop_skips_that_entry_alone(index: RelayIndex, tmp_path: Path) -> None:
    """A self-referencing symlink named like an envelope is skipped; its folder is indexed."""
    root = tmp_path / "mailboxes"
    for name in ("A1", "A2", "A3"):
        write(root, "ep1", "new", f"{name}.json", envelope(name))
    (root / "ep1" / "new" / "x.json").symlink_to(root / "ep1" / "new" / "x.json")
    reports: dict[Path, str | None] = {}
    assert 3 == index.rebuild(root, report=reports.__setitem__)
    assert {"A1", "A2", "A3"} == {m.id for m in index.get_by_endpoint("ep1")}
    assert (reports[root / "ep1" / "new" / "x.json"] or "").startswith("unreadable:")


def test_the_same_id_under_two_endpoints_is_reported(index: RelayIndex, tmp_path: Path) -> None:
    """One id in two endpoints: indexed once, from the first, and the other is reported."""
    root = tmp_path / "mailboxes"
    write(root, "ep1", "new", "D1.json", envelope("D1"))
    write(root, "ep2", "cur", "D1.json", envelope("D1"))
    reports: dict[Path, str | None] = {}
    assert 1 == index.rebuild(root, report=reports.__setitem__)
    found = index.get_message("D1")
    assert ("ep1", "pending") == (found.endpoint_hash, found.status) if found else None
    assert None is reports[root / "ep1" / "new" / "D1.json"]
    assert (reports[root / "ep2" / "cur" / "D1.json"] or "").startswith("duplicate id:")


def test_rows_written_during_the_scan_are_kept(index: RelayIndex, tmp_path: Path) -> None:
    """A message a relay writes (file, then row) while the tree is read survives the rebuild."""
    root = tmp_path / "mailboxes"
    for number in range(5):
        write(root, "ep1", "new", f"{message(number).id}.json", envelope(message(number).id))
    live = message(99)
    gone = message(98)
    index.insert_message(gone.id, gone.subject, "ep1", created_at=gone.created_at)

    def relay_writes_meanwhile(path: Path, reason: str | None) -> None:
        if path.name.startswith(message(0).id):  # the first file read
            write(root, "ep1", "new", f"{live.id}.json", envelope(live.id))
            index.insert_message(live.id, "relay.agent.x", "ep1", created_at=live.created_at)

    assert 6 == index.rebuild(root, report=relay_writes_meanwhile)
    ids = {m.id for m in index.get_by_endpoint("ep1")}
    assert {message(n).id for n in (*range(5), 99)} == ids  # 98 had no file: removed


def test_a_file_moved_during_the_scan_is_indexed_where_it_ends(
    index: RelayIndex, tmp_path: Path
) -> None:
    """A message moved from new/ to cur/ while the tree is read gets its later status."""
    root = tmp_path / "mailboxes"
    first = write(root, "ep1", "new", "M1.json", envelope("M1"))
    write(root, "ep1", "new", "M2.json", envelope("M2"))

    def deliver_m2_meanwhile(path: Path, reason: str | None) -> None:
        if path == first:
            moved = root / "ep1" / "cur" / "M2.json"
            moved.parent.mkdir(exist_ok=True)
            (root / "ep1" / "new" / "M2.json").rename(moved)

    assert 2 == index.rebuild(root, report=deliver_m2_meanwhile)
    found = index.get_message("M2")
    assert "delivered" == (found.status if found else None)
