"""dorkstore: one SQLite file for the scheduler, the relay and the agent mesh."""

from __future__ import annotations

import logging

from dorkstore.db import close_db, database, init_db, migrate_db
from dorkstore.errors import (
    ConflictError,
    DatabaseBusyError,
    DatabaseError,
    DorkstoreError,
    MigrationError,
    NotFoundError,
    SchemaVersionError,
    ValidationError,
)
from dorkstore.repositories import (
    Agent,
    AgentHealth,
    AgentRegistry,
    AggregateStats,
    BudgetCheck,
    BudgetMapper,
    DeliveryMetrics,
    DenialList,
    DenialRecord,
    IndexedMessage,
    MessagePage,
    PulseStore,
    RelayIndex,
    RelayMetrics,
    Run,
    Schedule,
    TraceSpan,
    TraceStore,
    compute_health_status,
)

__all__ = [
    "Agent",
    "AgentHealth",
    "AgentRegistry",
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
    "IndexedMessage",
    "MessagePage",
    "MigrationError",
    "NotFoundError",
    "PulseStore",
    "RelayIndex",
    "RelayMetrics",
    "Run",
    "Schedule",
    "SchemaVersionError",
    "TraceSpan",
    "TraceStore",
    "ValidationError",
    "close_db",
    "compute_health_status",
    "database",
    "init_db",
    "migrate_db",
]

__version__ = "0.1.0"

# A library logs; the application decides where it goes (no lastResort output).
logging.getLogger("dorkstore").addHandler(logging.NullHandler())
