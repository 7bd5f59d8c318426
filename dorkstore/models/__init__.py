"""Peewee models, one module per domain, all bound to `dorkstore.models.base.database`."""

from __future__ import annotations

from dorkstore.models.base import BaseModel, database
from dorkstore.models.mesh import AgentDenial, MeshAgent, RateLimitBucket
from dorkstore.models.pulse import PulseRun, PulseSchedule
from dorkstore.models.relay import RelayMessage, RelayTrace

__all__ = [
    "MODELS",
    "AgentDenial",
    "BaseModel",
    "MeshAgent",
    "PulseRun",
    "PulseSchedule",
    "RateLimitBucket",
    "RelayMessage",
    "RelayTrace",
    "database",
]

#: Every model with a table, parents before children.
MODELS: tuple[type[BaseModel], ...] = (
    PulseSchedule,
    PulseRun,
    RelayMessage,
    RelayTrace,
    MeshAgent,
    AgentDenial,
    RateLimitBucket,
)
