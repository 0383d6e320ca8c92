"""Verify reports exactly the records PostgreSQL missed, backfill heals them, verify
then reports zero, and a repeated backfill changes nothing (total_cost counted once).
Also the offline scripts: verify from a snapshot file exits 1 above the ceiling,
backfill from it heals, verify exits 0."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from app.migration.backfill import backfill
from app.migration.consistency import check_consistency
from app.stores.snapshot import Snapshot, now, write_snapshot

from tests.migration.conftest import Stores, populate
from tests.migration.test_rollback import run, summary


async def _check(s: Stores, sample: float = 1.0):
    return await check_consistency(s.memory_graph, s.pg_graph, s.memory_tasks, s.pg_tasks,
                                   sample=sample, seed=1, recheck_delay=0)


async def test_verify_reports_exactly_the_missed_records_and_backfill_heals(
    stores: Stores,
) -> None:
    graph, tasks = stores.routed(1)
    await populate(graph, tasks, n=4, tag="ok")
    await stores.database.close()  # PostgreSQL down: these writes are missed
    missed = await populate(graph, tasks, n=2, tag="missed")
    await stores.reconnect()
    report = await _check(stores)
    doc = report.as_dict()
    assert set(doc["kinds"]["tasks"]["missing"]) == {t.id for t in missed["tasks"]}
    assert set(doc["kinds"]["contributions"]["missing"]) == {
        str(c.id) for c in missed["contributions"]}
    assert set(doc["kinds"]["projects"]["missing"]) == {
        f"{p.ecosystem}/{p.name}" for p in missed["projects"]}
    assert set(doc["kinds"]["dependencies"]["missing"]) == {
        f"{d.from_ecosystem}/{d.from_name}/{d.to_ecosystem}/{d.to_name}"
        for d in missed["dependencies"]}
    assert doc["different_count"] == 0 and report.mismatch_ratio > 0.01

    await backfill(stores.memory_graph, stores.memory_tasks, stores.pg_graph, stores.pg_tasks)
    assert (await _check(stores)).mismatches == 0
    exported = await stores.pg_graph.export_graph()
    await backfill(stores.memory_graph, stores.memory_tasks, stores.pg_graph, stores.pg_tasks)
    assert await stores.pg_graph.export_graph() == exported
    for asset in exported.assets:
        assert asset.total_cost == Decimal("3.75")
    sampled = await _check(stores, sample=0.1)
    assert sampled.mismatches == 0 and 0 < sampled.checked < (await _check(stores)).checked


async def test_offline_verify_and_backfill_scripts_from_a_snapshot(
    stores: Stores, tmp_path: Path
) -> None:
    graph, tasks = stores.routed(0)  # memory only: PostgreSQL holds nothing yet
    made = await populate(graph, tasks, n=3)
    snap = tmp_path / "snap.json"
    write_snapshot(snap, Snapshot(taken_at=now(), graph=await stores.memory_graph.export_graph(),
                                  next_project_id=100,
                                  agent_tasks=await stores.memory_tasks.export_tasks()))
    env = {"DATABASE_URL": stores.dsn}
    bad = run("verify_data_consistency.py", "--snapshot", str(snap), "--sample", "1", env=env)
    assert bad.returncode == 1, bad.stderr
    assert summary(bad)["kinds"]["tasks"]["missing_count"] == len(made["tasks"])
    term = tmp_path / "term"
    filled = run("backfill_postgres.py", "--snapshot", str(snap), "--termination-log",
                 str(term), env=env)
    assert filled.returncode == 0, filled.stderr
    assert json.loads(term.read_text())["ok"] is True
    assert APP_PASSWORD_NOT_IN(filled.stdout + filled.stderr, stores.dsn)
    good = run("verify_data_consistency.py", "--snapshot", str(snap), "--sample", "1", env=env)
    assert good.returncode == 0 and summary(good)["mismatches"] == 0
    again = run("backfill_postgres.py", "--snapshot", str(snap), env=env)
    assert again.returncode == 0
    assert summary(run("verify_data_consistency.py", "--snapshot", str(snap), "--sample", "1",
                       env=env))["mismatches"] == 0
    for asset in made["assets"]:
        assert (await stores.pg_graph.get_asset(asset.id)).total_cost == Decimal("3.75")
    down = run("verify_data_consistency.py", "--snapshot", str(snap),
               env={"DATABASE_URL": "postgresql://u:pw@127.0.0.1:9/x"})
    assert down.returncode == 3 and "pw" not in down.stdout + down.stderr


def APP_PASSWORD_NOT_IN(text: str, dsn: str) -> bool:  # noqa: N802
    password = dsn.split("://", 1)[1].split("@", 1)[0].partition(":")[2]
    return not password or password not in text
