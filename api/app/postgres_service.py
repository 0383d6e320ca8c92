"""The service once the migration is retired: the PostgreSQL stores, wired directly.

Why: after Cleanup (STORE_BACKEND=postgres, no migration setting left: see
Settings.postgres_only) every request used to pass through the migration router, with
memory's code loaded and its journal volume required. `serves_postgres_only` also asks
that DATA_DIR hold nothing: a journal left there is what the migration's start-up
backfills into PostgreSQL before it serves (newer wins), the safety net for a
STORE_BACKEND=postgres set by hand on data that never went through the migration, so
while one is mounted the service keeps that wiring (app.backends says so in its log)
until the chart's post-migration values drop the volume. Here the HTTP layer holds the
PostgreSQL stores themselves, instrumented for metrics as in every phase (backend
"postgres"); nothing opens DATA_DIR; the migration's admin routes (snapshot, backfill,
consistency-check, rehydrate, switches) are not served, since nothing is left to move.
Readiness (/api/ready) and /api/agent/store-status stay and say PostgreSQL.

This module, and all it imports, never reaches app.migration, app.stores.memory or the
migration's wiring (an import-linter contract), so `python -m app` in this mode never
loads them. PostgreSQL is the only store: unreachable at start-up, or a schema version
this code refuses, stops the process with a non-zero exit.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from app.container import Container, postgres_status
from app.errors import StartupRefused, StoreUnavailableError
from app.metrics import instrument_graph, instrument_tasks
from app.service import SERVICE_ROUTERS, assemble
from app.settings import STORES, Settings
from app.stores.ports import GraphBackend, TaskBackend
from app.stores.postgres.graph_store import PostgresGraphStore
from app.stores.postgres.pool import Database
from app.stores.postgres.schema import SchemaVersionError
from app.stores.postgres.task_store import PostgresAgentTaskStore

log = logging.getLogger("app.container")


def holds_files(data_dir: Path) -> bool:
    """Whether DATA_DIR holds anything (unreadable counts as holding)."""
    try:
        return data_dir.exists() and (not data_dir.is_dir() or any(data_dir.iterdir()))
    except OSError:
        return True


def serves_postgres_only(settings: Settings) -> bool:
    """Whether `python -m app` serves these settings with this module: the migration is
    retired (Settings.postgres_only) and no journal is left in DATA_DIR."""
    return settings.postgres_only() and not holds_files(settings.data_dir)


def postgres_stores(database: Database, settings: Settings) -> tuple[GraphBackend, TaskBackend]:
    """PostgreSQL stores on `database`, instrumented as backend="postgres"."""
    return (
        instrument_graph(PostgresGraphStore(database), "postgres"),
        instrument_tasks(PostgresAgentTaskStore(database, settings.task_routing), "postgres"),
    )


def warn_tls_override(settings: Settings) -> None:
    if settings.tls_override():
        log.warning(
            "POSTGRES_SSL_REQUIRED=false: APP_ENV=production but TLS to PostgreSQL is not "
            "required, so the server's identity and the credentials are unprotected in "
            "transit (store-status shows postgres.tls.override=true)"
        )


def store_status(database: Database) -> dict[str, Any]:
    """The spec's store-status document with PostgreSQL as the only store."""
    stores = {
        f"{store}_store": {
            "write_target": "postgres",
            "read_target": "postgres",
            "read_from_postgres_percent": 100,
            "dual_write_enabled": False,
            "migration": "retired",
        }
        for store in STORES
    }
    return stores | {"postgres": postgres_status(database), "switches": None}


async def build_postgres_container(settings: Settings) -> Container:
    """The PostgreSQL stores on one pool, connected; StartupRefused if they cannot be."""
    database = Database.from_settings(settings)
    warn_tls_override(settings)
    try:
        await database.connect()
    except SchemaVersionError as e:
        raise StartupRefused(
            f"PostgreSQL schema mismatch and this configuration trusts PostgreSQL: {e.detail}"
        ) from None
    except StoreUnavailableError as e:
        raise StartupRefused(
            "PostgreSQL is unreachable at start-up and this configuration needs it before "
            f"serving (STORE_BACKEND=postgres, PostgreSQL is the only store): {e.detail}"
        ) from None
    graph, tasks = postgres_stores(database, settings)
    log.info("PostgreSQL only: the stores are served directly (no migration router)")
    return Container(
        settings,
        graph,
        tasks,
        postgres=database,
        store_status=lambda: store_status(database),
        closers=[database.close],
    )


def create_postgres_app(settings: Settings) -> FastAPI:
    """The app for settings `serves_postgres_only` accepts."""
    if not serves_postgres_only(settings):
        raise ValueError("the PostgreSQL-only service needs STORE_BACKEND=postgres, no "
                         f"migration setting (set: {settings.migration_settings_set()}) and "
                         "an empty or absent DATA_DIR")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        container = await build_postgres_container(settings)
        app.state.container = container
        try:
            yield
        finally:
            await container.close()

    return assemble(settings, lifespan, SERVICE_ROUTERS)
