"""The promotion verify cannot pass with a record lost: a mismatch still in flight
(memory changed it after PostgreSQL's export began) is reported apart, not as missing;
the ratio is reported per kind as well as pooled; and --max-missing / max_missing
fails a check that a pooled ratio under its ceiling would pass."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from app.migration.backfill import backfill
from app.migration.consistency import check_consistency
from app.models import AgentTaskCreate, TaskType
from app.stores.memory.task_store import MemoryAgentTaskStore
from app.stores.snapshot import Snapshot, now, write_snapshot

from tests.migration.admin_server import TOKEN, AdminServer
from tests.migration.conftest import Stores
from tests.migration.test_rollback import run, summary

HOUR_AGO = datetime.now(UTC) - timedelta(hours=1)


async def _lost_long_ago(stores: Stores, task_id: str) -> str:
    """A task memory holds whose copy was lost an hour ago."""
    scratch = await MemoryAgentTaskStore().create_task(
        AgentTaskCreate(direction="lost", task_type=TaskType.impl))
    await stores.memory_tasks.put_task(scratch.model_copy(
        update={"id": task_id, "created_at": HOUR_AGO, "updated_at": HOUR_AGO}))
    return task_id


async def _tasks(stores: Stores, n: int) -> list[str]:
    made = [await stores.memory_tasks.create_task(
        AgentTaskCreate(direction=f"t{i}", task_type=TaskType.impl)) for i in range(n)]
    return [t.id for t in made]


async def test_mismatch_changed_after_the_export_began_is_in_flight(stores: Stores) -> None:
    old = await _lost_long_ago(stores, "task_0000000000000001")
    ids = await _tasks(stores, 3)  # written just now, copies not landed yet: in flight
    report = await check_consistency(None, None, stores.memory_tasks, stores.pg_tasks,
                                     sample=1.0, recheck_delay=0, in_flight_window=60,
                                     record_metrics=False)
    doc = report.as_dict()["kinds"]["tasks"]
    assert doc["missing"] == [old]
    assert sorted(doc["in_flight"]) == sorted(ids) and doc["in_flight_count"] == 3
    assert report.mismatches == 1 and report.as_dict()["in_flight_count"] == 3


async def test_ratio_per_kind_and_max_missing(stores: Stores) -> None:
    await _tasks(stores, 200)
    await backfill(None, stores.memory_tasks, None, stores.pg_tasks)
    await _lost_long_ago(stores, "task_0000000000000003")
    report = await check_consistency(stores.memory_graph, stores.pg_graph, stores.memory_tasks,
                                     stores.pg_tasks, sample=1.0, recheck_delay=0,
                                     record_metrics=False)
    doc = report.as_dict()
    assert doc["mismatch_ratio_by_kind"]["tasks"] == round(1 / 201, 6)
    assert doc["mismatch_ratio_by_kind"]["projects"] == 0
    assert report.passed(0.01) and not report.passed(0.01, max_missing=0)


async def test_admin_endpoint_and_script_enforce_max_missing(
    stores: Stores, tmp_path: Path
) -> None:
    await _tasks(stores, 150)
    await backfill(stores.memory_graph, stores.memory_tasks, stores.pg_graph, stores.pg_tasks)
    await _lost_long_ago(stores, "task_0000000000000002")
    snap = tmp_path / "snap.json"
    write_snapshot(snap, Snapshot(taken_at=now(), graph=await stores.memory_graph.export_graph(),
                                  next_project_id=1,
                                  agent_tasks=await stores.memory_tasks.export_tasks()))
    env = {"DATABASE_URL": stores.dsn}
    loose = run("verify_data_consistency.py", "--snapshot", str(snap), "--sample", "1", env=env)
    assert loose.returncode == 0 and summary(loose)["missing_count"] == 1
    strict = run("verify_data_consistency.py", "--snapshot", str(snap), "--sample", "1.0",
                 "--max-missing", "0", env=env)
    assert strict.returncode == 1, strict.stderr
    out = summary(strict)
    assert out["passed"] is False and out["missing_count"] == 1 and out["max_missing"] == 0
    assert "more than 0 missing" in strict.stderr

    with AdminServer(stores.dsn) as server:
        async with httpx.AsyncClient(base_url=server.url,
                                     headers={"Authorization": f"Bearer {TOKEN}"}) as client:
            # the server's memory is its own (empty) store; PostgreSQL holds all: nothing missing
            ok = await client.post("/api/admin/consistency-check",
                                   params={"sample": 1, "max_missing": 0})
            assert ok.status_code == 200 and ok.json()["passed"] is True
            assert ok.json()["max_missing"] == 0 and "mismatch_ratio_by_kind" in ok.json()
            bad = await client.post("/api/admin/consistency-check",
                                    params={"sample": 1, "max_missing": -1})
            assert bad.status_code == 422
