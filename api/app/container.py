"""What a running service holds: its stores, its settings and what to close on shutdown.

`build_container` is the one place that turns settings into live backends, so the
HTTP layer never knows which backend serves it. Today that is the durable in-memory
stores, wrapped for metrics; PostgreSQL and the migration router plug in here later
(`postgres` for /api/ready and the pool gauges, `store_status` for the router's own
store-status document).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from app.adapters.agent_task_store import AgentTaskStore
from app.adapters.graph_store import GraphStore
from app.domain.tasks import DEFAULT_ROUTING, Route
from app.errors import StoreUnavailableError
from app.metrics import instrument_graph, instrument_tasks
from app.models import TaskType
from app.settings import Settings

log = logging.getLogger("app.container")
COPY_RETRY_SUBDIR = "copy-retry"


class PostgresHandle(Protocol):
    """The PostgreSQL connection as the HTTP layer sees it.

    check() raises on any failure (unreachable, timed out); stats() returns pool
    numbers under the keys connected (bool), size, max, active, idle, waiting;
    schema_error says why the database's schema version was refused (else None)."""

    schema_error: str | None

    async def check(self, timeout: float) -> None: ...  # noqa: ASYNC109

    def stats(self) -> dict[str, Any]: ...


@dataclass
class Container:
    settings: Settings
    graph_store: GraphStore
    task_store: AgentTaskStore
    postgres: PostgresHandle | None = None
    store_status: Callable[[], dict[str, Any]] | None = None
    migration: Any = None
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def close(self) -> None:
        """Close in reverse order of opening; one failing closer does not stop the rest."""
        while self.closers:
            closer = self.closers.pop()
            try:
                await closer()
            except Exception as e:  # noqa: BLE001 - shutdown must reach every store
                log.error("closing a store failed: %s", type(e).__name__)


def build_routing(settings: Settings) -> dict[TaskType, Route]:
    """DEFAULT_ROUTING with TASK_ROUTING merged over it, field by field:
    TASK_ROUTING='{"spec": {"model": "m"}}' changes only spec's model."""
    routing = dict(DEFAULT_ROUTING)
    if settings.task_routing:
        overrides: Mapping[str, Any] = json.loads(settings.task_routing)
        for key, value in overrides.items():
            try:
                task_type = TaskType(key)
            except ValueError:
                raise SystemExit(f"TASK_ROUTING: unknown task_type {key!r}") from None
            if not isinstance(value, dict):
                raise SystemExit(f"TASK_ROUTING: entry {key!r} must be an object")
            merged = routing[task_type].model_dump() | value
            try:
                routing[task_type] = Route.model_validate(merged)
            except ValueError:
                raise SystemExit(
                    f"TASK_ROUTING: entry {key!r} needs string model, tier and command"
                ) from None
    return routing


async def _open_memory(
    settings: Settings, routing: dict[TaskType, Route]
) -> tuple[Any, Any]:
    from app.adapters.memory_agent_task_store import MemoryAgentTaskStore
    from app.adapters.memory_graph_store import MemoryGraphStore

    durability: dict[str, Any] = {
        "fsync": settings.journal_fsync,
        "fsync_interval_ms": settings.journal_fsync_interval_ms,
        "snapshot_every": settings.snapshot_every,
    }
    graph = await MemoryGraphStore.open(settings.data_dir, **durability)
    try:
        tasks = await MemoryAgentTaskStore.open(settings.data_dir, routing=routing, **durability)
    except BaseException:
        await graph.close()
        raise
    return graph, tasks


async def _connect(settings: Settings) -> tuple[Any, asyncio.Task[None] | None]:
    """The database, connected, or a background task that stands in for it. Where
    PostgreSQL is trusted for some store (phase 3 on, or STORE_BACKEND=postgres), or
    memory must be rebuilt from it (REHYDRATE_ON_START), any failure stops start-up
    (the process exits non-zero). Otherwise the service serves from memory while
    /api/ready answers 503: an unreachable server is retried in the background
    (app.db.pool.keep_connecting), and a schema-version mismatch, found now or at a
    later connect, stops the retries and is logged once a minute."""
    from app.db.migrate import SchemaVersionError
    from app.db.pool import Database, keep_connecting, remind_schema_mismatch
    from app.migration.startup import StartupRefused

    database = Database.from_settings(settings)
    if settings.tls_override():
        log.warning(
            "POSTGRES_SSL_REQUIRED=false: APP_ENV=production but TLS to PostgreSQL is not "
            "required, so the server's identity and the credentials are unprotected in "
            "transit (store-status shows postgres.tls.override=true)"
        )
    modes = [settings.store_mode(s) for s in ("graph", "agent_task")]
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


async def _close_all(closers: list[Callable[[], Awaitable[None]]]) -> None:
    for closer in reversed(closers):
        await closer()


async def build_container(settings: Settings) -> Container:
    """The stores the settings ask for, opened, instrumented and, when PostgreSQL is
    configured, reconciled (app.migration.startup) and put behind the migration router
    (app.migration.wiring). When every store is PostgreSQL-primary, memory's journal is
    not held open, so the service can run more than one replica."""
    from app.adapters.memory_agent_task_store import MemoryAgentTaskStore
    from app.adapters.memory_graph_store import MemoryGraphStore
    from app.migration import startup
    from app.migration.wiring import build_migration_stores, postgres_stores

    routing = build_routing(settings)
    memory_needed = settings.database_url is None or any(
        settings.store_mode(s).write_target != "postgres" for s in ("graph", "agent_task")
    )
    closers: list[Callable[[], Awaitable[None]]] = []
    if memory_needed:
        memory_graph, memory_tasks = await _open_memory(settings, routing)
        closers += [memory_graph.close, memory_tasks.close]
    else:
        memory_graph, memory_tasks = MemoryGraphStore(), MemoryAgentTaskStore(routing=routing)
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
    opener = None if memory_needed else startup.MemoryOpener(settings, routing)
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
        retry_dir=settings.data_dir / COPY_RETRY_SUBDIR,
    )
    state = getattr(status, "state", None)
    if state is not None:
        state.memory_opener = opener
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
