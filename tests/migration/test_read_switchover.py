"""Phase 2: the configured share of reads goes to PostgreSQL (measured), a failed
PostgreSQL read falls back to memory and is counted, a PostgreSQL miss for a record
memory holds is served from memory, and shadow reads compare in the background."""

from __future__ import annotations

import math
import random

import pytest
from app.models import AgentTaskCreate, AssetCreate, AssetType, ProjectUpsert, TaskType

from tests.migration.conftest import Stores

READS = 2000


@pytest.mark.parametrize("percent", [0, 10, 50, 100])
async def test_measured_read_split_matches_the_configured_percent(
    stores: Stores, percent: int
) -> None:
    graph, tasks = stores.routed(2, read_percent=percent, seed=random.randrange(1 << 30))
    task = await tasks.create_task(AgentTaskCreate(direction="read me", task_type=TaskType.test))
    for _ in range(READS):
        assert await tasks.get_task(task.id) == task
    served = tasks.store_status()["reads_served"]
    assert served["memory"] + served["postgres"] == READS
    p = percent / 100
    sigma = math.sqrt(READS * p * (1 - p))
    assert abs(served["postgres"] - READS * p) <= 4 * sigma
    assert tasks.store_status()["read_fallbacks"] == 0
    print(f"configured {percent}%: served {served['postgres_fraction']:.2%} from postgres")


async def test_failed_postgres_read_falls_back_to_memory_and_is_counted(stores: Stores) -> None:
    graph, tasks = stores.routed(2, read_percent=100)
    project = await graph.upsert_project("pypi", "fallback", ProjectUpsert(version="1"))
    await stores.database.close()
    for _ in range(5):
        assert await graph.get_project("pypi", "fallback") == project
    assert await graph.count_projects() == 1
    status = graph.store_status()
    assert status["read_fallbacks"] == 6
    assert status["reads_served"] == {"memory": 6, "postgres": 0, "postgres_fraction": 0.0}


async def test_postgres_miss_is_served_from_memory_never_a_wrong_404(stores: Stores) -> None:
    graph, tasks = stores.routed(2, read_percent=100)
    only_in_memory = await stores.memory_tasks.create_task(
        AgentTaskCreate(direction="missed by postgres", task_type=TaskType.review)
    )
    assert await stores.pg_tasks.get_task(only_in_memory.id) is None
    assert await tasks.get_task(only_in_memory.id) == only_in_memory
    assert tasks.store_status()["shadow_reads"]["mismatch"] == 1
    assert await tasks.get_task("task_00000000000000ff") is None  # a true miss stays a miss
    missing_asset = await stores.memory_graph.create_asset(
        AssetCreate(type=AssetType.DATA, name="m")
    )
    assert await graph.get_asset_contributions(missing_asset.id) == []


async def test_shadow_reads_count_matches_and_mismatches(stores: Stores) -> None:
    graph, tasks = stores.routed(2, read_percent=0, shadow=100)
    same = await tasks.create_task(AgentTaskCreate(direction="same", task_type=TaskType.spec))
    for _ in range(3):
        await tasks.get_task(same.id)
    await tasks.drain()
    assert tasks.store_status()["shadow_reads"] == {
        "match": 3, "mismatch": 0, "error": 0, "skipped": 0
    }
    await stores.memory_tasks.create_task(AgentTaskCreate(direction="x", task_type=TaskType.spec))
    await tasks.get_task_count()
    await tasks.drain()
    assert tasks.store_status()["shadow_reads"]["mismatch"] == 1
