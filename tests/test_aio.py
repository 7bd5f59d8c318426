"""dorkstore.aio: repositories awaited from an ASGI service, as async services use them."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import peewee as pw
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import dorkstore
import dorkstore.aio
from dorkstore.backends import sqlite as sqlite_backend
from tests.helpers import lock_held_by_another_process


def service(store: dorkstore.aio.AsyncStore, schedule_id: str) -> Starlette:
    """A small service: a probe that touches no database, and an endpoint that writes."""

    async def health(_request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    async def start_run(_request: Request) -> JSONResponse:
        try:
            run = await store.pulse.create_run(schedule_id, trigger="manual")
        except dorkstore.DatabaseBusyError as exc:
            return JSONResponse({"error": str(exc)}, status_code=503)
        return JSONResponse({"id": run.id})

    return Starlette(routes=[Route("/health", health), Route("/runs", start_run, methods=["POST"])])


@pytest.mark.slow
@pytest.mark.sqlite_only
def test_a_probe_stays_fast_while_writes_wait_for_the_lock(
    file_db: pw.Database, monkeypatch: pytest.MonkeyPatch, db_path: Path
) -> None:
    """While another process holds the lock, /health answers fast and writes get a clean 503."""
    monkeypatch.setattr(sqlite_backend, "BUSY_TIMEOUT_MS", 1000)
    dorkstore.init_db(db_path)  # connections now wait 1 s for a lock, not 5
    schedule = dorkstore.PulseStore().create_schedule("n", "p", "* * * * *")
    app = service(dorkstore.aio.AsyncStore(), schedule.id)
    with lock_held_by_another_process(db_path, 3):
        statuses, probes = asyncio.run(writes_and_probes(app))
    assert [503] * 4 == statuses
    assert max(probes) < 0.050, probes


async def writes_and_probes(app: Starlette) -> tuple[list[int], list[float]]:
    """Send 4 writes at once and, while they wait, probe /health ten times."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        writes = [asyncio.create_task(client.post("/runs")) for _ in range(4)]
        await asyncio.sleep(0.1)
        probes = []
        for _ in range(10):
            started = time.perf_counter()
            assert 200 == (await client.get("/health")).status_code
            probes.append(time.perf_counter() - started)
            await asyncio.sleep(0.05)
        statuses = [response.status_code for response in await asyncio.gather(*writes)]
    return statuses, probes


def test_a_transaction_groups_calls_without_deadlocking_itself(db: pw.Database) -> None:
    """Calls in one aio.transaction share one transaction; others see them only at its end."""
    store = dorkstore.aio.AsyncStore()

    async def group() -> tuple[int, int]:
        schedule = await store.pulse.create_schedule("n", "p", "* * * * *")
        async with dorkstore.aio.transaction():
            await store.pulse.create_run(schedule.id)
            await asyncio.gather(*(store.pulse.create_run(schedule.id) for _ in range(3)))
            inside = await store.pulse.count_runs(schedule.id)
        return inside, await store.pulse.count_runs(schedule.id)

    assert (4, 4) == asyncio.run(asyncio.wait_for(group(), timeout=30))


def test_a_failing_group_is_rolled_back_whole(db: pw.Database) -> None:
    """An exception inside aio.transaction undoes every call of the group."""
    store = dorkstore.aio.AsyncStore()

    async def run_then_fail(schedule_id: str) -> None:
        async with dorkstore.aio.transaction():
            await store.pulse.create_run(schedule_id)
            await store.pulse.create_run("no such schedule")

    async def group() -> int:
        schedule = await store.pulse.create_schedule("n", "p", "* * * * *")
        with pytest.raises(dorkstore.NotFoundError):
            await run_then_fail(schedule.id)
        return await store.pulse.count_runs(schedule.id)

    assert 0 == asyncio.run(group())


def test_async_methods_return_the_same_records(db: pw.Database) -> None:
    """Each async method returns what its repository's method returns."""
    store = dorkstore.aio.AsyncStore()

    async def calls() -> tuple[object, ...]:
        await store.relay.insert_message("M1", "s", "ep")
        agent = await store.agents.insert("a", "claude", "/a", capabilities=["code"])
        return (
            (await store.relay.get_message("M1")),
            (await store.agents.list(capability="code")) == [agent],
            (await store.budgets.try_consume("a", 1)).allowed,
            (await store.budgets.try_consume("a", 1)).allowed,
        )

    message, listed, first, second = asyncio.run(calls())
    assert dorkstore.RelayIndex().get_message("M1") == message
    assert (True, True, False) == (listed, first, second)


@pytest.mark.parametrize(
    ("repository", "face"),
    [
        (dorkstore.PulseStore, dorkstore.aio.AsyncPulseStore),
        (dorkstore.RelayIndex, dorkstore.aio.AsyncRelayIndex),
        (dorkstore.TraceStore, dorkstore.aio.AsyncTraceStore),
        (dorkstore.AgentRegistry, dorkstore.aio.AsyncAgentRegistry),
        (dorkstore.DenialList, dorkstore.aio.AsyncDenialList),
        (dorkstore.BudgetMapper, dorkstore.aio.AsyncBudgetMapper),
    ],
)
def test_every_public_method_has_an_async_face(repository: type, face: type) -> None:
    """A method added to a repository without its awaitable twin fails here."""
    public = {name for name in vars(repository) if not name.startswith("_")}
    assert set() == public - set(dir(face))
