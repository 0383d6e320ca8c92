"""A NUL character (\\x00) in any string of a request body, or in metadata/context keys
and values at any depth, is a 422 naming the field, on every backend: PostgreSQL
cannot store it, so a record holding one could never be copied."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from app.main import create_app
from app.settings import Settings
from app.stores.memory.graph_store import MemoryGraphStore
from app.stores.memory.task_store import MemoryAgentTaskStore

UUID_ = "6f1c2d4e-0000-4000-8000-000000000001"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(), graph_store=MemoryGraphStore(),
                     task_store=MemoryAgentTaskStore())
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as c:
        yield c

CASES: list[tuple[str, str, dict[str, Any], str]] = [
    ("POST", "/api/agent/tasks", {"direction": "a\x00b", "task_type": "impl"}, "direction"),
    ("POST", "/api/agent/tasks",
     {"direction": "ok", "task_type": "impl", "context": {"deep": [{"k\x00": 1}]}}, "context"),
    ("POST", "/api/agent/tasks",
     {"direction": "ok", "task_type": "impl", "context": {"v": ["x", "y\x00"]}}, "context"),
    ("PUT", "/api/projects/pypi/nul", {"description": "bad\x00"}, "description"),
    ("POST", "/v1/contributors", {"name": "n\x00"}, "name"),
    ("POST", "/v1/contributors", {"name": "n", "metadata": {"a\x00": "b"}}, "metadata"),
    ("POST", "/v1/assets", {"type": "CODE", "name": "a", "metadata": {"x": "\x00"}}, "metadata"),
    ("POST", "/v1/contributions",
     {"contributor_id": UUID_, "asset_id": UUID_, "cost_amount": "1",
      "metadata": {"m": "\x00"}}, "metadata"),
]


@pytest.mark.parametrize(("method", "path", "body", "field"), CASES)
async def test_nul_in_a_body_is_a_422_naming_the_field(
    client: httpx.AsyncClient, method: str, path: str, body: dict[str, Any], field: str
) -> None:
    r = await client.request(method, path, json=body)
    assert r.status_code == 422, r.text
    errors = r.json()["detail"]
    assert any(field in e["loc"] and "NUL" in e["msg"] for e in errors), errors


async def test_nul_in_a_task_update_is_a_422(client: httpx.AsyncClient) -> None:
    created = await client.post("/api/agent/tasks", json={"direction": "d", "task_type": "impl"})
    assert created.status_code == 201
    r = await client.patch(f"/api/agent/tasks/{created.json()['id']}",
                           json={"output": "partial\x00"})
    assert r.status_code == 422 and "output" in r.json()["detail"][0]["loc"]
    ok = await client.patch(f"/api/agent/tasks/{created.json()['id']}",
                            json={"output": "text with \\u0000 escaped is fine"})
    assert ok.status_code == 200
