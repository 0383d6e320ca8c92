"""The backends the contract suite runs against: name -> Backend.

A Backend names the pytest fixtures it needs (resolved outside the event loop, since
some, like the PostgreSQL server, start synchronously) and an `open` that receives
them and returns an async context manager yielding (graph_store, task_store). Adding
a backend is one `BACKENDS[...] = Backend(...)` line; the suite itself never changes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

Stores = tuple[Any, Any]
Fixtures = dict[str, Any]


@dataclass(frozen=True)
class Backend:
    open: Callable[[Fixtures], AbstractAsyncContextManager[Stores]]
    fixtures: tuple[str, ...] = ()


@asynccontextmanager
async def memory(_: Fixtures) -> AsyncIterator[Stores]:
    from app.stores.memory.graph_store import MemoryGraphStore
    from app.stores.memory.task_store import MemoryAgentTaskStore

    yield MemoryGraphStore(), MemoryAgentTaskStore()


@asynccontextmanager
async def memory_durable(fixtures: Fixtures) -> AsyncIterator[Stores]:
    from app.stores.memory.graph_store import MemoryGraphStore
    from app.stores.memory.task_store import MemoryAgentTaskStore

    root = fixtures["tmp_path"]
    graph = await MemoryGraphStore.open(root, fsync="never")
    tasks = await MemoryAgentTaskStore.open(root, fsync="never")
    try:
        yield graph, tasks
    finally:
        await tasks.close()
        await graph.close()


BACKENDS: dict[str, Backend] = {
    "memory": Backend(memory),
    "memory-durable": Backend(memory_durable, ("tmp_path",)),
}


@asynccontextmanager
async def postgres(fixtures: Fixtures) -> AsyncIterator[Stores]:
    from tests.harness.postgres import postgres_stores

    graph, tasks, database = await postgres_stores(
        fixtures["pg_database"].app_dsn, postgres_pool_size=2
    )
    try:
        yield graph, tasks
    finally:
        await database.close()


def router(phase: int) -> Callable[[Fixtures], AbstractAsyncContextManager[Stores]]:
    """The migration router over the real memory stores and a real PostgreSQL, in
    phase 0-3, with shadow reads on half the reads; after each test it asserts that
    no second write failed and no read fell back (a silent divergence fails the test)."""

    @asynccontextmanager
    async def open_router(fixtures: Fixtures) -> AsyncIterator[Stores]:
        import random

        from app.migration.graph_router import MigratingGraphStore
        from app.migration.task_router import MigratingAgentTaskStore
        from app.stores.memory.graph_store import MemoryGraphStore
        from app.stores.memory.task_store import MemoryAgentTaskStore

        from tests.harness.postgres import postgres_stores
        from tests.migration.conftest import mode

        pg_graph, pg_tasks, database = await postgres_stores(
            fixtures["pg_database"].app_dsn, postgres_pool_size=2
        )
        common: dict[str, Any] = dict(
            second_write_timeout=5.0, shadow_read_percent=50, rng=random.Random(phase)
        )
        graph = MigratingGraphStore(MemoryGraphStore(), pg_graph, mode("graph", phase), **common)
        tasks = MigratingAgentTaskStore(
            MemoryAgentTaskStore(), pg_tasks, mode("agent_task", phase), **common
        )
        try:
            yield graph, tasks
            for r in (graph, tasks):
                await r.drain()
                status = r.store_status()
                assert status["dual_write_failures"] == 0, status
                assert status["read_fallbacks"] == 0, status
        finally:
            await database.close()

    return open_router


BACKENDS["postgres"] = Backend(postgres, ("pg_database",))
for _phase in (0, 1, 2, 3):
    BACKENDS[f"router-phase{_phase}"] = Backend(router(_phase), ("pg_database",))
