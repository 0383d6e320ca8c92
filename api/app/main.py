"""The FastAPI application: routers, error handlers, the guard middleware, the lifespan.

`create_app` takes ready stores (tests, benchmarks) or builds them from settings in the
lifespan through app.backends, so the same app object serves every backend. The routers
are included with `include_router`, so their `Annotated` dependencies (app.routers.deps)
honour `app.dependency_overrides`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from fastapi import FastAPI

from app import http_errors
from app.backends import build_container
from app.container import Container
from app.fastpath import FastPathMiddleware
from app.middleware import GuardMiddleware
from app.routers import admin, agent, graph, health, ledger, switches
from app.settings import Settings, load_settings
from app.stores.ports import AgentTaskStore, GraphStore


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

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if given:
            yield
            return
        container = await build_container(settings)
        app.state.container = container
        app.state.migration = container.migration
        try:
            yield
        finally:
            await container.close()

    app = FastAPI(
        title="StoreMigration API",
        version=settings.api_version,
        description="Projects, contributions and agent tasks; see docs/CONTRACT.md.",
        lifespan=lifespan,
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.started_at = datetime.now(UTC)
    app.state.container = None
    if graph_store is not None and task_store is not None:
        app.state.container = Container(settings, graph_store, task_store)
    http_errors.install(app)
    for module in (health, graph, ledger, agent, admin, switches):
        app.include_router(module.router)
    app.add_middleware(FastPathMiddleware, owner=app, enabled=settings.fast_path)
    app.add_middleware(GuardMiddleware)
    return app
