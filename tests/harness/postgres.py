"""PostgreSQL fixtures: one server per test session (devcluster.postgres), or the
server named by TEST_DATABASE_URL; a fresh database per test, cloned from a template
the migrations were applied to once, so each test starts from the real schema in
milliseconds.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from devcluster.postgres import (
    APP_PASSWORD,
    TEMPLATE_DB,
    PostgresServer,
    clone_database,
    create_migrated_database,
    drop_database,
    start_postgres,
    with_database,
)

__all__ = [
    "APP_PASSWORD",
    "PostgresServer",
    "create_migrated_database",
    "drop_database",
    "start_postgres",
    "with_database",
]


@dataclass
class PgDatabase:
    """A fresh migrated database: `owner_dsn` may do anything, `app_dsn` is the
    least-privilege application role."""

    name: str
    owner_dsn: str
    app_dsn: str
    admin_dsn: str


async def postgres_stores(app_dsn: str, **pool_settings: Any) -> tuple[Any, Any, Any]:
    """(graph_store, task_store, database) on a connected pool; close with
    `await database.close()`. pool_settings override Settings fields."""
    from app.settings import Settings
    from app.stores.postgres.graph_store import PostgresGraphStore
    from app.stores.postgres.pool import Database
    from app.stores.postgres.task_store import PostgresAgentTaskStore

    settings = Settings(database_url=app_dsn, **pool_settings)
    database = Database.from_settings(settings)
    await database.connect()
    return PostgresGraphStore(database), PostgresAgentTaskStore(database), database


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """Admin (superuser) DSN of the session's server."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        yield url
        return
    server = start_postgres()
    try:
        yield server.dsn
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pg_template(pg_server: str) -> Iterator[str]:
    name = f"{TEMPLATE_DB}_{uuid.uuid4().hex[:8]}"
    asyncio.run(create_migrated_database(pg_server, name))
    try:
        yield name
    finally:
        asyncio.run(drop_database(pg_server, name))


@asynccontextmanager
async def fresh_database(pg_server: str, pg_template: str) -> AsyncIterator[PgDatabase]:
    """A new database cloned from the migrated template, dropped on exit."""
    name = f"sm_test_{uuid.uuid4().hex[:12]}"
    await clone_database(pg_server, pg_template, name)
    try:
        yield PgDatabase(
            name=name,
            owner_dsn=with_database(pg_server, name),
            app_dsn=with_database(pg_server, name, "storemigration_app", APP_PASSWORD),
            admin_dsn=pg_server,
        )
    finally:
        await drop_database(pg_server, name)


@pytest.fixture
async def pg_database(pg_server: str, pg_template: str) -> AsyncIterator[PgDatabase]:
    async with fresh_database(pg_server, pg_template) as db:
        yield db
