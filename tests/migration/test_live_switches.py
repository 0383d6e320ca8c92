"""Live switches at the store level, on a real PostgreSQL: switching under concurrent
writes loses nothing and leaves nothing in one store only (the full consistency check,
both ways, after every kind of switch including rollbacks from PostgreSQL-primary); a
change of trusted store waits for the writes in flight, holds new ones, and gives up
cleanly; writes made while memory is rebuilt reach memory; a copy that failed under
dual-write is healed on entering PostgreSQL-primary; the settings' rules refuse the same
sets live as at start-up."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from app.metrics import REGISTRY
from app.migration import switches
from app.migration.consistency import check_consistency
from app.migration.switch_models import SwitchFailed, SwitchRejected, SwitchRequest
from app.migration.switches import SwitchBoard
from app.migration.task_router import MigratingAgentTaskStore
from app.models import AgentTaskCreate, ContributorCreate, ProjectUpsert, TaskType
from app.settings import Settings

from tests.harness.postgres import PgDatabase
from tests.migration.conftest import Stores, mode, populate
from tests.migration.test_write_overlap import writes_blocked
from tests.migration.workload import Ledger, assert_ledger_in, reader, writer

PHASE_1 = {"dual_write": True, "memory_writes": True, "read_percent": 0}
PRIMARY = {"dual_write": True, "memory_writes": False, "read_percent": 100}
BACK = {"dual_write": True, "memory_writes": True}  # memory trusted again, reads as given


def board_for(stores: Stores, phase: int = 1, **kw: Any) -> tuple[Any, Any, SwitchBoard]:
    graph, tasks = stores.routed(phase, **kw)
    return graph, tasks, SwitchBoard({"graph": graph.route, "agent_task": tasks.route})


def req(**body: Any) -> SwitchRequest:
    return SwitchRequest.model_validate(body)


async def assert_consistent_both_ways(stores: Stores) -> None:
    """Every record of memory is in PostgreSQL with the same values, and the other way."""
    for ours, theirs in (((stores.memory_graph, stores.memory_tasks),
                          (stores.pg_graph, stores.pg_tasks)),
                         ((stores.pg_graph, stores.pg_tasks),
                          (stores.memory_graph, stores.memory_tasks))):
        report = await check_consistency(ours[0], theirs[0], ours[1], theirs[1], sample=1.0,
                                         recheck_delay=0.05, record_metrics=False)
        doc = report.as_dict()
        assert report.checked > 0
        assert (doc["missing_count"], doc["different_count"], doc["in_flight_count"]) == (
            0, 0, 0), doc


async def _writes_happened(ledger: Ledger, n: int) -> None:
    target = ledger.writes + n
    for _ in range(2000):
        if ledger.writes >= target:
            return
        await asyncio.sleep(0.005)
    raise AssertionError("the writers stopped")


SEQUENCE = [
    {"all": {"read_percent": 30}},
    {"graph": {"read_percent": 70}, "agent_task": {"read_percent": 10}},
    {"all": PRIMARY},                                   # enter PostgresPrimary
    {"all": {**BACK, "read_percent": 100}},             # roll back, reads stay on PostgreSQL
    {"all": {"read_percent": 0}},                       # and back to memory
    {"graph": PRIMARY},                                 # one store primary, the other not
    {"agent_task": PRIMARY},
    {"all": {**BACK, "read_percent": 0}},               # roll both back at once
    {"all": {"shadow_read_percent": 50, "read_percent": 50}},
    {"all": PRIMARY},
    {"graph": {**BACK, "read_percent": 20}, "agent_task": {**BACK, "read_percent": 0}},
    {"all": {**PHASE_1, "shadow_read_percent": 0}},
]


async def test_switching_under_concurrent_writes_loses_nothing(stores: Stores) -> None:
    graph, tasks, board = board_for(stores, 1, timeout=5.0)
    await populate(graph, tasks, n=3, tag="before")
    ledger, stop = Ledger(), asyncio.Event()
    workers = [asyncio.create_task(writer(graph, tasks, f"w{n}", ledger, stop))
               for n in range(4)]
    workers += [asyncio.create_task(reader(graph, tasks, ledger, stop)) for _ in range(2)]
    changes: list[str] = []
    try:
        for _ in range(2):
            for body in SEQUENCE:
                await _writes_happened(ledger, 40)  # some writes under every mode
                result = await board.apply(req(**body))
                changes += [f"{s.store}:{s.change}" for s in result.steps]
                assert graph.route.door.in_flight >= 0
    finally:
        stop.set()
        await asyncio.gather(*workers)
    await graph.drain()
    await tasks.drain()
    assert ledger.misses == []
    assert {"graph:leave_postgres", "agent_task:leave_postgres", "graph:enter_postgres",
            "agent_task:enter_postgres", "graph:swap"} <= set(changes)
    assert board.revision == 1 + 2 * len(SEQUENCE)
    assert graph.store_status()["dual_write_failures"] == 0
    assert tasks.store_status()["dual_write_failures"] == 0
    assert graph.store_status()["write_target"] == "dual"
    await assert_consistent_both_ways(stores)
    await assert_ledger_in(stores.memory_graph, stores.memory_tasks, ledger)
    await assert_ledger_in(stores.pg_graph, stores.pg_tasks, ledger)


class PausedCreates:
    """The real memory task store, except that create_task waits for `go` before it
    writes: a write held in flight at will (nothing else here can hold one without also
    holding the backfill that precedes the swap)."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.go = inner, asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def create_task(self, data: AgentTaskCreate) -> Any:
        await self.go.wait()
        return await self.inner.create_task(data)


