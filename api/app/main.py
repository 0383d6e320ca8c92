"""The FastAPI application with the migration: routers, admin routes, the lifespan.

`create_app` takes ready stores (tests, benchmarks) or builds them from settings in the
lifespan through app.backends, so the same app object serves every backend. Settings
that retire the migration, with no journal left in DATA_DIR
(app.postgres_service.serves_postgres_only), get the PostgreSQL-only service, the app
`python -m app` serves for them. The routers are
included with `include_router`, so their `Annotated` dependencies (app.routers.deps)
honour `app.dependency_overrides`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app import gc_policy
from app.backends import build_container
from app.container import Container
from app.postgres_service import create_postgres_app, serves_postgres_only
from app.routers import admin, switches
from app.service import SERVICE_ROUTERS, assemble
from app.settings import Settings, load_settings
from app.stores.ports import AgentTaskStore, GraphStore

log = logging.getLogger("app")


def create_app(
    settings: Settings | None = None,
    *,
    graph_store: GraphStore | None = None,
    task_store: AgentTaskStore | None = None,
) -> FastAPI:
    """The app. Given both stores it serves them as they are and closes nothing;
    otherwise its lifespan opens the stores the settings ask for and closes them."""
    settings = settings or load_settings()
    given = graph_store is not None and task_store is not None
    if (graph_store is None) != (task_store is None):
        raise ValueError("pass both graph_store and task_store, or neither")
    if not given and serves_postgres_only(settings):
        return create_postgres_app(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if given:
            yield
            return
        container = await build_container(settings)
        if settings.gc_freeze_at_start:
            log.info("froze %d objects after loading the stores", gc_policy.freeze_loaded())
        app.state.container = container
        app.state.migration = container.migration
        try:
            yield
        finally:
            await container.close()
            gc_policy.thaw()

    container: Container | None = None
    if graph_store is not None and task_store is not None:
        container = Container(settings, graph_store, task_store)
    return assemble(settings, lifespan, (*SERVICE_ROUTERS, admin.router, switches.router),
                    container)
