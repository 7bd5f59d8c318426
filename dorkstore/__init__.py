"""dorkstore: one SQLite file for the scheduler, the relay and the agent mesh."""

from __future__ import annotations

import logging

from dorkstore.backends import write_transaction
from dorkstore.db import close_db, database, init_db, migrate_db
from dorkstore.errors import (
    ConflictError,
    DatabaseBusyError,
    DatabaseError,
    DorkstoreError,
    MigrationError,
    NotFoundError,
    RefusedError,
    SchemaVersionError,
    ValidationError,
)
from dorkstore.records import (
    UNSET,
    Agent,
    AgentHealth,
    AgentStatus,
    AggregateStats,
    BudgetCheck,
    DeliveryMetrics,
    DenialRecord,
    HealthStatus,
    IndexedMessage,
    InvalidJSON,
    LegacyTraceStatus,
    MessagePage,
    MessageStatus,
    PermissionMode,
    RebuildResult,
    RelayMetrics,
    Run,
    RunStatus,
    RunTrigger,
    Schedule,
    ScheduleStatus,
    Timestamp,
    TraceSpan,
    TraceStatus,
    Unset,
)
from dorkstore.repositories.agents import AgentRegistry, compute_health_status
from dorkstore.repositories.budgets import BudgetMapper
from dorkstore.repositories.denials import DenialList
from dorkstore.repositories.messages import RelayIndex
from dorkstore.repositories.pulse import PulseStore
from dorkstore.repositories.traces import TraceStore

__all__ = [
    "UNSET",
    "Agent",
    "AgentHealth",
    "AgentRegistry",
    "AgentStatus",
    "AggregateStats",
    "BudgetCheck",
    "BudgetMapper",
    "ConflictError",
    "DatabaseBusyError",
    "DatabaseError",
    "DeliveryMetrics",
    "DenialList",
    "DenialRecord",
    "DorkstoreError",
    "HealthStatus",
    "IndexedMessage",
    "InvalidJSON",
    "LegacyTraceStatus",
    "MessagePage",
    "MessageStatus",
    "MigrationError",
    "NotFoundError",
    "PermissionMode",
    "PulseStore",
    "RebuildResult",
    "RefusedError",
    "RelayIndex",
    "RelayMetrics",
    "Run",
    "RunStatus",
    "RunTrigger",
    "Schedule",
    "ScheduleStatus",
    "SchemaVersionError",
    "Timestamp",
    "TraceSpan",
    "TraceStatus",
    "TraceStore",
    "Unset",
    "ValidationError",
    "close_db",
    "compute_health_status",
    "database",
    "init_db",
    "migrate_db",
    "write_transaction",
]

__version__ = "0.2.0"

# A library logs; the application decides where it goes (no lastResort output).
logging.getLogger("dorkstore").addHandler(logging.NullHandler())
