# pyright: strict, reportUnnecessaryTypeIgnoreComment=error
"""What a type checker says of calls into dorkstore: wrong calls are errors, results are precise.

Never run, only checked: ``tox -e typing`` checks this file with
``mypy --strict --warn-unused-ignores`` and with pyright (strict, and
reportUnnecessaryTypeIgnoreComment, set above). Each wrong call carries
``# type: ignore[<mypy code>]``: should a change to dorkstore's types let one
through, its ignore is no longer needed, and both checkers fail on that.
``assert_type`` pins the types of right calls' results, the async faces' too.

A naive datetime cannot be told from an aware one by its type; it stays a
run-time ValidationError (tests/test_pulse.py tests it).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import assert_type

from dorkstore import (
    UNSET,
    Agent,
    AgentHealth,
    AgentRegistry,
    AgentStatus,
    HealthStatus,
    IndexedMessage,
    MessagePage,
    MessageStatus,
    PermissionMode,
    PulseStore,
    RelayIndex,
    Run,
    RunStatus,
    RunTrigger,
    Schedule,
    ScheduleStatus,
    TraceSpan,
    TraceStatus,
    TraceStore,
    compute_health_status,
)
from dorkstore.aio import AsyncStore

NOW = datetime(2026, 2, 25, 14, 3, 7, tzinfo=UTC)


def the_wrong_calls_users_found(
    pulse: PulseStore, relay: RelayIndex, agents: AgentRegistry, schedule: Schedule, run: Run
) -> None:
    pulse.update_run(run.id, finished_at=time.time())  # type: ignore[arg-type]
    pulse.update_run(run.id, status="complete")  # type: ignore[arg-type]
    pulse.create_run(schedule.id, trigger="cron")  # type: ignore[arg-type]
    pulse.list_runs(status="pendng")  # type: ignore[arg-type]
    pulse.update_schedule(schedule.id, enabeld=False)  # type: ignore[arg-type]
    agents.update("agent-id", nmae="x")  # type: ignore[arg-type]
    relay.insert_message("M1", "subject", "endpoint", created_at=12345)  # type: ignore[arg-type]


def more_wrong_calls(
    pulse: PulseStore, relay: RelayIndex, traces: TraceStore, agents: AgentRegistry
) -> None:
    # Fields that exist but may not change are unknown to the update methods.
    pulse.update_schedule("S1", id="S2")  # type: ignore[arg-type]
    pulse.update_schedule("S1", created_at=NOW)  # type: ignore[arg-type]
    agents.update("A1", project_path="/elsewhere")  # type: ignore[arg-type]
    # Statuses of one table are not another's.
    pulse.update_schedule("S1", status="running")  # type: ignore[arg-type]
    relay.update_status("M1", "sent")  # type: ignore[arg-type]
    relay.query_messages(status="new")  # type: ignore[arg-type]
    traces.insert_span("M1", "T1", "subject", status="cancelled")  # type: ignore[arg-type]
    agents.insert("a", "claude-code", "/p", status="stale")  # type: ignore[arg-type]
    pulse.create_schedule("n", "p", "* * * * *", permission_mode="acceptEdit")  # type: ignore[arg-type]
    # Epoch milliseconds only where SPEC section 9 allows them (update_span).
    agents.update_health("A1", 1_700_000_000_000, "ping")  # type: ignore[arg-type]
    relay.count_sender_in_window("s", 1_700_000_000_000)  # type: ignore[arg-type]
    traces.update_span("M1", delivered_at=time.time())  # type: ignore[arg-type]
    compute_health_status(1_700_000_000_000, NOW)  # type: ignore[arg-type]


async def wrong_async_calls(store: AsyncStore, schedule: Schedule) -> None:
    await store.pulse.update_run("R1", status="complete")  # type: ignore[arg-type]
    await store.pulse.update_schedule(schedule.id, enabeld=False)  # type: ignore[arg-type]
    await store.agents.update("A1", nmae="x")  # type: ignore[arg-type]
    await store.relay.insert_message("M1", "s", "e", created_at=12345)  # type: ignore[arg-type]


def right_calls(
    pulse: PulseStore, relay: RelayIndex, traces: TraceStore, agents: AgentRegistry
) -> None:
    schedule = pulse.create_schedule("n", "p", "* * * * *", permission_mode="plan", cwd=None)
    assert_type(schedule, Schedule)
    assert_type(schedule.status, ScheduleStatus)
    # Imported or older rows may hold other modes: the record says so.
    assert_type(schedule.permission_mode, PermissionMode | str)
    assert_type(schedule.created_at, str)
    changed = pulse.update_schedule(schedule.id, description=None, timezone=None, name=UNSET)
    assert_type(changed, Schedule | None)
    run = pulse.create_run(schedule.id, trigger="manual")
    assert_type(run, Run)
    assert_type(run.status, RunStatus)
    assert_type(run.trigger, RunTrigger)
    assert_type(run.finished_at, str | None)
    assert_type(pulse.update_run(run.id, status="completed", finished_at=NOW), Run | None)
    assert_type(pulse.update_run(run.id, finished_at="2026-02-25T14:03:07Z"), Run | None)
    assert_type(pulse.list_runs(status="running"), list[Run])

    message = relay.insert_message("M1", "s", "e", status="delivered", created_at=NOW)
    assert_type(message, IndexedMessage)
    assert_type(message.status, MessageStatus)
    assert_type(relay.query_messages(status="pending"), MessagePage)
    assert_type(relay.get_metrics().by_status, dict[MessageStatus, int])

    span = traces.insert_span("M1", "T1", "s", status="dead_lettered")
    assert_type(span, TraceSpan)
    assert_type(span.status, TraceStatus)
    assert_type(traces.update_span("M1", delivered_at=1_700_000_000_000, status="processed"), bool)

    agent = agents.insert("a", "claude-code", "/p", registered_at="2026-02-25T14:03:07Z")
    assert_type(agent, Agent)
    assert_type(agent.status, AgentStatus)
    assert_type(agents.update(agent.id, description=None, capabilities=["x"]), bool)
    assert_type(agents.update_health(agent.id, NOW, "ping"), bool)
    health = agents.get_with_health(agent.id)
    assert_type(health, AgentHealth | None)
    if health is not None:
        assert_type(health.health_status, HealthStatus)
    assert_type(compute_health_status(agent.last_seen_at, NOW), HealthStatus)


async def right_async_calls(store: AsyncStore, schedule: Schedule) -> None:
    assert_type(await store.pulse.create_run(schedule.id, trigger="agent"), Run)
    assert_type(await store.pulse.update_schedule(schedule.id, enabled=False), Schedule | None)
    assert_type(await store.pulse.update_run("R1", status="timeout"), Run | None)
    assert_type(await store.relay.query_messages(status="failed"), MessagePage)
    assert_type(await store.traces.get_span("M1"), TraceSpan | None)
    assert_type(await store.agents.update("A1", status="inactive"), bool)
    assert_type(await store.agents.list_with_health(), list[AgentHealth])
