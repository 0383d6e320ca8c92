"""What the service answers when something other than the client is wrong: an
unexpected exception, an unreachable PostgreSQL; and the metrics it exports."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from app.main import create_app
from app.metrics import REGISTRY, instrument_graph, instrument_tasks
from app.settings import Settings
from app.stores.memory.graph_store import MemoryGraphStore
from app.stores.memory.task_store import MemoryAgentTaskStore
from app.stores.postgres.pool import Database, PoolConfig
from fastapi import FastAPI

SECRET_DSN = "postgresql://app:hunter2-secret@127.0.0.1:1/storemigration"
METRIC_NAMES = (
    "storemigration_http_requests_total",
    "storemigration_http_request_duration_seconds",
    "storemigration_store_operations_total",
    "storemigration_store_operation_duration_seconds",
    "storemigration_pool_connections",
    "storemigration_postgres_up",
    "storemigration_dual_write_failures_total",
    "storemigration_reads_total",
    "storemigration_read_fallbacks_total",
    "storemigration_read_percent_configured",
    "storemigration_shadow_reads_total",
    "storemigration_consistency_checks_total",
    "storemigration_consistency_mismatch_ratio",
    "storemigration_consistency_last_run_timestamp_seconds",
)


class BrokenGraphStore(MemoryGraphStore):
    """A store whose count fails the way a driver might: with a DSN in the message."""

    async def count_projects(self) -> int:
        raise RuntimeError(f"could not connect to {SECRET_DSN}")


async def _client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as c:
        yield c


@pytest.fixture
async def broken() -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(), graph_store=BrokenGraphStore(), task_store=MemoryAgentTaskStore())
    async for c in _client(app):
        yield c


@pytest.fixture
async def unreachable_pg() -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(), graph_store=MemoryGraphStore(), task_store=MemoryAgentTaskStore())
    app.state.container.postgres = Database(PoolConfig(dsn=SECRET_DSN))
    async for c in _client(app):
        yield c


async def test_unexpected_exception_is_generic_500(
    broken: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="app.http"):
        response = await broken.get("/api/projects/count")
    assert response.status_code == 500
    assert response.json() == {"detail": "Internal server error"}
    assert "hunter2" not in response.text
    assert "RuntimeError" in caplog.text and "/api/projects/count" in caplog.text
    assert "hunter2" not in caplog.text
    assert (await broken.get("/api/health")).status_code == 200


async def test_ready_is_503_naming_postgres(unreachable_pg: httpx.AsyncClient) -> None:
    response = await unreachable_pg.get("/api/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not_ready" and body["checks"] == {"postgres": "unreachable"}
    assert "hunter2" not in response.text
    assert (await unreachable_pg.get("/api/health")).json()["status"] == "ok"
    metrics = (await unreachable_pg.get("/metrics")).text
    assert "storemigration_postgres_up 0.0" in metrics
    assert 'storemigration_pool_connections{state="max"}' in metrics
    status = (await unreachable_pg.get("/api/agent/store-status")).json()
    assert status["postgres"] == {
        "connected": False,
        "pool_size": 0,
        "pool_active": 0,
        "pool_idle": 0,
    }
    assert status["graph_store"] == {
        "write_target": "in-memory",
        "read_target": "in-memory",
        "read_from_postgres_percent": 0,
        "dual_write_enabled": False,
    }


async def test_every_metric_name_is_exported(client: httpx.AsyncClient) -> None:
    text = (await client.get("/metrics")).text
    for name in METRIC_NAMES:
        assert f"# TYPE {name.removesuffix('_total')}" in text, name


def _sample(name: str, labels: dict[str, str]) -> float:
    value = REGISTRY.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def test_instrumented_stores_count_operations() -> None:
    graph = instrument_graph(MemoryGraphStore(), "memory")
    tasks = instrument_tasks(MemoryAgentTaskStore(), "memory")
    app = create_app(Settings(), graph_store=graph, task_store=tasks)
    labels: dict[str, Any] = {"store": "graph", "backend": "memory", "operation": "get_contributor"}
    before_ok = _sample("storemigration_store_operations_total", labels | {"outcome": "ok"})
    before_err = _sample("storemigration_store_operations_total", labels | {"outcome": "error"})
    async for c in _client(app):
        missing = "00000000-0000-0000-0000-000000000000"
        assert (await c.get(f"/v1/contributors/{missing}")).status_code == 404
        assert (
            await c.post("/api/agent/tasks", json={"direction": "x", "task_type": "spec"})
        ).status_code == 201
        body = {"contributor_id": missing, "asset_id": missing, "cost_amount": "1"}
        assert (await c.post("/v1/contributions", json=body)).status_code == 404
    assert (
        _sample("storemigration_store_operations_total", labels | {"outcome": "ok"})
        == before_ok + 1
    )
    assert (
        _sample("storemigration_store_operations_total", labels | {"outcome": "error"})
        == before_err
    )
    count = _sample(
        "storemigration_store_operation_duration_seconds_count",
        {"store": "agent_task", "backend": "memory", "operation": "create_task"},
    )
    assert count >= 1
    assert await graph.export_graph() is not None  # replica face passes through
