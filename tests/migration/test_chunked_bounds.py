"""A chunk of the full verify holds at most `limit` records of either store, even when
one side is empty (PostgreSQL before any backfill, or a kind PostgreSQL alone holds):
the range ends where either side's chunk ends, and every key is still reported once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.migration.chunked import MemoryLookup, verify_chunk
from app.migration.keyed import Ordered
from app.models import AgentTaskCreate, TaskType
from app.stores.postgres.ranges import PostgresRanges

from tests.migration.conftest import Stores


def _later() -> datetime:
    return datetime.now(UTC) + timedelta(hours=1)  # nothing counts as in flight


async def _walk(kind: str, index: Ordered, ranges: PostgresRanges, lookup: MemoryLookup,
                limit: int) -> list[dict]:
    lines, after, done = [], None, False
    while not done:
        doc = await verify_chunk(kind, after, limit, index, ranges, lookup,
                                 recheck_delay=0.0, window=0.0, now=_later)
        assert doc["checked"] <= 2 * limit, doc
        for status in ("missing", "extra"):  # at most `limit` records of each side
            assert sum(x["status"] == status for x in doc["lines"]) <= limit, doc
        lines += doc["lines"]
        after, done = doc["next"], doc["done"]
    return lines


async def test_a_chunk_is_bounded_by_either_side(stores: Stores) -> None:
    made = [await stores.memory_tasks.create_task(
        AgentTaskCreate(direction=f"m {i}", task_type=TaskType.impl)) for i in range(10)]
    ranges = PostgresRanges(stores.database)
    lookup = MemoryLookup(stores.memory_graph, stores.memory_tasks)
    index = Ordered.of("tasks", await stores.memory_tasks.export_tasks())
    lines = await _walk("tasks", index, ranges, lookup, 3)  # PostgreSQL empty
    assert sorted(x["key"] for x in lines) == sorted(t.id for t in made)
    assert {x["status"] for x in lines} == {"missing"}

    for t in made[:4]:
        await stores.pg_tasks.put_task(t)
    extra = [await stores.pg_tasks.create_task(
        AgentTaskCreate(direction=f"p {i}", task_type=TaskType.impl)) for i in range(7)]
    lines = await _walk("tasks", index, ranges, lookup, 3)
    found = {x["key"]: x["status"] for x in lines}
    assert found == {**{t.id: "missing" for t in made[4:]}, **{t.id: "extra" for t in extra}}
