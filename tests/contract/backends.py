"""The backends the contract suite runs against: name -> factory.

A factory takes the pytest request (so it can reach fixtures such as tmp_path or a
PostgreSQL database) and returns an async context manager yielding
(graph_store, task_store). Adding a backend is one `BACKENDS[...] = factory` line;
the suite itself never changes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest

Stores = tuple[Any, Any]
Factory = Callable[[pytest.FixtureRequest], AbstractAsyncContextManager[Stores]]


@asynccontextmanager
async def memory(request: pytest.FixtureRequest) -> AsyncIterator[Stores]:
    from app.adapters.memory_agent_task_store import MemoryAgentTaskStore
    from app.adapters.memory_graph_store import MemoryGraphStore

    yield MemoryGraphStore(), MemoryAgentTaskStore()


@asynccontextmanager
async def memory_durable(request: pytest.FixtureRequest) -> AsyncIterator[Stores]:
    from app.adapters.memory_agent_task_store import MemoryAgentTaskStore
    from app.adapters.memory_graph_store import MemoryGraphStore

    root = request.getfixturevalue("tmp_path")
    graph = await MemoryGraphStore.open(root, fsync="never")
    tasks = await MemoryAgentTaskStore.open(root, fsync="never")
    try:
        yield graph, tasks
    finally:
        await tasks.close()
        await graph.close()


BACKENDS: dict[str, Factory] = {
    "memory": memory,
    "memory-durable": memory_durable,
}
