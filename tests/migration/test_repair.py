"""Behind-the-back divergence, found and repaired, over real HTTP and PostgreSQL.

Rows are deleted, changed and added in PostgreSQL by the owner role, not through the
router (one of each; a contribution and a task among them). The full verify,
interrupted and resumed, writes a report that names exactly those keys and the fields
that differ, with both values; --repair copies memory's records back for the missing
and different keys (total_cost never copied: recounted from the asset's rows); a
re-verify of the report's keys then passes; the extra rows are reported and left.
The full verify runs both ways: compared inside the API, and --compare-here (this
process reads PostgreSQL, the API serves memory's side): the same report either way."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest

from tests.harness.postgres import PgDatabase
from tests.migration.admin_server import AdminServer
from tests.migration.conftest import populate
from tests.migration.test_rollback import run, summary

GHOST_TASK = "task_ffffffffffffffff"


@pytest.mark.parametrize("where", ["in-api", "compare-here"])
async def test_full_verify_names_every_divergent_key_and_repair_mends_them(
    pg_database: PgDatabase, tmp_path: Path, where: str
) -> None:
    with AdminServer(pg_database.app_dsn) as server:  # dual-write: both stores written
        state = server.app.state.migration
        made = server.call(populate(server.app.state.graph, server.app.state.tasks, n=10))
        await asyncio.sleep(state.settings.second_write_timeout + 0.2)  # nothing in flight
        lost_c, changed_c = made["contributions"][0], made["contributions"][5]
        lost_t, changed_t = made["tasks"][1], made["tasks"][2]
        project = made["projects"][3]
        conn = await asyncpg.connect(pg_database.owner_dsn)
        try:
            await conn.execute("DELETE FROM contributions WHERE id = $1", lost_c.id)
            await conn.execute("DELETE FROM agent_tasks WHERE id = $1", lost_t.id)
            await conn.execute("UPDATE contributions SET coherence_score = 0.125 WHERE id = $1",
                               changed_c.id)
            # an older updated_at than memory's (003's trigger would otherwise stamp the
            # change now, and newer-wins would rightly refuse to undo it)
            await conn.execute("UPDATE agent_tasks SET output = 'tampered', updated_at = "
                               "updated_at - interval '1 millisecond' WHERE id = $1",
                               changed_t.id)
            await conn.execute("UPDATE projects SET description = 'tampered', "
                               "description_lower = 'tampered', updated_at = "
                               "updated_at - interval '1 millisecond' WHERE id = $1",
                               project.id)
            old = project.created_at - timedelta(days=1)
            await conn.execute(
                "INSERT INTO projects (id, ecosystem, name, created_at, updated_at) "
                "VALUES (9000, 'npm', 'ghost', $1, $1)", old)
            await conn.execute(
                "INSERT INTO agent_tasks (id, direction, task_type, model, command, created_at)"
                " VALUES ($1, 'ghost', 'impl', 'm', 'c', $2)", GHOST_TASK, old)
        finally:
            await conn.close()
        memory_task = server.call(state.memory_tasks.get_task(changed_t.id))

        report_path = tmp_path / "full.jsonl"
        full = ("verify_data_consistency.py", "--api-url", server.url, "--mode", "full",
                "--chunk", "7", "--report", str(report_path),
                *(("--compare-here",) if where == "compare-here" else ()))
        env = {"DATABASE_URL": pg_database.app_dsn}
        cut = run(*full, "--max-chunks", "4", env=env)  # interrupted: resumable, never a pass
        assert cut.returncode == 1 and "--max-chunks" in summary(cut)["error"], cut.stderr
        found = run(*full, "--resume", env=env)
        assert found.returncode == 1, found.stderr  # 5 of 71 records: above the 1% ceiling
        doc = summary(found)
        assert doc["report"] == str(report_path.resolve()) and doc["passed"] is False
        assert doc["resumed"] is True and doc["chunks"] == doc["chunks_this_job"] + 4
        assert doc["compare_here"] is (where == "compare-here")
        assert (doc["missing_count"], doc["different_count"], doc["extra_count"]) == (2, 3, 2)
        lines = [json.loads(x) for x in report_path.read_text().splitlines()]
        named = {(x["status"], x["kind"], str(x["key"])): sorted(x.get("fields", {}))
                 for x in lines}
        assert named == {
            ("missing", "contributions", str(lost_c.id)): [],
            ("missing", "tasks", lost_t.id): [],
            ("different", "contributions", str(changed_c.id)): ["coherence_score"],
            ("different", "tasks", changed_t.id): ["output", "updated_at"],
            ("different", "projects", str(project.id)): ["description", "updated_at"],
            ("extra", "projects", "9000"): [],
            ("extra", "tasks", GHOST_TASK): [],
        }
        output = next(x for x in lines if x["key"] == changed_t.id)["fields"]["output"]
        assert output == {"memory": memory_task.output, "postgres": "tampered"}

        repaired = run("verify_data_consistency.py", "--api-url", server.url, "--repair",
                       "--keys-from", str(report_path), "--report", str(tmp_path / "r.jsonl"))
        assert repaired.returncode == 0, repaired.stderr
        fix = summary(repaired)["repair"]
        assert fix["passed"] is True and fix["repaired_total"] == 5
        assert (fix["extra_count"], fix["extra_deleted"], fix["extra_remaining"]) == (2, 0, 2)

        again = run("verify_data_consistency.py", "--api-url", server.url,
                    "--keys-from", str(report_path), "--report", str(tmp_path / "again.jsonl"))
        assert again.returncode == 0, again.stderr
        left = summary(again)
        assert (left["missing_count"], left["different_count"], left["extra_count"]) == (0, 0, 2)
        assert left["checked"] == 7

        conn = await asyncpg.connect(pg_database.owner_dsn)
        try:
            assert await conn.fetchval("SELECT count(*) FROM projects WHERE id = 9000") == 1
            assert await conn.fetchval("SELECT count(*) FROM agent_tasks WHERE id = $1",
                                       GHOST_TASK) == 1
            costs = [await conn.fetchval("SELECT total_cost FROM assets WHERE id = $1", c.asset_id)
                     for c in (lost_c, changed_c)]
        finally:
            await conn.close()
        # the deleted row's cost stayed in its asset's total (003 has no delete trigger);
        # the repair counted each touched asset again from its rows: no double count
        for c, cost in zip((lost_c, changed_c), costs, strict=True):
            assert cost == server.call(state.memory_graph.get_asset(c.asset_id)).total_cost
