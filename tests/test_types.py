"""The typed vocabulary: one Literal type per enumeration, exported, the tuples derived from it."""

from __future__ import annotations

import inspect
from typing import Any, get_args

import pytest

import dorkstore
from dorkstore import records
from dorkstore.aio import AsyncAgentRegistry, AsyncPulseStore

ALIASES = [
    "ScheduleStatus",
    "RunStatus",
    "RunTrigger",
    "MessageStatus",
    "TraceStatus",
    "LegacyTraceStatus",
    "AgentStatus",
    "HealthStatus",
    "PermissionMode",
    "Timestamp",
    "Unset",
    "UNSET",
]


@pytest.mark.parametrize("name", ALIASES)
def test_each_type_is_exported_at_the_top_level(name: str) -> None:
    """Every alias and the UNSET sentinel are importable from dorkstore itself."""
    assert (True, getattr(records, name)) == (name in dorkstore.__all__, getattr(dorkstore, name))


@pytest.mark.parametrize(
    ("values", "alias"),
    [
        (records.SCHEDULE_STATUSES, records.ScheduleStatus),
        (records.RUN_STATUSES, records.RunStatus),
        (records.RUN_TRIGGERS, records.RunTrigger),
        (records.MESSAGE_STATUSES, records.MessageStatus),
        (records.TRACE_STATUSES, records.TraceStatus),
        (records.AGENT_STATUSES, records.AgentStatus),
        (tuple(records.LEGACY_TRACE_STATUSES), records.LegacyTraceStatus),
        (tuple(set(records.MAILDIR_STATUSES.values())), records.MessageStatus),
    ],
)
def test_the_value_tuples_are_the_literal_types_values(values: tuple[str, ...], alias: Any) -> None:
    """What the repositories accept at run time is what the types admit."""
    assert sorted(get_args(alias)) == sorted(values)


@pytest.mark.parametrize(
    "method",
    [
        dorkstore.PulseStore.update_schedule,
        dorkstore.AgentRegistry.update,
        AsyncPulseStore.update_schedule,
        AsyncAgentRegistry.update,
    ],
)
def test_update_methods_name_their_fields_and_default_to_unset(method: Any) -> None:
    """help() shows each mutable field with UNSET as its default, then **unknown."""
    parameters = list(inspect.signature(method).parameters.values())
    fields = parameters[2:-1]
    assert ["UNSET"] * len(fields) == [repr(parameter.default) for parameter in fields]
    assert inspect.Parameter.VAR_KEYWORD == parameters[-1].kind
