"""An in-process client on the app over non-durable memory stores."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from app.main import create_app
from app.settings import Settings
from app.stores.memory.graph_store import MemoryGraphStore
from app.stores.memory.task_store import MemoryAgentTaskStore
from fastapi import FastAPI


@pytest.fixture
def app() -> FastAPI:
    return create_app(Settings(), graph_store=MemoryGraphStore(), task_store=MemoryAgentTaskStore())


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as c:
        yield c
