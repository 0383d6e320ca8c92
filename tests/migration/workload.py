"""A mixed write workload through the store routers, for the live-switch tests: every
kind of write, on new records and on records an earlier round (maybe under another
mode) created, with what each acknowledged kept in a ledger, and readers that must never
miss an acknowledged record."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

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


@dataclass
class Ledger:
    """What the routers acknowledged: final versions by key, costs per asset."""

    projects: dict[str, str] = field(default_factory=dict)  # name -> last version
    contributions: dict[Any, Any] = field(default_factory=dict)
    costs: dict[Any, Decimal] = field(default_factory=dict)
    tasks: dict[str, TaskStatus] = field(default_factory=dict)
    writes: int = 0
    misses: list[str] = field(default_factory=list)


async def writer(graph: Any, tasks: Any, tag: str, ledger: Ledger, stop: asyncio.Event) -> None:
    i = 0
    assets: list[Any] = []
    contributors: list[Any] = []
    open_tasks: list[str] = []
    while not stop.is_set():
        name = f"{tag}-{i}"
        await graph.upsert_project("pypi", name, ProjectUpsert(version="1.0"))
        if i:
            await graph.add_dependency("pypi", name, "pypi", f"{tag}-{i - 1}")
        await graph.upsert_project("pypi", name, ProjectUpsert(version=f"2.{i}"))
        ledger.projects[name] = f"2.{i}"
        contributors.append(await graph.create_contributor(ContributorCreate(name=name)))
        assets.append(await graph.create_asset(AssetCreate(type=AssetType.CODE, name=name)))
        # a contribution to this round's asset and one to an asset of an earlier round
        for asset in {assets[-1].id: assets[-1], assets[i // 2].id: assets[i // 2]}.values():
            c = await graph.create_contribution(ContributionCreate(
                contributor_id=contributors[i // 3].id, asset_id=asset.id,
                cost_amount=Decimal("1.25"), metadata={"round": i}), 0.5)
            ledger.contributions[c.id] = c
            ledger.costs[asset.id] = ledger.costs.get(asset.id, Decimal("0")) + c.cost_amount
        t = await tasks.create_task(AgentTaskCreate(direction=name, task_type=TaskType.impl))
        t = await tasks.update_task(t.id, AgentTaskUpdate(status=TaskStatus.running,
                                                          progress_pct=i % 100))
        ledger.tasks[t.id] = t.status
        open_tasks.append(t.id)
        if len(open_tasks) > 2:  # finish a task an earlier round started
            done = await tasks.update_task(open_tasks.pop(0),
                                           AgentTaskUpdate(status=TaskStatus.completed))
            ledger.tasks[done.id] = done.status
        ledger.writes += 9
        i += 1
        await asyncio.sleep(0)


async def reader(graph: Any, tasks: Any, ledger: Ledger, stop: asyncio.Event) -> None:
    """Reads acknowledged records back: a miss is a wrong 404 a client would have seen."""
    while not stop.is_set():
        for name in list(ledger.projects)[-20:]:
            if await graph.get_project("pypi", name) is None:
                ledger.misses.append(f"project {name}")
        for task_id in list(ledger.tasks)[-20:]:
            if await tasks.get_task(task_id) is None:
                ledger.misses.append(f"task {task_id}")
        await asyncio.sleep(0.001)


async def assert_ledger_in(graph: Any, tasks: Any, ledger: Ledger) -> None:
    """Every acknowledged write is in this store pair with its last acknowledged value."""
    for name, version in ledger.projects.items():
        p = await graph.get_project("pypi", name)
        assert p is not None and p.version == version, (name, p)
    for cid, c in ledger.contributions.items():
        assert await graph.get_contribution(cid) == c
    for asset_id, cost in ledger.costs.items():
        asset = await graph.get_asset(asset_id)
        assert asset is not None and asset.total_cost == cost, (asset_id, asset, cost)
    for task_id, status in ledger.tasks.items():
        t = await tasks.get_task(task_id)
        assert t is not None and t.status == status, (task_id, t)
