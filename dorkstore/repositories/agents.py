"""AgentRegistry: registered agents and their health."""

from __future__ import annotations

import builtins
import json
from dataclasses import asdict, fields
from datetime import datetime, timedelta
from typing import Any, Never

import peewee as pw

from dorkstore import validation as check
from dorkstore.backends import current, guarded
from dorkstore.errors import ValidationError
from dorkstore.models.mesh import MeshAgent
from dorkstore.records import (
    AGENT_STATUSES,
    UNSET,
    Agent,
    AgentHealth,
    AgentStatus,
    AggregateStats,
    HealthStatus,
    Unset,
)
from dorkstore.repositories.base import Repository
from dorkstore.statements import Statement, StatementFamily, assign, slot
from dorkstore.timestamps import format_timestamp, parse_timestamp

__all__ = ["ACTIVE_WITHIN", "INACTIVE_WITHIN", "AgentRegistry", "compute_health_status"]

#: Seen less than this long ago: 'active'.
ACTIVE_WITHIN = timedelta(minutes=5)
#: Seen less than this long ago (and not active): 'inactive'; otherwise 'stale'.
INACTIVE_WITHIN = timedelta(minutes=30)


def compute_health_status(last_seen_at: datetime | str | None, now: datetime) -> HealthStatus:
    """Return 'active' (seen under 5 minutes before `now`), 'inactive' (under 30) or 'stale'.

    Never seen is 'stale'; a time after `now` (clock skew) is 'active'. Raises
    ValidationError for a naive datetime or a string without a UTC offset.
    """
    if not isinstance(now, datetime) or now.utcoffset() is None:
        raise ValidationError("now must be an aware datetime")
    if last_seen_at is None:
        return "stale"
    if isinstance(last_seen_at, datetime):
        parse_timestamp(last_seen_at, "last_seen_at")  # refuses a naive datetime
        seen = last_seen_at  # at full precision: truncating could turn 4:59.9999 into 5:00
    else:
        seen = datetime.fromisoformat(parse_timestamp(last_seen_at, "last_seen_at"))
    age = now - seen
    if age < ACTIVE_WITHIN:
        return "active"
    if age < INACTIVE_WITHIN:
        return "inactive"
    return "stale"


#: The agent's columns, in the order of the record's fields.
_COLUMN_NAMES = tuple(
    "capabilities_json" if field.name == "capabilities" else field.name for field in fields(Agent)
)
_COLUMNS = [MeshAgent._meta.columns[name] for name in _COLUMN_NAMES]
_NEWEST_REGISTRATION_FIRST = (MeshAgent.registered_at.desc(), MeshAgent.id.desc())

#: The agent fields a caller may set, and how each is checked (as stored).
_AGENT_CHECKS: dict[str, check.Checker] = {
    "name": lambda v: check.text(v, "name"),
    "runtime": lambda v: check.text(v, "runtime"),
    "namespace": lambda v: check.text(v, "namespace"),
    "capabilities": lambda v: json.dumps(check.text_tuple(v, "capabilities")),
    "entrypoint": lambda v: check.optional_text(v, "entrypoint"),
    "version": lambda v: check.optional_text(v, "version"),
    "description": lambda v: check.optional_text(v, "description"),
    "approver": lambda v: check.optional_text(v, "approver"),
    "status": lambda v: check.choice(v, "status", AGENT_STATUSES),
}

INSERT_AGENT = Statement(lambda: MeshAgent.insert(assign(MeshAgent, _COLUMN_NAMES)))
#: The agent whose column (id or project_path) equals the slot "value".
AGENT_BY = StatementFamily(
    lambda column: MeshAgent.select(*_COLUMNS).where(
        MeshAgent._meta.columns[column] == slot("value")
    ),
    into=MeshAgent.to_record,
)


def _list_agents(filters: tuple[str, ...]) -> pw.Node:
    query = MeshAgent.select(*_COLUMNS)
    if "namespace" in filters:
        query = query.where(MeshAgent.namespace == slot("namespace"))
    if "runtime" in filters:
        query = query.where(MeshAgent.runtime == slot("runtime"))
    if "capability" in filters:
        query = query.where(
            current().json_array_contains(MeshAgent.capabilities_json, slot("capability"))
        )
    return query.order_by(*_NEWEST_REGISTRATION_FIRST)


LIST_AGENTS = StatementFamily(_list_agents, into=MeshAgent.to_record)
UPDATE_AGENT = StatementFamily(
    lambda names: MeshAgent.update(assign(MeshAgent, names)).where(MeshAgent.id == slot("id"))
)
REMOVE_AGENT = Statement(lambda: MeshAgent.delete().where(MeshAgent.id == slot("id")))
LAST_SEEN = Statement(lambda: MeshAgent.select(MeshAgent.last_seen_at))


def _columns(changes: dict[str, Any]) -> dict[str, Any]:
    """Check mutable agent fields; return them as stored, by column name."""
    values = check.fields(changes, _AGENT_CHECKS, "agents")
    if "capabilities" in values:
        values["capabilities_json"] = values.pop("capabilities")
    return values


