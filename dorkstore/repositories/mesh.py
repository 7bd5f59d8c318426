"""AgentRegistry, DenialList and BudgetMapper: the agent mesh's state."""

from __future__ import annotations

import builtins
import json
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

import peewee as pw

from dorkstore import dialect
from dorkstore import validation as check
from dorkstore.db import database
from dorkstore.errors import ValidationError
from dorkstore.models.mesh import AGENT_STATUSES, AgentDenial, RateLimitBucket
from dorkstore.models.mesh import Agent as AgentRow
from dorkstore.repositories.base import (
    Repository,
    fetch_all,
    fetch_one,
    guarded,
    slot,
    write,
    write_transaction,
)
from dorkstore.timestamps import EPOCH, format_timestamp, parse_timestamp

__all__ = [
    "ACTIVE_WITHIN",
    "BUCKET_RETENTION_MINUTES",
    "BUDGET_WINDOW_MINUTES",
    "INACTIVE_WITHIN",
    "Agent",
    "AgentHealth",
    "AgentRegistry",
    "AggregateStats",
    "BudgetCheck",
    "BudgetMapper",
    "DenialList",
    "DenialRecord",
    "compute_health_status",
]

#: Seen less than this long ago: 'active'.
ACTIVE_WITHIN = timedelta(minutes=5)
#: Seen less than this long ago (and not active): 'inactive'; otherwise 'stale'.
INACTIVE_WITHIN = timedelta(minutes=30)
#: The budget window: buckets with bucket_minute >= now_minute - 60 (61 buckets).
BUDGET_WINDOW_MINUTES = 60
#: Buckets with bucket_minute < now_minute - 120 are pruned.
BUCKET_RETENTION_MINUTES = 120


@dataclass(frozen=True, slots=True)
class Agent:
    """A registered agent."""

    id: str
    name: str
    runtime: str
    project_path: str
    namespace: str
    capabilities: tuple[str, ...]
    entrypoint: str | None
    version: str | None
    description: str | None
    approver: str | None
    status: str
    last_seen_at: str | None
    last_seen_event: str | None
    registered_at: str
    updated_at: str


@dataclass(frozen=True, slots=True)
class AgentHealth(Agent):
    """An agent and its health: 'active', 'inactive' or 'stale'."""

    health_status: str


@dataclass(frozen=True, slots=True)
class AggregateStats:
    """How many agents there are, by health."""

    total_agents: int
    active_count: int
    inactive_count: int
    stale_count: int


@dataclass(frozen=True, slots=True)
class DenialRecord:
    """A project path that discovery must skip."""

    id: str
    path: str
    reason: str | None
    denier: str | None
    created_at: str


@dataclass(frozen=True, slots=True)
class BudgetCheck:
    """An agent's budget over the last hour; `allowed` is `used < max`."""

    allowed: bool
    remaining: int
    used: int


