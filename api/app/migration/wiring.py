"""Putting the migration router in front of each store, from the settings.

The service's start-up (app.backends) calls `build_migration_stores` once with both
backends already open; the routers it returns are what the HTTP layer uses.
`MigrationState` is what the admin endpoints read from `request.app.state.migration`:
both faces of both stores, the database, the settings that hold the admin token, and
the live switches (`switches`). This module knows the stores only through their ports,
never a backend: memory's durable stores are opened through the `MemorySource` the
start-up hands it (app.stores.memory.durable.DurableMemory).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app import gc_policy
from app.container import postgres_status
from app.metrics import instrument_graph, instrument_tasks
from app.migration.copy_retry import CopyRetryQueue
from app.migration.graph_router import MigratingGraphStore
from app.migration.resumable import RunBook
from app.migration.startup import MemoryOpener, MemorySource
from app.migration.switches import SwitchBoard
from app.migration.task_router import MigratingAgentTaskStore
from app.settings import Settings
from app.stores.ports import GraphBackend, RangeStore, TaskBackend

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
    switches: SwitchBoard | None = None
    memory_hold: MemoryHold | None = None
    copy_queues: list[CopyRetryQueue] = field(default_factory=list)
    ranges: RangeStore | None = None
    """PostgreSQL by key ranges and the backfill checkpoint (resumable backfill, chunked
    verify, repair)."""
    runs: RunBook = field(default_factory=RunBook)

    async def close(self) -> None:
        """Stop the copy-retry queues, persisting what they still hold."""
        for queue in self.copy_queues:
            await queue.close()


class MemoryHold:
    """Whether this process holds memory's durable stores, live. A process that started
    with every store PostgreSQL-primary holds none (`memory_opener` is set, so replicas
    can each open the journal briefly); the live switches keep it that way: once every
    store is PostgreSQL-primary memory is closed (`release`, its journal stays on disk),
    and a rollback to a phase that trusts memory opens it again (`hold`). Without a
    `source` (stores given by hand, not durable) memory is never released."""

    def __init__(
        self,
        state: MigrationState,
        graph: MigratingGraphStore,
        tasks: MigratingAgentTaskStore,
        source: MemorySource | None = None,
    ) -> None:
        self.state, self.graph, self.tasks, self.source = state, graph, tasks, source
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
        if self.source is None:
            log.info("every store is PostgreSQL-primary; memory was given, not opened "
                     "here, so it stays open")
            return
        held: list[Any] = [self.state.memory_graph, self.state.memory_tasks]
        graph, tasks = self.source.volatile()
        self._install(instrument_graph(graph, "memory"), instrument_tasks(tasks, "memory"))
        self.state.memory_opener = MemoryOpener(self.state.settings, self.source)
        self._opened.clear()
        for store in held:
            await store.close()
        gc_policy.thaw()  # frozen at start, the closed stores would never be collected
        log.info("every store is PostgreSQL-primary: memory's journal closed (kept on disk)")

    def _install(self, graph: Any, tasks: Any) -> None:
        self.state.memory_graph = self.graph.route.memory = graph
        self.state.memory_tasks = self.tasks.route.memory = tasks

    async def close(self) -> None:
        while self._opened:
            await self._opened.pop().close()


@dataclass
class StoreStatus:
    """The spec's store-status document for the running routers; `state` is the
    MigrationState for `app.state.migration`."""

    graph: MigratingGraphStore
    tasks: MigratingAgentTaskStore
    state: MigrationState

    def __call__(self) -> dict[str, Any]:
        board = self.state.switches
        return {
            "graph_store": self.graph.store_status(),
            "agent_task_store": self.tasks.store_status(),
            "postgres": postgres_status(self.state.database),
            "switches": board.summary() if board is not None else None,
        }


async def build_migration_stores(
    settings: Settings,
    memory_graph: GraphBackend,
    memory_tasks: TaskBackend,
    database: Any | None,
    *,
    postgres_graph: GraphBackend | None = None,
    postgres_tasks: TaskBackend | None = None,
    retry_dir: Path | None = None,
    memory_source: MemorySource | None = None,
    ranges: RangeStore | None = None,
) -> tuple[MigratingGraphStore, MigratingAgentTaskStore, StoreStatus]:
    """Routers for both stores per settings.store_mode, and the store-status callable.
    With a `database`, its PostgreSQL stores must be given (app.backends builds them).
    Each store with PostgreSQL gets a copy-retry queue, durable in `retry_dir` when
    given (memory is durable there too); close them with `state.close()`.
    `memory_source` is how the live switches open and release memory's journal."""
    if database is not None and (postgres_graph is None or postgres_tasks is None):
        raise ValueError("a database was given without its PostgreSQL stores")
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
        ranges=ranges,
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
    hold = MemoryHold(state, graph, tasks, memory_source)
    state.switches = SwitchBoard({"graph": graph.route, "agent_task": tasks.route}, hold)
    state.memory_hold = hold
    return graph, tasks, StoreStatus(graph, tasks, state)
