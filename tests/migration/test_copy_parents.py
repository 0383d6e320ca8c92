"""A contribution's copy brings its contributor and asset with it, so PostgreSQL never
holds a contribution whose parents it missed; the asset's total_cost is still counted
once, by PostgreSQL's trigger, whatever order copies and backfills land in."""

from __future__ import annotations

from decimal import Decimal

from app.migration.backfill import backfill, copy_records
from app.migration.consistency import check_consistency
from app.models import AssetCreate, AssetType, ContributionCreate, ContributorCreate

from tests.migration.conftest import Stores


async def test_contribution_copy_heals_parents_postgres_missed(stores: Stores) -> None:
    c = await stores.memory_graph.create_contributor(ContributorCreate(name="before dual"))
    a = await stores.memory_graph.create_asset(AssetCreate(type=AssetType.CODE, name="lib"))
    export = await stores.memory_graph.export_graph()  # a backfill began before the write
    graph, _ = stores.routed(1)
    k = await graph.create_contribution(
        ContributionCreate(contributor_id=c.id, asset_id=a.id, cost_amount=Decimal("100.00")), 0.5
    )
    assert graph.store_status()["dual_write_failures"] == 0
    assert await stores.pg_graph.get_contribution(k.id) == k
    assert await stores.pg_graph.get_contributor(c.id) == c
    mem_asset = await stores.memory_graph.get_asset(a.id)
    assert await stores.pg_graph.get_asset(a.id) == mem_asset
    assert mem_asset is not None and mem_asset.total_cost == Decimal("100.00")

    await copy_records(export, None, stores.pg_graph, None)  # the older backfill lands late
    await backfill(stores.memory_graph, None, stores.pg_graph, None)  # and again
    assert await stores.pg_graph.get_asset(a.id) == mem_asset  # counted once, newest kept
    report = await check_consistency(stores.memory_graph, stores.pg_graph, None, None,
                                     sample=1.0, recheck_delay=0, record_metrics=False)
    assert report.mismatches == 0


async def test_repeated_contributions_to_a_copied_asset_add_each_cost_once(
    stores: Stores,
) -> None:
    graph, _ = stores.routed(1)
    c = await graph.create_contributor(ContributorCreate(name="p"))
    a = await graph.create_asset(AssetCreate(type=AssetType.DATA, name="d"))
    for _ in range(4):
        await graph.create_contribution(
            ContributionCreate(contributor_id=c.id, asset_id=a.id, cost_amount=Decimal("1.25")),
            0.5,
        )
    pg_asset = await stores.pg_graph.get_asset(a.id)
    assert pg_asset is not None and pg_asset.total_cost == Decimal("5.00")
    assert pg_asset == await stores.memory_graph.get_asset(a.id)
