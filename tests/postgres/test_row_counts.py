"""Migration 006's counters: count_projects and every task total read trigger-maintained
counter rows, which must equal count(*) after any write the app role (or the owner) can
make: inserts, upserts that insert nothing, deletes with cascades, bulk imports,
status changes, concurrent writers, rolled-back transactions, TRUNCATE."""

from __future__ import annotations

import asyncio
import shutil
from datetime import UTC, datetime, timedelta
from itertools import product
from pathlib import Path

import asyncpg
import pytest
from app.models import (
    AgentTask,
    AgentTaskCreate,
    AgentTaskUpdate,
    Project,
    ProjectUpsert,
    TaskStatus,
    TaskType,
)
from app.stores.ports import GraphRecords
from app.stores.postgres.schema import apply_migrations

from tests.harness.postgres import PgDatabase, postgres_stores, with_database
from tests.postgres.conftest import PgStores

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2025, 1, 1, tzinfo=UTC)
TRUE_TASK_COUNTS = "SELECT status::text, task_type::text, count(*) FROM agent_tasks GROUP BY 1, 2"
COUNTERS = """
SELECT status::text, task_type::text, sum(n) FROM agent_task_counts GROUP BY 1, 2
HAVING sum(n) <> 0"""


def project(i: int, **changes: object) -> Project:
    p = Project(id=i, ecosystem="npm", name=f"p{i}", version="1", created_at=T0, updated_at=T0)
    return p.model_copy(update=changes)


def task(i: int, status: TaskStatus = TaskStatus.pending,
         task_type: TaskType = TaskType.impl, at: datetime = T0) -> AgentTask:
    return AgentTask(id=f"task_{i:016x}", direction=f"d{i}", task_type=task_type, status=status,
                     model="m", command="c", created_at=T0, updated_at=at)


async def assert_exact(pg: PgStores) -> tuple[int, int]:
    """Every count the adapters answer equals count(*) in the owner's view, for every
    task filter; returns (projects, tasks)."""
    owner = await asyncpg.connect(pg.db.owner_dsn)
    try:
        n_projects = await owner.fetchval("SELECT count(*) FROM projects")
        truth = {(r[0], r[1]): r[2] for r in await owner.fetch(TRUE_TASK_COUNTS)}
        assert await owner.fetchval("SELECT sum(n) FROM project_counts") == n_projects
        assert {(r[0], r[1]): r[2] for r in await owner.fetch(COUNTERS)} == truth
    finally:
        await owner.close()
    assert await pg.graph.count_projects() == n_projects
    by_status = {s.value: sum(n for (st, _), n in truth.items() if st == s.value)
                 for s in TaskStatus}
    assert await pg.tasks.get_task_count() == {"total": sum(truth.values()),
                                               "by_status": by_status}
    assert (await pg.tasks.get_review_summary())["by_status"] == by_status
    statuses: list[TaskStatus | None] = [None, *TaskStatus]
    types: list[TaskType | None] = [None, *TaskType]
    for s, t in product(statuses, types):
        expected = sum(n for (st, ty), n in truth.items()
                       if (s is None or st == s.value) and (t is None or ty == t.value))
        for offset in (0, 10_000):  # a page with rows, and one past the end
            _, total = await pg.tasks.list_tasks(status=s, task_type=t, limit=1, offset=offset)
            assert total == expected, (s, t, offset)
    _, attention = await pg.tasks.get_attention_tasks()
    assert attention == by_status["needs_decision"] + by_status["failed"]
    phases = (await pg.tasks.get_pipeline_status())["running_by_phase"]
    for phase, n in phases.items():
        assert n == sum(c for (st, ty), c in truth.items()
                        if ty == phase and st in ("running", "pending")), phase
    return n_projects, sum(truth.values())


