"""The frozen records repositories return, and the vocabulary of their statuses.

Nothing here knows about Peewee or a database: the models map rows to these
records (``to_record``) and back, in one place each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: Schedule statuses (``pulse_schedules.status``).
SCHEDULE_STATUSES = ("active", "paused", "pending_approval")
#: Run statuses (``pulse_runs.status``).
RUN_STATUSES = ("running", "completed", "failed", "cancelled", "timeout")
#: What started a run (``pulse_runs.trigger``).
RUN_TRIGGERS = ("scheduled", "manual", "agent")
#: Indexed message statuses (``relay_index.status``).
MESSAGE_STATUSES = ("pending", "delivered", "failed")
#: Delivery span statuses (``relay_traces.status``).
TRACE_STATUSES = ("sent", "delivered", "failed", "timeout")
#: Agent statuses (``agents.status``).
AGENT_STATUSES = ("active", "inactive")

#: Maildir folder (and the old relay's status column) -> indexed message status.
#: ``tmp/`` holds half-written files and is not listed: it is never indexed.
MAILDIR_STATUSES = {"new": "pending", "cur": "delivered", "failed": "failed"}
#: Span status names older callers send -> the names stored now.
LEGACY_TRACE_STATUSES = {"pending": "sent", "processed": "delivered", "dead_lettered": "timeout"}


class InvalidJSON(str):
    """The text of a JSON column that is not strict JSON, as stored (by another client).

    A record carries it instead of the decoded value (`payload`, `metadata`),
    so that one bad row never breaks a listing. It is a `str`: it prints and
    serialises as the text itself, and ``isinstance(value, InvalidJSON)`` tells
    it from a decoded JSON string.
    """

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Schedule:
    """A cron schedule that starts agent runs."""

    id: str
    name: str
    description: str | None
    cron: str
    timezone: str
    prompt: str
    cwd: str | None
    enabled: bool
    max_runtime: int | None
    permission_mode: str
    status: str
    created_at: str
    updated_at: str


@dataclass(frozen=True, slots=True)
class Run:
    """One execution of a schedule."""

    id: str
    schedule_id: str
    status: str
    started_at: str
    finished_at: str | None
    duration_ms: int | None
    output: str | None
    error: str | None
    session_id: str | None
    trigger: str
    created_at: str


@dataclass(frozen=True, slots=True)
class IndexedMessage:
    """One indexed Maildir message; `payload` and `metadata` are decoded JSON.

    Stored text that is not strict JSON comes back as `InvalidJSON`.
    """

    id: str
    subject: str
    endpoint_hash: str
    sender: str | None
    status: str
    expires_at: str | None
    payload: Any
    metadata: Any
    created_at: str


@dataclass(frozen=True, slots=True)
class MessagePage:
    """One page of `query_messages`; `next_cursor` is None on the last page."""

    messages: list[IndexedMessage]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class RelayMetrics:
    """Counts over the index: `by_subject` by count descending, then subject."""

    total_messages: int
    by_status: dict[str, int]
    by_subject: list[tuple[str, int]]


@dataclass(frozen=True, slots=True)
class TraceSpan:
    """One message's trip through the relay; `metadata` is decoded JSON (or `InvalidJSON`)."""

    id: str
    message_id: str
    trace_id: str
    subject: str
    status: str
    sent_at: str
    delivered_at: str | None
    processed_at: str | None
    error_message: str | None
    metadata: Any


@dataclass(frozen=True, slots=True)
class DeliveryMetrics:
    """Delivery counts and latency (delivered_at - sent_at) over all spans."""

    total_messages: int
    delivered_count: int
    failed_count: int
    dead_lettered_count: int
    avg_delivery_latency_ms: float | None
    p95_delivery_latency_ms: int | None
    active_endpoints: int
    budget_rejections: dict[str, int]


@dataclass(frozen=True, slots=True)
class Agent:
    """A registered agent.

    `capabilities` are the strings of the stored JSON array; of stored text
    that is not a JSON array of strings, only the strings it holds are kept.
    """

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
