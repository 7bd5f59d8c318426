"""The frozen records repositories return, and the vocabulary of their statuses.

Nothing here knows about Peewee or a database: the models map rows to these
records (``to_record``) and back, in one place each.

Each status, trigger and mode is a `Literal` type, so that a type checker
refuses ``status="complete"`` before anything runs. The tuples the
repositories validate with, and build their SQL ``CHECK`` constraints from,
are derived from those types: one list of values each.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias, get_args

__all__ = [
    "AGENT_STATUSES",
    "LEGACY_TRACE_STATUSES",
    "MAILDIR_STATUSES",
    "MESSAGE_STATUSES",
    "RUN_STATUSES",
    "RUN_TRIGGERS",
    "SCHEDULE_STATUSES",
    "TRACE_STATUSES",
    "UNSET",
    "Agent",
    "AgentHealth",
    "AgentStatus",
    "AggregateStats",
    "BudgetCheck",
    "DeliveryMetrics",
    "DenialRecord",
    "HealthStatus",
    "IndexedMessage",
    "InvalidJSON",
    "LegacyTraceStatus",
    "MessagePage",
    "MessageStatus",
    "PermissionMode",
    "RebuildResult",
    "RelayMetrics",
    "Run",
    "RunStatus",
    "RunTrigger",
    "Schedule",
    "ScheduleStatus",
    "Timestamp",
    "TraceSpan",
    "TraceStatus",
    "Unset",
]

#: A schedule's status (``pulse_schedules.status``).
ScheduleStatus: TypeAlias = Literal["active", "paused", "pending_approval"]
#: A run's status (``pulse_runs.status``).
RunStatus: TypeAlias = Literal["running", "completed", "failed", "cancelled", "timeout"]
#: What started a run (``pulse_runs.trigger``).
RunTrigger: TypeAlias = Literal["scheduled", "manual", "agent"]
#: An indexed message's status (``relay_index.status``).
MessageStatus: TypeAlias = Literal["pending", "delivered", "failed"]
#: A delivery span's status (``relay_traces.status``).
TraceStatus: TypeAlias = Literal["sent", "delivered", "failed", "timeout"]
#: The span statuses older callers send. `TraceStore` stores each as a
#: `TraceStatus`: pending as sent, processed as delivered, dead_lettered as timeout.
LegacyTraceStatus: TypeAlias = Literal["pending", "processed", "dead_lettered"]
#: An agent's status (``agents.status``).
AgentStatus: TypeAlias = Literal["active", "inactive"]
#: An agent's health, from when it was last seen (`compute_health_status`).
HealthStatus: TypeAlias = Literal["active", "inactive", "stale"]
#: Claude Code's permission modes, for a schedule's ``permission_mode``. The
#: schema does not constrain that column, and imported or older rows may hold
#: other modes: at run time any non-empty string is accepted and returned, so
#: `Schedule.permission_mode` is typed ``PermissionMode | str``.
PermissionMode: TypeAlias = Literal["default", "acceptEdits", "bypassPermissions", "plan"]
#: A timestamp as records carry it: canonical ISO 8601 text in UTC, to the
#: millisecond, ``Z`` suffix (``2026-02-25T14:03:07.123Z``): it sorts as it compares.
Timestamp: TypeAlias = str

SCHEDULE_STATUSES: tuple[ScheduleStatus, ...] = get_args(ScheduleStatus)
RUN_STATUSES: tuple[RunStatus, ...] = get_args(RunStatus)
RUN_TRIGGERS: tuple[RunTrigger, ...] = get_args(RunTrigger)
MESSAGE_STATUSES: tuple[MessageStatus, ...] = get_args(MessageStatus)
TRACE_STATUSES: tuple[TraceStatus, ...] = get_args(TraceStatus)
AGENT_STATUSES: tuple[AgentStatus, ...] = get_args(AgentStatus)

#: Maildir folder (and the old relay's status column) -> indexed message status.
#: ``tmp/`` holds half-written files and is not listed: it is never indexed.
MAILDIR_STATUSES: dict[str, MessageStatus] = {
    "new": "pending",
    "cur": "delivered",
    "failed": "failed",
}
#: Span status names older callers send -> the names stored now.
LEGACY_TRACE_STATUSES: dict[str, TraceStatus] = {
    "pending": "sent",
    "processed": "delivered",
    "dead_lettered": "timeout",
}


class Unset(enum.Enum):
    """The type of `UNSET`, the default of the update methods' parameters."""

    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


#: "Not given": an update method keeps a field whose argument is UNSET as it is.
#: None cannot mean that, as it is a value: ``description=None`` clears a description.
UNSET: Final = Unset.UNSET


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
    permission_mode: PermissionMode | str
    status: ScheduleStatus
    created_at: Timestamp
    updated_at: Timestamp


@dataclass(frozen=True, slots=True)
class Run:
    """One execution of a schedule."""

    id: str
    schedule_id: str
    status: RunStatus
    started_at: Timestamp
    finished_at: Timestamp | None
    duration_ms: int | None
    output: str | None
    error: str | None
    session_id: str | None
    trigger: RunTrigger
    created_at: Timestamp


@dataclass(frozen=True, slots=True)
class IndexedMessage:
    """One indexed Maildir message; `payload` and `metadata` are decoded JSON.

    Stored text that is not strict JSON comes back as `InvalidJSON`.
    """

    id: str
    subject: str
    endpoint_hash: str
    sender: str | None
    status: MessageStatus
    expires_at: Timestamp | None
    payload: Any
    metadata: Any
    created_at: Timestamp


@dataclass(frozen=True, slots=True)
class MessagePage:
    """One page of `query_messages`; `next_cursor` is None on the last page."""

    messages: list[IndexedMessage]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class RelayMetrics:
    """Counts over the index: `by_subject` by count descending, then subject."""

    total_messages: int
    by_status: dict[MessageStatus, int]
    by_subject: list[tuple[str, int]]


@dataclass(frozen=True, slots=True)
class RebuildResult:
    """What `RelayIndex.reconcile` did to the index, or would do in a dry run."""

    #: Messages the index holds afterwards: one per envelope file indexed.
    indexed: int
    #: Messages it held before.
    previous: int
    #: Rows written: new messages, and messages whose file says something else now.
    written: int
    #: Rows deleted: messages whose envelope file is gone or cannot be indexed.
    deleted: int
    #: True when nothing was written: the counts say what a rebuild would do.
    dry_run: bool

    @property
    def loses_over_half(self) -> bool:
        """Whether it deletes more than half of a non-empty index (refused without force)."""
        return 2 * self.deleted > self.previous


@dataclass(frozen=True, slots=True)
class TraceSpan:
    """One message's trip through the relay; `metadata` is decoded JSON (or `InvalidJSON`)."""

    id: str
    message_id: str
    trace_id: str
    subject: str
    status: TraceStatus
    sent_at: Timestamp
    delivered_at: Timestamp | None
    processed_at: Timestamp | None
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
    status: AgentStatus
    last_seen_at: Timestamp | None
    last_seen_event: str | None
    registered_at: Timestamp
    updated_at: Timestamp


@dataclass(frozen=True, slots=True)
class AgentHealth(Agent):
    """An agent and its health: 'active', 'inactive' or 'stale'."""

    health_status: HealthStatus


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
    created_at: Timestamp


@dataclass(frozen=True, slots=True)
class BudgetCheck:
    """An agent's budget over the last hour; `allowed` is `used < max`."""

    allowed: bool
    remaining: int
    used: int
