"""BudgetMapper: sliding-window call budgets, one bucket per agent per minute."""

from __future__ import annotations

from datetime import timedelta

import peewee as pw

from dorkstore import validation as check
from dorkstore.backends import current, guarded, write_transaction
from dorkstore.models.mesh import RateLimitBucket
from dorkstore.records import BudgetCheck
from dorkstore.repositories.base import Repository
from dorkstore.statements import Statement, const, slot
from dorkstore.timestamps import EPOCH

__all__ = ["BUCKET_RETENTION_MINUTES", "BUDGET_WINDOW_MINUTES", "BudgetMapper"]

#: The budget window: buckets with bucket_minute >= now_minute - 60 (61 buckets).
BUDGET_WINDOW_MINUTES = 60
#: Buckets with bucket_minute < now_minute - 120 are pruned.
BUCKET_RETENTION_MINUTES = 120

USED_SINCE = Statement(
    lambda: RateLimitBucket.select(
        pw.fn.COALESCE(pw.fn.SUM(RateLimitBucket.count), const(0))
    ).where(
        (RateLimitBucket.agent_id == slot("agent_id"))
        & (RateLimitBucket.bucket_minute >= slot("since"))
    )
)
INCREMENT = Statement(
    lambda: RateLimitBucket.insert(
        agent_id=slot("agent_id"), bucket_minute=slot("minute"), count=const(1)
    ).on_conflict(
        conflict_target=[RateLimitBucket.agent_id, RateLimitBucket.bucket_minute],
        update={RateLimitBucket.count: RateLimitBucket.count + const(1)},
    )
)
#: Every agent's expired buckets, but none another transaction holds: pruning under one
#: agent's lock must not wait for another agent's (PostgreSQL locks rows, not the file).
PRUNE = Statement(
    lambda: current().delete_unlocked(
        RateLimitBucket, RateLimitBucket.bucket_minute < slot("before")
    )
)


class BudgetMapper(Repository):
    """Sliding-window call budgets: one bucket per agent per minute."""

    def current_minute_bucket(self) -> int:
        """Return the current minute, counted from the Unix epoch."""
        return (self._now() - EPOCH) // timedelta(minutes=1)

    @guarded
    def check_budget(self, agent_id: str, max_calls_per_hour: int) -> BudgetCheck:
        """Return the agent's use of its budget over the last 60 minutes."""
        agent_id, limit = _arguments(agent_id, max_calls_per_hour)
        minute = self.current_minute_bucket()
        with write_transaction(agent_id):
            PRUNE.run(before=minute - BUCKET_RETENTION_MINUTES)
            return _budget(_used(agent_id, minute), limit)

    @guarded
    def record_call(self, agent_id: str) -> None:
        """Count one call in the current minute's bucket."""
        agent_id = check.text(agent_id, "agent_id")
        minute = self.current_minute_bucket()
        with write_transaction(agent_id):
            PRUNE.run(before=minute - BUCKET_RETENTION_MINUTES)
            INCREMENT.run(agent_id=agent_id, minute=minute)

    @guarded
    def try_consume(self, agent_id: str, max_calls_per_hour: int) -> BudgetCheck:
        """Record a call if the budget allows it, as one atomic step; return the state after.

        The check and the record run in one transaction that holds the agent's
        write lock from its start, so concurrent threads and processes together
        get exactly `max_calls_per_hour` successes per window.
        """
        agent_id, limit = _arguments(agent_id, max_calls_per_hour)
        minute = self.current_minute_bucket()
        with write_transaction(agent_id):
            PRUNE.run(before=minute - BUCKET_RETENTION_MINUTES)
            used = _used(agent_id, minute)
            if used >= limit:
                return _budget(used, limit)
            INCREMENT.run(agent_id=agent_id, minute=minute)
            return _budget(used + 1, limit, allowed=True)


def _arguments(agent_id: object, max_calls_per_hour: object) -> tuple[str, int]:
    return (
        check.text(agent_id, "agent_id"),
        check.integer(max_calls_per_hour, "max_calls_per_hour", minimum=0),
    )


def _used(agent_id: str, minute: int) -> int:
    return int(USED_SINCE.scalar(agent_id=agent_id, since=minute - BUDGET_WINDOW_MINUTES))


def _budget(used: int, limit: int, *, allowed: bool | None = None) -> BudgetCheck:
    return BudgetCheck(
        allowed=used < limit if allowed is None else allowed,
        remaining=max(0, limit - used),
        used=used,
    )
