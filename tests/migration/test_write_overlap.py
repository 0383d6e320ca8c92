"""Comparisons that overlap a write on the same store: the two stores legitimately
differ between a write and its copy, so such a comparison (a shadow read, or a
PostgreSQL miss served from memory) is counted "skipped", never "mismatch"."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from app.models import AgentTaskCreate, TaskType

from tests.harness.postgres import PgDatabase
from tests.migration.conftest import Stores


@asynccontextmanager
async def writes_blocked(owner_dsn: str, table: str) -> AsyncIterator[None]:
    """PostgreSQL accepts reads of `table` but holds every write until the block ends."""
    conn = await asyncpg.connect(owner_dsn)
    tx = conn.transaction()
    await tx.start()
    await conn.execute(f"LOCK TABLE {table} IN SHARE MODE")
    try:
        yield
    finally:
        await tx.rollback()
        await conn.close()


async def _in_memory(stores: Stores, direction: str) -> str:
    for _ in range(500):
        tasks, _total = await stores.memory_tasks.list_tasks(limit=100)
        for t in tasks:
            if t.direction == direction:
                return str(t.id)
        await asyncio.sleep(0.01)
    raise AssertionError("the write never reached memory")


async def test_postgres_miss_during_a_write_is_skipped_not_a_mismatch(
    stores: Stores, pg_database: PgDatabase
) -> None:
    graph, tasks = stores.routed(2, read_percent=100, timeout=10.0)
    async with writes_blocked(pg_database.owner_dsn, "agent_tasks"):
        writing = asyncio.create_task(
            tasks.create_task(AgentTaskCreate(direction="mid-copy", task_type=TaskType.impl))
        )
        task_id = await _in_memory(stores, "mid-copy")
        got = await tasks.get_task(task_id)  # PostgreSQL misses it: the copy is held
        assert got is not None and got.direction == "mid-copy"
    await writing
    assert tasks.store_status()["shadow_reads"]["mismatch"] == 0
    assert tasks.store_status()["shadow_reads"]["skipped"] == 1
    assert await tasks.get_task(task_id) == got  # once copied, a clean read
    assert tasks.store_status()["shadow_reads"]["mismatch"] == 0


async def test_shadow_read_during_a_write_is_skipped_not_a_mismatch(
    stores: Stores, pg_database: PgDatabase
) -> None:
    graph, tasks = stores.routed(2, read_percent=0, shadow=100, timeout=10.0)
    async with writes_blocked(pg_database.owner_dsn, "agent_tasks"):
        writing = asyncio.create_task(
            tasks.create_task(AgentTaskCreate(direction="mid-copy", task_type=TaskType.impl))
        )
        await _in_memory(stores, "mid-copy")
        assert (await tasks.get_task_count())["total"] == 1  # PostgreSQL still says 0
        await tasks.drain()
    await writing
    shadow = tasks.store_status()["shadow_reads"]
    assert shadow["mismatch"] == 0 and shadow["skipped"] == 1
    await tasks.get_task_count()
    await tasks.drain()
    assert tasks.store_status()["shadow_reads"]["match"] == 1


async def test_a_real_divergence_is_still_a_mismatch(stores: Stores) -> None:
    graph, tasks = stores.routed(2, read_percent=0, shadow=100)
    await stores.memory_tasks.create_task(AgentTaskCreate(direction="x", task_type=TaskType.spec))
    await tasks.get_task_count()
    await tasks.drain()
    assert tasks.store_status()["shadow_reads"]["mismatch"] == 1
