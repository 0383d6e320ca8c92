"""What a running service holds: its stores, its settings and what to close on shutdown.

`build_container` is the one place that turns settings into live backends, so the
HTTP layer never knows which backend serves it. Today that is the durable in-memory
stores, wrapped for metrics; PostgreSQL and the migration router plug in here later
(`postgres` for /api/ready and the pool gauges, `store_status` for the router's own
store-status document).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from app.adapters.agent_task_store import AgentTaskStore
from app.adapters.graph_store import GraphStore
from app.domain.tasks import DEFAULT_ROUTING, Route
from app.metrics import instrument_graph, instrument_tasks
from app.models import TaskType
from app.settings import Settings

log = logging.getLogger("app.container")


class PostgresHandle(Protocol):
    """The PostgreSQL connection as the HTTP layer sees it.

    check() raises on any failure (unreachable, timed out); stats() returns pool
    numbers under the keys connected (bool), size, max, active, idle, waiting."""

    async def check(self, timeout: float) -> None: ...  # noqa: ASYNC109

    def stats(self) -> dict[str, Any]: ...


@dataclass
class Container:
    settings: Settings
    graph_store: GraphStore
    task_store: AgentTaskStore
    postgres: PostgresHandle | None = None
    store_status: Callable[[], dict[str, Any]] | None = None
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def close(self) -> None:
        """Close in reverse order of opening; one failing closer does not stop the rest."""
        while self.closers:
            closer = self.closers.pop()
            try:
                await closer()
            except Exception as e:  # noqa: BLE001 - shutdown must reach every store
                log.error("closing a store failed: %s", type(e).__name__)


def build_routing(settings: Settings) -> dict[TaskType, Route]:
    """DEFAULT_ROUTING with TASK_ROUTING merged over it, field by field:
    TASK_ROUTING='{"spec": {"model": "m"}}' changes only spec's model."""
    routing = dict(DEFAULT_ROUTING)
    if settings.task_routing:
        overrides: Mapping[str, Any] = json.loads(settings.task_routing)
        for key, value in overrides.items():
            try:
                task_type = TaskType(key)
            except ValueError:
                raise SystemExit(f"TASK_ROUTING: unknown task_type {key!r}") from None
            if not isinstance(value, dict):
                raise SystemExit(f"TASK_ROUTING: entry {key!r} must be an object")
            merged = routing[task_type].model_dump() | value
            try:
                routing[task_type] = Route.model_validate(merged)
            except ValueError:
                raise SystemExit(
                    f"TASK_ROUTING: entry {key!r} needs string model, tier and command"
                ) from None
    return routing


async def build_container(settings: Settings) -> Container:
    """The stores the settings ask for, opened and instrumented."""
    from app.adapters.memory_agent_task_store import MemoryAgentTaskStore
    from app.adapters.memory_graph_store import MemoryGraphStore

    routing = build_routing(settings)
    durability: dict[str, Any] = {
        "fsync": settings.journal_fsync,
        "fsync_interval_ms": settings.journal_fsync_interval_ms,
        "snapshot_every": settings.snapshot_every,
    }
    graph = await MemoryGraphStore.open(settings.data_dir, **durability)
    try:
        tasks = await MemoryAgentTaskStore.open(
            settings.data_dir, routing=routing, **durability
        )
    except BaseException:
        await graph.close()
        raise
    return Container(
        settings=settings,
        graph_store=instrument_graph(graph, "memory"),
        task_store=instrument_tasks(tasks, "memory"),
        closers=[graph.close, tasks.close],
    )
