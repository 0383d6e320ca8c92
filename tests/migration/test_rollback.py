"""Rollback drills from phases 1, 2 and 3 at the store level, each ending with every
record present in the store that serves reads; the rollback script against an env
file (and its dry run); the scripts' --help and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from app.migration.rehydrate import rehydrate
from app.models import ProjectUpsert

from tests.harness.postgres import PgDatabase, postgres_stores
from tests.migration.admin_server import TOKEN, AdminServer
from tests.migration.conftest import Stores, populate

SCRIPTS = Path(__file__).resolve().parents[2] / "api" / "scripts"


async def _all_readable(graph: Any, tasks: Any, made: dict[str, list[Any]]) -> None:
    for p in made["projects"]:
        got = await graph.get_project(p.ecosystem, p.name)
        assert got is not None and got.id == p.id
    for c in made["contributors"]:
        assert await graph.get_contributor(c.id) == c
    for a in made["assets"]:
        got = await graph.get_asset(a.id)
        assert got is not None and got.total_cost == sum(
            x.cost_amount for x in made["contributions"] if x.asset_id == a.id
        )
    for c in made["contributions"]:
        assert await graph.get_contribution(c.id) == c
    for t in made["tasks"]:
        assert await tasks.get_task(t.id) == t


async def test_rollback_from_phase_1(stores: Stores) -> None:
    graph, tasks = stores.routed(1)
    made = await populate(graph, tasks, n=4)
    graph, tasks = stores.routed(0)  # DUAL_WRITE_MODE=false
    await _all_readable(graph, tasks, made)
    assert graph.store_status()["write_target"] == "in-memory"


async def test_rollback_from_phase_2(stores: Stores) -> None:
    graph, tasks = stores.routed(2, read_percent=50)
    made = await populate(graph, tasks, n=4)
    await _all_readable(graph, tasks, made)
    assert graph.store_status()["reads_served"]["postgres"] > 0
    graph, tasks = stores.routed(1, read_percent=0)  # READ_FROM_POSTGRES_PERCENT=0
    await _all_readable(graph, tasks, made)
    assert graph.store_status()["reads_served"]["postgres"] == 0


async def test_rollback_from_phase_3_keeps_writes_made_while_postgres_was_primary(
    stores: Stores,
) -> None:
    graph, tasks = stores.routed(1)
    before = await populate(graph, tasks, n=3, tag="dual")
    graph, tasks = stores.routed(3)
    during = await populate(graph, tasks, n=3, tag="primary")  # memory not written
    assert await stores.memory_tasks.get_task(during["tasks"][0].id) is None
    report = await rehydrate(stores.pg_graph, stores.pg_tasks, stores.memory_graph,
                             stores.memory_tasks)
    assert report.records > 0
    graph, tasks = stores.routed(1, read_percent=0)  # IN_MEMORY_WRITES=true, reads memory
    await _all_readable(graph, tasks, before)
    await _all_readable(graph, tasks, during)
    assert graph.store_status()["reads_served"]["postgres"] == 0
    fresh = await graph.upsert_project("pypi", "after-rollback", ProjectUpsert())
    ids = {p.id for p in before["projects"] + during["projects"]}
    assert fresh.id not in ids  # memory assigns ids above the ones PostgreSQL handed out
    held = await stores.memory_graph.export_graph()
    await rehydrate(stores.pg_graph, stores.pg_tasks, stores.memory_graph, stores.memory_tasks)
    assert await stores.memory_graph.export_graph() == held  # a repeated rehydrate is a no-op


# ---------------------------------------------------------------- scripts


def run(script: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "ADMIN_TOKEN": TOKEN, **(env or {})}
    return subprocess.run([sys.executable, str(SCRIPTS / script), *args, "--quiet"],
                          capture_output=True, text=True, env=full_env, timeout=120)


def summary(result: subprocess.CompletedProcess) -> dict[str, Any]:
    start = result.stdout.index("{")
    return json.loads(result.stdout[start:])  # type: ignore[no-any-return]


ENV_FILE = """# api settings
DATABASE_URL=postgresql://app:secret@db/app
DUAL_WRITE_MODE=true
READ_FROM_POSTGRES_PERCENT=40
export IN_MEMORY_WRITES=false
GRAPH_STORE_READ_FROM_POSTGRES_PERCENT=70
UNRELATED=keep me
"""


def test_scripts_help_and_usage_exit_codes() -> None:
    for script in ("backfill_postgres.py", "verify_data_consistency.py",
                   "rollback_postgres_migration.py"):
        ok = run(script, "--help")
        assert ok.returncode == 0 and "exit codes" in ok.stdout
        assert run(script).returncode == 2
    no_token = run("verify_data_consistency.py", "--api-url", "http://127.0.0.1:9",
                   env={"ADMIN_TOKEN": ""})
    assert no_token.returncode == 2 and summary(no_token)["exit_code"] == 2
    unreachable = run("verify_data_consistency.py", "--api-url", "http://127.0.0.1:9")
    assert unreachable.returncode == 3


def test_rollback_script_against_an_env_file(tmp_path: Path) -> None:
    env_file = tmp_path / "api.env"
    env_file.write_text(ENV_FILE)
    dry = run("rollback_postgres_migration.py", "--from-phase", "2", "--env-file",
              str(env_file), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert env_file.read_text() == ENV_FILE
    assert summary(dry)["env"] == {"READ_FROM_POSTGRES_PERCENT": "0",
                                   "GRAPH_STORE_READ_FROM_POSTGRES_PERCENT": "0"}
    done = run("rollback_postgres_migration.py", "--from-phase", "2", "--env-file",
               str(env_file))
    assert done.returncode == 0, done.stderr
    assert env_file.read_text() == ENV_FILE.replace("PERCENT=40", "PERCENT=0").replace(
        "PERCENT=70", "PERCENT=0")
    one = run("rollback_postgres_migration.py", "--from-phase", "1", "--env-file",
              str(env_file), "--termination-log", str(tmp_path / "term"))
    assert one.returncode == 0
    assert "DUAL_WRITE_MODE=false\n" in env_file.read_text()
    assert "UNRELATED=keep me" in env_file.read_text()
    assert json.loads((tmp_path / "term").read_text())["ok"] is True
    assert "secret" not in one.stdout + one.stderr
    text = env_file.read_text()
    assert "READ_FROM_POSTGRES_PERCENT=0\n" in text and "REHYDRATE_ON_START=false\n" in text
    three = run("rollback_postgres_migration.py", "--from-phase", "3", "--env-file",
                str(env_file))
    assert three.returncode == 0, three.stderr
    assert summary(three)["env"] == {
        "IN_MEMORY_WRITES": "true",
        "READ_FROM_POSTGRES_PERCENT": "0",
        "GRAPH_STORE_READ_FROM_POSTGRES_PERCENT": "0",
        "REHYDRATE_ON_START": "true",
    }
    assert "REHYDRATE_ON_START=true\n" in env_file.read_text()


async def test_phase_3_rollback_script_rehydrates_before_changing_anything(
    pg_database: PgDatabase, tmp_path: Path,
) -> None:
    env_file = tmp_path / "api.env"
    env_file.write_text(ENV_FILE)
    pg_graph, pg_tasks, database = await postgres_stores(pg_database.app_dsn)
    try:
        written = await populate(pg_graph, pg_tasks, n=2, tag="pg")  # written while primary
    finally:
        await database.close()
    failed = run("rollback_postgres_migration.py", "--from-phase", "3", "--env-file",
                 str(env_file), "--api-url", "http://127.0.0.1:9")
    assert failed.returncode == 3 and env_file.read_text() == ENV_FILE
    with AdminServer(pg_database.app_dsn) as server:
        done = run("rollback_postgres_migration.py", "--from-phase", "3", "--env-file",
                   str(env_file), "--api-url", server.url)
        assert done.returncode == 0, done.stderr
        assert summary(done)["rehydrate"]["ok"] is True
        async with httpx.AsyncClient() as client:
            answer = await client.get(f"{server.url}/api/admin/snapshot",
                                      headers={"Authorization": f"Bearer {TOKEN}"})
        snap = answer.json()
    text = env_file.read_text()
    assert "export IN_MEMORY_WRITES=true" in text and "READ_FROM_POSTGRES_PERCENT=0" in text
    assert {t["id"] for t in snap["agent_tasks"]} == {t.id for t in written["tasks"]}
    assert len(snap["graph"]["contributions"]) == len(written["contributions"])
