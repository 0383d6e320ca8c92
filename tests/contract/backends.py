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
    from app.adapters.memory_agent_task_store import MemoryAgentTaskStore
    from app.adapters.memory_graph_store import MemoryGraphStore

    yield MemoryGraphStore(), MemoryAgentTaskStore()


@asynccontextmanager
async def memory_durable(fixtures: Fixtures) -> AsyncIterator[Stores]:
    from app.adapters.memory_agent_task_store import MemoryAgentTaskStore
    from app.adapters.memory_graph_store import MemoryGraphStore

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
