"""Mesh tables: the agent registry, denied paths and per-agent call budgets."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import peewee as pw

from dorkstore.models.base import BaseModel, enum_check, sql_default
from dorkstore.models.json_columns import decode_text_array
from dorkstore.records import AGENT_STATUSES, Agent, DenialRecord

__all__ = ["AgentDenial", "MeshAgent", "RateLimitBucket"]


class MeshAgent(BaseModel):
    """A registered agent and when it was last seen (the record is `dorkstore.Agent`)."""

    id: pw.CharField[str] = pw.CharField(max_length=26, primary_key=True)
    name: pw.TextField[str] = pw.TextField()
    runtime: pw.TextField[str] = pw.TextField(index=True)
    project_path: pw.TextField[str] = pw.TextField(unique=True)
    namespace: pw.TextField[str] = pw.TextField(
        default="default", index=True, constraints=[sql_default("default")]
    )
    capabilities_json: pw.TextField[str] = pw.TextField(
        default="[]", constraints=[sql_default("[]")]
    )
    entrypoint: pw.TextField[str | None] = pw.TextField(null=True)
    version: pw.TextField[str | None] = pw.TextField(null=True)
    description: pw.TextField[str | None] = pw.TextField(null=True)
    approver: pw.TextField[str | None] = pw.TextField(null=True)
    status: pw.TextField[str] = pw.TextField(
        default="active",
        constraints=[sql_default("active"), enum_check("status", AGENT_STATUSES)],
    )
    last_seen_at: pw.TextField[str | None] = pw.TextField(null=True)
    last_seen_event: pw.TextField[str | None] = pw.TextField(null=True)
    registered_at: pw.TextField[str] = pw.TextField(index=True)
    updated_at: pw.TextField[str] = pw.TextField()

    class Meta:
        table_name = "agents"
        # Peewee names indexes after the model ("agent_runtime"); the class was
        # called Agent when they were made, and renaming it must not rename them.
        name = "agent"

    @staticmethod
    def to_record(row: Sequence[Any]) -> Agent:
        """Return the record of a selected row (in the record's field order), capabilities decoded.

        Of text another client stored that is not a JSON array of strings, the
        record keeps the strings of an array, else nothing; a WARNING names the row.
        """
        id, name, runtime, path, namespace, encoded, entrypoint, version, *rest = row
        description, approver, status, last_seen_at, last_seen_event, registered, updated = rest
        capabilities = decode_text_array(encoded, "agents", id, "capabilities_json")
        return Agent(
            id, name, runtime, path, namespace, capabilities, entrypoint, version, description,
            approver, status, last_seen_at, last_seen_event, registered, updated,
        )  # fmt: skip


class AgentDenial(BaseModel):
    """A project path that discovery must skip."""

    id: pw.CharField[str] = pw.CharField(max_length=26, primary_key=True)
    path: pw.TextField[str] = pw.TextField(unique=True)
    reason: pw.TextField[str | None] = pw.TextField(null=True)
    denier: pw.TextField[str | None] = pw.TextField(null=True)
    created_at: pw.TextField[str] = pw.TextField()

    class Meta:
        table_name = "agent_denials"

    @staticmethod
    def to_record(row: Sequence[Any]) -> DenialRecord:
        """Return the record of a selected row (in the record's field order)."""
        return DenialRecord(*row)


class RateLimitBucket(BaseModel):
    """Calls one agent made in one minute (minutes since the Unix epoch)."""

    agent_id: pw.TextField[str] = pw.TextField()
    # Indexed: every budget call prunes every agent's old buckets by bucket_minute,
    # and without it that DELETE scans the table (2.6 ms a call at 1,000 agents).
    bucket_minute: pw.BigIntegerField[int] = pw.BigIntegerField(index=True)
    count: pw.BigIntegerField[int] = pw.BigIntegerField(default=0, constraints=[sql_default(0)])

    class Meta:
        table_name = "rate_limit_buckets"
        primary_key = False


RateLimitBucket.add_index(
    RateLimitBucket.agent_id,
    RateLimitBucket.bucket_minute,
    unique=True,
    name="idx_rate_limit_agent_minute",
)
