"""`Database`: the asyncpg pool every PostgreSQL adapter shares, configured from Settings.

The pool keeps POSTGRES_POOL_SIZE connections open and grows by up to
POSTGRES_MAX_OVERFLOW; a caller that finds none free waits POSTGRES_POOL_TIMEOUT and
then gets StoreUnavailableError (503), never a hang. Connections older than
POSTGRES_POOL_RECYCLE are closed on release and replaced. The adapters keep no
session state (no SET, LISTEN, advisory locks or cursors across calls), so the
release reset is a no-op instead of a round trip (PERFORMANCE-LIMITS.md: 1.6x).
Every driver failure leaves here as an app.errors StoreError whose message is ours:
driver messages can carry connection details, and credentials must never surface.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg

from app.errors import ConflictError, InvalidDataError, StoreError, StoreUnavailableError
from app.settings import SECURE_SSLMODES, Settings
from app.stores.postgres.schema import EXPECTED_SCHEMA_VERSION, check_schema_version

HEALTH_QUERY = "SELECT 1"
ConstraintErrors = Mapping[str, StoreError]


@dataclass(frozen=True)
class PoolConfig:
    dsn: str
    min_size: int = 20
    max_size: int = 30
    acquire_timeout: float = 30.0
    recycle: float = 3600.0
    max_queries: int = 50_000
    statement_timeout_ms: int = 10_000
    ssl_required: bool = False
    expected_schema: int = EXPECTED_SCHEMA_VERSION

    @property
    def where(self) -> str:
        """host:port/database, safe to show: no user, no password."""
        parts = urlsplit(self.dsn)
        host = parts.hostname or "localhost"
        port = parts.port or 5432
        return f"{host}:{port}{parts.path or '/'}"


class _Connection(asyncpg.Connection):  # type: ignore[misc]
    born: float = 0.0


async def _init_connection(conn: asyncpg.Connection) -> None:
    conn.born = time.monotonic()
    for name in ("json", "jsonb"):
        await conn.set_type_codec(
            name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )


async def _no_reset(conn: asyncpg.Connection) -> None:
    return None


def translate(exc: BaseException, constraints: ConstraintErrors | None = None) -> StoreError:
    """Our error for a driver failure; `constraints` names the error per constraint."""
    if isinstance(exc, StoreError):
        return exc
    if isinstance(exc, asyncpg.IntegrityConstraintViolationError):
        name = getattr(exc, "constraint_name", None) or ""
        if constraints and name in constraints:
            return constraints[name]
        if isinstance(exc, asyncpg.UniqueViolationError):
            return ConflictError("Conflicts with an existing record")
        return InvalidDataError(f"Invalid data: violates {name or 'a constraint'}")
    if isinstance(exc, asyncpg.DataError):
        return InvalidDataError("Invalid data: a value is out of range or malformed")
    if isinstance(exc, asyncpg.QueryCanceledError):
        return StoreUnavailableError("PostgreSQL query was cancelled (statement timeout)")
    if isinstance(exc, asyncpg.InsufficientPrivilegeError):
        return StoreUnavailableError("PostgreSQL refused the operation: insufficient privilege")
    return StoreUnavailableError(f"PostgreSQL unavailable ({type(exc).__name__})")


_DRIVER_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, asyncio.TimeoutError)


class Database:
    """The shared pool. `connect()` at start-up; adapters use `acquire`/`transaction`."""

    def __init__(self, config: PoolConfig) -> None:
        self.config = config
        self._pool: asyncpg.Pool | None = None
        self._waiting = 0

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> Database:
        if settings.database_url is None:
            raise ValueError("DATABASE_URL is not set")
        config = PoolConfig(
            dsn=settings.database_url.get_secret_value(),
            min_size=settings.postgres_pool_size,
            max_size=settings.postgres_pool_size + settings.postgres_max_overflow,
            acquire_timeout=settings.postgres_pool_timeout,
            recycle=settings.postgres_pool_recycle,
            max_queries=settings.postgres_max_queries,
            statement_timeout_ms=settings.postgres_statement_timeout_ms,
            ssl_required=settings.ssl_required(),
        )
        return cls(PoolConfig(**{**config.__dict__, **overrides}))

    async def connect(self, verify_schema: bool = True) -> None:
        """Open the pool, run the health query and check the schema version; fail
        fast with a message that names host:port/db but never the credentials."""
        cfg = self.config
        if cfg.ssl_required:
            modes = set(parse_qs(urlsplit(cfg.dsn).query).get("sslmode", []))
            if not SECURE_SSLMODES & modes:
                raise StoreUnavailableError(
                    "TLS is required: DATABASE_URL must set sslmode=require, verify-ca or "
                    "verify-full"
                )
        try:
            self._pool = await asyncpg.create_pool(
                cfg.dsn,
                min_size=cfg.min_size,
                max_size=cfg.max_size,
                max_queries=cfg.max_queries,
                max_inactive_connection_lifetime=cfg.recycle,
                timeout=cfg.acquire_timeout,
                init=_init_connection,
                reset=_no_reset,
                connection_class=_Connection,
                server_settings={
                    "application_name": "storemigration-api",
                    "statement_timeout": str(cfg.statement_timeout_ms),
                    # Data served from cache/SSD: with the default 4.0 the planner
                    # prefers a seq scan that runs lower(description) LIKE on every row
                    # (100 ms on 100k projects) over the trigram indexes (2-20 ms).
                    "random_page_cost": "1.1",
                },
            )
        except (*_DRIVER_ERRORS, ValueError) as e:
            raise StoreUnavailableError(
                f"cannot connect to PostgreSQL at {cfg.where}: {type(e).__name__}"
            ) from None
        try:
            async with self.acquire() as conn:
                await conn.fetchval(HEALTH_QUERY)
                if verify_schema:
                    await check_schema_version(conn, cfg.expected_schema)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                await asyncio.wait_for(pool.close(), timeout=5)
            except TimeoutError:
                pool.terminate()

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise StoreUnavailableError("PostgreSQL pool is not connected")
        return self._pool

    @asynccontextmanager
    async def acquire(
        self, constraints: ConstraintErrors | None = None
    ) -> AsyncIterator[asyncpg.Connection]:
        pool = self.pool
        self._waiting += 1
        try:
            conn = await pool.acquire(timeout=self.config.acquire_timeout)
        except TimeoutError:
            raise StoreUnavailableError(
                f"PostgreSQL connection pool exhausted: no connection became free within "
                f"{self.config.acquire_timeout:g} s (pool max {self.config.max_size})"
            ) from None
        except _DRIVER_ERRORS as e:
            raise translate(e) from None
        finally:
            self._waiting -= 1
        try:
            yield conn
        except _DRIVER_ERRORS as e:
            raise translate(e, constraints) from None
        finally:
            if not conn.is_closed() and time.monotonic() - conn.born > self.config.recycle:
                await conn.close(timeout=5)
            await pool.release(conn)

    @asynccontextmanager
    async def transaction(
        self, constraints: ConstraintErrors | None = None
    ) -> AsyncIterator[asyncpg.Connection]:
        async with self.acquire(constraints) as conn, conn.transaction():
            yield conn

    async def check(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """The health query within `timeout` seconds, or StoreUnavailableError."""
        try:
            async with asyncio.timeout(timeout):
                async with self.acquire() as conn:
                    await conn.fetchval(HEALTH_QUERY)
        except TimeoutError:
            raise StoreUnavailableError(
                f"PostgreSQL health check did not answer within {timeout:g} s"
            ) from None

    def stats(self) -> dict[str, int]:
        """Pool gauges: size, max, active, idle, waiting (callers queued in acquire), and
        connected (1 while the pool is open)."""
        if self._pool is None:
            return {"size": 0, "max": self.config.max_size, "active": 0, "idle": 0,
                    "waiting": self._waiting, "connected": 0}
        size = self._pool.get_size()
        idle = self._pool.get_idle_size()
        return {"size": size, "max": self._pool.get_max_size(), "active": size - idle,
                "idle": idle, "waiting": self._waiting, "connected": 1}