async def test_counts_follow_inserts_upserts_and_deletes(pg: PgStores) -> None:
    assert await assert_exact(pg) == (0, 0)
    for i in range(5):
        await pg.graph.upsert_project("npm", f"x{i}", ProjectUpsert(description="d"))
    await pg.graph.upsert_project("npm", "x0", ProjectUpsert(description="changed"))  # update
    await pg.graph.put_project(project(100))
    await pg.graph.put_project(project(100, version="2", updated_at=T0 + timedelta(1)))
    await pg.graph.put_project(project(100))  # older: ignored
    assert await assert_exact(pg) == (6, 0)

    made = [await pg.tasks.create_task(AgentTaskCreate(direction=f"t{i}",
                                                       task_type=list(TaskType)[i % 5]))
            for i in range(10)]
    await pg.tasks.put_task(task(1))
    await pg.tasks.put_task(task(1, TaskStatus.running, at=T0 + timedelta(1)))  # moves key
    await pg.tasks.put_task(task(1))  # older: nothing changes
    await pg.tasks.update_task(made[0].id, AgentTaskUpdate(status=TaskStatus.running))
    await pg.tasks.update_task(made[0].id, AgentTaskUpdate(status=TaskStatus.needs_decision))
    await pg.tasks.update_task(made[1].id, AgentTaskUpdate(status=TaskStatus.failed))
    await pg.tasks.update_task(made[2].id, AgentTaskUpdate(progress_pct=40))  # same key
    assert await assert_exact(pg) == (6, 11)

    # Deletes as the app role: a project with dependencies (they cascade), tasks by key.
    await pg.graph.add_dependency("npm", "x1", "npm", "x2")
    await pg.graph.add_dependency("npm", "x1", "npm", "left-pad")
    app = await asyncpg.connect(pg.db.app_dsn)
    try:
        assert await app.fetchval("SELECT current_user") == "storemigration_app"
        await app.execute("DELETE FROM projects WHERE name IN ('x1', 'x3', 'nope')")
        assert await app.fetchval("SELECT count(*) FROM project_dependencies") == 0
        await app.execute("DELETE FROM agent_tasks WHERE status = 'pending' AND task_type = 'impl'")
        await app.execute("DELETE FROM agent_tasks WHERE id = 'task_ffffffffffffffff'")  # none
        # A multi-row UPDATE moving some tasks and leaving others.
        await app.execute("UPDATE agent_tasks SET task_type = 'spec' "
                          "WHERE status = 'pending' OR task_type = 'heal'")
    finally:
        await app.close()
    assert await assert_exact(pg) == (4, 9)


async def test_counts_follow_bulk_imports_and_reimports(pg: PgStores) -> None:
    rows = [project(i) for i in range(1, 1201)]
    stats = await pg.graph.import_graph(GraphRecords(projects=rows))
    assert stats.written["projects"] == 1200
    again = await pg.graph.import_graph(GraphRecords(projects=rows))  # upserts, no inserts
    assert again.written["projects"] == 0
    newer = [p.model_copy(update={"version": "2", "updated_at": T0 + timedelta(1)})
             for p in rows[:50]] + [project(5000)]
    assert (await pg.graph.import_graph(GraphRecords(projects=newer))).written == {
        "projects": 51, "dependencies": 0, "contributors": 0, "assets": 0,
        "contributions": 0}
    assert await assert_exact(pg) == (1201, 0)

    tasks = [task(i, list(TaskStatus)[i % 5], list(TaskType)[i % 3]) for i in range(300)]
    assert (await pg.tasks.import_tasks(tasks)).written == {"agent_tasks": 300}
    assert (await pg.tasks.import_tasks(tasks)).written == {"agent_tasks": 0}
    moved = [t.model_copy(update={"status": TaskStatus.completed,
                                  "updated_at": T0 + timedelta(1)}) for t in tasks[:120]]
    assert (await pg.tasks.import_tasks(moved + [task(999)])).written == {"agent_tasks": 121}
    assert await assert_exact(pg) == (1201, 301)


