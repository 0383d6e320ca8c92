"""MemoryGraphStore over its two protocols: the rules in graph_store.py's docstring,
checked on the volatile store and on a durable one that is closed and reopened."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from uuid import uuid4

import pytest
from app.errors import ConflictError, NotFoundError
from app.models import (
    AssetCreate,
    AssetType,
    ContributionCreate,
    ContributorCreate,
    ProjectUpsert,
)
from app.stores.memory.graph_store import MemoryGraphStore
from app.stores.ports import GraphRecords, GraphReplica, GraphStore

Reopen = Callable[[MemoryGraphStore], Awaitable[MemoryGraphStore]]
Pair = tuple[MemoryGraphStore, Reopen]


@pytest.fixture(params=["volatile", "durable"])
async def store_and_reopen(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[MemoryGraphStore, Reopen]]:
    opened: list[MemoryGraphStore] = []

    async def reopen(store: MemoryGraphStore) -> MemoryGraphStore:
        if request.param == "volatile":
            return store
        await store.close()
        again = await MemoryGraphStore.open(tmp_path, fsync="never")
        opened.append(again)
        return again

    if request.param == "volatile":
        first = MemoryGraphStore()
    else:
        first = await MemoryGraphStore.open(tmp_path, fsync="never")
    opened.append(first)
    yield first, reopen
    for s in opened:
        await s.close()


async def test_implements_both_protocols() -> None:
    store = MemoryGraphStore()
    assert isinstance(store, GraphStore)
    assert isinstance(store, GraphReplica)


async def test_upsert_keeps_id_and_created_at_and_moves_updated_at(
    store_and_reopen: Pair,
) -> None:
    store, reopen = store_and_reopen
    first = await store.upsert_project("PyPI", "Requests", ProjectUpsert(version="1.0"))
    assert (first.id, first.ecosystem, first.name) == (1, "pypi", "requests")
    second = await store.upsert_project("pypi", "requests", ProjectUpsert(description="http"))
    assert second.id == 1 and second.created_at == first.created_at
    assert second.updated_at > first.updated_at
    assert second.version is None and second.description == "http"  # fields replaced
    other = await store.upsert_project("npm", "left-pad", ProjectUpsert())
    assert other.id == 2
    store = await reopen(store)
    assert await store.get_project(" PYPI", "REQUESTS ") == second
    assert await store.get_project("pypi", "missing") is None
    assert await store.count_projects() == 2
    assert (await store.upsert_project("cargo", "serde", ProjectUpsert())).id == 3


async def test_dependencies(store_and_reopen: Pair) -> None:
    store, reopen = store_and_reopen
    with pytest.raises(NotFoundError, match="Project not found"):
        await store.add_dependency("pypi", "nope", "pypi", "x")
    before = await store.upsert_project("pypi", "app", ProjectUpsert())
    edge = await store.add_dependency("pypi", "App", "PyPI", "Lib")
    assert (edge.to_ecosystem, edge.to_name) == ("pypi", "lib")
    assert await store.add_dependency("pypi", "app", "pypi", "lib") == edge  # idempotent
    await store.add_dependency("pypi", "app", "npm", "lib")
    store = await reopen(store)
    app = await store.get_project("pypi", "app")
    assert app is not None and app.dependency_count == 2 and app.updated_at > before.updated_at
    assert await store.count_dependents("pypi", "lib") == 1
    assert await store.count_dependents("pypi", "app") == 0
    lib = await store.upsert_project("pypi", "lib", ProjectUpsert())
    assert lib.dependency_count == 0
    assert await store.count_dependents("PyPI", "LIB") == 1


async def test_search_ranks_exact_then_prefix_then_rest(store_and_reopen: Pair) -> None:
    store, _ = store_and_reopen
    for eco, name, desc in [
        ("pypi", "flask-login", None),
        ("pypi", "zflask", None),
        ("npm", "flask", None),
        ("pypi", "flask", None),
        ("pypi", "other", "a Flask helper"),
    ]:
        await store.upsert_project(eco, name, ProjectUpsert(description=desc))
    result = await store.search("  FLASK ", limit=10)
    assert [(h.ecosystem, h.name) for h in result.results] == [
        ("npm", "flask"),
        ("pypi", "flask"),
        ("pypi", "flask-login"),
        ("pypi", "other"),
        ("pypi", "zflask"),
    ]
    assert result.total == 5
    limited = await store.search("flask", limit=2)
    assert len(limited.results) == 2 and limited.total == 5
    assert (await store.search("   ")).total == 0


async def test_contributors_emails_are_unique_case_insensitively(store_and_reopen: Pair) -> None:
    store, reopen = store_and_reopen
    a = await store.create_contributor(ContributorCreate(name="Ann", email="Ann@Example.org"))
    store = await reopen(store)
    with pytest.raises(ConflictError, match="Contributor with this email already exists"):
        await store.create_contributor(ContributorCreate(name="Other", email="ann@example.ORG"))
    b = await store.create_contributor(ContributorCreate(name="Bob"))
    c = await store.create_contributor(ContributorCreate(name="Cy"))
    assert [x.id for x in await store.list_contributors()] == [c.id, b.id, a.id]
    assert [x.id for x in await store.list_contributors(limit=2)] == [c.id, b.id]
    assert await store.get_contributor(a.id) == a
    assert await store.get_contributor(uuid4()) is None


async def test_contributions_total_cost_and_not_found_order(store_and_reopen: Pair) -> None:
    store, reopen = store_and_reopen
    person = await store.create_contributor(ContributorCreate(name="Ann"))
    asset = await store.create_asset(AssetCreate(type=AssetType.CODE, description="d" * 300))
    assert asset.name == "d" * 255 and asset.total_cost == Decimal("0.00")
    with pytest.raises(NotFoundError, match="Contributor not found"):
        await store.create_contribution(
            ContributionCreate(contributor_id=uuid4(), asset_id=uuid4(), cost_amount=Decimal(1)),
            0.5,
        )
    with pytest.raises(NotFoundError, match="Asset not found"):
        await store.create_contribution(
            ContributionCreate(contributor_id=person.id, asset_id=uuid4(), cost_amount=Decimal(1)),
            0.5,
        )
    first = await store.create_contribution(
        ContributionCreate(
            contributor_id=person.id, asset_id=asset.id, cost_amount=Decimal("100.00")
        ),
        0.9,
    )
    second = await store.create_contribution(
        ContributionCreate(
            contributor_id=person.id, asset_id=asset.id, cost_amount=Decimal("0.50")
        ),
        0.5,
    )
    store = await reopen(store)
    held = await store.get_asset(asset.id)
    assert held is not None and held.total_cost == Decimal("100.50")
    assert held.updated_at > asset.updated_at
    assert [c.id for c in await store.get_asset_contributions(asset.id)] == [first.id, second.id]
    assert [c.id for c in await store.get_contributor_contributions(person.id)] == [
        first.id,
        second.id,
    ]
    assert [c.id for c in await store.list_contributions()] == [second.id, first.id]
    assert await store.get_contribution(first.id) == first
    assert first.coherence_score == 0.9
    with pytest.raises(NotFoundError, match="Asset not found"):
        await store.get_asset_contributions(uuid4())
    with pytest.raises(NotFoundError, match="Contributor not found"):
        await store.get_contributor_contributions(uuid4())
    assert [a.id for a in await store.list_assets()] == [asset.id]


async def test_put_is_newer_wins_and_idempotent(store_and_reopen: Pair) -> None:
    store, reopen = store_and_reopen
    project = await store.upsert_project("pypi", "a", ProjectUpsert(version="2"))
    older = project.model_copy(
        update={"version": "1", "updated_at": project.updated_at - timedelta(seconds=1)}
    )
    await store.put_project(older)
    assert (await store.get_project("pypi", "a")) == project
    newer = project.model_copy(
        update={"version": "3", "updated_at": project.updated_at + timedelta(seconds=1)}
    )
    await store.put_project(newer)
    await store.put_project(newer)
    store = await reopen(store)
    assert (await store.get_project("pypi", "a")) == newer

    person = await store.create_contributor(ContributorCreate(name="Ann"))
    asset = await store.create_asset(AssetCreate(type=AssetType.DATA, name="set"))
    contribution = await store.create_contribution(
        ContributionCreate(
            contributor_id=person.id, asset_id=asset.id, cost_amount=Decimal("7.00")
        ),
        0.5,
    )
    held = await store.get_asset(asset.id)
    assert held is not None
    forged = held.model_copy(
        update={"total_cost": Decimal("999"), "updated_at": held.updated_at + timedelta(1)}
    )
    await store.put_asset(forged)
    await store.put_contribution(contribution)  # the same record twice: counted once
    store = await reopen(store)
    after = await store.get_asset(asset.id)
    assert after is not None and after.total_cost == Decimal("7.00")
    assert after.updated_at == forged.updated_at

    stranger = person.model_copy(update={"id": uuid4(), "email": "x@y.z"})
    await store.put_contributor(stranger)
    clash = person.model_copy(update={"id": uuid4(), "email": "X@Y.Z"})
    with pytest.raises(ConflictError):
        await store.put_contributor(clash)


async def test_export_import_round_trip_and_id_counter(store_and_reopen: Pair) -> None:
    store, reopen = store_and_reopen
    await store.upsert_project("pypi", "a", ProjectUpsert())
    await store.upsert_project("pypi", "b", ProjectUpsert())
    await store.add_dependency("pypi", "a", "pypi", "b")
    person = await store.create_contributor(ContributorCreate(name="Ann", email="a@b.c"))
    asset = await store.create_asset(AssetCreate(type=AssetType.MODEL, name="m"))
    await store.create_contribution(
        ContributionCreate(
            contributor_id=person.id, asset_id=asset.id, cost_amount=Decimal("3.25")
        ),
        0.7,
    )
    exported = await store.export_graph()
    assert exported.count() == 2 + 1 + 1 + 1 + 1

    copy = MemoryGraphStore()
    stats = await copy.import_graph(exported)
    assert sum(stats.written.values()) == exported.count()
    again = await copy.import_graph(exported)
    assert sum(again.written.values()) == 0 and sum(again.skipped.values()) == exported.count()
    assert await copy.export_graph() == exported
    copied_asset = await copy.get_asset(asset.id)
    assert copied_asset is not None and copied_asset.total_cost == Decimal("3.25")

    far = exported.projects[0].model_copy(update={"id": 500, "ecosystem": "npm"})
    await store.put_project(far)
    await copy.import_graph(GraphRecords(projects=[far]))
    store = await reopen(store)
    assert (await store.upsert_project("pypi", "new", ProjectUpsert())).id == 501
    assert (await copy.upsert_project("pypi", "new", ProjectUpsert())).id == 501


async def test_durable_store_survives_compaction(tmp_path: Path) -> None:
    store = await MemoryGraphStore.open(tmp_path, fsync="never", snapshot_every=5)
    person = await store.create_contributor(ContributorCreate(name="Ann"))
    asset = await store.create_asset(AssetCreate(type=AssetType.CODE, name="c"))
    for i in range(12):
        await store.upsert_project("pypi", f"p{i}", ProjectUpsert())
        await store.create_contribution(
            ContributionCreate(contributor_id=person.id, asset_id=asset.id, cost_amount=Decimal(1)),
            0.5,
        )
    assert store.journal is not None
    await store.journal.compact()
    expected = await store.export_graph()
    await store.close()
    again = await MemoryGraphStore.open(tmp_path)
    assert again.recovery is not None and again.recovery.snapshot_seq is not None
    assert await again.export_graph() == expected
    held = await again.get_asset(asset.id)
    assert held is not None and held.total_cost == Decimal("12.00")
    assert again.next_project_id == 13
    await again.close()


async def test_concurrent_writers_cannot_both_pass_the_email_check(tmp_path: Path) -> None:
    store = await MemoryGraphStore.open(tmp_path, fsync="always")
    results = await asyncio.gather(
        *(
            store.create_contributor(ContributorCreate(name=f"n{i}", email="same@x.org"))
            for i in range(5)
        ),
        return_exceptions=True,
    )
    assert sum(isinstance(r, ConflictError) for r in results) == 4
    await store.close()
    again = await MemoryGraphStore.open(tmp_path)
    assert len(await again.list_contributors()) == 1
    await again.close()


async def test_concurrent_upserts_each_answer_with_what_they_stored(tmp_path: Path) -> None:
    """With group-commit fsync, writers wait together; each must still answer with the
    record it wrote, not whatever the key holds once the shared fsync returns (a client
    would otherwise see another request's version and updated_at as its own)."""
    store = await MemoryGraphStore.open(tmp_path, fsync="always")
    try:
        answers = await asyncio.gather(
            *(
                store.upsert_project("pypi", "same", ProjectUpsert(version=f"1.{i}"))
                for i in range(20)
            )
        )
        assert [a.version for a in answers] == [f"1.{i}" for i in range(20)]
        stamps = [a.updated_at for a in answers]
        assert stamps == sorted(stamps) and len(set(stamps)) == 20
        final = await store.get_project("pypi", "same")
        assert final is not None and final.version == "1.19"
    finally:
        await store.close()
