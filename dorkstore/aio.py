"""dorkstore for async services: every repository method as a coroutine.

The database drivers block: a call waiting for another process's write lock
waits up to the busy timeout. Called from ``async def`` code directly, that
wait freezes the whole event loop, so every request of the service waits with
it. Here each call runs on a bounded pool of worker threads instead (each with
its own connection, as dorkstore keeps one per thread), and the loop stays free::

    store = dorkstore.aio.AsyncStore()
    run = await store.pulse.create_run(schedule_id)

    async with dorkstore.aio.transaction():      # one group, one write lock
        run = await store.pulse.create_run(schedule_id)
        await store.budgets.record_call("agent-1")

A `transaction` runs every call of its group on one thread of its own, inside
one transaction that takes the write lock at its start (``BEGIN IMMEDIATE`` on
SQLite): grouping cannot deadlock against itself, as wrapping
``database.atomic()`` around calls sent to other threads would. Tasks started
inside the group share it. The records, errors and guarantees are those of the
synchronous repositories.
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any, Concatenate, Final, Generic, ParamSpec, TypeVar

from dorkstore.backends import write_transaction
from dorkstore.db import close_db
from dorkstore.repositories.agents import AgentRegistry
from dorkstore.repositories.base import Repository
from dorkstore.repositories.budgets import BudgetMapper
from dorkstore.repositories.denials import DenialList
from dorkstore.repositories.messages import RelayIndex
from dorkstore.repositories.pulse import PulseStore
from dorkstore.repositories.traces import TraceStore
from dorkstore.timestamps import Clock

__all__ = [
    "AsyncAgentRegistry",
    "AsyncBudgetMapper",
    "AsyncDenialList",
    "AsyncPulseStore",
    "AsyncRelayIndex",
    "AsyncStore",
    "AsyncTraceStore",
    "configure",
    "transaction",
]

P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S", bound=Repository)

#: Worker threads for calls outside a transaction (each holds one connection).
DEFAULT_WORKERS = min(8, (os.cpu_count() or 1) + 4)

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_workers = DEFAULT_WORKERS
#: The thread of the transaction the current task is in, if any.
_group: ContextVar[ThreadPoolExecutor | None] = ContextVar("dorkstore_aio_group", default=None)


def configure(*, workers: int = DEFAULT_WORKERS) -> None:
    """Set how many worker threads run calls outside transactions (before the first call)."""
    global _workers, _pool  # noqa: PLW0603 - one pool per process
    if workers < 1:
        raise ValueError("workers must be at least 1")
    with _pool_lock:
        if _pool is not None:
            _pool.shutdown(wait=False)
            _pool = None
        _workers = workers


def _shared_pool() -> ThreadPoolExecutor:
    global _pool  # noqa: PLW0603 - one pool per process
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(_workers, thread_name_prefix="dorkstore")
        return _pool


async def _call(function: Callable[[], R]) -> R:
    """Run `function` on the current transaction's thread, or on the shared pool."""
    executor = _group.get() or _shared_pool()
    return await asyncio.get_running_loop().run_in_executor(executor, function)


@asynccontextmanager
async def transaction(key: str | None = None) -> AsyncIterator[None]:
    """Run the calls of this block (and of tasks it starts) in one write transaction.

    They run on one thread of their own, which takes the write lock when the
    block starts (waiting up to the busy timeout, as any writer does) and
    commits when it ends, or rolls back if it raises. `key` narrows the lock
    where the backend can (PostgreSQL: one agent's budget, say). Nested, it is
    a savepoint on the same thread.
    """
    outer = _group.get()
    executor = outer or ThreadPoolExecutor(1, thread_name_prefix="dorkstore-transaction")
    loop = asyncio.get_running_loop()
    begun: list[Any] = []
    try:
        await loop.run_in_executor(executor, _begin, key, begun)
        token = _group.set(executor)
        try:
            yield
        except BaseException as exc:
            await loop.run_in_executor(executor, _end, begun[0], exc)
            raise
        else:
            await loop.run_in_executor(executor, _end, begun[0], None)
        finally:
            _group.reset(token)
    finally:
        if outer is None:
            await loop.run_in_executor(executor, close_db)
            executor.shutdown(wait=False)


def _begin(key: str | None, begun: list[Any]) -> None:
    # write_transaction() raises dorkstore errors itself, on the way in and out.
    context = write_transaction(key)
    context.__enter__()
    begun.append(context)


def _end(context: Any, exc: BaseException | None) -> None:
    if exc is None:
        context.__exit__(None, None, None)
    else:
        context.__exit__(type(exc), exc, exc.__traceback__)


def _asynced(
    method: Callable[Concatenate[S, P], R],
) -> Callable[Concatenate[_Async[S], P], Coroutine[Any, Any, R]]:
    """Return a coroutine method that runs `method` of the wrapped repository on a worker."""

    async def call(self: _Async[S], /, *args: P.args, **kwargs: P.kwargs) -> R:
        return await _call(functools.partial(method, self.sync, *args, **kwargs))

    functools.update_wrapper(call, method)
    return call


class _Async(Generic[S]):
    """An async face of one repository; `sync` is the repository it calls.

    Each method is a `Final` name bound to ``_asynced(Repo.method)``: its type,
    the wrapped method's signature returning a coroutine, is inferred from
    that, and a checker may infer a `Final` name's type (pyright's
    ``--verifytypes`` requires a declared type for any other attribute).
    """

    def __init__(self, sync: S) -> None:
        #: The synchronous repository the coroutines call.
        self.sync: S = sync

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self.sync!r}>"