def compute_health_status(last_seen_at: str | datetime | None, now: datetime) -> str:
    """Return 'active' (seen under 5 minutes before `now`), 'inactive' (under 30) or 'stale'.

    Never seen is 'stale'; a time after `now` (clock skew) is 'active'.
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


_AGENT_FIELDS = [field.name for field in fields(Agent)]
_AGENT_COLUMNS = [
    AgentRow.capabilities_json if name == "capabilities" else getattr(AgentRow, name)
    for name in _AGENT_FIELDS
]
_CAPABILITIES = _AGENT_FIELDS.index("capabilities")
_NEWEST_REGISTRATION_FIRST = (AgentRow.registered_at.desc(), AgentRow.id.desc())

_AGENT_CHECKS: dict[str, Any] = {
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


def _agent(row: tuple[Any, ...]) -> Agent:
    values = list(row)
    encoded = values[_CAPABILITIES]
    values[_CAPABILITIES] = () if encoded == "[]" else tuple(json.loads(encoded))
    return Agent(*values)


def _agent_by(column: str, value: str) -> Agent | None:
    """Return the agent whose `column` (id or project_path) equals `value`, or None."""
    row = fetch_one(
        ("agent_by", column),
        lambda: AgentRow.select(*_AGENT_COLUMNS).where(getattr(AgentRow, column) == slot("value")),
        value=value,
    )
    return None if row is None else _agent(row)


def _agent_columns(changes: dict[str, Any]) -> dict[str, Any]:
    """Validate mutable agent fields; return them keyed by column name."""
    unknown = sorted(set(changes) - set(_AGENT_CHECKS))
    if unknown:
        raise ValidationError(
            f"cannot update {', '.join(unknown)}: the mutable agent fields are "
            f"{', '.join(_AGENT_CHECKS)}"
        )
    return {
        "capabilities_json" if name == "capabilities" else name: _AGENT_CHECKS[name](value)
        for name, value in changes.items()
    }


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
        status: str = "active",
        registered_at: object = None,
    ) -> Agent:
        """Register an agent. Raises ConflictError if its id or project_path is taken."""
        now = self._now()
        columns = _agent_columns(
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
        columns |= {
            "id": self._new_id(now) if id is None else check.text(id, "id"),
            "project_path": check.path_text(project_path, "project_path"),
            "registered_at": stamp
            if registered_at is None
            else parse_timestamp(registered_at, "registered_at"),
            "updated_at": stamp,
            "last_seen_at": None,
            "last_seen_event": None,
        }
        names = tuple(columns)
        write(
            ("insert_agent", names),
            lambda: AgentRow.insert({getattr(AgentRow, n): slot(n) for n in names}),
            **columns,
        )
        return _agent(tuple(columns[column.column_name] for column in _AGENT_COLUMNS))

    @guarded
    def get(self, id: str) -> Agent | None:
        """Return the agent with this id, or None."""
        return _agent_by("id", check.text(id, "id"))

    @guarded
    def get_by_path(self, project_path: str) -> Agent | None:
        """Return the agent registered for this project path, or None."""
        return _agent_by("project_path", check.path_text(project_path, "project_path"))

    @guarded
    def list(
        self, *, runtime: str | None = None, capability: str | None = None
    ) -> builtins.list[Agent]:
        """Return agents, newest registration first, optionally of one runtime or capability."""
        return self._select(runtime, capability)

    @guarded
    def list_by_namespace(self, namespace: str) -> builtins.list[Agent]:
        """Return the agents of one namespace, newest registration first."""
        found = fetch_all(
            "agents_by_namespace",
            lambda: (
                AgentRow.select(*_AGENT_COLUMNS)
                .where(AgentRow.namespace == slot("namespace"))
                .order_by(*_NEWEST_REGISTRATION_FIRST)
            ),
            namespace=check.text(namespace, "namespace"),
        )
        return [_agent(row) for row in found]

    @guarded
    def update(self, id: str, /, **changes: Any) -> bool:
        """Change mutable fields and move `updated_at`; False if there is no such agent.

        Raises ValidationError for id, project_path, registered_at or an unknown field.
        """
        columns = _agent_columns(changes)
        columns["updated_at"] = self._now_text()
        names = tuple(sorted(columns))
        changed = write(
            ("update_agent", names),
            lambda: AgentRow.update({getattr(AgentRow, n): slot(n) for n in names}).where(
                AgentRow.id == slot("id")
            ),
            id=check.text(id, "id"),
            **columns,
        )
        return bool(changed)

    @guarded
    def remove(self, id: str) -> bool:
        """Unregister an agent; False if there was no such agent."""
        changed = write(
            "remove_agent",
            lambda: AgentRow.delete().where(AgentRow.id == slot("id")),
            id=check.text(id, "id"),
        )
        return bool(changed)

    @guarded
    def update_health(self, id: str, last_seen_at: object, last_seen_event: str) -> bool:
        """Record when an agent was last seen, and doing what; False if there is no such agent."""
        changed = write(
            "update_health",
            lambda: AgentRow.update(last_seen_at=slot("at"), last_seen_event=slot("event")).where(
                AgentRow.id == slot("id")
            ),
            at=parse_timestamp(last_seen_at, "last_seen_at"),
            event=check.text(last_seen_event, "last_seen_event", empty=True),
            id=check.text(id, "id"),
        )
        return bool(changed)

    @guarded
    def get_with_health(self, id: str) -> AgentHealth | None:
        """Return the agent and its health now, or None."""
        agent = _agent_by("id", check.text(id, "id"))
        return None if agent is None else self._with_health(agent, self._now())

    @guarded
    def list_with_health(
        self, *, runtime: str | None = None, capability: str | None = None
    ) -> builtins.list[AgentHealth]:
        """Return `list(...)` with each agent's health now."""
        now = self._now()
        return [self._with_health(agent, now) for agent in self._select(runtime, capability)]

    @guarded
    def get_aggregate_stats(self) -> AggregateStats:
        """Count the agents by health now."""
        now = self._now()
        seen = [
            compute_health_status(at, now)
            for (at,) in fetch_all(
                "agents_last_seen", lambda: AgentRow.select(AgentRow.last_seen_at)
            )
        ]
        return AggregateStats(
            total_agents=len(seen),
            active_count=seen.count("active"),
            inactive_count=seen.count("inactive"),
            stale_count=seen.count("stale"),
        )

    def _select(self, runtime: str | None, capability: str | None) -> builtins.list[Agent]:
        values: dict[str, Any] = {}
        if runtime is not None:
            values["runtime"] = check.text(runtime, "runtime")
        if capability is not None:
            values["capability"] = check.text(capability, "capability")
        shape = tuple(sorted(values))

        def build() -> pw.Node:
            query = AgentRow.select(*_AGENT_COLUMNS)
            if "runtime" in shape:
                query = query.where(AgentRow.runtime == slot("runtime"))
            if "capability" in shape:
                query = query.where(
                    dialect.json_array_contains(
                        database, AgentRow.capabilities_json, slot("capability")
                    )
                )
            return query.order_by(*_NEWEST_REGISTRATION_FIRST)

        return [_agent(row) for row in fetch_all(("list_agents", shape), build, **values)]

    @staticmethod
    def _with_health(agent: Agent, now: datetime) -> AgentHealth:
        values = {name: getattr(agent, name) for name in _AGENT_FIELDS}
        return AgentHealth(**values, health_status=compute_health_status(agent.last_seen_at, now))


