"""The FastAPI application every composition of the service serves.

Why a module of its own: the service is assembled two ways, through the migration's
wiring (app.main, app.backends) and, once the migration is retired, with the PostgreSQL
stores alone (app.postgres_service). Both must answer the same API with the same error
handlers and middleware, and the PostgreSQL-only one must not import the migration's
routers, so what they share lives here and names no store and no migration module.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime

from fastapi import APIRouter, FastAPI

from app import http_errors
from app.container import Container
from app.fastpath import FastPathMiddleware
from app.middleware import GuardMiddleware
from app.routers import agent, graph, health, ledger
from app.settings import Settings

# The routers every composition serves: the API itself, readiness and store-status.
SERVICE_ROUTERS: tuple[APIRouter, ...] = (
    health.router, graph.router, ledger.router, agent.router,
)


Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def assemble(
    settings: Settings,
    lifespan: Lifespan,
    routers: Sequence[APIRouter],
    container: Container | None = None,
) -> FastAPI:
    """The app with `routers`, the error handlers and the middleware; `container` is
    served as given (else the lifespan sets app.state.container)."""
    app = FastAPI(
        title="StoreMigration API",
        version=settings.api_version,
        description="Projects, contributions and agent tasks; see docs/CONTRACT.md.",
        lifespan=lifespan,
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.started_at = datetime.now(UTC)
    app.state.container = container
    app.state.migration = None
    http_errors.install(app)
    for router in routers:
        app.include_router(router)
    app.add_middleware(FastPathMiddleware, owner=app, enabled=settings.fast_path)
    app.add_middleware(GuardMiddleware)
    return app
