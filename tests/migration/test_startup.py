"""What the service reconciles before serving (app.migration.startup, app.container):
a PostgreSQL-primary start-up backfills memory's journal, so a dual-write copy that
failed is not lost at promotion; every-store-PostgreSQL start-ups do not hold memory's
journal, so replicas can scale out; a rollback start-up (REHYDRATE_ON_START) rebuilds
memory from PostgreSQL and never reuses a project id PostgreSQL handed out."""

from __future__ import annotations

import logging
import socket
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from app.backends import build_container
from app.container import Container
from app.migration import startup
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
from app.routers.admin import router as admin_router
from app.settings import Settings
from app.stores.memory.graph_store import MemoryGraphStore
from app.stores.memory.task_store import MemoryAgentTaskStore
from fastapi import FastAPI

from tests.harness.postgres import PgDatabase, postgres_stores

TOKEN = "startup-admin-token"
DUAL = {"dual_write_mode": True}
PHASE_3 = {"dual_write_mode": True, "in_memory_writes": False, "read_from_postgres_percent": 100}
ROLLBACK = {"dual_write_mode": True, "in_memory_writes": True,
            "read_from_postgres_percent": 100, "rehydrate_on_start": True}


def settings(data_dir: Path, dsn: str, env: dict[str, Any]) -> Settings:
    return Settings(data_dir=data_dir, database_url=dsn, admin_token=TOKEN,
                    postgres_pool_size=2, postgres_max_overflow=0, second_write_timeout=5.0,
                    **env)


async def start(data_dir: Path, dsn: str, env: dict[str, Any]) -> Container:
    return await build_container(settings(data_dir, dsn, env))


async def memory_only_records(data_dir: Path) -> dict[str, Any]:
    """Records durable in memory's journal that PostgreSQL never received (copies that
    failed during dual-write)."""
    graph = await MemoryGraphStore.open(data_dir)
    tasks = await MemoryAgentTaskStore.open(data_dir)
    try:
        c = await graph.create_contributor(ContributorCreate(name="lost"))
        a = await graph.create_asset(AssetCreate(type=AssetType.CODE, name="lost asset"))
        k = await graph.create_contribution(
            ContributionCreate(contributor_id=c.id, asset_id=a.id, cost_amount=Decimal("7.50")),
            0.5,
        )
        p = await graph.upsert_project("pypi", "lost-project", ProjectUpsert(version="1"))
        t = await tasks.create_task(AgentTaskCreate(direction="lost copy", task_type=TaskType.impl))
        return {"contribution": k, "asset": await graph.get_asset(a.id), "project": p, "task": t}
    finally:
        await tasks.close()
        await graph.close()


def admin_client(container: Container) -> httpx.AsyncClient:
    app = FastAPI()
    app.include_router(admin_router)
    app.state.migration = container.migration
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api",
                             headers={"Authorization": f"Bearer {TOKEN}"})


