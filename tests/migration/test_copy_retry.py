"""The copy-retry queue (app.migration.copy_retry): a dual-write copy that fails or times
out is copied again from the trusted store's current record until it lands, across a
restart and a crash, and without any backfill a full verify then finds nothing.

Real parts: the in-memory stores (durable in the test's directory where a restart is
part of the test), PostgreSQL servers of each test's own (paused with SIGSTOP, or
halted), and the API as a real process for the SIGKILL case.
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from app.migration import copy_retry_file as durable
from app.migration.consistency import check_consistency
from app.migration.wiring import build_migration_stores
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
from app.settings import Settings
from app.stores.memory.graph_store import MemoryGraphStore
from app.stores.memory.task_store import MemoryAgentTaskStore

from devcluster.api_process import LocalApi
from devcluster.postgres import (
    APP_PASSWORD,
    PostgresServer,
    create_migrated_database,
    start_postgres,
    with_database,
)
from tests.harness.postgres import postgres_stores

pytestmark = pytest.mark.slow
DB = "retry"


@pytest.fixture
def server() -> Iterator[PostgresServer]:
    pg = start_postgres()
    try:
        asyncio.run(create_migrated_database(pg.dsn, DB))
        yield pg
    finally:
        pg.stop()


def app_dsn(server: PostgresServer) -> str:
    return with_database(server.dsn, DB, "storemigration_app", APP_PASSWORD)


@dataclass
class Routed:
    graph: Any
    tasks: Any
    state: Any
    memory_graph: Any
    memory_tasks: Any
    database: Any

    def queues(self) -> dict[str, dict[str, Any]]:
        return {"graph": self.graph.store_status()["copy_retry"],
                "agent_task": self.tasks.store_status()["copy_retry"]}

    async def drained(self, timeout: float = 30.0) -> None:  # noqa: ASYNC109
        deadline = time.monotonic() + timeout
        while any(q["queue_depth"] for q in self.queues().values()):
            assert time.monotonic() < deadline, self.queues()
            await asyncio.sleep(0.1)

    async def verify(self) -> Any:
        pg_graph, pg_tasks = self.state.postgres_graph, self.state.postgres_tasks
        return await check_consistency(self.memory_graph, pg_graph, self.memory_tasks,
                                       pg_tasks, sample=1.0, recheck_delay=0.0,
                                       record_metrics=False)

    async def close(self) -> None:
        await self.state.close()
        await self.database.close()


async def routed(dsn: str, data_dir: Path | None, memory: tuple[Any, Any] | None = None,
                 **pool: Any) -> Routed:
    """Dual-write routers over memory (durable in data_dir when given) and PostgreSQL,
    with their copy-retry queues, as the container builds them."""
    settings = Settings(database_url=dsn, dual_write_mode=True, second_write_timeout=0.2)
    if memory is None:
        memory = ((await MemoryGraphStore.open(data_dir), await MemoryAgentTaskStore.open(data_dir))
                  if data_dir is not None else (MemoryGraphStore(), MemoryAgentTaskStore()))
    pg_graph, pg_tasks, database = await postgres_stores(dsn, **pool)
    graph, tasks, status = await build_migration_stores(
        settings, memory[0], memory[1], database, postgres_graph=pg_graph,
        postgres_tasks=pg_tasks, retry_dir=data_dir / "copy-retry" if data_dir else None)
    return Routed(graph, tasks, status.state, memory[0], memory[1], database)  # type: ignore[attr-defined]


class Traffic:
    """Every kind of write, from several tasks at once, until stopped."""

    def __init__(self, graph: Any, tasks: Any, seed: int = 5) -> None:
        self.graph, self.tasks = graph, tasks
        self.rng = random.Random(seed)
        self.people: list[Any] = []
        self.assets: list[Any] = []
        self.task_ids: list[str] = []
        self.writes = 0
        self.stop = asyncio.Event()

    async def one(self, i: int) -> None:
        g, rng = self.graph, self.rng
        name = f"proj-{rng.randrange(40)}"
        await g.upsert_project("pypi", name, ProjectUpsert(version=str(i)))
        if i % 3 == 0:
            await g.add_dependency("pypi", name, "pypi", f"proj-{rng.randrange(40)}")
        if i % 4 == 0 or not self.people:
            person = await g.create_contributor(ContributorCreate(name=f"p{i}"))
            asset = await g.create_asset(AssetCreate(type=AssetType.CODE, name=f"a{i}"))
            self.people.append(person)
            self.assets.append(asset)
        await g.create_contribution(ContributionCreate(
            contributor_id=rng.choice(self.people).id, asset_id=rng.choice(self.assets).id,
            cost_amount=Decimal("1.25")), 0.5)
        task = await self.tasks.create_task(AgentTaskCreate(direction=f"t{i}",
                                                            task_type=TaskType.impl))
        self.task_ids.append(task.id)
        if len(self.task_ids) > 3:
            await self.tasks.update_task(self.task_ids[-3],
                                         AgentTaskUpdate(status=TaskStatus.running))
        self.writes += 1

    async def run(self, worker: int) -> None:
        i = worker
        while not self.stop.is_set():
            await self.one(i)
            i += 4
            await asyncio.sleep(0.005)


async def test_sigstop_for_two_seconds_under_writes_heals_without_backfill(
    server: PostgresServer,
) -> None:
    world = await routed(app_dsn(server), None, postgres_pool_size=4,
                         postgres_max_overflow=0, postgres_pool_timeout=1.0)
    try:
        traffic = Traffic(world.graph, world.tasks)
        writers = [asyncio.create_task(traffic.run(w)) for w in range(4)]
        await asyncio.sleep(1.0)
        before = traffic.writes
        pids = server.pause()
        try:
            await asyncio.sleep(2.0)
        finally:
            server.resume(pids)
        during = traffic.writes - before
        await asyncio.sleep(1.0)
        traffic.stop.set()
        await asyncio.gather(*writers)

        graph_status, task_status = world.graph.store_status(), world.tasks.store_status()
        failures = graph_status["dual_write_failures"] + task_status["dual_write_failures"]
        assert during > 0 and failures > 0, "the pause made copies fail"
        assert graph_status["copy_retry"]["peak_depth"] > 0
        assert task_status["copy_retry"]["peak_depth"] > 0
        await world.drained()
        queues = world.queues()
        assert queues["graph"]["landed"] > 0 and queues["agent_task"]["landed"] > 0

        report = await world.verify()
        assert report.checked > 0 and report.missing_count == 0, report.as_dict()
        assert report.mismatches == 0, report.as_dict()
        assert sum(len(k.in_flight) for k in report.kinds.values()) == 0
    finally:
        await world.close()


async def test_the_queue_survives_a_clean_restart(server: PostgresServer, tmp_path: Path
                                                  ) -> None:
    dsn = app_dsn(server)
    first = await routed(dsn, tmp_path, postgres_pool_size=1, postgres_max_overflow=0)
    await first.database.close()  # PostgreSQL unreachable from here on for these routers
    traffic = Traffic(first.graph, first.tasks)
    for i in range(6):
        await traffic.one(i)
    waiting = first.queues()
    assert waiting["graph"]["queue_depth"] > 0 and waiting["agent_task"]["queue_depth"] > 0
    await first.state.close()
    await first.memory_graph.close()
    await first.memory_tasks.close()

    for store in ("graph", "agent_task"):
        saved = durable.load(tmp_path / "copy-retry" / f"{store}.jsonl")
        assert saved is not None and saved.closed
        assert len(saved.pending) == waiting[store]["queue_depth"]

    second = await routed(dsn, tmp_path, postgres_pool_size=1, postgres_max_overflow=0)
    try:
        assert second.queues()["graph"]["requeued_after_crash"] == 0, "clean: nothing to scan"
        await second.drained()
        assert second.queues()["graph"]["landed"] == waiting["graph"]["queue_depth"]
        report = await second.verify()
        assert report.checked > 0 and report.mismatches == 0, report.as_dict()
    finally:
        await second.close()
        await second.memory_graph.close()
        await second.memory_tasks.close()


async def test_a_record_postgresql_refuses_stays_queued_and_named(
    server: PostgresServer,
) -> None:
    dsn = app_dsn(server)
    owner = await asyncpg.connect(with_database(server.dsn, DB))
    await owner.execute("INSERT INTO contributors (id, name, email, email_key, created_at, "
                        "updated_at) VALUES (gen_random_uuid(), 'first', 'same@x.org', "
                        "'same@x.org', now(), now())")
    await owner.close()
    world = await routed(dsn, None)
    try:
        person = await world.graph.create_contributor(
            ContributorCreate(name="second", email="same@x.org"))
        deadline = time.monotonic() + 10
        while not world.queues()["graph"]["refused"]:
            assert time.monotonic() < deadline, world.queues()
            await asyncio.sleep(0.1)
        queue = world.queues()["graph"]
        assert queue["queue_depth"] == 1
        assert queue["refused"][0]["key"] == f"contributors/{person.id}"
        report = await world.verify()
        assert report.kinds["contributors"].missing == [str(person.id)]
    finally:
        await world.close()


def test_after_sigkill_the_restarted_api_copies_what_it_had_not(
    server: PostgresServer, tmp_path: Path
) -> None:
    env = {"DATABASE_URL": app_dsn(server), "DUAL_WRITE_MODE": "true", "JOURNAL_FSYNC": "always",
           "SECOND_WRITE_TIMEOUT": "0.3", "POSTGRES_POOL_SIZE": "2", "ADMIN_TOKEN": "t"}
    api = LocalApi(tmp_path / "data", tmp_path / "api.log", env=env)
    api.start()
    try:
        server.halt()
        with httpx.Client(base_url=api.url, timeout=10) as c:
            for i in range(5):
                assert c.put(f"/api/projects/npm/killed-{i}", json={"version": "1"}
                             ).status_code == 200
                assert c.post("/api/agent/tasks", json={"direction": f"k{i}",
                                                        "task_type": "spec"}).status_code == 201
        api.stop(signal.SIGKILL)
        server.start()
        api.start()
        with httpx.Client(base_url=api.url, timeout=10) as c:
            deadline = time.monotonic() + 30
            while True:
                status = c.get("/api/agent/store-status").json()
                depth = sum(status[s]["copy_retry"]["queue_depth"]
                            for s in ("graph_store", "agent_task_store"))
                if depth == 0 and status["postgres"]["connected"]:
                    break
                assert time.monotonic() < deadline, status
                time.sleep(0.2)
            assert status["graph_store"]["copy_retry"]["requeued_after_crash"] >= 1
            check = c.post("/api/admin/consistency-check", params={"sample": 1.0},
                           headers={"Authorization": "Bearer t"}, timeout=60).json()
        assert check["missing_count"] == 0 and check["mismatches"] == 0, check
        assert check["checked"] >= 10
    finally:
        api.stop()
