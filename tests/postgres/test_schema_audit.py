"""Migration 009: every schema change is recorded in schema_audit, whoever runs it and
however (not only through migrate.py); the record is append-only and out of the app
role's reach; and the app role cannot create objects in schema public even where
PostgreSQL's default (14 and older) would let it."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from app.stores.postgres.schema import apply_migrations

from tests.harness.postgres import APP_PASSWORD, PgDatabase, drop_database, with_database

ROOT = Path(__file__).resolve().parents[2]
AUDIT = ("SELECT run_by, session_user_name, event, command_tag, object_type, object_identity, "
         "statement FROM schema_audit WHERE id > $1 ORDER BY id")


async def last_id(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT coalesce(max(id), 0) FROM schema_audit"))


async def test_ddl_run_directly_by_the_owner_is_recorded(pg_database: PgDatabase) -> None:
    owner = await asyncpg.connect(pg_database.owner_dsn)
    try:
        since = await last_id(owner)
        await owner.execute("CREATE TABLE hand_made (id int)")
        await owner.execute("ALTER TABLE projects ADD COLUMN added_by_hand text")
        await owner.execute("CREATE INDEX hand_made_idx ON hand_made (id)")
        await owner.execute("CREATE VIEW hand_made_view AS SELECT id FROM hand_made")
        await owner.execute("DROP TABLE hand_made CASCADE")
        rows = [dict(r) for r in await owner.fetch(AUDIT, since)]
    finally:
        await owner.close()
    seen = [(r["event"], r["command_tag"], r["object_type"], r["object_identity"]) for r in rows]
    assert seen == [
        ("ddl_command_end", "CREATE TABLE", "table", "public.hand_made"),
        ("ddl_command_end", "ALTER TABLE", "table", "public.projects"),
        ("ddl_command_end", "CREATE INDEX", "index", "public.hand_made_idx"),
        ("ddl_command_end", "CREATE VIEW", "view", "public.hand_made_view"),
        ("sql_drop", "DROP TABLE", "table", "public.hand_made"),
        ("sql_drop", "DROP TABLE", "view", "public.hand_made_view"),  # taken by CASCADE
        ("sql_drop", "DROP TABLE", "rule", '"_RETURN" on public.hand_made_view'),
    ]
    assert {r["run_by"] for r in rows} == {"postgres"}
    assert rows[1]["statement"] == "ALTER TABLE projects ADD COLUMN added_by_hand text"


async def test_the_role_that_ran_it_is_recorded_and_secrets_are_not(
    pg_database: PgDatabase,
) -> None:
    owner = await asyncpg.connect(pg_database.owner_dsn)
    role = f"dba_{uuid.uuid4().hex[:8]}"
    try:
        since = await last_id(owner)
        await owner.execute(f"CREATE ROLE {role}")
        await owner.execute(f"GRANT CREATE ON SCHEMA public TO {role}")
        await owner.execute(f"SET ROLE {role}")
        await owner.execute("CREATE TABLE made_by_dba (id int)")
        await owner.execute("RESET ROLE")
        await owner.execute("CREATE EXTENSION IF NOT EXISTS postgres_fdw")
        await owner.execute("CREATE SERVER elsewhere FOREIGN DATA WRAPPER postgres_fdw")
        await owner.execute(
            "CREATE USER MAPPING FOR postgres SERVER elsewhere "
            "OPTIONS (user 'x', password 'do-not-keep-me')")
        rows = [dict(r) for r in await owner.fetch(AUDIT, since)]
        await owner.execute("DROP TABLE made_by_dba")
        await owner.execute("DROP SERVER elsewhere CASCADE")
        await owner.execute("DROP EXTENSION postgres_fdw")
        await owner.execute(f"REVOKE CREATE ON SCHEMA public FROM {role}")
    finally:
        await owner.execute(f"DROP ROLE IF EXISTS {role}")
        await owner.close()
    by_dba = [r for r in rows if r["object_identity"] == "public.made_by_dba"]
    assert [(r["run_by"], r["session_user_name"]) for r in by_dba] == [(role, "postgres")]
    assert any(r["command_tag"] == "CREATE USER MAPPING" for r in rows)
    assert all("do-not-keep-me" not in (r["statement"] or "") for r in rows)


async def test_the_app_role_cannot_write_alter_or_switch_off_the_record(
    pg_database: PgDatabase,
) -> None:
    app = await asyncpg.connect(pg_database.app_dsn)
    try:
        for statement in (
            "INSERT INTO schema_audit (run_by, event, command_tag) VALUES ('me', 'x', 'y')",
            "UPDATE schema_audit SET run_by = 'me'",
            "DELETE FROM schema_audit",
            "TRUNCATE schema_audit",
            "ALTER TABLE schema_audit DISABLE TRIGGER ALL",
            "DROP TABLE schema_audit",
            "ALTER EVENT TRIGGER storemigration_audit_ddl DISABLE",
            "DROP EVENT TRIGGER storemigration_audit_drop",
            "SELECT storemigration_audit_ddl()",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await app.execute(statement)
        # the app's own temp tables (the import path) still work and are not schema changes
        await app.execute("CREATE TEMP TABLE scratch (id int)")
        await app.execute("DROP TABLE scratch")
    finally:
        await app.close()
    owner = await asyncpg.connect(pg_database.owner_dsn)
    try:
        assert not await owner.fetchval(
            "SELECT count(*) FROM schema_audit WHERE object_identity LIKE '%scratch%'")
        for statement in ("UPDATE schema_audit SET run_by = 'me'", "DELETE FROM schema_audit",
                          "TRUNCATE schema_audit"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                await owner.execute(statement)
    finally:
        await owner.close()


async def test_a_migration_applied_later_is_recorded(
    pg_database: PgDatabase, tmp_path: Path
) -> None:
    shutil.copytree(ROOT / "migrations", tmp_path / "m")
    (tmp_path / "m" / "999_later.sql").write_text("CREATE TABLE later_table (id int);\n")
    report = await apply_migrations(pg_database.owner_dsn, tmp_path / "m")
    assert report.applied == [999]
    owner = await asyncpg.connect(pg_database.owner_dsn)
    try:
        row = await owner.fetchrow(
            "SELECT run_by, command_tag FROM schema_audit WHERE object_identity = "
            "'public.later_table'")
    finally:
        await owner.close()
    assert row is not None and dict(row) == {"run_by": "postgres", "command_tag": "CREATE TABLE"}


@pytest.fixture
async def old_default_database(pg_server: str, tmp_path: Path) -> AsyncIterator[str]:
    """A database whose schema public grants CREATE to PUBLIC, as PostgreSQL 14 and
    older create it; migrations 001-007 applied."""
    name = f"sm_pg14_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(pg_server)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    dsn = with_database(pg_server, name)
    conn = await asyncpg.connect(dsn)
    await conn.execute("GRANT CREATE ON SCHEMA public TO PUBLIC")
    await conn.close()
    before = tmp_path / "before-009"
    before.mkdir()
    for path in sorted((ROOT / "migrations").glob("*.sql")):
        if int(path.name[:3]) < 9:
            shutil.copy(path, before / path.name)
    await apply_migrations(dsn, before, app_password=APP_PASSWORD)
    try:
        yield dsn
    finally:
        await drop_database(pg_server, name)


async def test_app_role_cannot_create_a_table_once_009_ran(old_default_database: str) -> None:
    app_dsn = old_default_database.replace("postgresql://postgres@",
                                           f"postgresql://storemigration_app:{APP_PASSWORD}@")
    app = await asyncpg.connect(app_dsn)
    try:
        await app.execute("CREATE TABLE possible_before (id int)")  # the gap 009 closes
        await app.execute("DROP TABLE possible_before")
    finally:
        await app.close()
    await apply_migrations(old_default_database)
    app = await asyncpg.connect(app_dsn)
    try:
        for statement in ("CREATE TABLE intruder (id int)", "CREATE VIEW v AS SELECT 1",
                          "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
                          "CREATE SCHEMA mine"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await app.execute(statement)
        assert await app.fetchval("SELECT count(*) FROM projects") == 0
    finally:
        await app.close()
