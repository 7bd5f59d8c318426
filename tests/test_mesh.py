"""AgentRegistry, DenialList, BudgetMapper and compute_health_status (SPEC section 5)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import peewee as pw
import pytest
from playhouse.test_utils import assert_query_count

import dorkstore
from dorkstore import (
    UNSET,
    AgentHealth,
    AgentRegistry,
    BudgetCheck,
    BudgetMapper,
    ConflictError,
    DenialList,
    ValidationError,
    compute_health_status,
)
from tests.helpers import FakeClock, run_in_processes, run_in_threads, try_consume_many

NOW = datetime(2026, 2, 25, 14, 3, 7, 123000, tzinfo=UTC)


@pytest.fixture
def agents(db: pw.SqliteDatabase, clock: FakeClock) -> AgentRegistry:
    return AgentRegistry(clock=clock)


@pytest.fixture
def denials(db: pw.SqliteDatabase, clock: FakeClock) -> DenialList:
    return DenialList(clock=clock)


@pytest.fixture
def budgets(db: pw.SqliteDatabase, clock: FakeClock) -> BudgetMapper:
    return BudgetMapper(clock=clock)


# --- compute_health_status -------------------------------------------------------------


@pytest.mark.parametrize(
    ("age", "expected"),
    [
        (timedelta(0), "active"),
        (timedelta(minutes=4, seconds=59), "active"),
        (timedelta(minutes=5), "inactive"),
        (timedelta(minutes=29, seconds=59), "inactive"),
        (timedelta(minutes=30), "stale"),
        (timedelta(days=3), "stale"),
        (timedelta(minutes=-10), "active"),
    ],
)
def test_health_thresholds(age: timedelta, expected: str) -> None:
    """Under 5 minutes active, under 30 inactive, else stale; the future counts as active."""
    assert expected == compute_health_status(NOW - age, NOW)
    assert expected == compute_health_status((NOW - age).isoformat(), NOW)


def test_health_of_a_datetime_is_computed_at_full_precision() -> None:
    """Seen 4:59.9999 ago is active: the datetime is not truncated to the millisecond first."""
    seen = NOW - timedelta(minutes=4, seconds=59, microseconds=999_900)
    assert "active" == compute_health_status(seen, NOW)


def test_never_seen_is_stale() -> None:
    """An agent that was never seen is stale."""
    assert "stale" == compute_health_status(None, NOW)


def test_health_needs_an_aware_now() -> None:
    """A naive `now` is a ValidationError, not a TypeError."""
    with pytest.raises(ValidationError):
        compute_health_status(None, datetime(2026, 1, 1))


# --- AgentRegistry ----------------------------------------------------------------------


def test_insert_applies_defaults_and_reads_back(agents: AgentRegistry) -> None:
    """A new agent gets an id, the defaults and now as registered_at and updated_at."""
    agent = agents.insert("coder", "claude-code", "/src/app", capabilities=["code", "review"])
    assert ("default", ("code", "review"), "active", None, "2026-02-25T14:03:07.123Z") == (
        agent.namespace,
        agent.capabilities,
        agent.status,
        agent.last_seen_at,
        agent.registered_at,
    )
    assert agent.registered_at == agent.updated_at
    assert agent == agents.get(agent.id)
    assert agent == agents.get_by_path("/src/app")


def test_insert_keeps_a_given_id_and_registration_time(agents: AgentRegistry) -> None:
    """id and registered_at may be supplied (imports keep them)."""
    agent = agents.insert(
        "a", "r", "/p", id="01KJAAAAAAAAAAAAAAAAAAAAAA", registered_at="2025-01-01T00:00:00+00:00"
    )
    assert ("01KJAAAAAAAAAAAAAAAAAAAAAA", "2025-01-01T00:00:00.000Z") == (
        agent.id,
        agent.registered_at,
    )


def test_project_path_may_be_a_path_object(agents: AgentRegistry) -> None:
    """Paths may be os.PathLike wherever a path is taken; they are stored as given."""
    agent = agents.insert("a", "r", Path("/src/../src/app"))
    assert "/src/../src/app" == agent.project_path
    assert agent == agents.get_by_path(Path("/src/../src/app"))


def test_duplicate_path_or_id_is_a_conflict(agents: AgentRegistry) -> None:
    """project_path and id are unique."""
    first = agents.insert("a", "r", "/p")
    with pytest.raises(ConflictError):
        agents.insert("b", "r", "/p")
    with pytest.raises(ConflictError):
        agents.insert("b", "r", "/q", id=first.id)
    assert [first] == agents.list()


def test_missing_agents_are_none_or_false(agents: AgentRegistry) -> None:
    """Getters return None and updates False for an unknown id."""
    assert (None, None, None, False, False, False) == (
        agents.get("nope"),
        agents.get_by_path("/nope"),
        agents.get_with_health("nope"),
        agents.update("nope", name="x"),
        agents.remove("nope"),
        agents.update_health("nope", NOW, "ping"),
    )


def test_list_is_newest_registration_first_and_filters(
    agents: AgentRegistry, clock: FakeClock
) -> None:
    """list orders by registered_at descending and filters by runtime or exact capability."""
    a = agents.insert("a", "claude-code", "/a", capabilities=["code"])
    clock.advance(seconds=1)
    b = agents.insert("b", "codex", "/b", capabilities=["code-review", 'say "code"'])
    clock.advance(seconds=1)
    c = agents.insert("c", "claude-code", "/c", capabilities=["review", "code"])
    assert [c, b, a] == agents.list()
    assert [c, a] == agents.list(runtime="claude-code")
    assert [c, a] == agents.list(capability="code")
    assert [b] == agents.list(capability='say "code"')
    assert [] == agents.list(capability="cod")
    assert [c] == agents.list(runtime="claude-code", capability="review")


def test_list_runs_one_query(agents: AgentRegistry) -> None:
    """Listing costs one query however many agents there are."""
    for n in range(10):
        agents.insert(f"a{n}", "r", f"/p{n}")
    with assert_query_count(1):
        assert 10 == len(agents.list_with_health())


def test_update_changes_mutable_fields_and_moves_updated_at(
    agents: AgentRegistry, clock: FakeClock
) -> None:
    """update changes what it is given and moves updated_at."""
    agent = agents.insert("a", "r", "/p")
    clock.advance(minutes=2)
    assert agents.update(agent.id, name="b", capabilities=("x",), status="inactive", version=None)
    after = agents.get(agent.id)
    assert after is not None
    assert ("b", ("x",), "inactive", "2026-02-25T14:05:07.123Z", agent.registered_at) == (
        after.name,
        after.capabilities,
        after.status,
        after.updated_at,
        after.registered_at,
    )


def test_update_keeps_unset_fields_and_clears_none(agents: AgentRegistry) -> None:
    """A field not given (or given UNSET) keeps its value; None clears an optional one."""
    agent = agents.insert("a", "r", "/p", description="old", version="1.0")
    assert agents.update(agent.id, description=None, version=UNSET)
    after = agents.get(agent.id)
    assert after is not None
    assert ("a", None, "1.0") == (after.name, after.description, after.version)


@pytest.mark.parametrize("field", ["id", "project_path", "registered_at", "last_seen_at", "colour"])
def test_update_refuses_immutable_or_unknown_fields(agents: AgentRegistry, field: str) -> None:
    """Only the mutable fields of SPEC section 9 can be updated."""
    agent = agents.insert("a", "r", "/p")
    with pytest.raises(ValidationError, match=field):
        agents.update(agent.id, **{field: "x"})
    assert agent == agents.get(agent.id)


def test_remove(agents: AgentRegistry) -> None:
    """remove unregisters the agent."""
    agent = agents.insert("a", "r", "/p")
    assert (True, None) == (agents.remove(agent.id), agents.get(agent.id))


def test_health_follows_last_seen(agents: AgentRegistry, clock: FakeClock) -> None:
    """update_health records the sighting; health is computed against the clock."""
    agent = agents.insert("a", "r", "/p")
    other = agents.insert("b", "r", "/q")
    assert agents.update_health(agent.id, clock.now, "heartbeat")
    clock.advance(minutes=6)
    health = agents.get_with_health(agent.id)
    assert isinstance(health, AgentHealth)
    assert ("inactive", "heartbeat", "2026-02-25T14:03:07.123Z") == (
        health.health_status,
        health.last_seen_event,
        health.last_seen_at,
    )
    assert {agent.id: "inactive", other.id: "stale"} == {
        h.id: h.health_status for h in agents.list_with_health()
    }


def test_aggregate_stats(agents: AgentRegistry, clock: FakeClock) -> None:
    """Counts by health now."""
    seen = {"a": timedelta(minutes=1), "b": timedelta(minutes=2), "c": timedelta(minutes=10)}
    for name, ago in seen.items():
        agent = agents.insert(name, "r", f"/{name}")
        agents.update_health(agent.id, clock.now - ago, "ping")
    agents.insert("never", "r", "/never")
    stats = agents.get_aggregate_stats()
    assert (4, 2, 1, 1) == (
        stats.total_agents,
        stats.active_count,
        stats.inactive_count,
        stats.stale_count,
    )


def test_list_by_namespace(agents: AgentRegistry, clock: FakeClock) -> None:
    """Only that namespace's agents, newest registration first."""
    a = agents.insert("a", "r", "/a", namespace="team")
    clock.advance(seconds=1)
    b = agents.insert("b", "r", "/b", namespace="team")
    agents.insert("c", "r", "/c")
    assert [b, a] == agents.list_by_namespace("team")
    assert [] == agents.list_by_namespace("nobody")


