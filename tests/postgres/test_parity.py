"""Same records in, same answers out: PostgreSQL against the in-memory backend, through
the protocols only. Records are imported (not created) so ids and timestamps agree."""

from __future__ import annotations

import importlib
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from app.models import (
    AgentTask,
    Asset,
    AssetType,
    Contribution,
    ContributionCreate,
    Contributor,
    ContributorCreate,
    ProjectUpsert,
    TaskStatus,
    TaskType,
)
from app.stores.ports import GraphRecords

from tests.postgres.conftest import PgStores

T0 = datetime(2025, 3, 1, tzinfo=UTC)


def _memory(module: str, cls: str) -> Any:
    try:
        return getattr(importlib.import_module(module), cls)()
    except ImportError:
        pytest.skip(f"{cls} has not landed yet")


def tasks(n: int = 60) -> list[AgentTask]:
    rnd = random.Random(7)
    out = []
    for i in range(n):
        created = T0 + timedelta(seconds=rnd.randrange(0, 40))  # ties on created_at
        status = rnd.choice(list(TaskStatus))
        updated = None if status == TaskStatus.pending and i % 2 else created + timedelta(
            seconds=rnd.randrange(1, 30))
        out.append(AgentTask(
            id=f"task_{i:016x}", direction=f"d{i}", task_type=rnd.choice(list(TaskType)),
            status=status, model=rnd.choice(["m-a", "m-b"]), command="c",
            output=rnd.choice([None, "", "out"]), tier="t",
            started_at=None if status == TaskStatus.pending else created, created_at=created,
            updated_at=updated))
    return out


async def test_task_documents_equal_memory(pg: PgStores) -> None:
    memory = _memory("app.stores.memory.task_store", "MemoryAgentTaskStore")
    records = tasks()
    assert await memory.import_tasks(records) == await pg.tasks.import_tasks(records)
    now = T0 + timedelta(hours=1)
    for store in (memory, pg.tasks):
        store.answers = [
            await store.get_task_count(),
            await store.get_review_summary(),
            await store.get_usage_summary(),
            await store.get_pipeline_status(now),
            await store.get_attention_tasks(7),
            await store.list_tasks(limit=100),
            await store.list_tasks(status=TaskStatus.failed, limit=3, offset=1),
            await store.list_tasks(task_type=TaskType.impl, limit=5),
            await store.list_tasks(status=TaskStatus.running, task_type=TaskType.spec),
            sorted(await store.export_tasks(), key=lambda t: t.id),
        ]
    for mine, theirs in zip(pg.tasks.answers, memory.answers, strict=True):
        assert mine == theirs


async def test_graph_answers_equal_memory(pg: PgStores) -> None:
    memory = _memory("app.stores.memory.graph_store", "MemoryGraphStore")
    for store in (memory, pg.graph):
        for i in range(5):
            await store.upsert_project("npm", f"p{i}", ProjectUpsert(description=f"P{i}"))
        await store.add_dependency("npm", "p0", "npm", "p1")
        await store.add_dependency("npm", "p0", "npm", "p1")
        await store.add_dependency("npm", "p2", "npm", "p1")
    for key in (("npm", "p0"), ("npm", "p1"), ("NPM", "P2")):
        mine, theirs = await pg.graph.get_project(*key), await memory.get_project(*key)
        assert (mine.id, mine.dependency_count) == (theirs.id, theirs.dependency_count)
        assert await pg.graph.count_dependents(*key) == await memory.count_dependents(*key)

    contributors = [Contributor(id=UUID(int=i + 1), name=f"c{i}", created_at=T0 + timedelta(
        seconds=i // 2), updated_at=T0) for i in range(4)]
    assets = [Asset(id=UUID(int=100 + i), type=AssetType.DATA, name=f"a{i}",
                    created_at=T0, updated_at=T0) for i in range(3)]
    contributions = [Contribution(
        id=UUID(int=1000 + i), contributor_id=contributors[i % 4].id,
        asset_id=assets[i % 3].id, cost_amount=Decimal(i) / 4, coherence_score=0.5,
        timestamp=T0 + timedelta(seconds=i // 3)) for i in range(12)]
    records = GraphRecords(contributors=contributors, assets=assets,
                           contributions=contributions)
    assert await memory.import_graph(records) == await pg.graph.import_graph(records)
    for store in (memory, pg.graph):
        store.answers = [
            await store.list_contributors(3),
            await store.list_assets(),
            await store.list_contributions(5),
            await store.get_asset_contributions(assets[0].id),
            await store.get_contributor_contributions(contributors[1].id),
            [await store.get_asset(a.id) for a in assets],
        ]
    for mine, theirs in zip(pg.graph.answers, memory.answers, strict=True):
        assert mine == theirs


async def test_writes_move_the_parent_updated_at_like_memory(pg: PgStores) -> None:
    p = await pg.graph.upsert_project("npm", "a", ProjectUpsert())
    await pg.graph.add_dependency("npm", "a", "npm", "b")
    after_edge = await pg.graph.get_project("npm", "a")
    assert after_edge.updated_at > p.updated_at and after_edge.dependency_count == 1
    await pg.graph.add_dependency("npm", "a", "npm", "b")
    assert (await pg.graph.get_project("npm", "a")).updated_at == after_edge.updated_at

    c = await pg.graph.create_contributor(ContributorCreate(name="c"))
    a = await pg.graph.import_graph(GraphRecords(assets=[Asset(
        id=UUID(int=9), type=AssetType.CODE, name="x", created_at=T0, updated_at=T0)]))
    assert a.written["assets"] == 1
    await pg.graph.create_contribution(ContributionCreate(
        contributor_id=c.id, asset_id=UUID(int=9), cost_amount=Decimal("3.10")), 0.9)
    asset = await pg.graph.get_asset(UUID(int=9))
    assert asset.total_cost == Decimal("3.10") and asset.updated_at > T0


async def test_equal_timestamp_with_different_content_is_written(pg: PgStores) -> None:
    c = Contributor(id=UUID(int=5), name="before", created_at=T0, updated_at=T0)
    await pg.graph.put_contributor(c)
    await pg.graph.put_contributor(c.model_copy(update={"name": "after"}))
    assert (await pg.graph.get_contributor(c.id)).name == "after"
    again = await pg.graph.import_graph(GraphRecords(
        contributors=[c.model_copy(update={"name": "after"})]))
    assert again.skipped["contributors"] == 1
