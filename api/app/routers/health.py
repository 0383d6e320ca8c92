"""Liveness, readiness, Prometheus metrics and the root redirect.

/api/health answers while the process can serve at all; /api/ready also checks what
requests need (PostgreSQL, when configured, within READY_TIMEOUT) and answers 503
naming the failed check, so a rollout waits and traffic drains away from a pod that
lost its database; a refused schema version is named as such, with its message.
Pool gauges are refreshed on each scrape of /metrics.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from app import metrics
from app.container import Container
from app.routers.deps import Current

router = APIRouter(tags=["health"])

POOL_STATES = ("size", "max", "active", "idle", "waiting")


def humanize(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    parts = [f"{days}d"] if days else []
    if days or hours:
        parts.append(f"{hours}h")
    if days or hours or minutes:
        parts.append(f"{minutes}m")
    parts.append(f"{secs}s")
    return " ".join(parts)


def _status(request: Request, status: str) -> dict[str, Any]:
    started: datetime = request.app.state.started_at
    now = datetime.now(UTC)
    uptime = (now - started).total_seconds()
    return {
        "status": status,
        "version": request.app.state.container.settings.api_version,
        "timestamp": now.isoformat(),
        "started_at": started.isoformat(),
        "uptime_seconds": round(uptime, 3),
        "uptime_human": humanize(uptime),
    }


@router.get("/api/health")
async def health(request: Request) -> dict[str, Any]:
    return _status(request, "ok")


async def _check_postgres(container: Container) -> str:
    assert container.postgres is not None
    if container.postgres.schema_error:
        metrics.POSTGRES_UP.set(0)
        return "schema_mismatch"
    timeout = container.settings.ready_timeout
    try:
        await asyncio.wait_for(container.postgres.check(timeout), timeout)
    except TimeoutError:
        metrics.POSTGRES_UP.set(0)
        return "timeout"
    except Exception:  # noqa: BLE001 - any failure means not ready; never echo it
        metrics.POSTGRES_UP.set(0)
        return "unreachable"
    metrics.POSTGRES_UP.set(1)
    return "ok"


@router.get("/api/ready", responses={503: {"description": "a check failed"}})
async def ready(request: Request, container: Current) -> JSONResponse:
    checks: dict[str, str] = {}
    if container.postgres is not None:
        checks["postgres"] = await _check_postgres(container)
    ok = all(v == "ok" for v in checks.values())
    body = _status(request, "ready" if ok else "not_ready") | {"checks": checks}
    if checks.get("postgres") == "schema_mismatch":
        assert container.postgres is not None
        body["detail"] = {"postgres": container.postgres.schema_error}
    return JSONResponse(body, status_code=200 if ok else 503)


@router.get("/metrics", include_in_schema=False)
async def prometheus_metrics(container: Current) -> Response:
    if container.postgres is not None:
        stats = container.postgres.stats()
        for state in POOL_STATES:
            if state in stats:
                metrics.POOL_CONNECTIONS.labels(state).set(float(stats[state]))
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)


@router.get("/", include_in_schema=False)
async def root() -> RedirectResponse:
    return RedirectResponse("/docs", status_code=307)