# --- DenialList -------------------------------------------------------------------------


def test_deny_and_list_newest_first(denials: DenialList, clock: FakeClock, tmp_path: Path) -> None:
    """Denials are listed newest first and is_denied sees them."""
    first = denials.deny(tmp_path / "a", reason="secrets")
    clock.advance(seconds=1)
    second = denials.deny(str(tmp_path / "b"), denier="admin")
    assert [second, first] == denials.list()
    assert ("secrets", "user", "admin") == (first.reason, first.denier, second.denier)
    assert denials.is_denied(tmp_path / "a") is True
    assert denials.is_denied(tmp_path / "c") is False


def test_denying_again_replaces_reason_denier_and_time(
    denials: DenialList, clock: FakeClock, tmp_path: Path
) -> None:
    """A second deny of one path keeps one row with the new details."""
    first = denials.deny(tmp_path, reason="old")
    clock.advance(minutes=1)
    second = denials.deny(tmp_path, reason="new", denier=None)
    assert (first.id, "new", None, "2026-02-25T14:04:07.123Z") == (
        second.id,
        second.reason,
        second.denier,
        second.created_at,
    )
    assert [second] == denials.list()


def test_symlinks_and_dotdot_cannot_bypass_a_denial(denials: DenialList, tmp_path: Path) -> None:
    """Paths are canonicalised, so a symlink or a '..' detour names the same place."""
    real = tmp_path / "project"
    real.mkdir()
    link = tmp_path / "shortcut"
    link.symlink_to(real)
    record = denials.deny(link)
    assert str(real) == record.path
    assert denials.is_denied(real) is True
    assert denials.is_denied(tmp_path / "other" / ".." / "project") is True
    assert denials.clear(tmp_path / "." / "project") is True
    assert denials.is_denied(link) is False


