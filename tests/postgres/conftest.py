"""Stores on a fresh migrated database per test, connected as the application role."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.harness.postgres import PgDatabase, postgres_stores


@dataclass
class PgStores:
    graph: Any
    tasks: Any
    database: Any
    db: PgDatabase


@pytest.fixture
async def pg(pg_database: PgDatabase) -> AsyncIterator[PgStores]:
    graph, tasks, database = await postgres_stores(pg_database.app_dsn, postgres_pool_size=2)
    try:
        yield PgStores(graph, tasks, database, pg_database)
    finally:
        await database.close()