class AsyncPulseStore(_Async[PulseStore]):
    """`PulseStore`, awaitable."""

    def __init__(self, *, clock: Clock | None = None) -> None:
        super().__init__(PulseStore(clock=clock))

    list_schedules: Final = _asynced(PulseStore.list_schedules)
    get_schedule: Final = _asynced(PulseStore.get_schedule)
    create_schedule: Final = _asynced(PulseStore.create_schedule)
    update_schedule: Final = _asynced(PulseStore.update_schedule)
    delete_schedule: Final = _asynced(PulseStore.delete_schedule)
    create_run: Final = _asynced(PulseStore.create_run)
    get_run: Final = _asynced(PulseStore.get_run)
    update_run: Final = _asynced(PulseStore.update_run)
    list_runs: Final = _asynced(PulseStore.list_runs)
    get_running_runs: Final = _asynced(PulseStore.get_running_runs)
    count_runs: Final = _asynced(PulseStore.count_runs)
    prune_runs: Final = _asynced(PulseStore.prune_runs)
    mark_running_as_failed: Final = _asynced(PulseStore.mark_running_as_failed)


class AsyncRelayIndex(_Async[RelayIndex]):
    """`RelayIndex`, awaitable."""

    def __init__(self, *, clock: Clock | None = None) -> None:
        super().__init__(RelayIndex(clock=clock))

    insert_message: Final = _asynced(RelayIndex.insert_message)
    insert_many: Final = _asynced(RelayIndex.insert_many)
    update_status: Final = _asynced(RelayIndex.update_status)
    get_message: Final = _asynced(RelayIndex.get_message)
    get_by_subject: Final = _asynced(RelayIndex.get_by_subject)
    get_by_endpoint: Final = _asynced(RelayIndex.get_by_endpoint)
    count_sender_in_window: Final = _asynced(RelayIndex.count_sender_in_window)
    count_pending_by_endpoint: Final = _asynced(RelayIndex.count_pending_by_endpoint)
    query_messages: Final = _asynced(RelayIndex.query_messages)
    delete_expired: Final = _asynced(RelayIndex.delete_expired)
    rebuild: Final = _asynced(RelayIndex.rebuild)
    reconcile: Final = _asynced(RelayIndex.reconcile)
    get_metrics: Final = _asynced(RelayIndex.get_metrics)
    is_wal_mode: Final = _asynced(RelayIndex.is_wal_mode)


class AsyncTraceStore(_Async[TraceStore]):
    """`TraceStore`, awaitable."""

    def __init__(self, *, clock: Clock | None = None) -> None:
        super().__init__(TraceStore(clock=clock))

    insert_span: Final = _asynced(TraceStore.insert_span)
    update_span: Final = _asynced(TraceStore.update_span)
    get_span: Final = _asynced(TraceStore.get_span)
    get_trace: Final = _asynced(TraceStore.get_trace)
    get_metrics: Final = _asynced(TraceStore.get_metrics)


class AsyncAgentRegistry(_Async[AgentRegistry]):
    """`AgentRegistry`, awaitable."""

    def __init__(self, *, clock: Clock | None = None) -> None:
        super().__init__(AgentRegistry(clock=clock))

    insert: Final = _asynced(AgentRegistry.insert)
    get: Final = _asynced(AgentRegistry.get)
    get_by_path: Final = _asynced(AgentRegistry.get_by_path)
    list: Final = _asynced(AgentRegistry.list)
    list_by_namespace: Final = _asynced(AgentRegistry.list_by_namespace)
    update: Final = _asynced(AgentRegistry.update)
    remove: Final = _asynced(AgentRegistry.remove)
    update_health: Final = _asynced(AgentRegistry.update_health)
    get_with_health: Final = _asynced(AgentRegistry.get_with_health)
    list_with_health: Final = _asynced(AgentRegistry.list_with_health)
    get_aggregate_stats: Final = _asynced(AgentRegistry.get_aggregate_stats)


class AsyncDenialList(_Async[DenialList]):
    """`DenialList`, awaitable."""

    def __init__(self, *, clock: Clock | None = None) -> None:
        super().__init__(DenialList(clock=clock))

    deny: Final = _asynced(DenialList.deny)
    is_denied: Final = _asynced(DenialList.is_denied)
    list: Final = _asynced(DenialList.list)
    clear: Final = _asynced(DenialList.clear)


class AsyncBudgetMapper(_Async[BudgetMapper]):
    """`BudgetMapper`, awaitable."""

    def __init__(self, *, clock: Clock | None = None) -> None:
        super().__init__(BudgetMapper(clock=clock))

    check_budget: Final = _asynced(BudgetMapper.check_budget)
    record_call: Final = _asynced(BudgetMapper.record_call)
    try_consume: Final = _asynced(BudgetMapper.try_consume)

    def current_minute_bucket(self) -> int:
        """Return the current minute, counted from the Unix epoch (no database involved)."""
        return self.sync.current_minute_bucket()


class AsyncStore:
    """The six repositories, awaitable, sharing one clock."""

    def __init__(self, *, clock: Clock | None = None) -> None:
        self.pulse: AsyncPulseStore = AsyncPulseStore(clock=clock)
        self.relay: AsyncRelayIndex = AsyncRelayIndex(clock=clock)
        self.traces: AsyncTraceStore = AsyncTraceStore(clock=clock)
        self.agents: AsyncAgentRegistry = AsyncAgentRegistry(clock=clock)
        self.denials: AsyncDenialList = AsyncDenialList(clock=clock)
        self.budgets: AsyncBudgetMapper = AsyncBudgetMapper(clock=clock)
