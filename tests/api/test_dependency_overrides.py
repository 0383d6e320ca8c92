"""`app.dependency_overrides` replaces a store the way FastAPI documents it, on the fast path
as well as on FastAPI's own: the routes are included with include_router and take their
stores through the Annotated dependencies of app.routers.deps."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from app.main import create_app
from app.models import AgentTaskCreate, TaskType
from app.routers.deps import get_graph, get_tasks
from app.settings import Settings
from app.stores.memory.graph_store import MemoryGraphStore
from app.stores.memory.task_store import MemoryAgentTaskStore
from fastapi import FastAPI, Request
from fastapi.routing import APIRoute


class Served:
    """The app's own stores and the stand-ins a test puts in through the overrides."""

    def __init__(self, fast_path: bool) -> None:
        self.fast_path = fast_path
        self.graph, self.tasks = MemoryGraphStore(), MemoryAgentTaskStore()
        self.other_graph, self.other_tasks = MemoryGraphStore(), MemoryAgentTaskStore()
        self.app: FastAPI = create_app(
            Settings(fast_path=fast_path), graph_store=self.graph, task_store=self.tasks
        )


@pytest.fixture(params=[True, False], ids=["fast-path", "fastapi"])
def served(request: pytest.FixtureRequest) -> Served:
    return Served(fast_path=request.param)


@pytest.fixture
async def client(served: Served) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=served.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as c:
        yield c


@pytest.fixture
def fastapi_handled(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Paths of the requests FastAPI's routing handled (the fast path bypasses it)."""
    calls: list[str] = []
    original = APIRoute.handle

    async def spy(self: APIRoute, scope: Any, receive: Any, send: Any) -> None:
        calls.append(self.path)
        await original(self, scope, receive, send)

    monkeypatch.setattr(APIRoute, "handle", spy)
    return calls


async def test_a_coroutine_override_replaces_the_store(
    served: Served, client: httpx.AsyncClient, fastapi_handled: list[str]
) -> None:
    async def other_graph(request: Request) -> MemoryGraphStore:
        return served.other_graph

    served.app.dependency_overrides[get_graph] = other_graph
    put = await client.put("/api/projects/npm/left-pad", json={"version": "1.0.0"})
    assert put.status_code == 200, put.text
    assert await served.other_graph.get_project("npm", "left-pad") is not None
    assert await served.graph.get_project("npm", "left-pad") is None
    assert (await client.get("/api/projects/npm/left-pad")).status_code == 200
    # a coroutine taking the Request qualifies for the fast path: it served both requests
    assert fastapi_handled == ([] if served.fast_path else ["/api/projects/{ecosystem}/{name}"] * 2)

    served.app.dependency_overrides.clear()
    assert (await client.get("/api/projects/npm/left-pad")).status_code == 404


async def test_a_plain_function_override_is_honoured_through_fastapi(
    served: Served, client: httpx.AsyncClient, fastapi_handled: list[str]
) -> None:
    task = await served.other_tasks.create_task(
        AgentTaskCreate(direction="only in the stand-in", task_type=TaskType.impl)
    )
    served.app.dependency_overrides[get_tasks] = lambda: served.other_tasks
    got = await client.get(f"/api/agent/tasks/{task.id}")
    assert got.status_code == 200, got.text
    assert got.json()["direction"] == "only in the stand-in"
    # a sync override needs FastAPI's thread hand-off: the fast path hands the request over
    assert fastapi_handled == ["/api/agent/tasks/{task_id}"]
    assert (await client.get("/api/agent/tasks/count")).json()["total"] == 1
