"""The versioned snapshot format: a full round trip, partial snapshots, and clear
refusals of files this version cannot read."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from app.models import (
    AgentTaskCreate,
    AssetCreate,
    AssetType,
    ContributionCreate,
    ContributorCreate,
    ProjectUpsert,
    TaskType,
)
from app.stores import snapshot as snap
from app.stores.memory.graph_store import MemoryGraphStore
from app.stores.memory.task_store import MemoryAgentTaskStore


async def filled() -> tuple[MemoryGraphStore, MemoryAgentTaskStore]:
    graph, tasks = MemoryGraphStore(), MemoryAgentTaskStore()
    await graph.upsert_project("pypi", "a", ProjectUpsert(version="1"))
    await graph.add_dependency("pypi", "a", "pypi", "b")
    person = await graph.create_contributor(
        ContributorCreate(name="Ann", hourly_rate=Decimal("12.5"))
    )
    asset = await graph.create_asset(AssetCreate(type=AssetType.CODE, name="c"))
    await graph.create_contribution(
        ContributionCreate(
            contributor_id=person.id, asset_id=asset.id, cost_amount=Decimal("4.10")
        ),
        0.7,
    )
    await tasks.create_task(AgentTaskCreate(direction="go", task_type=TaskType.spec))
    return graph, tasks


async def test_full_snapshot_round_trip(tmp_path: Path) -> None:
    graph, tasks = await filled()
    records, next_id = graph.snapshot_records()
    taken = snap.Snapshot(
        snap.now(), graph=records, next_project_id=next_id, agent_tasks=tasks.snapshot_records()
    )
    path = tmp_path / "final.json"
    snap.write_snapshot(path, taken)
    doc = json.loads(path.read_text())
    assert (doc["format"], doc["version"]) == ("storemigration-snapshot", 1)
    assert set(doc["graph"]) == {
        "projects",
        "dependencies",
        "contributors",
        "assets",
        "contributions",
        "next_project_id",
    }
    assert doc["graph"]["assets"][0]["total_cost"] == "4.10"
    assert doc["graph"]["next_project_id"] == 2

    read = snap.read_snapshot(path)
    assert read.graph == records and read.agent_tasks == tasks.snapshot_records()
    assert read.next_project_id == 2

    g2, t2 = MemoryGraphStore(), MemoryAgentTaskStore()
    g2.restore(read)
    t2.restore(read)
    assert await g2.export_graph() == await graph.export_graph()
    assert await t2.export_tasks() == await tasks.export_tasks()


async def test_partial_snapshot_marks_the_missing_part_null() -> None:
    _, tasks = await filled()
    data = snap.dumps(snap.Snapshot(snap.now(), agent_tasks=tasks.snapshot_records()))
    assert json.loads(data)["graph"] is None
    read = snap.loads(data)
    assert read.graph is None and read.agent_tasks is not None
    with pytest.raises(snap.SnapshotFormatError, match="no graph"):
        MemoryGraphStore().restore(read)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"format": "other", "version": 1}, "not a snapshot"),
        ({"format": "storemigration-snapshot", "version": 2}, "unsupported snapshot version 2"),
        ({"format": "storemigration-snapshot", "version": 1}, "invalid"),
        (
            {
                "format": "storemigration-snapshot",
                "version": 1,
                "taken_at": "2024-01-01T00:00:00Z",
                "graph": {"projects": [{"id": "x"}]},
                "agent_tasks": None,
            },
            "invalid",
        ),
        ([1, 2], "JSON object"),
    ],
)
def test_unreadable_snapshots_are_refused_clearly(doc: object, message: str) -> None:
    with pytest.raises(snap.SnapshotFormatError, match=message):
        snap.loads(json.dumps(doc))


def test_not_json_is_refused() -> None:
    with pytest.raises(snap.SnapshotFormatError, match="not valid JSON"):
        snap.loads(b"{")
