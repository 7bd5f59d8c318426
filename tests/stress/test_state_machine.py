"""Random operations on every repository, checked against a simple model of what is stored."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    precondition,
    rule,
)

import dorkstore
from dorkstore import ConflictError, NotFoundError, ValidationError
from tests.helpers import FakeClock

pytestmark = pytest.mark.stress

# Text that is valid, and text that is not (empty, NUL, a lone surrogate).
GOOD_TEXT = st.text(
    st.characters(codec="utf-8", exclude_characters="\x00/"), min_size=1, max_size=8
)
BAD_TEXT = st.sampled_from(["", "a\x00b", "\ud800", 7, None])
TEXT = st.one_of(GOOD_TEXT, GOOD_TEXT, GOOD_TEXT, BAD_TEXT)
LIMIT = 3


def valid(value: object) -> bool:
    """Whether the repositories accept `value` as a non-empty text."""
    if not isinstance(value, str) or not value or "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class Repositories(RuleBasedStateMachine):
    """Drives all six repositories, moving the clock between calls."""

    schedules = Bundle("schedules")
    runs = Bundle("runs")
    agents = Bundle("agents")

    def __init__(self) -> None:
        super().__init__()
        dorkstore.init_db(":memory:")
        clock = FakeClock(datetime(2026, 2, 25, 14, 3, 7, tzinfo=UTC))
        self.clock = clock
        self.pulse = dorkstore.PulseStore(clock=clock)
        self.relay = dorkstore.RelayIndex(clock=clock)
        self.mesh = dorkstore.AgentRegistry(clock=clock)
        self.denials = dorkstore.DenialList(clock=clock)
        self.budgets = dorkstore.BudgetMapper(clock=clock)
        self.traces = dorkstore.TraceStore(clock=clock)
        # The model: what the database should hold.
        self.model_schedules: dict[str, str] = {}  # id -> name
        self.model_runs: dict[str, tuple[str, str]] = {}  # id -> (schedule id, status)
        self.model_messages: dict[str, str] = {}  # id -> status
        self.model_agents: dict[str, str] = {}  # id -> project_path
        self.model_denied: set[str] = set()
        self.model_calls: list[int] = []  # the minute of each allowed budget call
        self.model_spans: dict[str, str] = {}  # message id -> status

    def teardown(self) -> None:
        (result,) = dorkstore.database.execute_sql("PRAGMA integrity_check").fetchone()
        assert "ok" == result
        assert [] == dorkstore.database.execute_sql("PRAGMA foreign_key_check").fetchall()
        dorkstore.close_db()

    # --- pulse ---------------------------------------------------------------------------

    @rule(target=schedules, name=TEXT, status=st.sampled_from(["active", "paused", "gone"]))
    def create_schedule(self, name: Any, status: str) -> Any:
        if not valid(name) or status == "gone":
            with pytest.raises(ValidationError):
                self.pulse.create_schedule(name, "p", "* * * * *", status=status)
            return "missing-schedule"
        schedule = self.pulse.create_schedule(name, "p", "* * * * *", status=status)
        self.model_schedules[schedule.id] = name
        return schedule.id

    @rule(schedule=consumes(schedules))
    def delete_schedule(self, schedule: str) -> None:
        assert (schedule in self.model_schedules) == self.pulse.delete_schedule(schedule)
        self.model_schedules.pop(schedule, None)
        self.model_runs = {k: v for k, v in self.model_runs.items() if v[0] != schedule}

    @rule(target=runs, schedule=schedules, trigger=st.sampled_from(["manual", "agent", "cron"]))
    def create_run(self, schedule: str, trigger: str) -> Any:
        if trigger == "cron":
            with pytest.raises(ValidationError):
                self.pulse.create_run(schedule, trigger)
            return "missing-run"
        if schedule not in self.model_schedules:
            with pytest.raises(NotFoundError):
                self.pulse.create_run(schedule, trigger)
            return "missing-run"
        run = self.pulse.create_run(schedule, trigger)
        self.model_runs[run.id] = (schedule, "running")
        return run.id

    @rule(run=runs, status=st.sampled_from(["completed", "failed", "done"]))
    def update_run(self, run: str, status: str) -> None:
        if status == "done":
            with pytest.raises(ValidationError):
                self.pulse.update_run(run, status=status)
            return
        updated = self.pulse.update_run(run, status=status)
        assert (run in self.model_runs) == (updated is not None)
        if updated is not None:
            self.model_runs[run] = (self.model_runs[run][0], status)

    @rule(schedule=schedules, keep=st.integers(-1, 4))
    def prune_runs(self, schedule: str, keep: int) -> None:
        if keep < 0:
            with pytest.raises(ValidationError):
                self.pulse.prune_runs(schedule, keep)
            return
        mine = sorted((r for r, (s, _) in self.model_runs.items() if s == schedule), reverse=True)
        # ULIDs start with their creation time, so newest first is id descending.
        assert len(mine[keep:]) == self.pulse.prune_runs(schedule, keep)
        for run in mine[keep:]:
            del self.model_runs[run]

    @rule()
    def mark_running_as_failed(self) -> None:
        running = [r for r, (_, status) in self.model_runs.items() if status == "running"]
        assert len(running) == self.pulse.mark_running_as_failed()
        for run in running:
            self.model_runs[run] = (self.model_runs[run][0], "failed")

    # --- relay ---------------------------------------------------------------------------

    @rule(number=st.integers(0, 20), status=st.sampled_from(["pending", "delivered", "new"]))
    def insert_message(self, number: int, status: str) -> None:
        message_id = f"M{number:02d}"
        if status == "new":
            with pytest.raises(ValidationError):
                self.relay.insert_message(message_id, "s", "e", status=status)
            return
        self.relay.insert_message(message_id, "s", "e", status=status)
        self.model_messages[message_id] = status

    @rule(number=st.integers(0, 20), status=st.sampled_from(["failed", "delivered"]))
    def update_message(self, number: int, status: str) -> None:
        message_id = f"M{number:02d}"
        assert (message_id in self.model_messages) == self.relay.update_status(message_id, status)
        if message_id in self.model_messages:
            self.model_messages[message_id] = status

    # --- mesh ----------------------------------------------------------------------------

    @rule(target=agents, path=TEXT)
    def insert_agent(self, path: Any) -> Any:
        if not valid(path):
            with pytest.raises(ValidationError):
                self.mesh.insert("a", "r", path)
            return "missing-agent"
        if path in self.model_agents.values():
            with pytest.raises(ConflictError):
                self.mesh.insert("a", "r", path)
            return "missing-agent"
        agent = self.mesh.insert("a", "r", path)
        self.model_agents[agent.id] = path
        return agent.id

    @rule(agent=consumes(agents))
    def remove_agent(self, agent: str) -> None:
        assert (agent in self.model_agents) == self.mesh.remove(agent)
        self.model_agents.pop(agent, None)

    @rule(name=TEXT)
    def deny(self, name: Any) -> None:
        path = f"/denied/{name}" if isinstance(name, str) else name
        if not valid(path):
            with pytest.raises(ValidationError):
                self.denials.deny(path)
            return
        record = self.denials.deny(path)
        assert os.path.realpath(path) == record.path
        self.model_denied.add(record.path)
        assert self.denials.is_denied(path)

    @precondition(lambda self: bool(self.model_denied))
    @rule(data=st.data())
    def clear(self, data: st.DataObject) -> None:
        path = data.draw(st.sampled_from(sorted(self.model_denied)))
        assert self.denials.clear(path)
        self.model_denied.discard(path)
        assert not self.denials.is_denied(path)

    @rule(minutes=st.sampled_from([0, 1, 59, 60, 61, 121]))
    def advance_clock(self, minutes: int) -> None:
        self.clock.advance(minutes=minutes)

    @rule()
    def try_consume(self) -> None:
        minute = self.budgets.current_minute_bucket()
        used = sum(1 for called in self.model_calls if called >= minute - 60)
        check = self.budgets.try_consume("agent", LIMIT)
        assert (used < LIMIT) == check.allowed
        if check.allowed:
            self.model_calls.append(minute)
            used += 1
        assert (used, max(0, LIMIT - used)) == (check.used, check.remaining)

    # --- traces --------------------------------------------------------------------------

    @rule(number=st.integers(0, 10), status=st.sampled_from(["pending", "sent", "lost"]))
    def insert_span(self, number: int, status: str) -> None:
        message_id = f"S{number:02d}"
        if status == "lost":
            with pytest.raises(ValidationError):
                self.traces.insert_span(message_id, "trace", "s", status=status)
        elif message_id in self.model_spans:
            with pytest.raises(ConflictError):
                self.traces.insert_span(message_id, "trace", "s", status=status)
        else:
            self.traces.insert_span(message_id, "trace", "s", status=status)
            self.model_spans[message_id] = "sent"  # 'pending' is the old name of 'sent'

    @rule(number=st.integers(0, 10), status=st.sampled_from(["processed", "failed"]))
    def update_span(self, number: int, status: str) -> None:
        message_id = f"S{number:02d}"
        assert (message_id in self.model_spans) == self.traces.update_span(
            message_id, status=status
        )
        if message_id in self.model_spans:
            self.model_spans[message_id] = {"processed": "delivered"}.get(status, status)

    # --- what the database holds -----------------------------------------------------------

    @invariant()
    def matches_the_model(self) -> None:
        assert self.model_schedules == {s.id: s.name for s in self.pulse.list_schedules()}
        runs = {r.id: (r.schedule_id, r.status) for r in self.pulse.list_runs(limit=10_000)}
        assert self.model_runs == runs
        assert self.model_messages == {
            m.id: m.status for m in self.relay.query_messages(limit=100).messages
        }
        assert self.model_agents == {a.id: a.project_path for a in self.mesh.list()}
        assert self.model_denied == {d.path for d in self.denials.list()}
        assert self.model_spans == {s.message_id: s.status for s in self.traces.get_trace("trace")}
        # Page through the index five at a time: each message once, newest id first.
        seen, cursor = [], None
        while True:
            page = self.relay.query_messages(cursor=cursor, limit=5)
            seen += [m.id for m in page.messages]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert sorted(self.model_messages, reverse=True) == seen


Repositories.TestCase.settings = settings(
    max_examples=int(os.environ.get("DORKSTORE_STATEFUL_EXAMPLES", "60")),
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_repositories_match_a_model = Repositories.TestCase
