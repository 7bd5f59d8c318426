"""JSON columns written by another client: listings keep every row, doctor names the bad ones."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import peewee as pw
import pytest
from hypothesis import given
from hypothesis import strategies as st

import dorkstore
from dorkstore import AgentRegistry, InvalidJSON, RelayIndex, TraceStore, admin
from dorkstore.models import RelayMessage
from dorkstore.models.json_columns import decode_json, strict_json
from tests.helpers import FakeClock, run_cli, stdlib_sqlite

#: Stored texts that are not strict JSON, and what a record carries for them.
NOT_JSON = ["NaN", "[Infinity]", "{bad", "", "[1,]", "{'a': 1}", "0x1F", "\ufeff[1]", '"\t"']
#: Stored texts that are strict JSON.
JSON = ['{"a": [1, 2.5, null, true]}', ' "text" ', "1e999", '"\\ud800"', "[]", "\n[1]\r\n"]


def write(path: Path, sql: str, *rows: tuple[Any, ...]) -> None:
    """Run `sql` once per row through the standard sqlite3 module, in a child process."""
    stdlib_sqlite(path, f"conn.executemany({sql!r}, {list(rows)!r})")


def add_messages(path: Path, rows: list[tuple[str, Any, Any]]) -> None:
    """Insert (id, payload, metadata) messages of subject 's' as another client would."""
    write(
        path,
        "INSERT INTO relay_index (id, subject, endpoint_hash, payload, metadata, created_at)"
        " VALUES (?, 's', 'e', ?, ?, '2026-02-25T14:03:07.123Z')",
        *rows,
    )


def add_agents(path: Path, rows: list[tuple[str, Any]]) -> None:
    """Insert (id, capabilities_json) agents as another client would."""
    write(
        path,
        "INSERT INTO agents (id, name, runtime, project_path, capabilities_json, registered_at,"
        " updated_at) VALUES (?, 'n', 'r', ?, ?, '2026-02-25T14:03:07.123Z', 't')",
        *[(agent_id, f"/p/{agent_id}", capabilities) for agent_id, capabilities in rows],
    )


def json_findings() -> list[str]:
    return dict(admin.doctor())["json"]


@pytest.fixture
def relay(file_db: pw.Database) -> RelayIndex:
    return RelayIndex()


def test_messages_with_bad_json_are_listed_with_their_text(
    relay: RelayIndex, db_path: Path
) -> None:
    """query_messages and get_by_subject return every row; bad text comes back as InvalidJSON."""
    rows = [(f"B{n:02d}", text, None) for n, text in enumerate(NOT_JSON)]
    rows += [(f"G{n:02d}", text, text) for n, text in enumerate(JSON)]
    rows += [("M00", '{"ok": 1}', "[nope")]
    add_messages(db_path, rows)
    listed = {m.id: m for m in relay.query_messages(limit=100).messages}
    assert len(rows) == len(listed) == len(relay.get_by_subject("s"))
    for n, text in enumerate(NOT_JSON):
        payload = listed[f"B{n:02d}"].payload
        assert (InvalidJSON, text) == (type(payload), payload)
    assert {"ok": 1} == listed["M00"].payload
    assert InvalidJSON("[nope") == listed["M00"].metadata
    good = [m.payload for key, m in listed.items() if key.startswith("G")]
    assert not [payload for payload in good if isinstance(payload, InvalidJSON)]


def test_a_blob_is_not_json_text(relay: RelayIndex, db_path: Path) -> None:
    """A BLOB in a JSON column comes back as its bytes decoded, as InvalidJSON."""
    add_messages(db_path, [("B1", b'{"a": 1}', b"\xff[")])
    (message,) = relay.query_messages().messages
    assert (InvalidJSON('{"a": 1}'), InvalidJSON("\ufffd[")) == (message.payload, message.metadata)


def test_each_bad_value_is_logged_with_table_id_and_column(
    relay: RelayIndex, db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A WARNING on the dorkstore logger names the table, the row's id and the column."""
    add_messages(db_path, [("B1", "NaN", "{}"), ("B2", "{}", "{x")])
    with caplog.at_level(logging.WARNING, logger="dorkstore"):
        relay.query_messages()
    named = [" ".join(record.getMessage().split()[:3]) for record in caplog.records]
    assert ["relay_index B2 metadata", "relay_index B1 payload"] == named
    assert {"dorkstore"} == {record.name for record in caplog.records}


def test_trace_metadata_that_is_not_json(
    file_db: pw.Database, db_path: Path, clock: FakeClock
) -> None:
    """get_span and get_trace return spans whose metadata is not JSON, as InvalidJSON."""
    traces = TraceStore(clock=clock)
    traces.insert_span("M1", "T", "s", metadata={"hops": 1})
    clock.advance(seconds=1)
    traces.insert_span("M2", "T", "s")
    write(db_path, "UPDATE relay_traces SET metadata = ? WHERE message_id = ?", ("-Infinity", "M2"))
    assert [{"hops": 1}, InvalidJSON("-Infinity")] == [s.metadata for s in traces.get_trace("T")]
    span = traces.get_span("M2")
    assert span is not None
    assert InvalidJSON("-Infinity") == span.metadata


CAPABILITIES = [
    ("A1", '["code", "review"]', ("code", "review")),
    ("A2", '[1, "code", {"x": "review"}, null]', ("code",)),
    ("A3", '{"code": "review"}', ()),
    ("A4", '"code"', ()),
    ("A5", "code, review", ()),
    ("A6", '["code", NaN]', ()),
    ("A7", "", ()),
]