def paused_tasks(stores: Stores) -> tuple[Any, PausedCreates, SwitchBoard]:
    paused = PausedCreates(stores.memory_tasks)
    graph, _ = stores.routed(1)
    tasks = MigratingAgentTaskStore(paused, stores.pg_tasks, mode("agent_task", 1))  # type: ignore[arg-type]
    stores.routers.append(tasks)
    return tasks, paused, SwitchBoard({"graph": graph.route, "agent_task": tasks.route})


async def test_a_change_of_trusted_store_waits_for_the_write_in_flight(stores: Stores) -> None:
    tasks, paused, board = paused_tasks(stores)
    first = asyncio.create_task(
        tasks.create_task(AgentTaskCreate(direction="in flight", task_type=TaskType.impl)))
    await asyncio.sleep(0.01)
    assert tasks.route.door.in_flight == 1
    switching = asyncio.create_task(board.apply(req(agent_task=PRIMARY, drain_timeout=10)))
    for _ in range(1000):
        if tasks.route.door.closed:
            break
        await asyncio.sleep(0.005)
    second = asyncio.create_task(
        tasks.create_task(AgentTaskCreate(direction="held", task_type=TaskType.impl)))
    await asyncio.sleep(0.1)
    assert not switching.done() and not second.done()
    assert tasks.route.door.in_flight == 1  # the second write waits at the door
    assert tasks.route.mode.write_target == "dual"
    paused.go.set()
    done, result, held = await first, await switching, await second
    assert result.routing["agent_task"].trusted == "postgres"
    assert result.steps[0].writes_held_seconds >= 0.1
    assert await stores.pg_tasks.get_task(done.id) == done  # finished under dual-write
    assert await stores.memory_tasks.get_task(done.id) == done
    assert await stores.pg_tasks.get_task(held.id) == held  # ran under PostgresPrimary
    assert await stores.memory_tasks.get_task(held.id) is None
    assert board.routes["graph"].mode.write_target == "dual"  # the other store did not move


