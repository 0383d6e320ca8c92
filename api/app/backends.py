"""Turning settings into live backends while the migration runs.

`build_container` opens the stores the settings ask for: the durable in-memory stores
(app.stores.memory), instrumented for metrics; with DATABASE_URL, the PostgreSQL stores on
one pool (app.stores.postgres), reconciled with memory (app.migration.startup) and put
behind the migration router (app.migration.wiring). When every store is
PostgreSQL-primary, memory's journal is not held open, so the service can run more than
one replica. Routers and the migration see none of this: only the Container's ports.
Once the migration is retired (Settings.postgres_only) the service is built by
app.postgres_service instead, which does not import this module.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from app.container import Container
from app.errors import StartupRefused, StoreUnavailableError
from app.metrics import instrument_graph, instrument_tasks
from app.migration import startup
from app.migration.wiring import build_migration_stores
from app.postgres_service import postgres_stores, warn_tls_override
from app.settings import STORES, Settings
from app.stores.memory.durable import DurableMemory
from app.stores.postgres.pool import Database, keep_connecting, remind_schema_mismatch
from app.stores.postgres.ranges import PostgresRanges
from app.stores.postgres.schema import SchemaVersionError

log = logging.getLogger("app.container")
COPY_RETRY_SUBDIR = "copy-retry"

Closers = list[Callable[[], Awaitable[None]]]


async def _connect(settings: Settings) -> tuple[Database, asyncio.Task[None] | None]:
    """The database, connected, or a background task that stands in for it. Where
    PostgreSQL is trusted for some store (phase 3 on, or STORE_BACKEND=postgres), or
    memory must be rebuilt from it (REHYDRATE_ON_START), any failure stops start-up
    (the process exits non-zero). Otherwise the service serves from memory while
    /api/ready answers 503: an unreachable server is retried in the background
    (app.stores.postgres.pool.keep_connecting), and a schema-version mismatch, found now
    or at a later connect, stops the retries and is logged once a minute."""
    database = Database.from_settings(settings)
    warn_tls_override(settings)
    modes = [settings.store_mode(s) for s in STORES]
    required = settings.rehydrate_on_start or any(m.write_target == "postgres" for m in modes)
    try:
        await database.connect()
        return database, None
    except SchemaVersionError as e:
        if required:
            raise StartupRefused(
                f"PostgreSQL schema mismatch and this configuration trusts PostgreSQL: "
                f"{e.detail}"
            ) from None
        return database, asyncio.create_task(remind_schema_mismatch(database))
    except StoreUnavailableError as e:
        if required:
            raise StartupRefused(
                "PostgreSQL is unreachable at start-up and this configuration needs it "
                "before serving (a store trusts PostgreSQL, or REHYDRATE_ON_START=true): "
                f"{e.detail}"
            ) from None
        log.error("PostgreSQL unavailable at start-up, retrying in background: %s", e.detail)
    return database, asyncio.create_task(keep_connecting(database))


async def _close_all(closers: Closers) -> None:
    for closer in reversed(closers):
        await closer()


async def build_container(settings: Settings) -> Container:
    """The stores the settings ask for, opened, instrumented and, when PostgreSQL is
    configured, reconciled and put behind the migration router."""
    left = settings.migration_settings_set()
    if left and all(settings.store_mode(s).backend == "postgres" for s in STORES):
        log.warning(
            "STORE_BACKEND=postgres, but migration settings are set (%s): the stores stay "
            "behind the migration router; unset them to serve PostgreSQL directly",
            ", ".join(left),
        )
    elif settings.postgres_only():
        log.warning(
            "STORE_BACKEND=postgres with no migration setting, but DATA_DIR (%s) holds "
            "files (memory's journal): served through the migration's wiring, which "
            "backfills a journal into PostgreSQL at start; drop the journal volume (the "
            "chart's post-migration values) to serve PostgreSQL directly",
            settings.data_dir,
        )
    memory = DurableMemory.from_settings(settings)
    memory_needed = settings.database_url is None or any(
        settings.store_mode(s).write_target != "postgres" for s in STORES
    )
    closers: Closers = []
    if memory_needed:
        memory_graph, memory_tasks = await memory.open()
        closers += [memory_graph.close, memory_tasks.close]
    else:
        memory_graph, memory_tasks = memory.volatile()
    graph = instrument_graph(memory_graph, "memory")
    tasks = instrument_tasks(memory_tasks, "memory")
    if settings.database_url is None:
        return Container(settings, graph, tasks, closers=closers)
    try:
        database, retrying = await _connect(settings)
    except BaseException:
        await _close_all(closers)
        raise
    closers.append(database.close)
    if retrying is not None:
        async def stop_retrying() -> None:
            retrying.cancel()

        closers.append(stop_retrying)
    pg_graph, pg_tasks = postgres_stores(database, settings)
    opener = None if memory_needed else startup.MemoryOpener(settings, memory)
    try:
        if opener is None:
            await startup.reconcile(settings, memory_graph, memory_tasks, pg_graph, pg_tasks,
                                    connected=retrying is None)
        else:
            await opener.backfill_at_start(pg_graph, pg_tasks)
    except BaseException:
        await _close_all(closers)
        raise
    routed_graph, routed_tasks, status = await build_migration_stores(
        settings, graph, tasks, database, postgres_graph=pg_graph, postgres_tasks=pg_tasks,
        retry_dir=settings.data_dir / COPY_RETRY_SUBDIR, memory_source=memory,
        ranges=PostgresRanges(database),
    )
    state = status.state
    state.memory_opener = opener
    if state.memory_hold is not None:
        closers.append(state.memory_hold.close)
    closers.append(state.close)
    closers += [routed_tasks.drain, routed_graph.drain]
    return Container(
        settings,
        routed_graph,
        routed_tasks,
        postgres=database,
        store_status=status,
        migration=state,
        closers=closers,
    )