class DenialList(Repository):
    """Project paths refused during discovery, stored canonical (symlinks and .. resolved)."""

    @guarded
    def deny(
        self, path: str, *, reason: str | None = None, denier: str | None = "user"
    ) -> DenialRecord:
        """Deny a path; denying it again replaces reason, denier and created_at."""
        now = self._now()
        row: dict[str, Any] = {
            "id": self._new_id(now),
            "path": check.canonical_path(path, "path"),
            "reason": check.optional_text(reason, "reason"),
            "denier": check.optional_text(denier, "denier"),
            "created_at": format_timestamp(now),
        }
        with write_transaction():
            write(
                "deny",
                lambda: AgentDenial.insert(
                    {getattr(AgentDenial, n): slot(n) for n in row}
                ).on_conflict(
                    conflict_target=[AgentDenial.path],
                    preserve=[AgentDenial.reason, AgentDenial.denier, AgentDenial.created_at],
                ),
                **row,
            )
            stored = fetch_one(
                "denial_id",
                lambda: AgentDenial.select(AgentDenial.id).where(AgentDenial.path == slot("path")),
                path=row["path"],
            )
            row["id"] = stored[0] if stored else row["id"]
        return DenialRecord(**row)

    @guarded
    def is_denied(self, path: str) -> bool:
        """Return True if the canonical form of `path` is denied."""
        canonical = check.canonical_path(path, "path")
        found = fetch_one(
            "is_denied",
            lambda: AgentDenial.select(pw.SQL("1")).where(AgentDenial.path == slot("path")),
            path=canonical,
        )
        return found is not None

    @guarded
    def list(self) -> builtins.list[DenialRecord]:
        """Return every denial, newest first."""
        found = fetch_all(
            "list_denials",
            lambda: AgentDenial.select(
                AgentDenial.id,
                AgentDenial.path,
                AgentDenial.reason,
                AgentDenial.denier,
                AgentDenial.created_at,
            ).order_by(AgentDenial.created_at.desc(), AgentDenial.id.desc()),
        )
        return [DenialRecord(*row) for row in found]

    @guarded
    def clear(self, path: str) -> bool:
        """Remove a denial; False if the path was not denied."""
        canonical = check.canonical_path(path, "path")
        changed = write(
            "clear_denial",
            lambda: AgentDenial.delete().where(AgentDenial.path == slot("path")),
            path=canonical,
        )
        return bool(changed)