async def test_a_drain_that_does_not_finish_changes_nothing(stores: Stores) -> None:
    tasks, paused, board = paused_tasks(stores)
    stuck = asyncio.create_task(
        tasks.create_task(AgentTaskCreate(direction="stuck", task_type=TaskType.impl)))
    await asyncio.sleep(0.01)
    with pytest.raises(SwitchFailed) as failed:
        await board.apply(req(agent_task=PRIMARY, drain_timeout=0.2, desired_revision="x"))
    assert failed.value.status_code == 503
    assert "agent_task store: 1 of 1 writes still in flight" in failed.value.detail
    assert "unchanged" in failed.value.detail
    assert tasks.route.mode.write_target == "dual" and not tasks.route.door.closed
    doc = board.document()
    assert doc.revision == 1 and doc.desired_revision is None
    assert doc.last_error == failed.value.detail
    labels = {"store": "agent_task"}
    assert REGISTRY.get_sample_value("storemigration_memory_writes_configured", labels) == 0
    assert REGISTRY.get_sample_value("storemigration_memory_writes_actual", labels) == 1
    assert REGISTRY.get_sample_value("storemigration_read_percent_configured", labels) == 100
    assert REGISTRY.get_sample_value("storemigration_read_percent_actual", labels) == 0
    after = asyncio.create_task(
        tasks.create_task(AgentTaskCreate(direction="after", task_type=TaskType.impl)))
    await asyncio.sleep(0.01)
    assert tasks.route.door.in_flight == 2  # the door is open again
    paused.go.set()
    await stuck
    await after
    result = await board.apply(req(agent_task=PRIMARY, desired_revision="x"))
    assert result.changed and result.revision == 2 and result.last_error is None
    assert result.desired_revision == "x"
    assert REGISTRY.get_sample_value("storemigration_memory_writes_actual", labels) == 0
    assert REGISTRY.get_sample_value("storemigration_switch_revision") == 2


