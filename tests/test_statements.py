"""Statements: built once, values only through slots, bound by name, converted by fields."""

from __future__ import annotations

from typing import Any

import peewee as pw
import pytest

import dorkstore
from dorkstore.models import PulseSchedule, RelayMessage
from dorkstore.statements import Statement, StatementFamily, assign, const, slot

PINNED_ID = "01KJ0000000000000000000001"
#: endpoint_hash and created_at are NOT NULL: running this fails in the database.
INCOMPLETE_INSERT = Statement(
    lambda: RelayMessage.insert(assign(RelayMessage, ["id", "subject", "status"]))
)
SOME_COLUMNS = ("status", "created_at", "endpoint_hash", "subject", "id")
CLEAN = StatementFamily(lambda table: pw.SQL(f'DELETE FROM "{table}"'))


def test_a_builder_that_captures_a_local_fails_at_once() -> None:
    """A lookup whose builder closes over a call's value is refused, not frozen."""
    wanted = "/a"
    with pytest.raises(TypeError, match="captures wanted"):
        Statement(lambda: RelayMessage.select().where(RelayMessage.id == wanted))


def test_a_value_that_is_not_a_slot_fails_at_first_use(db: pw.Database) -> None:
    """A value reached some other way than a slot (a global here) is refused when built."""
    statement = Statement(lambda: RelayMessage.select().where(RelayMessage.id == PINNED_ID))
    with pytest.raises(TypeError, match="neither slot\\(\\) nor const\\(\\)"):
        statement.one()


def test_each_call_gets_its_own_values(db: pw.Database) -> None:
    """The trap that was: a lookup asked for /b after /a answers /b."""
    registry = dorkstore.AgentRegistry()
    registry.insert("a", "claude", "/a")
    registry.insert("b", "claude", "/b")
    found = [registry.get_by_path(path) for path in ("/a", "/b", "/nowhere")]
    assert ["/a", "/b", None] == [agent.project_path if agent else None for agent in found]


def test_constants_are_shared_by_every_call(db: pw.Database) -> None:
    """const() values are parameters too, the same on every call."""
    statement = Statement(lambda: PulseSchedule.select(const(7).alias("seven")))
    dorkstore.PulseStore().create_schedule("n", "p", "* * * * *")
    assert 7 == statement.scalar()


def test_fields_convert_values_both_ways(db: pw.Database) -> None:
    """A BooleanField's db_value and python_value apply: stored 0/1, read back as bool."""
    store = dorkstore.PulseStore()
    store.create_schedule("on", "p", "* * * * *", enabled=True)
    store.create_schedule("off", "p", "* * * * *", enabled=False)
    enabled = Statement(
        lambda: PulseSchedule.select(PulseSchedule.name, PulseSchedule.enabled).where(
            PulseSchedule.enabled == slot("enabled")
        )
    )
    assert [{"name": "off", "enabled": False}] == enabled.all(enabled=False)
    assert [(0,), (1,)] == [
        tuple(row) for row in db.execute_sql("SELECT enabled FROM pulse_schedules ORDER BY 1")
    ]


def test_many_binds_by_name_not_by_position(db: pw.Database) -> None:
    """Rows given as mappings in any key order land in the right columns."""
    insert = Statement(lambda: RelayMessage.insert(assign(RelayMessage, SOME_COLUMNS)))
    rows: list[dict[str, Any]] = [
        {"subject": "s1", "id": "m1", "endpoint_hash": "e1", "status": "pending",
         "created_at": "2026-01-01T00:00:00.000Z"},
        {"endpoint_hash": "e2", "created_at": "2026-01-02T00:00:00.000Z", "id": "m2",
         "status": "failed", "subject": "s2"},
    ]  # fmt: skip
    assert 2 == insert.many(rows)
    stored = db.execute_sql(
        "SELECT id, subject, endpoint_hash, status FROM relay_index ORDER BY id"
    )
    assert [("m1", "s1", "e1", "pending"), ("m2", "s2", "e2", "failed")] == [
        tuple(row) for row in stored
    ]


def test_statements_run_through_peewee_hooks_and_errors(db: pw.Database) -> None:
    """Query hooks see each statement, and driver errors arrive as Peewee's."""
    seen: list[str] = []
    db.query_hooks.append(lambda event: seen.append(event.sql))
    try:
        dorkstore.RelayIndex().get_message("nope")
        with pytest.raises(pw.IntegrityError):
            INCOMPLETE_INSERT.run(id="x", subject="s", status="pending")
    finally:
        db.query_hooks.clear()
    assert any('FROM "relay_index"' in sql for sql in seen)
    assert any(sql.startswith('INSERT INTO "relay_index"') for sql in seen)


def test_a_family_builds_one_statement_per_shape(db: pw.Database) -> None:
    """The same shape is the same statement object; another shape is another."""
    assert CLEAN["relay_index"] is CLEAN["relay_index"]
    assert CLEAN["relay_index"] is not CLEAN["agents"]
    assert 'DELETE FROM "agents"' == CLEAN["agents"].sql()
