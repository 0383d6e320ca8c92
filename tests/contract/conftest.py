"""The `client` fixture: an httpx client on the app, once per registered backend."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from app.main import create_app
from app.settings import Settings

from tests.contract.backends import BACKENDS


@pytest.fixture(params=sorted(BACKENDS))
async def client(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("data"))
    async with BACKENDS[request.param](request) as (graph, tasks):
        app = create_app(settings, graph_store=graph, task_store=tasks)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://contract") as c:
            yield c
