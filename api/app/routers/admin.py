"""Admin endpoints the migration's scripts and Jobs call (the in-memory data lives
inside the API process, so a Job cannot read it any other way).

Every route needs `Authorization: Bearer <ADMIN_TOKEN>`, compared in constant time;
with no ADMIN_TOKEN configured the routes answer 403 rather than run unprotected. The
routes read `request.app.state.migration` (app.migration.wiring.MigrationState).
Errors from PostgreSQL are reported by class, never by the driver's message.
"""

from __future__ import annotations

import hmac
import logging
from contextlib import AsyncExitStack
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response

from app.errors import StoreLockedError
from app.migration.backfill import backfill
from app.migration.consistency import check_consistency, record_error
from app.migration.rehydrate import rehydrate
from app.migration.wiring import MigrationState
from app.settings import STORES
from app.stores.ports import GraphBackend, TaskBackend
from app.stores.snapshot import Snapshot, dumps

log = logging.getLogger("app.migration")


def _state(request: Request) -> MigrationState:
    state = getattr(request.app.state, "migration", None)
    if state is None:
        raise HTTPException(503, "migration state not initialised")
    return state  # type: ignore[no-any-return]


def require_admin(request: Request) -> MigrationState:
    state = _state(request)
    token = state.settings.admin_token
    if token is None or not token.get_secret_value():
        raise HTTPException(403, "admin endpoints are disabled: ADMIN_TOKEN is not configured")
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    expected = token.get_secret_value().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
        raise HTTPException(
            401, "missing or invalid admin token", headers={"WWW-Authenticate": "Bearer"}
        )
    return state


Admin = Annotated[MigrationState, Depends(require_admin)]
router = APIRouter(prefix="/api/admin", tags=["admin"])


def _need_postgres(state: MigrationState) -> None:
    if state.postgres_graph is None or state.postgres_tasks is None:
        raise HTTPException(409, "no PostgreSQL is configured (DATABASE_URL is not set)")


async def _memory(
    state: MigrationState, stack: AsyncExitStack
) -> tuple[GraphBackend, TaskBackend]:
    """Memory's two stores: the ones the service holds open or, when every store is
    PostgreSQL-primary and memory is not held, opened for this call (409 if another
    process holds memory's journal)."""
    if state.memory_opener is None:
        return state.memory_graph, state.memory_tasks
    try:
        stores = await stack.enter_async_context(state.memory_opener.open())
    except StoreLockedError:
        raise HTTPException(
            409,
            "memory's journal is locked by another process (another replica or a Job "
            "holds it); retry when it is released",
        ) from None
    return stores


def _unavailable(action: str, error: Exception) -> HTTPException:
    log.warning("admin %s failed: %s", action, type(error).__name__)
    return HTTPException(503, f"{action} failed: PostgreSQL unavailable ({type(error).__name__})")


@router.get("/snapshot")
async def snapshot(
    state: Admin, source: Literal["memory", "postgres"] = "memory"
) -> Response:
    """A snapshot of one store pair in the snapshot format (app.stores.snapshot)."""
    async with AsyncExitStack() as stack:
        if source == "postgres":
            _need_postgres(state)
            graph_store, task_store = state.postgres_graph, state.postgres_tasks
        else:
            graph_store, task_store = await _memory(state, stack)
        assert graph_store is not None and task_store is not None
        try:
            graph = await graph_store.export_graph()
            tasks = await task_store.export_tasks()
        except Exception as e:
            if source == "memory":
                raise
            raise _unavailable("snapshot", e) from None
    return Response(dumps(Snapshot.of(graph, tasks)), media_type="application/json")


@router.post("/backfill")
async def run_backfill(state: Admin) -> dict[str, Any]:
    _need_postgres(state)
    async with AsyncExitStack() as stack:
        memory_graph, memory_tasks = await _memory(state, stack)
        try:
            report = await backfill(
                memory_graph, memory_tasks, state.postgres_graph, state.postgres_tasks
            )
        except Exception as e:
            raise _unavailable("backfill", e) from None
    return {"ok": True, **report.as_dict()}


@router.post("/consistency-check")
async def consistency_check(
    state: Admin,
    sample: Annotated[float, Query(gt=0, le=1)] = 0.10,
    seed: int | None = None,
    max_mismatch: Annotated[float, Query(ge=0, le=1)] = 0.01,
    max_missing: Annotated[int | None, Query(ge=0)] = None,
) -> dict[str, Any]:
    """Compare memory with PostgreSQL. Passes when the pooled mismatch ratio is at most
    `max_mismatch` and, if `max_missing` is given, at most that many records are missing
    from PostgreSQL (promotion runs it with sample=1 and max_missing=0)."""
    _need_postgres(state)
    async with AsyncExitStack() as stack:
        memory_graph, memory_tasks = await _memory(state, stack)
        try:
            report = await check_consistency(
                memory_graph,
                state.postgres_graph,
                memory_tasks,
                state.postgres_tasks,
                sample=sample,
                seed=seed,
                recheck_delay=state.settings.second_write_timeout,
            )
        except Exception as e:
            record_error(STORES)
            raise _unavailable("consistency check", e) from None
    doc = report.as_dict()
    return {
        "passed": report.passed(max_mismatch, max_missing),
        "max_mismatch": max_mismatch,
        "max_missing": max_missing,
        **doc,
    }


@router.post("/rehydrate")
async def run_rehydrate(state: Admin) -> dict[str, Any]:
    """Rebuild memory from PostgreSQL (rolling back phase 3)."""
    _need_postgres(state)
    async with AsyncExitStack() as stack:
        memory_graph, memory_tasks = await _memory(state, stack)
        try:
            report = await rehydrate(
                state.postgres_graph, state.postgres_tasks, memory_graph, memory_tasks
            )
        except Exception as e:
            raise _unavailable("rehydrate", e) from None
    return {"ok": True, **report.as_dict()}
