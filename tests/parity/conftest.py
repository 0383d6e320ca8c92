"""Three services over the same inputs: the durable in-memory store, PostgreSQL alone,
and the migration router in dual-write with half the reads from PostgreSQL (its memory
side durable too, so the journal sees every input).

`trio` yields a client per backend plus the router's two sides, so a test sends the
same request everywhere, compares the answers, and then proves with a full verify that
memory and PostgreSQL hold the same records.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from app.main import create_app
from app.migration.consistency import ConsistencyReport, check_consistency
from app.migration.graph_router import MigratingGraphStore
from app.migration.task_router import MigratingAgentTaskStore
from app.settings import Settings
from app.stores.memory.graph_store import MemoryGraphStore
from app.stores.memory.task_store import MemoryAgentTaskStore

from tests.harness.postgres import PgDatabase, fresh_database, postgres_stores
from tests.migration.conftest import mode


@dataclass
class Trio:
    clients: dict[str, httpx.AsyncClient]
    graph: MigratingGraphStore
    tasks: MigratingAgentTaskStore

    async def send(self, method: str, url: str, **kw: Any) -> dict[str, httpx.Response]:
        return {name: await c.request(method, url, **kw) for name, c in self.clients.items()}

    async def verify(self) -> ConsistencyReport:
        """A full (unsampled) verify of the router's two sides after its copies landed."""
        for r in (self.graph, self.tasks):
            await r.drain()
        return await check_consistency(
            self.graph.route.memory, self.graph.route.postgres,
            self.tasks.route.memory, self.tasks.route.postgres,
            sample=1.0, recheck_delay=0.0, record_metrics=False,
        )

    def copy_failures(self) -> int:
        return sum(r.store_status()["dual_write_failures"] for r in (self.graph, self.tasks))


def _client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://parity")


@pytest.fixture
async def pg_database_2(pg_server: str, pg_template: str) -> AsyncIterator[PgDatabase]:
    """A second fresh database: the PostgreSQL-only service's, apart from the router's."""
    async with fresh_database(pg_server, pg_template) as db:
        yield db


@asynccontextmanager
async def open_trio(first: PgDatabase, second: PgDatabase, root: Path) -> AsyncIterator[Trio]:
    """The three services: the router copies into `first`, PostgreSQL alone uses `second`."""
    (root / "memory").mkdir()
    (root / "router").mkdir()
    mem_graph = await MemoryGraphStore.open(root / "memory", fsync="never")
    mem_tasks = await MemoryAgentTaskStore.open(root / "memory", fsync="never")
    r_graph = await MemoryGraphStore.open(root / "router", fsync="never")
    r_tasks = await MemoryAgentTaskStore.open(root / "router", fsync="never")
    pg_graph, pg_tasks, database = await postgres_stores(second.app_dsn, postgres_pool_size=2)
    rpg_graph, rpg_tasks, r_database = await postgres_stores(first.app_dsn,
                                                             postgres_pool_size=2)
    graph = MigratingGraphStore(r_graph, rpg_graph, mode("graph", 2), second_write_timeout=5.0,
                                rng=random.Random(2))
    tasks = MigratingAgentTaskStore(r_tasks, rpg_tasks, mode("agent_task", 2),
                                    second_write_timeout=5.0, rng=random.Random(3))
    settings = Settings(data_dir=root)
    apps = {
        "memory": create_app(settings, graph_store=mem_graph, task_store=mem_tasks),
        "postgres": create_app(settings, graph_store=pg_graph, task_store=pg_tasks),
        "router": create_app(settings, graph_store=graph, task_store=tasks),
    }
    clients = {name: _client(app) for name, app in apps.items()}
    try:
        yield Trio(clients, graph, tasks)
    finally:
        for c in clients.values():
            await c.aclose()
        await graph.drain()
        await tasks.drain()
        for db in (database, r_database):
            await db.close()
        for store in (mem_graph, mem_tasks, r_graph, r_tasks):
            await store.close()


@pytest.fixture
async def trio(
    pg_database: PgDatabase, pg_database_2: PgDatabase, tmp_path: Path
) -> AsyncIterator[Trio]:
    async with open_trio(pg_database, pg_database_2, tmp_path) as opened:
        yield opened
