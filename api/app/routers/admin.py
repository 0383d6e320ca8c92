"""Admin endpoints the migration's scripts and Jobs call (the in-memory data lives
inside the API process, so a Job cannot read it any other way).

Every route needs `Authorization: Bearer <ADMIN_TOKEN>`, compared in constant time;
with no ADMIN_TOKEN configured the routes answer 403 rather than run unprotected. The
routes read `request.app.state.migration` (app.migration.wiring.MigrationState).
Errors from PostgreSQL are reported by class, never by the driver's message.
"""

from __future__ import annotations

import hmac
import json
import logging
from contextlib import AsyncExitStack
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request, Response

from app.errors import StoreLockedError
from app.metrics import record_backfill
from app.migration.backfill import backfill
from app.migration.chunked import MemoryLookup, verify_chunk, verify_keys
from app.migration.consistency import check_consistency, record_error
from app.migration.keyed import KINDS, RECORD_LISTS, Ordered, from_json
from app.migration.rehydrate import rehydrate
from app.migration.repair import repair
from app.migration.resumable import backfill_batch, progress
from app.migration.wiring import MigrationState
from app.settings import STORES
from app.stores.ports import GraphBackend, RangeStore, TaskBackend
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


# ---------------------------------------------------------------- at scale (issue 14)

