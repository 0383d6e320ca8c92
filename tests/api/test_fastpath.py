"""The lean dispatcher (app.fastpath) serves the plain routes itself and answers exactly
as FastAPI would: same bodies, same errors, same metrics labels; anything it cannot
serve goes to FastAPI."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from app.fastpath import lean_route
from app.main import create_app
from app.metrics import REGISTRY
from app.settings import Settings
from app.stores.memory.graph_store import MemoryGraphStore
from app.stores.memory.task_store import MemoryAgentTaskStore
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from tests.api.test_bad_input import CASES

# Every route benchmarks/mixed.lua drives, i.e. the service's hot paths.
HOT = [
    ("GET", "/api/projects/{ecosystem}/{name}"),
    ("PUT", "/api/projects/{ecosystem}/{name}"),
    ("GET", "/api/projects/count"),
    ("GET", "/api/search"),
    ("GET", "/api/agent/tasks/{task_id}"),
    ("PATCH", "/api/agent/tasks/{task_id}"),
    ("GET", "/api/agent/tasks"),
    ("POST", "/api/agent/tasks"),
    ("GET", "/v1/contributors/{contributor_id}"),
    ("GET", "/v1/assets/{asset_id}"),
    ("POST", "/v1/contributions"),
]


def make_app(fast: bool) -> FastAPI:
    return create_app(
        Settings(fast_path=fast), graph_store=MemoryGraphStore(), task_store=MemoryAgentTaskStore()
    )


@pytest.fixture
async def pair() -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """A client on the fast path and one on plain FastAPI, each with its own stores."""
    clients = [
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=make_app(fast), raise_app_exceptions=False),
            base_url="http://api",
        )
        for fast in (True, False)
    ]
    yield clients[0], clients[1]
    for c in clients:
        await c.aclose()


def test_hot_routes_qualify() -> None:
    routes = {
        (method, r.path): r
        for r in iter_route_contexts(make_app(True).router.routes)
        if isinstance(r.original_route, APIRoute)
        for method in r.methods
    }
    for key in HOT:
        assert lean_route(routes[key]) is not None, key
    # a route returning a plain dict (FastAPI serializes it) stays with FastAPI
    assert lean_route(routes[("GET", "/api/health")]) is None


async def _exercise(client: httpx.AsyncClient) -> list[tuple[int, Any]]:
    """Every hot route once, in an order that makes each one succeed."""
    out: list[tuple[int, Any]] = []

    async def go(method: str, url: str, **kw: Any) -> Any:
        r = await client.request(method, url, **kw)
        out.append((r.status_code, r.json()))
        return r.json()

    await go("PUT", "/api/projects/npm/Left-Pad", json={"version": "1.0.0", "description": "pads"})
    await go("GET", "/api/projects/NPM/left-pad")
    await go("GET", "/api/projects/count")
    await go("GET", "/api/search", params={"q": "left", "limit": "5"})
    task = await go("POST", "/api/agent/tasks", json={"direction": "do", "task_type": "impl"})
    await go("GET", f"/api/agent/tasks/{task['id']}")
    await go("PATCH", f"/api/agent/tasks/{task['id']}", json={"progress_pct": 40})
    await go("GET", "/api/agent/tasks", params={"limit": "5", "status": "pending"})
    who = await go("POST", "/v1/contributors", json={"name": "ada"})
    what = await go("POST", "/v1/assets", json={"name": "repo", "type": "CODE"})
    await go("GET", f"/v1/contributors/{who['id']}")
    await go("GET", f"/v1/assets/{what['id']}")
    await go("POST", "/v1/contributions",
             json={"contributor_id": who["id"], "asset_id": what["id"], "cost_amount": "2.5"})
    return out


async def test_hot_routes_never_reach_fastapi_routing(
    monkeypatch: pytest.MonkeyPatch,
    pair: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    calls: list[str] = []
    original = APIRoute.handle

    async def spy(self: APIRoute, scope: Any, receive: Any, send: Any) -> None:
        calls.append(self.path)
        await original(self, scope, receive, send)

    monkeypatch.setattr(APIRoute, "handle", spy)
    fast, plain = pair
    results = await _exercise(fast)
    assert all(200 <= status < 300 for status, _ in results), results
    assert calls == []
    calls.clear()
    await _exercise(plain)
    assert len(calls) == len(results)  # the spy does see FastAPI's path


def _comparable(doc: Any) -> Any:
    """Drop what differs between two stores by construction: generated ids and times."""
    if isinstance(doc, dict):
        return {k: _comparable(v) for k, v in doc.items()
                if k not in {"id", "created_at", "updated_at", "timestamp", "started_at",
                             "contributor_id", "asset_id"}}
    if isinstance(doc, list | tuple):
        return [_comparable(v) for v in doc]
    return doc


async def test_same_answers_as_fastapi(pair: tuple[httpx.AsyncClient, httpx.AsyncClient]) -> None:
    fast, plain = pair
    assert _comparable(await _exercise(fast)) == _comparable(await _exercise(plain))


EDGE_CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/api/projects/npm/missing", {}),
    ("GET", "/v1/contributors/6f1c2d4e-0000-4000-8000-000000000001", {}),
    ("PATCH", "/api/agent/tasks/task_0000000000000000", {"json": {"progress_pct": 1}}),
    ("POST", "/v1/contributions", {"json": {
        "contributor_id": "6f1c2d4e-0000-4000-8000-000000000001",
        "asset_id": "6f1c2d4e-0000-4000-8000-000000000002", "cost_amount": "1"}}),
    ("PUT", "/api/projects/npm/x", {"content": b'{"version": "1"}',
                                    "headers": {"content-type": "text/plain"}}),
    ("PUT", "/api/projects/npm/x", {"content": b'{"version": "1"}'}),
    ("PUT", "/api/projects/npm/x", {"content": b'{"version": ',
                                    "headers": {"content-type": "application/json"}}),
    ("GET", "/api/search", {"params": {"q": "x", "limit": "0"}}),
    ("GET", "/api/agent/tasks", {"params": {"status": "nope"}}),
    ("HEAD", "/api/projects/count", {}),
    ("DELETE", "/api/projects/npm/x", {}),
    ("GET", "/api/projects/count/", {}),
]
# every bad-input case of test_bad_input, then store errors and requests only FastAPI serves
ERROR_CASES = [c[:3] for c in CASES] + EDGE_CASES


@pytest.mark.parametrize(("method", "url", "kwargs"), ERROR_CASES,
                         ids=[f"{c[0]} {c[1][:40]} {i}" for i, c in enumerate(ERROR_CASES)])
async def test_errors_answered_exactly_as_fastapi(
    pair: tuple[httpx.AsyncClient, httpx.AsyncClient], method: str, url: str,
    kwargs: dict[str, Any],
) -> None:
    fast, plain = pair
    a, b = await fast.request(method, url, **kwargs), await plain.request(method, url, **kwargs)
    assert a.status_code >= 300, a.text
    assert (a.status_code, a.content) == (b.status_code, b.content)


async def test_a_body_in_several_chunks_is_joined() -> None:
    app = make_app(True)
    sent: list[dict[str, Any]] = []
    body = json.dumps({"version": "2.0.0", "description": "chunked"}).encode()
    chunks = [{"type": "http.request", "body": body[:7], "more_body": True},
              {"type": "http.request", "body": body[7:], "more_body": False}]

    async def receive() -> dict[str, Any]:
        return chunks.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "PUT",
             "path": "/api/projects/npm/chunky", "raw_path": b"/api/projects/npm/chunky",
             "query_string": b"", "root_path": "", "scheme": "http", "server": ("api", 80),
             "client": ("127.0.0.1", 1), "headers": [(b"content-type", b"application/json")]}
    await app(scope, receive, send)
    assert sent[0]["status"] == 200
    assert json.loads(sent[1]["body"])["description"] == "chunked"


async def test_metrics_carry_the_route_template(
    pair: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    fast, _ = pair
    labels = {"method": "GET", "route": "/api/projects/{ecosystem}/{name}", "status": "404"}
    before = REGISTRY.get_sample_value("storemigration_http_requests_total", labels) or 0.0
    assert (await fast.get("/api/projects/npm/nowhere")).status_code == 404
    after = REGISTRY.get_sample_value("storemigration_http_requests_total", labels)
    assert after == before + 1
