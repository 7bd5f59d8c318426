"""Repository classes and the frozen records they return, one module per domain.

Repositories never open, pass or hold a connection: they use the models, which
are bound to `dorkstore.database`.
"""

from __future__ import annotations

from dorkstore.repositories.mesh import (
    Agent,
    AgentHealth,
    AgentRegistry,
    AggregateStats,
    BudgetCheck,
    BudgetMapper,
    DenialList,
    DenialRecord,
    compute_health_status,
)
from dorkstore.repositories.pulse import PulseStore, Run, Schedule
from dorkstore.repositories.relay import (
    DeliveryMetrics,
    IndexedMessage,
    MessagePage,
    RelayIndex,
    RelayMetrics,
    TraceSpan,
    TraceStore,
)

__all__ = [
    "Agent",
    "AgentHealth",
    "AgentRegistry",
    "AggregateStats",
    "BudgetCheck",
    "BudgetMapper",
    "DeliveryMetrics",
    "DenialList",
    "DenialRecord",
    "IndexedMessage",
    "MessagePage",
    "PulseStore",
    "RelayIndex",
    "RelayMetrics",
    "Run",
    "Schedule",
    "TraceSpan",
    "TraceStore",
    "compute_health_status",
]