class AgentRegistry(Repository):
    """Registered agents. Missing rows are None from getters, False from updates."""

    @guarded
    def insert(
        self,
        name: str,
        runtime: str,
        project_path: str,
        *,
        id: str | None = None,
        namespace: str = "default",
        capabilities: tuple[str, ...] | builtins.list[str] = (),
        entrypoint: str | None = None,
        version: str | None = None,
        description: str | None = None,
        approver: str | None = None,
        status: AgentStatus = "active",
        registered_at: datetime | str | None = None,
    ) -> Agent:
        """Register an agent. Raises ConflictError if its id or project_path is taken."""
        now = self._now()
        row = _columns(
            {
                "name": name,
                "runtime": runtime,
                "namespace": namespace,
                "capabilities": capabilities,
                "entrypoint": entrypoint,
                "version": version,
                "description": description,
                "approver": approver,
                "status": status,
            }
        )
        stamp = format_timestamp(now)
        row |= {
            "id": self._new_id(now) if id is None else check.text(id, "id"),
            "project_path": check.path_text(project_path, "project_path"),
            "registered_at": stamp
            if registered_at is None
            else parse_timestamp(registered_at, "registered_at"),
            "updated_at": stamp,
            "last_seen_at": None,
            "last_seen_event": None,
        }
        INSERT_AGENT.run(**row)
        return MeshAgent.to_record([row[name] for name in _COLUMN_NAMES])

    @guarded
    def get(self, id: str) -> Agent | None:
        """Return the agent with this id, or None."""
        return AGENT_BY["id"].one(value=check.text(id, "id"))

    @guarded
    def get_by_path(self, project_path: str) -> Agent | None:
        """Return the agent registered for this project path, or None."""
        path = check.path_text(project_path, "project_path")
        return AGENT_BY["project_path"].one(value=path)

    @guarded
    def list(
        self, *, runtime: str | None = None, capability: str | None = None
    ) -> builtins.list[Agent]:
        """Return agents, newest registration first, optionally of one runtime or capability."""
        return self._select(runtime=runtime, capability=capability)

    @guarded
    def list_by_namespace(self, namespace: str) -> builtins.list[Agent]:
        """Return the agents of one namespace, newest registration first."""
        return self._select(namespace=namespace)

    @guarded
    def update(
        self,
        id: str,
        /,
        *,
        name: str | Unset = UNSET,
        runtime: str | Unset = UNSET,
        namespace: str | Unset = UNSET,
        capabilities: tuple[str, ...] | builtins.list[str] | Unset = UNSET,
        entrypoint: str | Unset | None = UNSET,
        version: str | Unset | None = UNSET,
        description: str | Unset | None = UNSET,
        approver: str | Unset | None = UNSET,
        status: AgentStatus | Unset = UNSET,
        **unknown: Never,
    ) -> bool:
        """Change the given fields and move `updated_at`; False if there is no such agent.

        A field left `UNSET` keeps its value; None clears an optional field.
        Raises ValidationError for id, project_path, registered_at or an
        unknown field (their type, ``Never``, makes them type errors too).
        """
        changes = {
            "name": name,
            "runtime": runtime,
            "namespace": namespace,
            "capabilities": capabilities,
            "entrypoint": entrypoint,
            "version": version,
            "description": description,
            "approver": approver,
            "status": status,
        }
        given = {field: value for field, value in changes.items() if value is not UNSET}
        values = _columns(given | unknown)
        values["updated_at"] = self._now_text()
        changed = UPDATE_AGENT[tuple(sorted(values))].run(id=check.text(id, "id"), **values)
        return bool(changed)

    @guarded
    def remove(self, id: str) -> bool:
        """Unregister an agent; False if there was no such agent."""
        return bool(REMOVE_AGENT.run(id=check.text(id, "id")))

    @guarded
    def update_health(self, id: str, last_seen_at: datetime | str, last_seen_event: str) -> bool:
        """Record when an agent was last seen, and doing what; False if there is no such agent."""
        changed = UPDATE_AGENT[("last_seen_at", "last_seen_event")].run(
            last_seen_at=parse_timestamp(last_seen_at, "last_seen_at"),
            last_seen_event=check.text(last_seen_event, "last_seen_event", empty=True),
            id=check.text(id, "id"),
        )
        return bool(changed)

    @guarded
    def get_with_health(self, id: str) -> AgentHealth | None:
        """Return the agent and its health now, or None."""
        agent = AGENT_BY["id"].one(value=check.text(id, "id"))
        return None if agent is None else _with_health(agent, self._now())

    @guarded
    def list_with_health(
        self, *, runtime: str | None = None, capability: str | None = None
    ) -> builtins.list[AgentHealth]:
        """Return `list(...)` with each agent's health now."""
        now = self._now()
        agents = self._select(runtime=runtime, capability=capability)
        return [_with_health(agent, now) for agent in agents]

    @guarded
    def get_aggregate_stats(self) -> AggregateStats:
        """Count the agents by health now."""
        now = self._now()
        seen = [compute_health_status(row["last_seen_at"], now) for row in LAST_SEEN.all()]
        return AggregateStats(
            total_agents=len(seen),
            active_count=seen.count("active"),
            inactive_count=seen.count("inactive"),
            stale_count=seen.count("stale"),
        )

    @staticmethod
    def _select(**filters: str | None) -> builtins.list[Agent]:
        """Return agents matching every filter given (namespace, runtime, capability)."""
        values = {
            name: check.text(value, name) for name, value in filters.items() if value is not None
        }
        return LIST_AGENTS[tuple(sorted(values))].all(**values)


def _with_health(agent: Agent, now: datetime) -> AgentHealth:
    return AgentHealth(
        **asdict(agent), health_status=compute_health_status(agent.last_seen_at, now)
    )
