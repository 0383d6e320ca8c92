"""Putting the migration router in front of each store, from the settings.

The service's start-up (app.backends) calls `build_migration_stores` once with both
backends already open; the routers it returns are what the HTTP layer uses.
`MigrationState` is what the admin endpoints read from `request.app.state.migration`:
both faces of both stores, the database, and the settings that hold the admin token.
This module knows the stores only through their ports, never a backend.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from app.migration.graph_router import MigratingGraphStore
from app.migration.startup import MemoryOpener
from app.migration.task_router import MigratingAgentTaskStore
from app.settings import Settings
from app.stores.ports import GraphBackend, TaskBackend

log = logging.getLogger("app.migration")


@dataclass
class MigrationState:
    settings: Settings
    memory_graph: GraphBackend
    memory_tasks: TaskBackend
    postgres_graph: GraphBackend | None = None
    postgres_tasks: TaskBackend | None = None
    database: Any | None = None
    routers: list[MigratingGraphStore | MigratingAgentTaskStore] = field(default_factory=list)
    memory_opener: MemoryOpener | None = None
    """Set when memory is not held open (every store PostgreSQL-primary): admin calls
    that need memory open it through this."""


@dataclass
class StoreStatus:
    """The spec's store-status document for the running routers; `state` is the
    MigrationState for `app.state.migration`."""

    graph: MigratingGraphStore
    tasks: MigratingAgentTaskStore
    state: MigrationState

    def __call__(self) -> dict[str, Any]:
        return {
            "graph_store": self.graph.store_status(),
            "agent_task_store": self.tasks.store_status(),
            "postgres": postgres_status(self.state.database),
        }


def postgres_status(database: Any | None) -> dict[str, Any]:
    """The spec's `postgres` block from Database.stats() (keys size, max, active, idle,
    waiting, and connected when the database tracks it)."""
    if database is None:
        return {"connected": False, "configured": False}
    try:
        stats = dict(database.stats())
    except Exception as e:  # noqa: BLE001 - status must answer even when the pool cannot
        log.warning("postgres stats unavailable: %s", type(e).__name__)
        return {"connected": False}
    connected = stats.get("connected", stats.get("size", 0) > 0)
    doc: dict[str, Any] = {"connected": bool(connected)}
    for key in ("size", "active", "idle", "waiting", "max"):
        if key in stats:
            doc[f"pool_{key}"] = stats[key]
    return doc


async def build_migration_stores(
    settings: Settings,
    memory_graph: GraphBackend,
    memory_tasks: TaskBackend,
    database: Any | None,
    *,
    postgres_graph: GraphBackend | None = None,
    postgres_tasks: TaskBackend | None = None,
) -> tuple[MigratingGraphStore, MigratingAgentTaskStore, StoreStatus]:
    """Routers for both stores per settings.store_mode, and the store-status callable.
    With a `database`, its PostgreSQL stores must be given (app.backends builds them)."""
    if database is not None and (postgres_graph is None or postgres_tasks is None):
        raise ValueError("a database was given without its PostgreSQL stores")
    timeout, shadow = settings.second_write_timeout, settings.shadow_read_percent
    graph = MigratingGraphStore(
        memory_graph,
        postgres_graph,
        settings.store_mode("graph"),
        second_write_timeout=timeout,
        shadow_read_percent=shadow,
    )
    tasks = MigratingAgentTaskStore(
        memory_tasks,
        postgres_tasks,
        settings.store_mode("agent_task"),
        second_write_timeout=timeout,
        shadow_read_percent=shadow,
    )
    state = MigrationState(
        settings=settings,
        memory_graph=memory_graph,
        memory_tasks=memory_tasks,
        postgres_graph=postgres_graph,
        postgres_tasks=postgres_tasks,
        database=database,
        routers=[graph, tasks],
    )
    return graph, tasks, StoreStatus(graph, tasks, state)
