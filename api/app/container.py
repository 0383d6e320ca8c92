"""What a running service holds: its stores, its settings and what to close on shutdown.

Routers read the Container through app.routers.deps and see only the store ports, so the
HTTP layer never knows which backend serves it. The Container is built by
app.backends.build_container (the migration's wiring), app.postgres_service (PostgreSQL
only, once the migration is retired) or create_app (from given stores). It imports no
backend and no migration module, so the PostgreSQL-only service can hold one.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from app.settings import Settings
from app.stores.ports import AgentTaskStore, GraphStore

log = logging.getLogger("app.container")


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
    migration: object | None = None
    """The migration's state (app.migration.wiring.MigrationState) the admin routes
    read; None when no migration router runs."""
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def close(self) -> None:
        """Close in reverse order of opening; one failing closer does not stop the rest."""
        while self.closers:
            closer = self.closers.pop()
            try:
                await closer()
            except Exception as e:  # noqa: BLE001 - shutdown must reach every store
                log.error("closing a store failed: %s", type(e).__name__)


def postgres_status(database: Any | None) -> dict[str, Any]:
    """The store-status document's `postgres` block from Database.stats() (keys size,
    max, active, idle, waiting, and connected when the database tracks it)."""
    if database is None:
        return {"connected": False, "configured": False}
    try:
        stats = dict(database.stats())
    except Exception as e:  # noqa: BLE001 - status must answer even when the pool cannot
        log.warning("postgres stats unavailable: %s", type(e).__name__)
        return {"connected": False}
    connected = stats.get("connected", stats.get("size", 0) > 0)
    doc: dict[str, Any] = {"connected": bool(connected)}
    for key in ("size", "active", "idle", "waiting", "max"):
        if key in stats:
            doc[f"pool_{key}"] = stats[key]
    if getattr(database, "schema_error", None):
        doc["schema_error"] = database.schema_error
    if hasattr(database, "tls_status"):
        doc["tls"] = database.tls_status()
    return doc