class BudgetMapper(Repository):
    """Sliding-window call budgets: one bucket per agent per minute."""

    def current_minute_bucket(self) -> int:
        """Return the current minute, counted from the Unix epoch."""
        return (self._now() - EPOCH) // timedelta(minutes=1)

    @guarded
    def check_budget(self, agent_id: str, max_calls_per_hour: int) -> BudgetCheck:
        """Return the agent's use of its budget over the last 60 minutes."""
        agent_id, limit = self._arguments(agent_id, max_calls_per_hour)
        minute = self.current_minute_bucket()
        with write_transaction():
            self._prune(minute)
            return _budget(self._used(agent_id, minute), limit)

    @guarded
    def record_call(self, agent_id: str) -> None:
        """Count one call in the current minute's bucket."""
        agent_id = check.text(agent_id, "agent_id")
        minute = self.current_minute_bucket()
        with write_transaction():
            self._prune(minute)
            self._increment(agent_id, minute)

    @guarded
    def try_consume(self, agent_id: str, max_calls_per_hour: int) -> BudgetCheck:
        """Record a call if the budget allows it, as one atomic step; return the state after.

        The check and the record run in one transaction that holds the write
        lock from its start, so concurrent threads and processes together get
        exactly `max_calls_per_hour` successes per window.
        """
        agent_id, limit = self._arguments(agent_id, max_calls_per_hour)
        minute = self.current_minute_bucket()
        with write_transaction():
            self._prune(minute)
            used = self._used(agent_id, minute)
            if used >= limit:
                return _budget(used, limit)
            self._increment(agent_id, minute)
            return _budget(used + 1, limit, allowed=True)

    @staticmethod
    def _arguments(agent_id: object, max_calls_per_hour: object) -> tuple[str, int]:
        return (
            check.text(agent_id, "agent_id"),
            check.integer(max_calls_per_hour, "max_calls_per_hour", minimum=0),
        )

    @staticmethod
    def _used(agent_id: str, minute: int) -> int:
        row = fetch_one(
            "budget_used",
            lambda: RateLimitBucket.select(
                pw.fn.COALESCE(pw.fn.SUM(RateLimitBucket.count), 0)
            ).where(
                (RateLimitBucket.agent_id == slot("agent_id"))
                & (RateLimitBucket.bucket_minute >= slot("since"))
            ),
            agent_id=agent_id,
            since=minute - BUDGET_WINDOW_MINUTES,
        )
        return int(row[0]) if row else 0

    @staticmethod
    def _increment(agent_id: str, minute: int) -> None:
        write(
            "budget_increment",
            lambda: RateLimitBucket.insert(
                agent_id=slot("agent_id"), bucket_minute=slot("minute"), count=1
            ).on_conflict(
                conflict_target=[RateLimitBucket.agent_id, RateLimitBucket.bucket_minute],
                update={RateLimitBucket.count: RateLimitBucket.count + 1},
            ),
            agent_id=agent_id,
            minute=minute,
        )

    @staticmethod
    def _prune(minute: int) -> None:
        write(
            "budget_prune",
            lambda: RateLimitBucket.delete().where(RateLimitBucket.bucket_minute < slot("before")),
            before=minute - BUCKET_RETENTION_MINUTES,
        )


def _budget(used: int, limit: int, *, allowed: bool | None = None) -> BudgetCheck:
    return BudgetCheck(
        allowed=used < limit if allowed is None else allowed,
        remaining=max(0, limit - used),
        used=used,
    )
