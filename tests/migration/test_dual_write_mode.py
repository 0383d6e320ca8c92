"""Phase 1: every write lands in memory and PostgreSQL identically; a PostgreSQL
failure or a slow PostgreSQL never fails a request and is counted."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from app.metrics import DUAL_WRITE_FAILURES
from app.migration.consistency import check_consistency, record_key
from app.migration.router import comparable
from app.models import AgentTaskCreate, AgentTaskUpdate, ProjectUpsert, TaskStatus, TaskType

from tests.migration.conftest import Stores, populate

KINDS = ("projects", "dependencies", "contributors", "assets", "contributions")


def _sorted(kind: str, records: list) -> list:
    return sorted(comparable(records), key=lambda r: str(r))  # noqa: C414


async def _exports(s: Stores) -> tuple[dict, dict]:
    mem, pg = await s.memory_graph.export_graph(), await s.pg_graph.export_graph()
    a = {k: {record_key(k, r): comparable(r) for r in getattr(mem, k)} for k in KINDS}
    b = {k: {record_key(k, r): comparable(r) for r in getattr(pg, k)} for k in KINDS}
    a["tasks"] = {t.id: comparable(t) for t in await s.memory_tasks.export_tasks()}
    b["tasks"] = {t.id: comparable(t) for t in await s.pg_tasks.export_tasks()}
    return a, b


def _failures(store: str, operation: str) -> float:
    return DUAL_WRITE_FAILURES.labels(store, operation)._value.get()


async def test_every_write_lands_in_both_stores_identically(stores: Stores) -> None:
    graph, tasks = stores.routed(1)
    made = await populate(graph, tasks, n=6)
    mem, pg = await _exports(stores)
    assert mem == pg
    assert len(mem["contributions"]) == 12 and len(mem["tasks"]) == 6
    asset = made["assets"][0].id
    assert (await stores.pg_graph.get_asset(asset)).total_cost == 3.75
    report = await check_consistency(stores.memory_graph, stores.pg_graph, stores.memory_tasks,
                                     stores.pg_tasks, sample=1.0, recheck_delay=0)
    assert report.mismatches == 0 and report.checked == sum(len(v) for v in mem.values())
    assert graph.store_status()["dual_write_failures"] == 0


async def test_postgres_failure_never_fails_a_request_and_is_counted(stores: Stores) -> None:
    graph, tasks = stores.routed(1)
    await populate(graph, tasks, n=2, tag="before")
    before = _failures("agent_task", "create_task")
    await stores.database.close()  # PostgreSQL goes away mid-load
    made = await populate(graph, tasks, n=3, tag="during")  # every request still succeeds
    assert len(made["tasks"]) == 3
    assert _failures("agent_task", "create_task") - before == 3
    # 3 upserts x2, 2 deps, 3 contributors, 3 assets, 6 contributions, 3 creates, 3 updates
    assert graph.store_status()["dual_write_failures"] == 6 + 2 + 3 + 3 + 6
    assert tasks.store_status()["dual_write_failures"] == 6
    # the trusted store holds everything
    for t in made["tasks"]:
        assert (await tasks.get_task(t.id)) == t


async def test_second_write_timeout_is_honoured(stores: Stores, pg_database) -> None:
    graph, tasks = stores.routed(1, timeout=0.2)
    locker = await asyncpg.connect(pg_database.owner_dsn)
    try:
        tx = locker.transaction()
        await tx.start()
        await locker.execute("LOCK TABLE agent_tasks IN ACCESS EXCLUSIVE MODE")
        task = await tasks.create_task(AgentTaskCreate(direction="slow", task_type=TaskType.spec))
        assert tasks.store_status()["dual_write_failures"] == 1
        await tx.rollback()
    finally:
        await locker.close()
    assert await stores.memory_tasks.get_task(task.id) == task
    # the next write to the same task copies its newest state, healing the miss
    updated = await tasks.update_task(task.id, AgentTaskUpdate(status=TaskStatus.running))
    assert await stores.pg_tasks.get_task(task.id) == updated


async def test_errors_of_the_trusted_store_propagate_unchanged(stores: Stores) -> None:
    import pytest
    from app.errors import InvalidTransitionError, NotFoundError

    graph, tasks = stores.routed(1)
    t = await tasks.create_task(AgentTaskCreate(direction="x", task_type=TaskType.heal))
    with pytest.raises(InvalidTransitionError):
        await tasks.update_task(t.id, AgentTaskUpdate(status=TaskStatus.completed))
    with pytest.raises(NotFoundError):
        await tasks.update_task("task_0000000000000000", AgentTaskUpdate(output="x"))
    with pytest.raises(NotFoundError, match="Project not found"):
        await graph.add_dependency("pypi", "nope", "pypi", "other")
    await graph.upsert_project("npm", "left", ProjectUpsert())
    assert graph.store_status()["dual_write_failures"] == 0
    assert await stores.pg_tasks.get_task(t.id) == t


async def test_a_cancelled_copy_is_counted_as_a_dual_write_failure(stores: Stores) -> None:
    """A request cancelled between the memory write and the PostgreSQL copy (a graceful
    shutdown cancelling in-flight work) leaves PostgreSQL behind: it must be counted, so
    verify and the alerts see it, even though the cancellation itself propagates."""
    graph, _ = stores.routed(1)
    route = graph.route
    assert route.postgres is not None
    original = route.postgres.put_project
    started = asyncio.Event()

    async def slow_put(project: object) -> None:
        started.set()
        await asyncio.sleep(10)
        await original(project)

    route.postgres.put_project = slow_put  # type: ignore[method-assign,union-attr]
    task = asyncio.create_task(graph.upsert_project("pypi", "cancelled", ProjectUpsert()))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert route.dual_write_failures == 1
    assert await stores.memory_graph.get_project("pypi", "cancelled") is not None
