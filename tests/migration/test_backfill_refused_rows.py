"""A record PostgreSQL refuses (a NUL character from a journal written before bodies
rejected it) no longer fails a whole backfill or rehydrate chunk: the chunk is split
down to the refused rows, which are skipped and reported by id; the rest is copied."""

from __future__ import annotations

import uuid

from app.migration.backfill import backfill
from app.models import AgentTaskCreate, ContributorCreate, TaskType

from tests.migration.conftest import Stores


async def test_backfill_skips_and_reports_rows_postgres_refuses(stores: Stores) -> None:
    good = [await stores.memory_tasks.create_task(
        AgentTaskCreate(direction=f"ok {i}", task_type=TaskType.impl)) for i in range(9)]
    bad = good[4].model_copy(update={"id": "task_00000000000000aa",
                                     "direction": "pasted\x00binary"})
    await stores.memory_tasks.put_task(bad)
    person = await stores.memory_graph.create_contributor(ContributorCreate(name="fine"))
    odd = person.model_copy(update={"id": uuid.UUID(int=0xBB), "name": "nul\x00name"})
    await stores.memory_graph.put_contributor(odd)

    report = await backfill(stores.memory_graph, stores.memory_tasks, stores.pg_graph,
                            stores.pg_tasks, chunk=4)
    doc = report.as_dict()
    assert doc["rejected"] == {"tasks": 1, "contributors": 1}
    assert doc["rejected_ids"] == {"tasks": [bad.id], "contributors": [str(odd.id)]}
    assert doc["rejected_total"] == 2
    assert (await stores.pg_tasks.get_task_count())["total"] == 9
    for t in good:
        assert await stores.pg_tasks.get_task(t.id) == t
    assert await stores.pg_graph.get_contributor(person.id) == person
    again = await backfill(stores.memory_graph, stores.memory_tasks, stores.pg_graph,
                           stores.pg_tasks)
    assert again.as_dict()["rejected_total"] == 2 and again.as_dict()["written_total"] == 0

