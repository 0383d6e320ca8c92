"""The `client` fixture: an httpx client on the app, once per registered backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from app.main import create_app
from app.settings import Settings

from tests.contract.backends import BACKENDS, Backend


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest) -> tuple[Backend, dict[str, Any]]:
    """The backend and the fixtures it asked for, resolved here, outside the event loop."""
    chosen = BACKENDS[request.param]
    return chosen, {name: request.getfixturevalue(name) for name in chosen.fixtures}


@pytest.fixture
async def client(
    backend: tuple[Backend, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[httpx.AsyncClient]:
    chosen, fixtures = backend
    settings = Settings(data_dir=tmp_path_factory.mktemp("data"))
    async with chosen.open(fixtures) as (graph, tasks):
        app = create_app(settings, graph_store=graph, task_store=tasks)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://contract") as c:
            yield c
