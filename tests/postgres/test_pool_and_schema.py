"""Pool exhaustion, start-up checks (schema version, TLS rule), credentials never in errors,
the migration runner and the application role's limits."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest
from app.errors import StoreUnavailableError
from app.models import ProjectUpsert
from app.settings import Settings
from app.stores.postgres.pool import Database, PoolConfig
from app.stores.postgres.schema import (
    EXPECTED_SCHEMA_VERSION,
    MigrationError,
    SchemaVersionError,
    apply_migrations,
    discover,
)

from tests.harness.postgres import PgDatabase, postgres_stores, with_database

ROOT = Path(__file__).resolve().parents[2]


async def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run, args, capture_output=True, text=True, timeout=60
    )


async def test_pool_exhaustion_waits_then_503_then_recovers(pg_database: PgDatabase) -> None:
    graph, _, db = await postgres_stores(pg_database.app_dsn, postgres_pool_size=1,
                                         postgres_max_overflow=0, postgres_pool_timeout=0.3)
    try:
        held = db.pool.acquire()
        conn = await held
        waiter = asyncio.create_task(graph.count_projects())
        async with asyncio.timeout(10):
            while db.stats()["waiting"] == 0:  # noqa: ASYNC110 - polling a gauge
                await asyncio.sleep(0.005)
        assert db.stats() | {"connected": 1} == {"size": 1, "max": 1, "active": 1, "idle": 0,
                                                 "waiting": 1, "connected": 1}
        await db.pool.release(conn)
        assert await waiter == 0  # a caller waits for a connection that comes back

        conn = await db.pool.acquire()
        with pytest.raises(StoreUnavailableError) as e:
            await graph.upsert_project("npm", "x", ProjectUpsert())
        assert e.value.status_code == 503
        assert "pool exhausted" in e.value.detail and "0.3 s" in e.value.detail
        await db.pool.release(conn)

        await graph.upsert_project("npm", "x", ProjectUpsert())
        assert await graph.count_projects() == 1
        assert db.stats()["waiting"] == 0
    finally:
        await db.close()


async def test_health_check_and_stats(pg_database: PgDatabase) -> None:
    _, _, db = await postgres_stores(pg_database.app_dsn, postgres_pool_size=2,
                                     postgres_max_overflow=3)
    await db.check(timeout=5)
    assert db.stats() == {"size": 2, "max": 5, "active": 0, "idle": 2, "waiting": 0,
                          "connected": 1}
    await db.close()
    with pytest.raises(StoreUnavailableError):
        await db.check()


async def test_schema_version_mismatch_refuses_to_start(pg_database: PgDatabase) -> None:
    settings = Settings(database_url=pg_database.app_dsn, postgres_pool_size=1)
    db = Database.from_settings(settings, expected_schema=EXPECTED_SCHEMA_VERSION + 1)
    v = EXPECTED_SCHEMA_VERSION
    with pytest.raises(SchemaVersionError, match=rf"version is {v}, this code expects {v + 1}"):
        await db.connect()
    assert db.stats()["connected"] == 0
    owner = await asyncpg.connect(pg_database.owner_dsn)
    await owner.execute("DELETE FROM schema_migrations WHERE version = $1",
                        EXPECTED_SCHEMA_VERSION)
    await owner.close()
    with pytest.raises(SchemaVersionError, match="run `python api/scripts/migrate.py`"):
        await Database.from_settings(settings).connect()


async def test_expected_version_is_the_newest_shipped_migration() -> None:
    assert max(m.version for m in discover()) == EXPECTED_SCHEMA_VERSION


async def test_password_never_appears_in_errors(pg_database: PgDatabase) -> None:
    secret = "s3cr3t-Pa55word"
    bad_db = with_database(pg_database.admin_dsn, "no_such_db", "storemigration_app", secret)
    bad_user = with_database(pg_database.admin_dsn, pg_database.name, "nobody", secret)
    closed = f"postgresql://u:{secret}@127.0.0.1:1/db"
    for dsn in (bad_db, bad_user, closed):
        db = Database(PoolConfig(dsn=dsn, min_size=1, max_size=1, acquire_timeout=2))
        with pytest.raises(StoreUnavailableError) as e:
            await db.connect()
        text = f"{e.value} {e.value.detail} {e.value!r} {e.value.__cause__}"
        assert secret not in text and "cannot connect to PostgreSQL at 127.0.0.1:" in text


async def test_tls_required_refuses_a_url_without_sslmode(pg_database: PgDatabase) -> None:
    with pytest.raises(ValueError, match=r"sslmode=\(unset\) does not require TLS"):
        Settings(app_env="production", database_url=pg_database.app_dsn)
    db = Database(PoolConfig(dsn=pg_database.app_dsn, ssl_required=True))
    with pytest.raises(StoreUnavailableError, match="verified server certificate is required"):
        await db.connect()


async def test_migrate_is_idempotent_and_audited(pg_database: PgDatabase) -> None:
    report = await apply_migrations(pg_database.owner_dsn)
    assert report.applied == [] and report.current == EXPECTED_SCHEMA_VERSION
    conn = await asyncpg.connect(pg_database.owner_dsn)
    rows = await conn.fetch("SELECT version, checksum, applied_at, applied_by "
                            "FROM schema_migrations ORDER BY version")
    await conn.close()
    assert [r["version"] for r in rows] == [m.version for m in discover()]
    assert all(len(r["checksum"]) == 64 and r["applied_by"] == "postgres" for r in rows)


async def test_migrate_refuses_a_changed_file(pg_database: PgDatabase, tmp_path: Path) -> None:
    shutil.copytree(ROOT / "migrations", tmp_path / "m")
    target = tmp_path / "m" / "002_indexes.sql"
    target.write_text(target.read_text() + "\n-- edited after release\n")
    with pytest.raises(MigrationError, match="002_indexes.sql changed after it was applied"):
        await apply_migrations(pg_database.owner_dsn, tmp_path / "m")


async def test_migrate_applies_pending_in_order_one_transaction_each(
    pg_server: str, tmp_path: Path
) -> None:
    name = "sm_partial_" + tmp_path.name[-8:].replace("-", "_").lower()
    admin = await asyncpg.connect(pg_server)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    dsn = with_database(pg_server, name)
    try:
        shutil.copytree(ROOT / "migrations", tmp_path / "m")
        (tmp_path / "m" / f"{EXPECTED_SCHEMA_VERSION + 1:03d}_broken.sql").write_text(
            "CREATE TABLE half_done (x int);\nSELECT no_such_function();\n")
        with pytest.raises(asyncpg.UndefinedFunctionError):
            await apply_migrations(dsn, tmp_path / "m")
        conn = await asyncpg.connect(dsn)
        assert await conn.fetchval("SELECT max(version) FROM schema_migrations") == (
            EXPECTED_SCHEMA_VERSION)
        assert await conn.fetchval("SELECT to_regclass('half_done')") is None
        await conn.close()
        cli = [sys.executable, str(ROOT / "api/scripts/migrate.py"), "--database-url", dsn]
        done = await _run([*cli, "--check"])
        assert done.returncode == 0, done.stderr
        assert f"schema version {EXPECTED_SCHEMA_VERSION}" in done.stdout
        assert "up to date" in done.stdout
    finally:
        admin = await asyncpg.connect(pg_server)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_migrate_cli_reports_pending_without_applying(pg_server: str) -> None:
    name = "sm_cli_check"
    admin = await asyncpg.connect(pg_server)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    dsn = with_database(pg_server, name)
    cli = [sys.executable, str(ROOT / "api/scripts/migrate.py"), "--database-url", dsn]
    try:
        check = await _run([*cli, "--check"])
        assert check.returncode == 1 and "pending: 001, 002, 003, 004" in check.stdout
        run = await _run(cli)
        assert run.returncode == 0 and "applied 001, 002, 003, 004" in run.stdout
        again = await _run(cli)
        assert again.returncode == 0 and "applied nothing" in again.stdout
    finally:
        admin = await asyncpg.connect(pg_server)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.mark.parametrize("statement", [
    "DROP TABLE projects",
    "TRUNCATE projects",
    "TRUNCATE agent_tasks",
    "DROP TABLE schema_migrations",
    "DELETE FROM schema_migrations",
    "ALTER TABLE assets DROP COLUMN total_cost",
    "CREATE TABLE intruder (x int)",
])
async def test_application_role_cannot_change_schema_or_erase(
    pg_database: PgDatabase, statement: str
) -> None:
    conn = await asyncpg.connect(pg_database.app_dsn)
    try:
        assert await conn.fetchval("SELECT current_user") == "storemigration_app"
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(statement)
        await conn.execute("INSERT INTO projects (ecosystem, name) VALUES ('npm', 'ok')")
        await conn.execute("DELETE FROM projects")
    finally:
        await conn.close()
