"""The FastAPI application: routers, error handlers, the guard middleware, the lifespan.

`create_app` takes ready stores (tests, benchmarks) or builds them from settings in the
lifespan through app.container, so the same app object serves every backend.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from fastapi import FastAPI

from app import http_errors
from app.adapters.agent_task_store import AgentTaskStore
from app.adapters.graph_store import GraphStore
from app.container import Container, build_container, build_routing
from app.fastpath import FastPathMiddleware
from app.middleware import GuardMiddleware
from app.routers import admin, agent, graph, health, ledger, switches
from app.settings import Settings, load_settings


def create_app(
    settings: Settings | None = None,
    *,
    graph_store: GraphStore | None = None,
    task_store: AgentTaskStore | None = None,
) -> FastAPI:
    """The app. Given both stores it serves them as they are and closes nothing;
    otherwise its lifespan opens the stores the settings ask for and closes them."""
    settings = settings or load_settings()
    build_routing(settings)
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
    app.state.container = (
        Container(settings=settings, graph_store=graph_store, task_store=task_store)  # type: ignore[arg-type]
        if given
        else None
    )
    http_errors.install(app)
    for module in (health, graph, ledger, agent, admin, switches):
        # Flat, not include_router: this FastAPI matches every request through both the
        # app's and the included router's route lists (17-26 us a request, ~10% of the
        # maximum rate); the routes already carry their prefixes and tags. Stores are
        # given to create_app, so app.dependency_overrides is not used (nor honoured).
        app.router.routes.extend(module.router.routes)
    app.add_middleware(FastPathMiddleware, owner=app, enabled=settings.fast_path)
    app.add_middleware(GuardMiddleware)
    return app