async def test_a_rolled_back_transaction_changes_no_count(pg: PgStores) -> None:
    await pg.graph.upsert_project("npm", "kept", ProjectUpsert())
    await pg.tasks.import_tasks([task(1), task(2, TaskStatus.running)])
    app = await asyncpg.connect(pg.db.app_dsn)
    try:
        tr = app.transaction()
        await tr.start()
        await app.execute("INSERT INTO projects (ecosystem, name) "
                          "SELECT 'npm', 'gone' || g FROM generate_series(1, 50) g")
        await app.execute("DELETE FROM projects WHERE name = 'kept'")
        await app.execute("UPDATE agent_tasks SET status = 'failed'")
        await app.execute("DELETE FROM agent_tasks WHERE id = $1", task(1).id)
        assert await app.fetchval("SELECT sum(n) FROM project_counts") == 50  # own view
        await tr.rollback()
        # A failed statement inside a transaction, after a savepoint, rolls back too.
        async with app.transaction():
            await app.execute("INSERT INTO projects (ecosystem, name) VALUES ('npm', 'a')")
            with pytest.raises(asyncpg.UniqueViolationError):
                async with app.transaction():
                    await app.execute("INSERT INTO projects (ecosystem, name) "
                                      "VALUES ('npm', 'b'), ('npm', 'kept')")
    finally:
        await app.close()
    assert await assert_exact(pg) == (2, 2)


async def test_concurrent_writers_on_many_connections_keep_counts_exact(
    pg_database: PgDatabase,
) -> None:
    graph, tasks, db = await postgres_stores(pg_database.app_dsn, postgres_pool_size=8)
    try:
        made = await asyncio.gather(*(
            tasks.create_task(AgentTaskCreate(direction=f"t{i}", task_type=list(TaskType)[i % 5]))
            for i in range(80)))

        async def writer(w: int) -> None:
            for i in range(25):
                await graph.upsert_project("npm", f"w{w}-{i}", ProjectUpsert())
                await graph.upsert_project("npm", f"w{w}-{i % 5}", ProjectUpsert(version="2"))
            await tasks.update_task(made[w].id, AgentTaskUpdate(status=TaskStatus.running))
            await tasks.update_task(made[w].id, AgentTaskUpdate(status=TaskStatus.completed))
            await tasks.update_task(made[w + 40].id, AgentTaskUpdate(status=TaskStatus.failed))
            await graph.import_graph(GraphRecords(
                projects=[project(1_000_000 + w * 1000 + i) for i in range(30)]))

        async def deleter(w: int) -> None:  # races writer w: whatever it has committed
            conn = await asyncpg.connect(pg_database.app_dsn)
            try:
                for _ in range(5):
                    await conn.execute("DELETE FROM projects WHERE name LIKE $1", f"w{w}-%")
                    await asyncio.sleep(0.01)
            finally:
                await conn.close()

        await asyncio.gather(*(writer(w) for w in range(16)),
                             *(deleter(w) for w in range(0, 16, 4)))
        stores = PgStores(graph, tasks, db, pg_database)
        n_projects, n_tasks = await assert_exact(stores)
        assert 16 * 30 + 12 * 25 <= n_projects <= 16 * 30 + 16 * 25 and n_tasks == 80
    finally:
        await db.close()


async def test_writers_do_not_wait_for_a_long_transaction_holding_a_counter_row(
    pg: PgStores,
) -> None:
    """A long transaction (a backfill's import) holds the counter row it added to; other
    writers add to another row (created when none is free) instead of waiting. Only when
    all 16 rows of a key are held does a writer wait, then count."""
    owner = await asyncpg.connect(pg.db.owner_dsn)
    long, *others = [await asyncpg.connect(pg.db.app_dsn) for _ in range(4)]
    try:
        async with long.transaction():
            await long.execute("INSERT INTO projects (ecosystem, name) VALUES ('npm', 'long')")
            await long.execute("INSERT INTO agent_tasks (id, direction, task_type, model, "
                               "command) VALUES ('task_00000000000000ff', 'd', 'impl', 'm', 'c')")
            async with asyncio.timeout(5):
                for i, conn in enumerate(others * 2):
                    await conn.execute("INSERT INTO projects (ecosystem, name) VALUES "
                                       "('npm', $1)", f"o{i}")
                    await conn.execute(
                        "INSERT INTO agent_tasks (id, direction, task_type, model, command) "
                        "VALUES ($1, 'd', 'impl', 'm', 'c')", f"task_{i:016x}")
        assert await owner.fetchval("SELECT count(*) FROM project_counts") <= 4
        await owner.execute("INSERT INTO project_counts SELECT g, 0 FROM generate_series(0, 15) g "
                            "ON CONFLICT DO NOTHING")
        async with owner.transaction():
            await owner.execute("SELECT 1 FROM project_counts FOR UPDATE")
            waiting = asyncio.create_task(others[0].execute(
                "INSERT INTO projects (ecosystem, name) VALUES ('npm', 'b')"))
            await asyncio.sleep(0.3)
            assert not waiting.done()  # all 16 rows held: it waits ...
        await asyncio.wait_for(waiting, 5)  # ... and counts once they are released
    finally:
        for conn in (owner, long, *others):
            await conn.close()
    assert await assert_exact(pg) == (8, 7)