async def test_writes_made_while_memory_is_rebuilt_reach_memory(
    stores: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    graph, tasks, board = board_for(stores, 1)
    await populate(graph, tasks, n=3, tag="dual")
    await board.apply(req(all=PRIMARY))
    await populate(graph, tasks, n=3, tag="primary")  # PostgreSQL only
    assert await stores.memory_graph.get_project("pypi", "primary-proj-0") is None
    during: dict[str, Any] = {}
    real_rehydrate = switches.rehydrate

    async def rehydrate_then_write(*args: Any) -> Any:
        """The real rehydrate, then writes it cannot have exported: only the mirror can
        bring these into memory."""
        report = await real_rehydrate(*args)
        assert graph.route.mode.mirror_to_memory or tasks.route.mode.mirror_to_memory
        during.update(await populate(graph, tasks, n=2, tag=f"rebuild{len(during)}"))
        return report

    monkeypatch.setattr(switches, "rehydrate", rehydrate_then_write)
    result = await board.apply(req(all={**BACK, "read_percent": 0}))
    assert [s.change for s in result.steps] == ["leave_postgres", "leave_postgres"]
    assert all(s.mirrored and s.rehydrated for s in result.steps), result.steps
    assert not graph.route.mode.mirror_to_memory and graph.route.mode.write_target == "dual"
    await assert_consistent_both_ways(stores)
    highest = await stores.pg_graph.max_project_id()
    fresh = await graph.upsert_project("pypi", "after-rollback", ProjectUpsert())
    assert fresh.id > highest  # memory assigns ids above the ones PostgreSQL handed out


async def test_entering_postgres_primary_heals_a_copy_that_failed(
    stores: Stores, pg_database: PgDatabase
) -> None:
    graph, tasks, board = board_for(stores, 1, timeout=0.2)
    async with writes_blocked(pg_database.owner_dsn, "projects"):
        lost = await graph.upsert_project("pypi", "copy-timed-out", ProjectUpsert(version="9"))
    assert graph.store_status()["dual_write_failures"] == 1
    assert await stores.pg_graph.get_project("pypi", "copy-timed-out") is None
    result = await board.apply(req(graph=PRIMARY))
    assert result.steps[0].backfilled and result.steps[0].backfilled >= 1
    assert await graph.get_project("pypi", "copy-timed-out") == lost  # from PostgreSQL now


async def test_applying_the_same_set_twice_changes_nothing(stores: Stores) -> None:
    graph, tasks, board = board_for(stores, 1)
    first = await board.apply(req(all={"read_percent": 40}, desired_revision="cm-7"))
    again = await board.apply(req(all={"read_percent": 40}, desired_revision="cm-7"))
    assert first.changed and not again.changed and again.steps == []
    assert first.revision == again.revision == 2
    assert first.fingerprint == again.fingerprint and again.desired_revision == "cm-7"
    assert again.stores["graph"].read_percent == 40
    other_graph, other_tasks, other = board_for(stores, 2, read_percent=40)
    assert other.document().fingerprint == first.fingerprint  # same switches, same print
    assert other.document().revision == 1
    await board.apply(req(graph={"read_percent": 41}))
    assert board.document().fingerprint != first.fingerprint


@pytest.mark.parametrize(
    ("phase", "body", "loc", "env"),
    [
        (0, {"all": {"read_percent": 30}}, ["body", "all", "read_percent"],
         {"read_from_postgres_percent": 30}),
        (1, {"graph": {"memory_writes": False}}, ["body", "graph", "memory_writes"],
         {"dual_write_mode": True, "graph_store_in_memory_writes": False}),
        (2, {"agent_task": {"dual_write": False}}, ["body", "agent_task", "read_percent"],
         {"read_from_postgres_percent": 50, "agent_task_store_dual_write_mode": False,
          "dual_write_mode": True}),
        (0, {"all": {"memory_writes": False}}, ["body", "all", "memory_writes"],
         {"in_memory_writes": False}),
    ],
)
async def test_live_sets_obey_the_rules_the_environment_obeys(
    stores: Stores, phase: int, body: dict[str, Any], loc: list[str], env: dict[str, Any]
) -> None:
    graph, tasks, board = board_for(stores, phase)
    with pytest.raises(SwitchRejected) as rejected:
        await board.apply(req(**body))
    assert rejected.value.errors[0]["loc"] == loc
    with pytest.raises(ValueError) as at_start:
        Settings(database_url="postgresql://app@127.0.0.1/app", **env)
    assert rejected.value.errors[0]["msg"].split(": ", 1)[1] in str(at_start.value)
    assert board.document().revision == 1


def test_without_postgres_no_set_may_ask_for_it() -> None:
    from app.migration.graph_router import MigratingGraphStore
    from app.stores.memory.graph_store import MemoryGraphStore

    settings = Settings()
    graph = MigratingGraphStore(MemoryGraphStore(), None, settings.store_mode("graph"))
    board = SwitchBoard({"graph": graph.route})
    with pytest.raises(SwitchRejected) as rejected:
        board.resolve(req(graph={"dual_write": True}))
    assert rejected.value.errors[0]["loc"] == ["body", "graph", "dual_write"]
    assert "DATABASE_URL must be set" in rejected.value.errors[0]["msg"]
    with pytest.raises(SwitchRejected, match="does not route the agent_task store"):
        board.resolve(req(agent_task={"read_percent": 0}))


async def test_a_rebuild_that_memory_refuses_part_of_is_refused(stores: Stores) -> None:
    graph, tasks, board = board_for(stores, 1)
    await board.apply(req(all=PRIMARY))
    await graph.create_contributor(ContributorCreate(name="pg", email="same@example.com"))
    # memory holds another contributor with that address: the two stores disagree
    await stores.memory_graph.create_contributor(
        ContributorCreate(name="memory", email="SAME@example.com"))
    with pytest.raises(SwitchFailed) as failed:
        await board.apply(req(all={**BACK, "read_percent": 0}))
    assert failed.value.status_code == 409
    assert "graph store: memory refused 1 records (first: contributors:" in failed.value.detail
    assert "stays PostgreSQL-primary" in failed.value.detail
    assert graph.route.mode.write_target == "postgres" and not graph.route.mode.mirror_to_memory
    assert tasks.route.mode.write_target == "postgres"  # stores after the failed one wait
