"""Peewee models, one module per domain, all bound to `dorkstore.database`."""

from __future__ import annotations

from dorkstore.models.base import BaseModel
from dorkstore.models.mesh import Agent, AgentDenial, RateLimitBucket
from dorkstore.models.pulse import PulseRun, PulseSchedule
from dorkstore.models.relay import RelayMessage, RelayTrace

__all__ = [
    "MODELS",
    "Agent",
    "AgentDenial",
    "BaseModel",
    "PulseRun",
    "PulseSchedule",
    "RateLimitBucket",
    "RelayMessage",
    "RelayTrace",
]

#: Every model with a table, parents before children.
MODELS: tuple[type[BaseModel], ...] = (
    PulseSchedule,
    PulseRun,
    RelayMessage,
    RelayTrace,
    Agent,
    AgentDenial,
    RateLimitBucket,
)
