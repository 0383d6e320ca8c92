"""Fixtures for the migration tests: the real in-memory stores, a real PostgreSQL
(tests/harness/postgres.py) and helpers that build a router in a given phase and fill
it with every kind of record through the public store API."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from app.migration.graph_router import MigratingGraphStore
from app.migration.task_router import MigratingAgentTaskStore
from app.models import (
    AgentTaskCreate,
    AgentTaskUpdate,
    AssetCreate,
    AssetType,
    ContributionCreate,
    ContributorCreate,
    ProjectUpsert,
    TaskStatus,
    TaskType,
)
from app.settings import StoreMode

from tests.harness.postgres import PgDatabase, postgres_stores

PHASES = {
    0: dict(dual_write=False, memory_writes=True, read_percent=0),
    1: dict(dual_write=True, memory_writes=True, read_percent=0),
    2: dict(dual_write=True, memory_writes=True, read_percent=50),
    3: dict(dual_write=True, memory_writes=False, read_percent=100),
}


def mode(store: str, phase: int | None = None, **kw: Any) -> StoreMode:
    values = {**PHASES[phase if phase is not None else 1], **kw}
    return StoreMode(store=store, postgres_configured=True, backend="memory",  # type: ignore[arg-type]
                     **values)


@dataclass
class Stores:
    memory_graph: Any
    memory_tasks: Any
    pg_graph: Any
    pg_tasks: Any
    database: Any
    dsn: str
    routers: list[Any] = field(default_factory=list)

    def routed(
        self, phase: int | None = None, *, timeout: float = 2.0, seed: int = 7,
        shadow: float = 0.0, **kw: Any,
    ) -> tuple[MigratingGraphStore, MigratingAgentTaskStore]:
        graph = MigratingGraphStore(
            self.memory_graph, self.pg_graph, mode("graph", phase, **kw),
            second_write_timeout=timeout, shadow_read_percent=shadow, rng=random.Random(seed),
        )
        tasks = MigratingAgentTaskStore(
            self.memory_tasks, self.pg_tasks, mode("agent_task", phase, **kw),
            second_write_timeout=timeout, shadow_read_percent=shadow,
            rng=random.Random(seed + 1),
        )
        self.routers += [graph, tasks]
        return graph, tasks

    async def reconnect(self) -> None:
        """A fresh pool (after a test closed the old one or stopped the server)."""
        self.pg_graph, self.pg_tasks, self.database = await postgres_stores(self.dsn)


@pytest.fixture
async def stores(pg_database: PgDatabase) -> AsyncIterator[Stores]:
    from app.stores.memory.graph_store import MemoryGraphStore
    from app.stores.memory.task_store import MemoryAgentTaskStore

    pg_graph, pg_tasks, database = await postgres_stores(pg_database.app_dsn)
    s = Stores(MemoryGraphStore(), MemoryAgentTaskStore(), pg_graph, pg_tasks, database,
               pg_database.app_dsn)
    try:
        yield s
    finally:
        for r in s.routers:
            await r.drain()
        await s.database.close()


async def populate(graph: Any, tasks: Any, n: int = 5, tag: str = "a") -> dict[str, list[Any]]:
    """Every write the API makes, n of each, through `graph` and `tasks`."""
    made: dict[str, list[Any]] = {k: [] for k in
                                  ("projects", "contributors", "assets", "contributions",
                                   "dependencies", "tasks")}
    for i in range(n):
        p = await graph.upsert_project("pypi", f"{tag}-proj-{i}",
                                       ProjectUpsert(version="1.0", description=f"p {i}"))
        made["projects"].append(p)
        if i:
            d = await graph.add_dependency("pypi", f"{tag}-proj-{i}", "pypi", f"{tag}-proj-{i-1}")
            made["dependencies"].append(d)
        await graph.upsert_project("pypi", f"{tag}-proj-{i}", ProjectUpsert(version="2.0"))
        c = await graph.create_contributor(ContributorCreate(name=f"{tag} person {i}",
                                                             hourly_rate=Decimal("10.50")))
        made["contributors"].append(c)
        a = await graph.create_asset(AssetCreate(type=AssetType.CODE, name=f"{tag} asset {i}"))
        made["assets"].append(a)
        for cost in ("1.25", "2.50"):
            made["contributions"].append(await graph.create_contribution(
                ContributionCreate(contributor_id=c.id, asset_id=a.id, cost_amount=Decimal(cost),
                                   metadata={"has_tests": True}), 0.7))
        t = await tasks.create_task(AgentTaskCreate(direction=f"{tag} do {i}",
                                                    task_type=TaskType.impl))
        t = await tasks.update_task(t.id, AgentTaskUpdate(status=TaskStatus.running,
                                                          progress_pct=10 * i))
        made["tasks"].append(t)
    return made