def test_agents_with_bad_capabilities_are_listed(file_db: pw.Database, db_path: Path) -> None:
    """list and list_with_health return every agent, keeping the strings of a JSON array."""
    add_agents(db_path, [(agent_id, text) for agent_id, text, _ in CAPABILITIES])
    registry = AgentRegistry()
    expected = {agent_id: kept for agent_id, _, kept in CAPABILITIES}
    assert expected == {agent.id: agent.capabilities for agent in registry.list()}
    assert expected == {agent.id: agent.capabilities for agent in registry.list_with_health()}


def test_the_capability_filter_skips_bad_text(file_db: pw.Database, db_path: Path) -> None:
    """Filtering by capability never fails on bad text and matches what records keep."""
    add_agents(db_path, [(agent_id, text) for agent_id, text, _ in CAPABILITIES])
    registry = AgentRegistry()
    assert ["A2", "A1"] == [agent.id for agent in registry.list(capability="code")]
    assert ["A1"] == [agent.id for agent in registry.list_with_health(capability="review")]
    assert [] == registry.list(capability="1")


def test_doctor_names_every_bad_json_value(file_db: pw.Database, db_path: Path) -> None:
    """The json check names exactly the bad rows as '<table> <id> <column>'."""
    add_messages(db_path, [("B1", "NaN", '{"ok": 1}'), ("B2", None, "{x"), ("G1", "[]", None)])
    add_agents(db_path, [(agent_id, text) for agent_id, text, _ in CAPABILITIES])
    traces = TraceStore()
    traces.insert_span("M1", "T", "s", metadata=[1])
    span = traces.insert_span("M2", "T", "s", metadata=[2])
    write(db_path, "UPDATE relay_traces SET metadata = 'nan' WHERE message_id = ?", ("M2",))
    assert [
        "relay_index B1 payload",
        "relay_index B2 metadata",
        f"relay_traces {span.id} metadata",
        *[f"agents {agent_id} capabilities_json" for agent_id, *_ in CAPABILITIES[1:]],
    ] == json_findings()


def test_doctor_names_ten_rows_and_counts_the_rest(file_db: pw.Database, db_path: Path) -> None:
    """Past ten rows, the json check says how many more it found."""
    add_messages(db_path, [(f"B{n:02d}", "x", "y") for n in range(12)])
    findings = json_findings()
    assert [f"relay_index B{n:02d} payload" for n in range(10)] + ["14 more"] == findings


def test_doctor_and_records_agree_on_what_is_json(file_db: pw.Database, db_path: Path) -> None:
    """Doctor names a value exactly when its record carries InvalidJSON."""
    also_bad = ["[1] \x0b", '"a\x00"', "01", "+1", ".5", "[1]//", "tru", '"\\x41"']
    texts = [*NOT_JSON, *also_bad, *JSON]
    add_messages(db_path, [(f"T{n:02d}", text, None) for n, text in enumerate(texts)])
    carried = {
        m.id for m in RelayIndex().query_messages(limit=100).messages
        if isinstance(m.payload, InvalidJSON)
    }  # fmt: skip
    bad_payloads = admin.BAD_JSON[(RelayMessage, "payload", False)]
    named = {row["id"] for row in bad_payloads.all(shown=100)}  # doctor names 10 at most
    assert {f"T{n:02d}" for n in range(len(NOT_JSON) + len(also_bad))} == carried == named


def test_doctor_names_a_span_whose_latency_was_not_stored(
    file_db: pw.Database, db_path: Path
) -> None:
    """A delivered_at written without latency_ms is a latency finding."""
    traces = TraceStore()
    traces.insert_span("M1", "T", "s")
    traces.update_span("M1", delivered_at="2026-02-25T14:03:08.000Z")
    span = traces.insert_span("M2", "T", "s")
    write(
        db_path,
        "UPDATE relay_traces SET delivered_at = ? WHERE message_id = ?",
        ("2026-02-25T14:03:09.000Z", "M2"),
    )
    assert [f"relay_traces {span.id} latency_ms"] == dict(admin.doctor())["latency"]


def test_the_command_line_doctor_reports_bad_json_and_exits_1(db_path: Path) -> None:
    """dorkstore doctor prints the json findings and exits 1."""
    dorkstore.init_db(db_path)
    dorkstore.close_db()
    add_messages(db_path, [("B1", "{x", None)])
    add_agents(db_path, [("A1", "[1]")])
    result = run_cli("--db", str(db_path), "doctor")
    assert 1 == result.exit_code
    assert "json: relay_index B1 payload; agents A1 capabilities_json\n" in result.stdout
    assert "latency: ok\n" in result.stdout


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
AROUND = st.sampled_from(["", " ", "\n", "\t "])


@given(
    st.one_of(
        st.builds(lambda v, a, b: a + json.dumps(v) + b, JSON_VALUES, AROUND, AROUND),
        st.builds(lambda v, junk: json.dumps(v) + junk, JSON_VALUES, st.text(max_size=3)),
        st.text(max_size=20),
    )
)
def test_decoding_a_column_agrees_with_the_strict_decoder(text: str) -> None:
    """The fast path gives what the strict decoder gives, and InvalidJSON where it refuses."""
    try:
        expected = strict_json(text)
    except ValueError:
        expected = InvalidJSON(text)
    logging.disable(logging.WARNING)
    try:
        decoded = decode_json(text, "t", "id", "c")
    finally:
        logging.disable(logging.NOTSET)
    assert type(expected) is type(decoded)
    # NaN (refused by both) aside, equal values; json.dumps tells -0.0 from 0.0 too.
    assert json.dumps(expected) == json.dumps(decoded)