def test_clear_of_an_undenied_path_is_false(denials: DenialList, tmp_path: Path) -> None:
    """Clearing a path that is not denied returns False."""
    assert denials.clear(tmp_path) is False


class BadPath:
    """An os.PathLike whose __fspath__ returns something that is not a path."""

    def __fspath__(self) -> object:
        return 42


@pytest.mark.parametrize("path", ["a\x00b", b"/tmp", 7, None, BadPath()])
def test_bad_paths_are_refused(denials: DenialList, path: object) -> None:
    """NUL bytes, bytes paths and non-paths are ValidationErrors."""
    with pytest.raises(ValidationError):
        denials.deny(path)  # type: ignore[arg-type]


# --- BudgetMapper -----------------------------------------------------------------------


def test_current_minute_bucket(budgets: BudgetMapper, clock: FakeClock) -> None:
    """Buckets count whole minutes since the Unix epoch."""
    assert int(clock.now.timestamp()) // 60 == budgets.current_minute_bucket()


def test_check_budget_of_a_new_agent(budgets: BudgetMapper) -> None:
    """No calls: everything remains."""
    assert BudgetCheck(allowed=True, remaining=5, used=0) == budgets.check_budget("a", 5)


def test_record_call_counts_per_agent(budgets: BudgetMapper) -> None:
    """Recorded calls count against that agent only."""
    for _ in range(3):
        budgets.record_call("a")
    budgets.record_call("b")
    assert BudgetCheck(allowed=True, remaining=2, used=3) == budgets.check_budget("a", 5)
    assert BudgetCheck(allowed=False, remaining=0, used=3) == budgets.check_budget("a", 3)
    assert BudgetCheck(allowed=False, remaining=0, used=3) == budgets.check_budget("a", 2)


