"""MemoryAgentTaskStore over its two protocols: routing, listings, transitions, the
summary documents and the replica face, on the volatile and the reopened durable store."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import pytest
from app.domain.tasks import DEFAULT_ROUTING, ModelAssignment
from app.errors import InvalidTransitionError, NotFoundError
from app.models import AgentTaskCreate, AgentTaskUpdate, TaskStatus, TaskType
from app.stores.memory.task_store import MemoryAgentTaskStore
from app.stores.ports import AgentTaskReplica, AgentTaskStore

Reopen = Callable[[MemoryAgentTaskStore], Awaitable[MemoryAgentTaskStore]]
Pair = tuple[MemoryAgentTaskStore, Reopen]
S = TaskStatus


@pytest.fixture(params=["volatile", "durable"])
async def store_and_reopen(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[MemoryAgentTaskStore, Reopen]]:
    opened: list[MemoryAgentTaskStore] = []

    async def reopen(store: MemoryAgentTaskStore) -> MemoryAgentTaskStore:
        if request.param == "volatile":
            return store
        await store.close()
        again = await MemoryAgentTaskStore.open(tmp_path, fsync="never")
        opened.append(again)
        return again

    if request.param == "volatile":
        first = MemoryAgentTaskStore()
    else:
        first = await MemoryAgentTaskStore.open(tmp_path, fsync="never")
    opened.append(first)
    yield first, reopen
    for s in opened:
        await s.close()


def create(
    direction: str, task_type: TaskType = TaskType.impl, **context: object
) -> AgentTaskCreate:
    return AgentTaskCreate(direction=direction, task_type=task_type, context=context)


async def test_implements_both_protocols() -> None:
    store = MemoryAgentTaskStore()
    assert isinstance(store, AgentTaskStore)
    assert isinstance(store, AgentTaskReplica)


async def test_create_uses_the_routing_table(store_and_reopen: Pair) -> None:
    store, reopen = store_and_reopen
    task = await store.create_task(create("write it", TaskType.spec))
    assert task.status == S.pending and task.updated_at is None
    assert (task.model, task.tier) == ("claude-opus", "premium")
    assert task.command == "agent-run spec 'write it'"
    custom = await store.create_task(
        create("x", TaskType.heal, command_override="echo hi", model_override="m1")
    )
    assert (custom.command, custom.model) == ("echo hi", "m1")
    store = await reopen(store)
    assert await store.get_task(task.id) == task
    assert await store.get_task("task_0000000000000000") is None
    routed = MemoryAgentTaskStore(
        {**DEFAULT_ROUTING, TaskType.test: ModelAssignment(model="tiny", tier="t", command="run")}
    )
    assert (await routed.create_task(create("t", TaskType.test))).model == "tiny"


async def test_listing_filters_pages_and_counts(store_and_reopen: Pair) -> None:
    store, reopen = store_and_reopen
    ids = [
        (await store.create_task(create(f"t{i}", TaskType(["spec", "impl"][i % 2])))).id
        for i in range(6)
    ]
    await store.update_task(ids[0], AgentTaskUpdate(status=S.running))
    store = await reopen(store)
    tasks, total = await store.list_tasks()
    assert total == 6 and [t.id for t in tasks] == ids[::-1]
    page, total = await store.list_tasks(limit=2, offset=2)
    assert total == 6 and [t.id for t in page] == [ids[3], ids[2]]
    specs, total = await store.list_tasks(task_type=TaskType.spec)
    assert total == 3 and [t.id for t in specs] == [ids[4], ids[2], ids[0]]
    pending_specs, total = await store.list_tasks(status=S.pending, task_type=TaskType.spec)
    assert total == 2 and [t.id for t in pending_specs] == [ids[4], ids[2]]
    running, total = await store.list_tasks(status=S.running)
    assert total == 1 and running[0].id == ids[0]
    beyond, total = await store.list_tasks(offset=10)
    assert beyond == [] and total == 6


async def test_transitions(store_and_reopen: Pair) -> None:
    store, reopen = store_and_reopen
    task = await store.create_task(create("go"))
    with pytest.raises(NotFoundError, match="Task not found"):
        await store.update_task("task_ffffffffffffffff", AgentTaskUpdate(progress_pct=1))
    with pytest.raises(InvalidTransitionError, match="'pending' to 'completed'"):
        await store.update_task(task.id, AgentTaskUpdate(status=S.completed))
    running = await store.update_task(task.id, AgentTaskUpdate(status=S.running))
    assert running.started_at is not None and running.updated_at is not None
    asking = await store.update_task(
        task.id, AgentTaskUpdate(status=S.needs_decision, decision_prompt="which?")
    )
    store = await reopen(store)
    resumed = await store.update_task(task.id, AgentTaskUpdate(decision="this"))
    assert resumed.status == S.running and resumed.started_at == running.started_at
    assert resumed.updated_at is not None and asking.updated_at is not None
    assert resumed.updated_at > asking.updated_at
    done = await store.update_task(task.id, AgentTaskUpdate(status=S.completed, output="ok"))
    with pytest.raises(InvalidTransitionError):
        await store.update_task(task.id, AgentTaskUpdate(status=S.running))
    store = await reopen(store)
    assert await store.get_task(task.id) == done


async def test_summaries(store_and_reopen: Pair) -> None:
    store, reopen = store_and_reopen
    a = await store.create_task(create("a", TaskType.spec))
    b = await store.create_task(create("b", TaskType.review))
    c = await store.create_task(create("c", TaskType.impl))
    await store.create_task(create("d", TaskType.test))
    await store.update_task(a.id, AgentTaskUpdate(status=S.failed))
    await store.update_task(b.id, AgentTaskUpdate(status=S.running))
    await store.update_task(b.id, AgentTaskUpdate(status=S.needs_decision))
    await store.update_task(c.id, AgentTaskUpdate(status=S.running))
    await store.update_task(c.id, AgentTaskUpdate(status=S.completed, output="result"))
    store = await reopen(store)

    attention, total = await store.get_attention_tasks()
    assert total == 2 and [t.id for t in attention] == [b.id, a.id]
    count = await store.get_task_count()
    assert count == {
        "total": 4,
        "by_status": {"pending": 1, "running": 0, "completed": 1, "failed": 1, "needs_decision": 1},
    }
    review = await store.get_review_summary()
    assert [t["id"] for t in review["needs_attention"]] == [b.id, a.id]
    usage = await store.get_usage_summary()
    assert usage["by_model"]["claude-opus"]["count"] == 2
    assert usage["by_model"]["claude-sonnet"]["by_status"] == {"completed": 1, "pending": 1}
    pipeline = await store.get_pipeline_status()
    assert [t["id"] for t in pipeline["recent_completed"]] == [c.id, b.id, a.id]
    assert pipeline["latest_response"]["id"] == c.id
    assert pipeline["running_by_phase"] == {"spec": 0, "impl": 0, "test": 1, "review": 0}
    assert len(pipeline["pending"]) == 1 and pipeline["running"] == []


async def test_put_newer_wins_and_import_export(store_and_reopen: Pair) -> None:
    store, reopen = store_and_reopen
    task = await store.create_task(create("x"))
    moved = await store.update_task(task.id, AgentTaskUpdate(status=S.running))
    await store.put_task(task)  # older (updated_at None < moved's): ignored
    assert await store.get_task(task.id) == moved
    started = moved.updated_at
    assert started is not None
    newer = moved.model_copy(
        update={"status": S.completed, "updated_at": started + timedelta(seconds=1)}
    )
    await store.put_task(newer)
    store = await reopen(store)
    assert await store.get_task(task.id) == newer
    assert (await store.list_tasks(status=S.completed))[1] == 1
    assert (await store.list_tasks(status=S.running))[1] == 0

    exported = await store.export_tasks()
    copy = MemoryAgentTaskStore()
    stats = await copy.import_tasks(exported)
    assert stats.written == {"agent_tasks": 1}
    stats = await copy.import_tasks(exported)
    assert stats.skipped == {"agent_tasks": 1} and stats.written == {"agent_tasks": 0}
    assert await copy.export_tasks() == exported
