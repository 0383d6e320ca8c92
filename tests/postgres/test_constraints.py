"""Each database constraint, reached through the adapters, gives the contract's error."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from uuid import uuid4

import asyncpg
import pytest
from app.errors import ConflictError, InvalidDataError, NotFoundError
from app.models import (
    AgentTask,
    Asset,
    AssetCreate,
    AssetType,
    Contribution,
    ContributionCreate,
    ContributorCreate,
    Dependency,
    Project,
    ProjectUpsert,
    TaskStatus,
    TaskType,
)
from app.stores.ports import GraphRecords

from tests.postgres.conftest import PgStores

NOW = datetime(2025, 1, 1, tzinfo=UTC)


async def test_duplicate_email_is_a_conflict_case_insensitively(pg: PgStores) -> None:
    await pg.graph.create_contributor(ContributorCreate(name="a", email="Ann@Example.org"))
    with pytest.raises(ConflictError) as e:
        await pg.graph.create_contributor(ContributorCreate(name="b", email="ann@example.ORG"))
    assert "email" in e.value.detail
    assert len(await pg.graph.list_contributors()) == 1


async def test_contribution_parents_are_checked_contributor_first(pg: PgStores) -> None:
    body = ContributionCreate(contributor_id=uuid4(), asset_id=uuid4(), cost_amount=Decimal(1))
    with pytest.raises(NotFoundError, match="^Contributor not found$"):
        await pg.graph.create_contribution(body, 0.5)
    c = await pg.graph.create_contributor(ContributorCreate(name="a"))
    with pytest.raises(NotFoundError, match="^Asset not found$"):
        await pg.graph.create_contribution(body.model_copy(update={"contributor_id": c.id}), 0.5)
    assert await pg.graph.list_contributions() == []


async def test_foreign_keys_on_the_replica_path_are_not_found(pg: PgStores) -> None:
    orphan = Contribution(id=uuid4(), contributor_id=uuid4(), asset_id=uuid4(),
                          cost_amount=Decimal(1), coherence_score=0.5, timestamp=NOW)
    with pytest.raises(NotFoundError, match="^Contributor not found$"):
        await pg.graph.put_contribution(orphan)
    edge = Dependency(from_ecosystem="npm", from_name="nope", to_ecosystem="npm",
                      to_name="x", created_at=NOW)
    with pytest.raises(NotFoundError, match="^Project not found$"):
        await pg.graph.put_dependency(edge)
    with pytest.raises(NotFoundError, match="^Project not found$"):
        await pg.graph.add_dependency("npm", "nope", "npm", "x")


async def test_check_constraints_are_invalid_data(pg: PgStores) -> None:
    c = await pg.graph.create_contributor(ContributorCreate(name="a"))
    a = await pg.graph.create_asset(AssetCreate(type=AssetType.CODE, name="x"))
    bad_score = Contribution.model_construct(
        id=uuid4(), contributor_id=c.id, asset_id=a.id, cost_amount=Decimal(1),
        coherence_score=1.5, metadata={}, timestamp=NOW)
    with pytest.raises(InvalidDataError):
        await pg.graph.put_contribution(bad_score)
    bad_cost = Contribution.model_construct(
        id=uuid4(), contributor_id=c.id, asset_id=a.id, cost_amount=Decimal(-1),
        coherence_score=0.5, metadata={}, timestamp=NOW)
    with pytest.raises(InvalidDataError):
        await pg.graph.put_contribution(bad_cost)
    bad_task = AgentTask.model_construct(
        id="task_0123456789abcdef", direction="d", task_type=TaskType.impl,
        status=TaskStatus.pending,
        model="m", command="c", output=None, context={}, progress_pct=150, current_step=None,
        decision_prompt=None, decision=None, tier=None, started_at=None, created_at=NOW,
        updated_at=None)
    with pytest.raises(InvalidDataError):
        await pg.tasks.put_task(bad_task)
    bad_id = bad_task.model_copy(update={"progress_pct": 5, "id": "task_XYZ"})
    with pytest.raises(InvalidDataError):
        await pg.tasks.put_task(bad_id)
    upper = Project.model_construct(id=7, ecosystem="NPM", name="x", version=None,
                                    description=None, homepage_url=None, repository_url=None,
                                    dependency_count=0, created_at=NOW, updated_at=NOW)
    with pytest.raises(InvalidDataError):
        await pg.graph.put_project(upper)
    assert (await pg.graph.get_asset(a.id)).total_cost == Decimal("0.00")


async def test_project_unique_key_keeps_one_row_and_its_id(pg: PgStores) -> None:
    first = await pg.graph.upsert_project("npm", "left-pad", ProjectUpsert(version="1"))
    again = await pg.graph.upsert_project("NPM", "Left-Pad", ProjectUpsert(version="2"))
    assert again.id == first.id and again.version == "2"
    assert again.updated_at >= first.updated_at and again.created_at == first.created_at
    assert await pg.graph.count_projects() == 1
    other = Project(id=first.id, ecosystem="npm", name="other", created_at=NOW, updated_at=NOW)
    with pytest.raises(ConflictError):
        await pg.graph.put_project(other)


async def test_failed_multi_table_import_leaves_nothing_behind(pg: PgStores) -> None:
    await pg.graph.create_contributor(ContributorCreate(name="a", email="dup@x.io"))
    records = GraphRecords(
        projects=[Project(id=1, ecosystem="npm", name="p", created_at=NOW, updated_at=NOW)],
        assets=[Asset(id=uuid4(), type=AssetType.DATA, name="a", created_at=NOW,
                      updated_at=NOW)],
    )
    dup = (await pg.graph.list_contributors())[0].model_copy(update={"id": uuid4()})
    records.contributors = [dup]
    with pytest.raises(ConflictError):
        await pg.graph.import_graph(records)
    assert await pg.graph.count_projects() == 0
    assert await pg.graph.list_assets() == []
    assert len(await pg.graph.list_contributors()) == 1


async def test_cascade_deletes_children(pg: PgStores) -> None:
    p = await pg.graph.upsert_project("npm", "a", ProjectUpsert())
    await pg.graph.add_dependency("npm", "a", "npm", "b")
    c = await pg.graph.create_contributor(ContributorCreate(name="a"))
    a = await pg.graph.create_asset(AssetCreate(type=AssetType.CODE, name="x"))
    await pg.graph.create_contribution(
        ContributionCreate(contributor_id=c.id, asset_id=a.id, cost_amount=Decimal(2)), 0.5)
    conn = await asyncpg.connect(pg.db.owner_dsn)
    try:
        await conn.execute("DELETE FROM projects WHERE id = $1", p.id)
        await conn.execute("DELETE FROM assets WHERE id = $1", a.id)
        assert await conn.fetchval("SELECT count(*) FROM project_dependencies") == 0
        assert await conn.fetchval("SELECT count(*) FROM contributions") == 0
    finally:
        await conn.close()
