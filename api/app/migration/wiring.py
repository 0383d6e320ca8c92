"""Putting the migration router in front of each store, from the settings.

The container calls `build_migration_stores` once at start-up; the routers it returns
are what the HTTP layer uses. `MigrationState` is the small interface the admin
endpoints read from `request.app.state.migration`: both faces of both stores, the
database, the settings that hold the admin token, and the live switches (`switches`).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.adapters.memory_agent_task_store import MemoryAgentTaskStore
from app.adapters.memory_graph_store import MemoryGraphStore
from app.adapters.migration_graph_router import GraphBackend, MigratingGraphStore
from app.adapters.migration_task_router import MigratingAgentTaskStore, TaskBackend
from app.container import build_routing
from app.metrics import instrument_graph, instrument_tasks
from app.migration.copy_retry import CopyRetryQueue
from app.migration.startup import MemoryOpener
from app.migration.switches import SwitchBoard
from app.settings import Settings

log = logging.getLogger("app.migration")

StoreStatus = Callable[[], dict[str, Any]]


@dataclass
class MigrationState:
    settings: Settings
    memory_graph: GraphBackend
    memory_tasks: TaskBackend
    postgres_graph: GraphBackend | None = None
    postgres_tasks: TaskBackend | None = None
    database: Any | None = None
    routers: list[MigratingGraphStore | MigratingAgentTaskStore] = field(default_factory=list)
    memory_opener: Any | None = None
    """Set when memory is not held open (every store PostgreSQL-primary): admin calls
    that need memory open it through this (app.migration.startup.MemoryOpener)."""
    switches: SwitchBoard | None = None
    memory_hold: MemoryHold | None = None
    copy_queues: list[CopyRetryQueue] = field(default_factory=list)

    async def close(self) -> None:
        """Stop the copy-retry queues, persisting what they still hold."""
        for queue in self.copy_queues:
            await queue.close()


class MemoryHold:
    """Whether this process holds memory's durable stores, live. A process that started
    with every store PostgreSQL-primary holds none (`memory_opener` is set, so replicas
    can each open the journal briefly); the live switches keep it that way: once every
    store is PostgreSQL-primary memory is closed (`release`, its journal stays on disk),
    and a rollback to a phase that trusts memory opens it again (`hold`)."""

    def __init__(
        self, state: MigrationState, graph: MigratingGraphStore, tasks: MigratingAgentTaskStore
    ) -> None:
        self.state, self.graph, self.tasks = state, graph, tasks
        self._opened: list[Any] = []

    @property
    def held(self) -> bool:
        return self.state.memory_opener is None

    async def hold(self) -> None:
        opener = self.state.memory_opener
        if opener is None:
            return
        graph, tasks = await opener.open_held()
        self._opened += [graph, tasks]
        self._install(instrument_graph(graph, "memory"), instrument_tasks(tasks, "memory"))
        self.state.memory_opener = None
        log.info("memory's journal opened: this process holds memory again")

    async def release(self) -> None:
        if self.state.memory_opener is not None:
            return
        routing = build_routing(self.state.settings)
        held: list[Any] = [self.state.memory_graph, self.state.memory_tasks]
        self._install(instrument_graph(MemoryGraphStore(), "memory"),
                      instrument_tasks(MemoryAgentTaskStore(routing=routing), "memory"))
        self.state.memory_opener = MemoryOpener(self.state.settings, routing)
        self._opened.clear()
        for store in held:
            await store.close()
        log.info("every store is PostgreSQL-primary: memory's journal closed (kept on disk)")

    def _install(self, graph: Any, tasks: Any) -> None:
        self.state.memory_graph = self.graph.route.memory = graph
        self.state.memory_tasks = self.tasks.route.memory = tasks

    async def close(self) -> None:
        while self._opened:
            await self._opened.pop().close()


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
    if getattr(database, "schema_error", None):
        doc["schema_error"] = database.schema_error
    if hasattr(database, "tls_status"):
        doc["tls"] = database.tls_status()
    return doc


def postgres_stores(database: Any, settings: Settings) -> tuple[GraphBackend, TaskBackend]:
    """PostgreSQL stores on `database`, instrumented as backend="postgres"."""
    graph_mod = importlib.import_module("app.adapters.postgres_graph_store")
    task_mod = importlib.import_module("app.adapters.postgres_agent_task_store")
    return (
        instrument_graph(graph_mod.PostgresGraphStore(database), "postgres"),
        instrument_tasks(
            task_mod.PostgresAgentTaskStore(database, build_routing(settings)), "postgres"
        ),
    )


async def build_migration_stores(
    settings: Settings,
    memory_graph: GraphBackend,
    memory_tasks: TaskBackend,
    database: Any | None,
    *,
    postgres_graph: GraphBackend | None = None,
    postgres_tasks: TaskBackend | None = None,
    retry_dir: Path | None = None,
) -> tuple[MigratingGraphStore, MigratingAgentTaskStore, StoreStatus]:
    """Routers for both stores per settings.store_mode, and the store-status callable.
    The PostgreSQL stores are built on `database` unless given (e.g. already wrapped by
    the metrics layer). Each dual-writing store gets a copy-retry queue, durable in
    `retry_dir` when given (memory is durable there too); close them with
    `state.close()`. The returned callable carries `.state`, the MigrationState for
    `app.state.migration`."""
    if database is not None and (postgres_graph is None or postgres_tasks is None):
        built_graph, built_tasks = postgres_stores(database, settings)
        postgres_graph = postgres_graph or built_graph
        postgres_tasks = postgres_tasks or built_tasks
    timeout = settings.second_write_timeout
    graph = MigratingGraphStore(
        memory_graph, postgres_graph, settings.store_mode("graph"), second_write_timeout=timeout
    )
    tasks = MigratingAgentTaskStore(
        memory_tasks,
        postgres_tasks,
        settings.store_mode("agent_task"),
        second_write_timeout=timeout,
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
    for router in (graph, tasks):
        route = router.route
        if route.postgres is not None:  # dual-write may be switched on live later
            queue = CopyRetryQueue(
                route.store, lambda route=route: (route.memory, route.postgres),  # type: ignore[misc]
                directory=retry_dir,
                active=lambda route=route: route.mode.write_target == "dual",  # type: ignore[misc]
                copy_timeout=max(4 * timeout, 2.0),
            )
            await queue.open()
            route.copies = queue
            state.copy_queues.append(queue)
    hold = MemoryHold(state, graph, tasks)
    state.switches = SwitchBoard({"graph": graph.route, "agent_task": tasks.route}, hold)
    state.memory_hold = hold

    board = state.switches

    def store_status() -> dict[str, Any]:
        return {
            "graph_store": graph.store_status(),
            "agent_task_store": tasks.store_status(),
            "postgres": postgres_status(database),
            "switches": board.summary(),
        }

    store_status.state = state  # type: ignore[attr-defined]
    return graph, tasks, store_status
