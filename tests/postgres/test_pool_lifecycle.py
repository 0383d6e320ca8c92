"""What the pool settings mean, observed from the server's side: the API's connections
as PostgreSQL lists them in pg_stat_activity (application_name storemigration-api),
counted and identified by backend pid.

- POSTGRES_POOL_SIZE connections stay open, idle or not;
- up to POSTGRES_MAX_OVERFLOW more open under load and close once idle for
  POSTGRES_OVERFLOW_IDLE_TIMEOUT;
- POSTGRES_POOL_RECYCLE is the maximum age of any connection, idle or busy;
- POSTGRES_MAX_QUERIES replaces a connection after that many queries.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack

import asyncpg
import pytest
from app.errors import StoreUnavailableError

from tests.harness.postgres import PgDatabase, postgres_stores

APP_CONNECTIONS = (
    "SELECT pid FROM pg_stat_activity "
    "WHERE datname = $1 AND application_name = 'storemigration-api' ORDER BY pid"
)


Observer = Callable[[], Awaitable[set[int]]]


@pytest.fixture
async def observer(pg_database: PgDatabase) -> AsyncIterator[Observer]:
    """The backend pids of the API's connections to this test's database."""
    conn = await asyncpg.connect(pg_database.owner_dsn)

    async def pids() -> set[int]:
        return {r["pid"] for r in await conn.fetch(APP_CONNECTIONS, pg_database.name)}

    try:
        yield pids
    finally:
        await conn.close()


async def wait_for(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while True:
        if await check():
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.1)


async def test_pool_size_is_kept_and_overflow_closes_when_idle(
    pg_database: PgDatabase, observer: Observer
) -> None:
    _, _, db = await postgres_stores(
        pg_database.app_dsn, postgres_pool_size=2, postgres_max_overflow=3,
        postgres_overflow_idle_timeout=0.5, postgres_pool_timeout=0.3,
    )
    try:
        floor = await observer()
        assert len(floor) == 2, "POSTGRES_POOL_SIZE connections are opened at start"

        async with AsyncExitStack() as held:
            for _ in range(5):
                conn = await held.enter_async_context(db.acquire())
                await conn.fetchval("SELECT 1")
            busy = await observer()
            assert len(busy) == 5, "size + overflow under load"
            with pytest.raises(StoreUnavailableError, match="pool exhausted"):
                async with db.acquire():
                    pass
            assert len(await observer()) == 5, "never more than size + overflow"

        async def back_to_floor() -> bool:
            return len(await observer()) == 2

        await wait_for(back_to_floor, timeout=5)
        await asyncio.sleep(1.5)  # three idle timeouts more: the floor itself stays
        assert len(await observer()) == 2
        assert db.stats()["size"] == 2
    finally:
        await db.close()


async def test_recycle_is_the_maximum_age_of_idle_and_busy_connections(
    pg_database: PgDatabase, observer: Observer
) -> None:
    _, _, db = await postgres_stores(
        pg_database.app_dsn, postgres_pool_size=2, postgres_max_overflow=0,
        postgres_pool_recycle=1.0,
    )
    try:
        first = await observer()
        assert len(first) == 2

        async def all_replaced() -> bool:
            now = await observer()
            return len(now) == 2 and not now & first

        await wait_for(all_replaced, timeout=6)  # idle: never acquired, still recycled

        async with db.acquire() as conn:
            busy_pid = await conn.fetchval("SELECT pg_backend_pid()")
            await asyncio.sleep(1.3)  # outlives its recycle time while in use
            assert busy_pid in await observer(), "a busy connection is not cut mid-use"
            assert await conn.fetchval("SELECT 1") == 1

        async def busy_one_closed() -> bool:
            now = await observer()
            return busy_pid not in now and len(now) == 2

        await wait_for(busy_one_closed, timeout=5)
    finally:
        await db.close()


async def test_max_queries_replaces_a_connection(
    pg_database: PgDatabase, observer: Observer
) -> None:
    _, _, db = await postgres_stores(
        pg_database.app_dsn, postgres_pool_size=1, postgres_max_overflow=0,
        postgres_max_queries=4,
    )
    try:
        pids = []
        for _ in range(12):
            async with db.acquire() as conn:
                pids.append(await conn.fetchval("SELECT pg_backend_pid()"))
        assert len(set(pids)) >= 3, pids
        assert len(await observer()) == 1
    finally:
        await db.close()