async def test_truncate_by_the_owner_resets_and_the_app_role_cannot_touch_counters(
    pg: PgStores,
) -> None:
    await pg.graph.import_graph(GraphRecords(projects=[project(i) for i in range(1, 11)]))
    await pg.tasks.import_tasks([task(i, list(TaskStatus)[i % 5]) for i in range(7)])
    app = await asyncpg.connect(pg.db.app_dsn)
    try:
        for statement in ("UPDATE project_counts SET n = 0",
                          "INSERT INTO project_counts VALUES (0, 1)",
                          "DELETE FROM agent_task_counts",
                          "TRUNCATE agent_task_counts",
                          "DROP TABLE project_counts",
                          "SELECT project_counts_add(5)",
                          "SELECT 1 FROM project_counts FOR UPDATE"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await app.execute(statement)
    finally:
        await app.close()
    assert await assert_exact(pg) == (10, 7)
    owner = await asyncpg.connect(pg.db.owner_dsn)
    try:
        async with owner.transaction():
            await owner.execute("INSERT INTO projects (ecosystem, name) VALUES ('npm', 'x')")
            await owner.execute("TRUNCATE projects CASCADE")
            await owner.execute("TRUNCATE agent_tasks")
    finally:
        await owner.close()
    assert await assert_exact(pg) == (0, 0)
    await pg.graph.upsert_project("npm", "after", ProjectUpsert())
    await pg.tasks.import_tasks([task(1)])
    assert await assert_exact(pg) == (1, 1)


async def test_migration_counts_the_rows_already_there(pg_server: str, tmp_path: Path) -> None:
    """A database at version 5 holding rows gets counters equal to them when 006 lands."""
    name = "sm_counts_" + tmp_path.name[-8:].replace("-", "_").lower()
    admin = await asyncpg.connect(pg_server)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    dsn = with_database(pg_server, name)
    try:
        (tmp_path / "m").mkdir()
        for f in sorted((ROOT / "migrations").glob("00[1-5]_*.sql")):
            shutil.copy(f, tmp_path / "m" / f.name)
        await apply_migrations(dsn, tmp_path / "m")
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("INSERT INTO projects (ecosystem, name) "
                               "SELECT 'npm', 'p' || g FROM generate_series(1, 37) g")
            await conn.execute(
                "INSERT INTO agent_tasks (id, direction, task_type, status, model, command) "
                "SELECT 'task_' || lpad(to_hex(g), 16, '0'), 'd', "
                "(enum_range(NULL::task_type))[1 + g % 5], "
                "(enum_range(NULL::task_status))[1 + g % 3], 'm', 'c' "
                "FROM generate_series(1, 23) g")
            report = await apply_migrations(dsn)
            assert report.applied[0] == 6
            assert await conn.fetchval("SELECT sum(n) FROM project_counts") == 37
            assert await conn.fetch(
                "SELECT status, task_type, sum(n) AS n FROM agent_task_counts "
                "GROUP BY 1, 2 HAVING sum(n) <> 0 ORDER BY 1, 2"
            ) == await conn.fetch(
                "SELECT status, task_type, count(*) AS n FROM agent_tasks GROUP BY 1, 2 "
                "ORDER BY 1, 2")
        finally:
            await conn.close()
    finally:
        admin = await asyncpg.connect(pg_server)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
