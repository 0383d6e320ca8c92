"""Health, readiness, metrics, the root redirect and the store-status document."""

from __future__ import annotations

import httpx

from tests.contract.helpers import ok, ts

STORE_KEYS = {"write_target", "read_target", "read_from_postgres_percent", "dual_write_enabled"}


async def test_health(client: httpx.AsyncClient) -> None:
    body = ok(await client.get("/api/health"))
    assert body["status"] == "ok" and isinstance(body["version"], str)
    assert ts(body["timestamp"]) >= ts(body["started_at"])
    assert body["uptime_seconds"] >= 0 and isinstance(body["uptime_human"], str)


async def test_ready(client: httpx.AsyncClient) -> None:
    body = ok(await client.get("/api/ready"))
    assert body["status"] == "ready"
    assert {"version", "timestamp", "started_at", "uptime_seconds", "uptime_human"} <= set(body)


async def test_root_redirects_to_docs(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 307 and response.headers["location"] == "/docs"
    assert (await client.get("/docs")).status_code == 200


async def test_metrics_count_requests_by_route_template(client: httpx.AsyncClient) -> None:
    await client.get("/api/projects/pypi/some-unique-name-for-metrics")
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'route="/api/projects/{ecosystem}/{name}"' in text
    assert "some-unique-name-for-metrics" not in text
    for name in (
        "storemigration_http_requests_total",
        "storemigration_http_request_duration_seconds",
    ):
        assert name in text


async def test_store_status_shape(client: httpx.AsyncClient) -> None:
    body = ok(await client.get("/api/agent/store-status"))
    for store in ("graph_store", "agent_task_store"):
        assert STORE_KEYS <= set(body[store])
        assert body[store]["write_target"] in ("in-memory", "dual", "postgres")
        assert body[store]["read_target"] in ("in-memory", "split", "postgres")
        assert 0 <= body[store]["read_from_postgres_percent"] <= 100
        assert isinstance(body[store]["dual_write_enabled"], bool)
    assert isinstance(body["postgres"]["connected"], bool)