async def test_promotion_backfills_failed_copies_before_serving(
    tmp_path: Path, pg_database: PgDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    lost = await memory_only_records(tmp_path)
    caplog.set_level(logging.INFO, logger="app.migration")
    container = await start(tmp_path, pg_database.app_dsn, PHASE_3)
    try:
        got = await container.task_store.get_task(lost["task"].id)
        assert got == lost["task"]
        assert await container.graph_store.get_contribution(lost["contribution"].id) == \
            lost["contribution"]
        assert await container.graph_store.get_asset(lost["asset"].id) == lost["asset"]
        project = await container.graph_store.get_project("pypi", "lost-project")
        assert project == lost["project"]
        assert "start-up backfill" in caplog.text and "tasks=1/1" in caplog.text
    finally:
        await container.close()
    again = await start(tmp_path, pg_database.app_dsn, PHASE_3)  # idempotent: cost once
    try:
        asset = await again.graph_store.get_asset(lost["asset"].id)
        assert asset is not None and asset.total_cost == Decimal("7.50")
    finally:
        await again.close()


async def test_promotion_refuses_to_serve_when_postgres_refuses_a_journal_record(
    tmp_path: Path, pg_database: PgDatabase
) -> None:
    """A record only memory holds that PostgreSQL will not take (here its email is held,
    behind the router's back, by another contributor) would vanish from every read once
    PostgreSQL is trusted: the start-up refuses, naming it, instead of serving without it."""
    graph = await MemoryGraphStore.open(tmp_path)
    try:
        refused = await graph.create_contributor(
            ContributorCreate(name="dup", email="taken@example.org"))
    finally:
        await graph.close()
    owner = await asyncpg.connect(pg_database.owner_dsn)
    try:
        await owner.execute(
            "INSERT INTO contributors (id, type, name, email, email_key, metadata, created_at,"
            " updated_at) VALUES (gen_random_uuid(), 'HUMAN', 'elsewhere', $1, $2, '{}',"
            " now(), now())", "taken@example.org", "taken@example.org")
    finally:
        await owner.close()
    with pytest.raises(startup.StartupRefused, match="refused 1 of memory's records") as e:
        await start(tmp_path, pg_database.app_dsn, PHASE_3)
    assert str(refused.id) in str(e.value)


async def test_promotion_refuses_to_start_without_postgres(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dsn = f"postgresql://app:pw@127.0.0.1:{port}/app"
    with pytest.raises(startup.StartupRefused, match="unreachable"):
        await start(tmp_path, dsn, {**PHASE_3, "postgres_pool_timeout": 2})
    with pytest.raises(startup.StartupRefused, match="REHYDRATE_ON_START"):
        await start(tmp_path, dsn, {**ROLLBACK, "postgres_pool_timeout": 2})


async def test_postgres_primary_replicas_do_not_hold_memory(
    tmp_path: Path, pg_database: PgDatabase
) -> None:
    lost = await memory_only_records(tmp_path)
    first = await start(tmp_path, pg_database.app_dsn, PHASE_3)
    second = await start(tmp_path, pg_database.app_dsn, PHASE_3)  # a second replica
    try:
        assert await second.task_store.get_task(lost["task"].id) == lost["task"]
        async with admin_client(first) as client:
            snap = await client.get("/api/admin/snapshot")
            assert snap.status_code == 200
            assert lost["task"].id in snap.text
            held = await MemoryGraphStore.open(tmp_path)  # e.g. a Job holding the journal
            try:
                locked = await client.get("/api/admin/snapshot")
                assert locked.status_code == 409 and "locked" in locked.json()["detail"]
                assert (await client.post("/api/admin/rehydrate")).status_code == 409
            finally:
                await held.close()
            assert (await client.post("/api/admin/rehydrate")).status_code == 200
    finally:
        await second.close()
        await first.close()


async def test_start_up_backfill_skips_when_another_process_holds_memory(
    tmp_path: Path, pg_database: PgDatabase, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await memory_only_records(tmp_path)
    monkeypatch.setattr(startup, "LOCK_WAIT_SECONDS", 0.6)
    held = await MemoryAgentTaskStore.open(tmp_path)
    try:
        container = await start(tmp_path, pg_database.app_dsn, PHASE_3)
        await container.close()
    finally:
        await held.close()
    assert "skipping the start-up backfill" in caplog.text


async def test_rollback_from_postgres_primary_loses_nothing(
    tmp_path: Path, pg_database: PgDatabase
) -> None:
    dual = await start(tmp_path, pg_database.app_dsn, DUAL)
    try:
        old = await dual.task_store.create_task(
            AgentTaskCreate(direction="from dual", task_type=TaskType.impl))
        a = await dual.graph_store.upsert_project("pypi", "a", ProjectUpsert())
    finally:
        await dual.close()

    primary = await start(tmp_path, pg_database.app_dsn, PHASE_3)
    try:
        await primary.task_store.update_task(
            old.id, AgentTaskUpdate(status=TaskStatus.running, progress_pct=40))
        new = await primary.task_store.create_task(
            AgentTaskCreate(direction="from phase 3", task_type=TaskType.spec))
        b = await primary.graph_store.upsert_project("pypi", "b", ProjectUpsert())
        c = await primary.graph_store.upsert_project("pypi", "c", ProjectUpsert())
    finally:
        await primary.close()
    assert b.id > a.id and c.id > b.id

    rolled = await start(tmp_path, pg_database.app_dsn, ROLLBACK)
    try:
        assert rolled.settings.store_mode("graph").write_target == "dual"
        patched = await rolled.task_store.update_task(new.id, AgentTaskUpdate(progress_pct=10))
        assert patched.progress_pct == 10
        moved = await rolled.task_store.update_task(old.id, AgentTaskUpdate(progress_pct=90))
        assert moved.status == TaskStatus.running and moved.progress_pct == 90
        d = await rolled.graph_store.upsert_project("pypi", "d", ProjectUpsert())
        assert d.id not in {a.id, b.id, c.id}
        assert rolled.store_status is not None
        assert rolled.store_status()["graph_store"]["dual_write_failures"] == 0
        assert rolled.store_status()["agent_task_store"]["dual_write_failures"] == 0
    finally:
        await rolled.close()

    memory = await MemoryAgentTaskStore.open(tmp_path)
    try:  # memory, the trusted store, holds every write from every phase
        got_new, got_old = await memory.get_task(new.id), await memory.get_task(old.id)
        assert got_new is not None and got_new.progress_pct == 10
        assert got_old is not None and got_old.progress_pct == 90
    finally:
        await memory.close()
    pg_graph, pg_tasks, database = await postgres_stores(pg_database.app_dsn)
    try:
        pg_d = await pg_graph.get_project("pypi", "d")
        assert pg_d is not None and pg_d.id == d.id
        assert (await pg_tasks.get_task(old.id)).progress_pct == 90
    finally:
        await database.close()


async def test_memory_trusted_start_up_skips_ids_postgres_handed_out(
    tmp_path: Path, pg_database: PgDatabase
) -> None:
    pg_graph, _pg_tasks, database = await postgres_stores(pg_database.app_dsn)
    try:
        for i in range(3):
            taken = await pg_graph.upsert_project("npm", f"pg-only-{i}", ProjectUpsert())
    finally:
        await database.close()
    container = await start(tmp_path, pg_database.app_dsn, DUAL)
    try:
        fresh = await container.graph_store.upsert_project("npm", "fresh", ProjectUpsert())
        assert fresh.id > taken.id
        assert container.store_status is not None
        assert container.store_status()["graph_store"]["dual_write_failures"] == 0
    finally:
        await container.close()
