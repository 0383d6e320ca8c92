"""`Database`: the asyncpg pool every PostgreSQL adapter shares, configured from Settings.

What each pool setting means, as the tests in tests/postgres/test_pool_lifecycle.py
observe it in pg_stat_activity:
- POSTGRES_POOL_SIZE connections are kept open (asyncpg's floor: a closed one is
  replaced in the background).
- Up to POSTGRES_MAX_OVERFLOW more open under load; each closes once it has been idle
  for POSTGRES_OVERFLOW_IDLE_TIMEOUT seconds, so they really are temporary.
- POSTGRES_POOL_RECYCLE is the maximum age of any connection: when it runs out an idle
  connection is closed at once (and the floor refilled), a busy one as it is released.
  Each connection's lifetime is drawn from the last 10% of the setting, so a pool
  opened at once does not reconnect all at once.
- POSTGRES_MAX_QUERIES: a connection is replaced after that many queries.
A caller that finds no connection free waits POSTGRES_POOL_TIMEOUT and then gets
StoreUnavailableError (503), never a hang. The adapters keep no session state (no
SET, LISTEN, advisory locks or cursors across calls), so the release reset is a no-op
instead of a round trip (1.6x throughput; docs/BENCHMARKS.md, "Machine limits").

TLS: when it is required (APP_ENV=production, or POSTGRES_SSL_REQUIRED=true) the URL
must ask for a verified server certificate (sslmode=verify-ca or verify-full);
Settings refuses anything less and `connect` checks again for a Database built by hand.

Every driver failure leaves here as an app.errors StoreError whose message is ours:
driver messages can carry connection details, and credentials must never surface. A
schema-version mismatch found by `connect` is kept in `schema_error`, which /api/ready
and store-status report; `keep_connecting` is the background retry for phases that
can serve without PostgreSQL, and it stops for good on a mismatch (docs/SETUP.md,
"When PostgreSQL is not ready").
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg

from app.errors import ConflictError, InvalidDataError, StoreError, StoreUnavailableError
from app.settings import VERIFIED_SSLMODES, Settings
from app.stores.postgres.schema import (
    EXPECTED_SCHEMA_VERSION,
    SchemaVersionError,
    check_schema_version,
)

log = logging.getLogger("app.db")

HEALTH_QUERY = "SELECT 1"
RECONNECT_SECONDS = 5.0
SCHEMA_REMINDER_SECONDS = 60.0
RECYCLE_JITTER = 0.10
ConstraintErrors = Mapping[str, StoreError]


@dataclass(frozen=True)
class PoolConfig:
    dsn: str
    min_size: int = 20
    max_size: int = 30
    acquire_timeout: float = 30.0
    recycle: float = 3600.0
    overflow_idle: float = 30.0
    max_queries: int = 50_000
    statement_timeout_ms: int = 10_000
    ssl_required: bool = False
    tls_override: bool = False
    expected_schema: int = EXPECTED_SCHEMA_VERSION

    @property
    def where(self) -> str:
        """host:port/database, safe to show: no user, no password."""
        parts = urlsplit(self.dsn)
        host = parts.hostname or "localhost"
        port = parts.port or 5432
        return f"{host}:{port}{parts.path or '/'}"

    @property
    def sslmode(self) -> str | None:
        modes = parse_qs(urlsplit(self.dsn).query).get("sslmode", [])
        return modes[-1] if modes else None


class _Connection(asyncpg.Connection):  # type: ignore[misc]
    born: float = 0.0
    expired: bool = False


async def _no_reset(conn: asyncpg.Connection) -> None:
    return None


def _is_idle(conn: asyncpg.Connection) -> bool:
    """Whether a pool connection sits unused in the pool. asyncpg keeps a weak reference
    from each pool connection to its slot (`_pool_holder`, asyncpg 0.32) and the slot
    knows; without it the connection counts as busy and is closed on release instead."""
    ref = getattr(conn, "_pool_holder", None)
    holder = ref() if ref is not None else None
    return holder is not None and bool(holder.is_idle())


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
        self.schema_error: str | None = None
        """Why the last connect refused the database's schema version, else None."""

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
            overflow_idle=settings.postgres_overflow_idle_timeout,
            max_queries=settings.postgres_max_queries,
            statement_timeout_ms=settings.postgres_statement_timeout_ms,
            ssl_required=settings.ssl_required(),
            tls_override=settings.tls_override(),
        )
        return cls(PoolConfig(**{**config.__dict__, **overrides}))

    async def connect(self, verify_schema: bool = True) -> None:
        """Open the pool, run the health query and check the schema version; fail
        fast with a message that names host:port/db but never the credentials."""
        cfg = self.config
        if cfg.ssl_required and cfg.sslmode not in VERIFIED_SSLMODES:
            raise StoreUnavailableError(
                "TLS with a verified server certificate is required: DATABASE_URL must set "
                "sslmode=verify-full or verify-ca (require does not check the certificate)"
            )
        try:
            self._pool = await asyncpg.create_pool(
                cfg.dsn,
                min_size=cfg.min_size,
                max_size=cfg.max_size,
                max_queries=cfg.max_queries,
                max_inactive_connection_lifetime=cfg.overflow_idle,
                timeout=cfg.acquire_timeout,
                init=self._init_connection,
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
        except SchemaVersionError as e:
            self.schema_error = e.detail
            await self.close()
            raise
        except BaseException:
            await self.close()
            raise
        self.schema_error = None

    async def _init_connection(self, conn: asyncpg.Connection) -> None:
        conn.born = time.monotonic()
        for name in ("json", "jsonb"):
            await conn.set_type_codec(
                name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
            )
        lifetime = self.config.recycle * (1.0 - RECYCLE_JITTER * random.random())  # noqa: S311
        timer = asyncio.get_running_loop().call_later(lifetime, self._expire, conn)
        conn.add_termination_listener(lambda _conn: timer.cancel())

    @staticmethod
    def _expire(conn: asyncpg.Connection) -> None:
        """POSTGRES_POOL_RECYCLE ran out: close an idle connection now (asyncpg refills
        the floor), or mark a busy one so `acquire` closes it when it comes back."""
        if conn.is_closed():
            return
        conn.expired = True
        if _is_idle(conn):
            conn.terminate()

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
            if not conn.is_closed() and (
                conn.expired or time.monotonic() - conn.born > self.config.recycle
            ):
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

    def tls_status(self) -> dict[str, Any]:
        """For store-status: the sslmode asked for, whether verified TLS is required, and
        whether POSTGRES_SSL_REQUIRED=false overrides the production rule."""
        return {"sslmode": self.config.sslmode, "required": self.config.ssl_required,
                "override": self.config.tls_override}


async def remind_schema_mismatch(
    database: Database, every: float = SCHEMA_REMINDER_SECONDS
) -> None:
    """Log the refused schema version once now and then once every `every` seconds,
    without reconnecting: the mismatch does not heal by retrying."""
    while True:
        log.error(
            "PostgreSQL schema mismatch: %s. Not connecting again; /api/ready answers 503 "
            "until the API is restarted with code and schema that match",
            database.schema_error,
        )
        await asyncio.sleep(every)


async def keep_connecting(database: Database, every: float = RECONNECT_SECONDS) -> None:
    """Connect in the background, trying every `every` seconds, until the pool opens;
    a schema mismatch ends the retries (see remind_schema_mismatch)."""
    while True:
        await asyncio.sleep(every)
        try:
            await database.connect()
        except SchemaVersionError:
            await remind_schema_mismatch(database)
        except StoreUnavailableError as e:
            log.warning("PostgreSQL still unavailable: %s", e.detail)
            continue
        log.info("PostgreSQL connected")
        return