@pytest.mark.parametrize(("minutes", "counted"), [(59, 1), (60, 1), (61, 0)])
def test_window_is_sixty_one_buckets(
    budgets: BudgetMapper, clock: FakeClock, minutes: int, counted: int
) -> None:
    """A call 59 or 60 minutes ago still counts; 61 minutes ago it does not."""
    budgets.record_call("a")
    clock.advance(minutes=minutes)
    assert counted == budgets.check_budget("a", 10).used


def test_buckets_older_than_120_minutes_are_pruned(
    db: pw.SqliteDatabase, budgets: BudgetMapper, clock: FakeClock
) -> None:
    """Every agent's buckets older than 120 minutes go on the next call; younger ones stay."""
    budgets.record_call("old")
    clock.advance(minutes=1)
    budgets.record_call("younger")
    clock.advance(minutes=120)
    budgets.check_budget("someone-else", 1)
    remaining = db.execute_sql("SELECT agent_id FROM rate_limit_buckets").fetchall()
    assert [("younger",)] == remaining


def test_try_consume_allows_exactly_the_limit(budgets: BudgetMapper) -> None:
    """try_consume records allowed calls and refuses, recording nothing, past the limit."""
    results = [budgets.try_consume("a", 3) for _ in range(5)]
    assert [
        BudgetCheck(True, 2, 1),
        BudgetCheck(True, 1, 2),
        BudgetCheck(True, 0, 3),
        BudgetCheck(False, 0, 3),
        BudgetCheck(False, 0, 3),
    ] == results
    assert 3 == budgets.check_budget("a", 3).used


def test_try_consume_with_a_zero_limit_never_allows(budgets: BudgetMapper) -> None:
    """max_calls_per_hour=0 refuses every call."""
    assert BudgetCheck(False, 0, 0) == budgets.try_consume("a", 0)


@pytest.mark.parametrize("limit", [-1, True, 2**63, "5"])
def test_bad_limits_are_refused(budgets: BudgetMapper, limit: object) -> None:
    """A negative, boolean, oversized or non-int limit is a ValidationError."""
    with pytest.raises(ValidationError):
        budgets.try_consume("a", limit)  # type: ignore[arg-type]


@pytest.mark.parametrize("target", ["file", ":memory:"])
def test_try_consume_from_8_threads_allows_exactly_50(db_path: Path, target: str) -> None:
    """Eight threads racing for a budget of 50 get exactly 50 successes, on a file or in memory."""
    dorkstore.init_db(db_path if target == "file" else target)
    budgets = BudgetMapper()
    barrier = threading.Barrier(8)
    allowed: list[int] = []

    def worker() -> None:
        barrier.wait()
        allowed.append(sum(budgets.try_consume("shared", 50).allowed for _ in range(20)))
        dorkstore.close_db()

    run_in_threads(worker, 8)
    assert 8 == len(allowed)
    assert 50 == sum(allowed)
    assert 50 == budgets.check_budget("shared", 50).used
    dorkstore.close_db()


@pytest.mark.slow
def test_try_consume_from_4_processes_allows_exactly_50(
    file_db: pw.SqliteDatabase, db_path: Path
) -> None:
    """Four processes on one file racing for a budget of 50 get exactly 50 successes."""
    allowed = run_in_processes(try_consume_many, [(str(db_path), "shared", 50, 30)] * 4)
    assert 50 == sum(allowed)
    assert 50 == BudgetMapper().check_budget("shared", 50).used
