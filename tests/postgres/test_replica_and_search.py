"""The replica face (put_*, import_*), the database's derived values (total_cost,
updated_at) and search order, which must equal app.domain.graph's rank on any backend."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import uuid4

import asyncpg
import pytest
from app.domain.graph import hit, matches, normalize_query, rank_key
from app.models import (
    AgentTask,
    AgentTaskCreate,
    AgentTaskUpdate,
    Asset,
    AssetType,
    Contribution,
    Contributor,
    Dependency,
    Project,
    ProjectUpsert,
    SearchResult,
    TaskStatus,
    TaskType,
)
from app.stores.ports import GraphRecords

from tests.postgres.conftest import PgStores

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def graph_records(n_contrib: int = 3) -> GraphRecords:
    c = Contributor(id=uuid4(), name="c", email="c@x.io", created_at=T0, updated_at=T0)
    a = Asset(id=uuid4(), type=AssetType.CODE, name="a", total_cost=Decimal("999"),
              created_at=T0, updated_at=T0)
    return GraphRecords(
        projects=[Project(id=10 + i, ecosystem="npm", name=f"p{i}", created_at=T0,
                          updated_at=T0, dependency_count=99) for i in range(3)],
        dependencies=[Dependency(from_ecosystem="npm", from_name="p0", to_ecosystem="npm",
                                 to_name="p1", created_at=T0)],
        contributors=[c],
        assets=[a],
        contributions=[Contribution(id=uuid4(), contributor_id=c.id, asset_id=a.id,
                                    cost_amount=Decimal("2.50"), coherence_score=0.7,
                                    timestamp=T0 + timedelta(seconds=i))
                       for i in range(n_contrib)],
    )


async def test_import_is_idempotent_and_counts_cost_once(pg: PgStores) -> None:
    records = graph_records()
    first = await pg.graph.import_graph(records)
    assert first.written == {"projects": 3, "dependencies": 1, "contributors": 1,
                             "assets": 1, "contributions": 3}
    second = await pg.graph.import_graph(records)
    assert sum(second.written.values()) == 0
    assert second.skipped == first.written
    asset = await pg.graph.get_asset(records.assets[0].id)
    assert asset.total_cost == Decimal("7.50")  # the trigger's sum, not the record's 999
    exported = await pg.graph.export_graph()
    assert [p.id for p in exported.projects] == [10, 11, 12]
    assert exported.projects[0].dependency_count == 1
    assert exported.dependencies == records.dependencies
    assert exported.contributors == records.contributors
    assert exported.contributions == records.contributions
    for c in records.contributions:
        await pg.graph.put_contribution(c)
    assert (await pg.graph.get_asset(asset.id)).total_cost == Decimal("7.50")


async def test_newer_wins_and_older_is_skipped(pg: PgStores) -> None:
    p = Project(id=5, ecosystem="npm", name="x", version="1", created_at=T0, updated_at=T0)
    newer = p.model_copy(update={"version": "2", "updated_at": T0 + timedelta(seconds=1)})
    await pg.graph.put_project(newer)
    await pg.graph.put_project(p)
    stats = await pg.graph.import_graph(GraphRecords(projects=[p]))
    assert stats.skipped["projects"] == 1
    assert (await pg.graph.get_project("npm", "x")).version == "2"
    newest = newer.model_copy(update={"version": "3", "updated_at": T0 + timedelta(seconds=2)})
    assert (await pg.graph.import_graph(GraphRecords(projects=[newest]))).written["projects"]
    got = await pg.graph.get_project("npm", "x")
    assert got.version == "3" and got.updated_at == newest.updated_at and got.id == 5

    task = AgentTask(id="task_00000000000000aa", direction="d", task_type=TaskType.spec,
                     status=TaskStatus.pending, model="m", command="c", created_at=T0)
    done = task.model_copy(update={"status": TaskStatus.running, "updated_at": T0 + timedelta(1)})
    await pg.tasks.put_task(done)
    await pg.tasks.put_task(task)
    assert (await pg.tasks.import_tasks([task, task])).skipped == {"agent_tasks": 2}
    assert (await pg.tasks.get_task(task.id)).status == TaskStatus.running
    assert await pg.tasks.export_tasks() == [done]


async def test_replicated_ids_move_the_identity_past_them(pg: PgStores) -> None:
    await pg.graph.import_graph(graph_records())
    await pg.graph.put_project(Project(id=40, ecosystem="pypi", name="z", created_at=T0,
                                       updated_at=T0))
    fresh = await pg.graph.upsert_project("pypi", "new", ProjectUpsert())
    assert fresh.id == 41


async def test_trigger_adds_each_contribution_and_leaves_updated_at(pg: PgStores) -> None:
    records = graph_records(n_contrib=0)
    await pg.graph.import_graph(records)
    asset = records.assets[0]
    held = await pg.graph.get_asset(asset.id)
    assert held.total_cost == Decimal("0.00") and held.updated_at == T0
    c = Contribution(id=uuid4(), contributor_id=records.contributors[0].id, asset_id=asset.id,
                     cost_amount=Decimal("1.25"), coherence_score=0.5, timestamp=T0)
    await pg.graph.put_contribution(c)
    await pg.graph.put_asset(asset.model_copy(update={"name": "renamed",
                                                      "updated_at": T0 + timedelta(1)}))
    held = await pg.graph.get_asset(asset.id)
    assert held.total_cost == Decimal("1.25") and held.name == "renamed"


async def test_updated_at_moves_when_a_statement_does_not_set_it(pg: PgStores) -> None:
    await pg.graph.import_graph(graph_records())
    task = await pg.tasks.create_task(AgentTaskCreate(direction="d", task_type=TaskType.heal))
    conn = await asyncpg.connect(pg.db.app_dsn)
    try:
        await conn.execute("UPDATE projects SET version = '9' WHERE name = 'p0'")
        await conn.execute("UPDATE agent_tasks SET progress_pct = 5 WHERE id = $1", task.id)
        set_explicitly = T0 + timedelta(days=3)
        await conn.execute("UPDATE projects SET version = '8', updated_at = $1 "
                           "WHERE name = 'p1'", set_explicitly)
    finally:
        await conn.close()
    assert (await pg.graph.get_project("npm", "p0")).updated_at > T0 + timedelta(days=30)
    assert (await pg.graph.get_project("npm", "p1")).updated_at == set_explicitly
    assert (await pg.tasks.get_task(task.id)).updated_at is not None


async def test_update_task_applies_the_domain_rules(pg: PgStores) -> None:
    task = await pg.tasks.create_task(AgentTaskCreate(direction="d", task_type=TaskType.impl))
    running = await pg.tasks.update_task(task.id, AgentTaskUpdate(status=TaskStatus.running))
    asked = await pg.tasks.update_task(task.id, AgentTaskUpdate(
        status=TaskStatus.needs_decision, decision_prompt="which?"))
    resumed = await pg.tasks.update_task(task.id, AgentTaskUpdate(decision="this"))
    assert resumed.status == TaskStatus.running and resumed.started_at == running.started_at
    assert asked.updated_at <= resumed.updated_at
    assert await pg.tasks.get_task(task.id) == resumed


# ---------------------------------------------------------------- search order

NAMES = ["flask", "flask_login", "flask-login", "flaskr", "Flask", "a_flask", "py%flask",
         "django", "requests", "req", "requests-oauth", "_req", "zreq", "REQ", "Ärger", "ärger"]


def search_projects() -> list[Project]:
    out = []
    for i, (eco, name) in enumerate((e, n) for n in NAMES for e in ("pypi", "npm")):
        desc = None if i % 3 == 0 else f"{name.upper()} helper with 100% Req_uests"
        out.append(Project(id=i + 1, ecosystem=eco, name=name, description=desc,
                           created_at=T0, updated_at=T0))
    return out


QUERIES = ["flask", "FLASK ", "req", "_", "%", "100%", "fl", "req_u", "ärger", "r", "x", "  ",
           "helper", "a_"]


def reference(projects: list[Project], query: str, limit: int) -> SearchResult:
    q = normalize_query(query)
    found = sorted((p for p in projects if matches(q, p)), key=lambda p: rank_key(q, p))
    return SearchResult(results=[hit(p) for p in found[:limit]], total=len(found))


@pytest.mark.parametrize("limit", [3, 100])
async def test_search_order_equals_the_domain_rank(pg: PgStores, limit: int) -> None:
    projects = search_projects()
    await pg.graph.import_graph(GraphRecords(projects=projects))
    stored = (await pg.graph.export_graph()).projects
    for query in QUERIES:
        assert await pg.graph.search(query, limit) == reference(stored, query, limit), query


async def test_search_equals_the_in_memory_backend(pg: PgStores, tmp_path) -> None:  # noqa: ANN001
    try:
        memory_mod = importlib.import_module("app.stores.memory.graph_store")
    except ImportError:
        pytest.skip("MemoryGraphStore has not landed yet")
    memory = memory_mod.MemoryGraphStore()
    for store in (memory, pg.graph):
        for p in search_projects():
            await store.upsert_project(p.ecosystem, p.name,
                                       ProjectUpsert(description=p.description))
    for query in QUERIES:
        for limit in (1, 5, 20, 100):
            assert await pg.graph.search(query, limit) == await memory.search(query, limit)