Run = Annotated[str, Query(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._:-]+$")]
Limit = Annotated[int, Query(ge=1, le=100_000)]
# Records per backfill batch and per verify range when the caller names none: 1,000 held
# the API's p95 nearer its baseline than 5,000 (docs/BENCHMARKS.md section 9).
DEFAULT_LIMIT = 1000
Kind = Annotated[str, Query(pattern="^(" + "|".join(KINDS) + ")$")]


def _ranges(state: MigrationState) -> RangeStore:
    _need_postgres(state)
    if state.ranges is None:
        raise HTTPException(409, "key-range reads are not configured")
    return state.ranges


@router.post("/backfill/batch")
async def run_backfill_batch(
    state: Admin, run: Run, limit: Limit = DEFAULT_LIMIT, restart: bool = False,
    retry_refused: bool = False,
) -> dict[str, Any]:
    """Copy the run's next batch (keyset order, kinds in foreign-key order) and
    checkpoint it in PostgreSQL; the run's progress. A restarted Job calls it again
    with the same `run` and continues after the last committed batch (its first call
    with retry_refused: the kinds with a refused record are copied again)."""
    ranges = _ranges(state)
    async with AsyncExitStack() as stack:
        memory_graph, memory_tasks = await _memory(state, stack)
        try:
            done = await backfill_batch(
                run, memory_graph, memory_tasks, state.postgres_graph, state.postgres_tasks,
                ranges, state.runs, limit=limit, restart=restart,
                retry_refused=retry_refused)
        except ValueError as e:
            raise HTTPException(422, str(e)) from None
        except Exception as e:
            raise _unavailable("backfill batch", e) from None
    record_backfill(run, done)
    return done


@router.get("/backfill/progress")
async def backfill_progress(state: Admin, run: Run) -> dict[str, Any]:
    """done/total per kind, rate and ETA of a backfill run, from its checkpoint."""
    ranges = _ranges(state)
    try:
        rows = await ranges.checkpoint(run)
    except Exception as e:
        raise _unavailable("backfill progress", e) from None
    if not rows:
        raise HTTPException(404, f"no backfill run {run!r}")
    done = progress(rows)
    record_backfill(run, done)
    return {"run": run, **done}


async def _verify_index(state: MigrationState, run: str, kind: str,
                        memory_graph: GraphBackend, memory_tasks: TaskBackend) -> Ordered:
    """The run's sorted index of memory's records of `kind` (references, not copies),
    built when the run first asks for that kind and dropped once the kind is done."""
    name = f"verify:{run}"
    async with state.runs.lock:
        held = state.runs.runs.get(name)
        if held is None or kind not in held:
            if kind == "tasks":
                records: list[Any] = await memory_tasks.export_tasks()
            else:
                records = getattr(await memory_graph.export_graph(), kind)
            held = {kind: Ordered.of(kind, records)}
            state.runs.remember(name, held)
    return held[kind]


@router.post("/verify/chunk")
async def verify_range(
    state: Admin, run: Run, kind: Kind, limit: Limit = DEFAULT_LIMIT,
    after: Annotated[str | None, Query(max_length=2000)] = None,
) -> dict[str, Any]:
    """Compare one key range of `kind` on both stores (the next `limit` PostgreSQL rows
    after the JSON key `after`, and memory's records in that range); every missing,
    different (with both values of each field) and extra key, and where to go on."""
    ranges = _ranges(state)
    try:
        start = None if after is None else json.loads(after)
    except ValueError:
        raise HTTPException(422, "after must be a JSON key") from None
    async with AsyncExitStack() as stack:
        memory_graph, memory_tasks = await _memory(state, stack)
        index = await _verify_index(state, run, kind, memory_graph, memory_tasks)
        timeout = state.settings.second_write_timeout
        try:
            doc = await verify_chunk(
                kind, start, limit, index, ranges, MemoryLookup(memory_graph, memory_tasks),
                recheck_delay=timeout, window=timeout)
        except ValueError as e:
            raise HTTPException(422, str(e)) from None
        except Exception as e:
            raise _unavailable("verify chunk", e) from None
    if doc["done"]:
        state.runs.forget(f"verify:{run}")
    return doc


@router.post("/verify/memory")
async def verify_memory_side(
    state: Admin, run: Run, kind: Kind, limit: Limit = DEFAULT_LIMIT,
    after: Annotated[str | None, Query(max_length=2000)] = None,
) -> Response:
    """Memory's side of one key range, for a verify that compares in its own process
    (verify_data_consistency.py --compare-here): the next `limit` records of `kind`
    after the JSON key `after`, in key order, and the second-write window its recheck
    waits out. The records are serialized in one call, so the API's share of a chunk
    is a slice, not the comparison."""
    try:
        start = None if after is None else from_json(kind, json.loads(after))
    except (ValueError, TypeError):
        raise HTTPException(422, "after must be a JSON key") from None
    async with AsyncExitStack() as stack:
        memory_graph, memory_tasks = await _memory(state, stack)
        index = await _verify_index(state, run, kind, memory_graph, memory_tasks)
        records = index.after(start, limit)
    if len(records) < limit:
        state.runs.forget(f"verify:{run}")
    window = json.dumps(state.settings.second_write_timeout).encode()
    return Response(b'{"window":' + window + b',"records":' + RECORD_LISTS[kind].dump_json(records)
                    + b"}", media_type="application/json")


def _items(body: dict[str, Any]) -> list[dict[str, Any]]:
    items = body.get("keys")
    if not isinstance(items, list) or not all(
        isinstance(i, dict) and i.get("kind") in KINDS and "key" in i for i in items
    ):
        raise HTTPException(422, "keys: a list of {kind, key[, status]}")
    return items


@router.post("/verify/keys")
async def verify_listed(
    state: Admin, body: Annotated[dict[str, Any], Body()]
) -> dict[str, Any]:
    """Re-verify only the given keys (those of an earlier full verify's report)."""
    ranges = _ranges(state)
    items = _items(body)
    async with AsyncExitStack() as stack:
        memory_graph, memory_tasks = await _memory(state, stack)
        try:
            return await verify_keys(
                [(i["kind"], i["key"]) for i in items], ranges,
                MemoryLookup(memory_graph, memory_tasks),
                window=state.settings.second_write_timeout)
        except ValueError as e:
            raise HTTPException(422, str(e)) from None
        except Exception as e:
            raise _unavailable("verify keys", e) from None


@router.post("/repair")
async def repair_keys(
    state: Admin, body: Annotated[dict[str, Any], Body()], delete_extra: bool = False
) -> dict[str, Any]:
    """Copy memory's record to PostgreSQL for each missing or different key given
    (newer-wins, total_cost only through the trigger), re-verify them; extra keys are
    deleted only with delete_extra."""
    ranges = _ranges(state)
    items = _items(body)
    if any(r.route.mode.write_target == "postgres" for r in state.routers):
        raise HTTPException(409, "repair copies memory to PostgreSQL: memory must be "
                                 "the trusted store (rehydrate rebuilds memory instead)")
    async with AsyncExitStack() as stack:
        memory_graph, memory_tasks = await _memory(state, stack)
        assert state.postgres_graph is not None and state.postgres_tasks is not None
        try:
            return await repair(
                items, MemoryLookup(memory_graph, memory_tasks), state.postgres_graph,
                state.postgres_tasks, ranges, delete_extra=delete_extra,
                window=state.settings.second_write_timeout)
        except ValueError as e:
            raise HTTPException(422, str(e)) from None
        except Exception as e:
            raise _unavailable("repair", e) from None
