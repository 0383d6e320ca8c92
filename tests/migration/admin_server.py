"""A real HTTP server with the admin router, for the scripts' tests: uvicorn in a
thread, its stores (memory + PostgreSQL on `dsn`) opened in the server's own loop."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from app.migration.wiring import build_migration_stores
from app.routers.admin import router
from app.settings import Settings
from app.stores.postgres.ranges import PostgresRanges
from fastapi import FastAPI

from tests.harness.postgres import postgres_stores

TOKEN = "test-admin-token-123"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class AdminServer:
    def __init__(self, dsn: str, phase_env: dict[str, Any] | None = None) -> None:
        self.dsn = dsn
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = phase_env or {"dual_write_mode": True}
        self.token: str | None = TOKEN
        self.app = FastAPI(lifespan=self._lifespan)
        self.app.include_router(router)
        self.server = uvicorn.Server(
            uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning",
                           lifespan="on")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @asynccontextmanager
    async def _lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        from app.stores.memory.graph_store import MemoryGraphStore
        from app.stores.memory.task_store import MemoryAgentTaskStore

        settings = Settings(database_url=self.dsn, admin_token=self.token, **self.env)
        pg_graph, pg_tasks, database = await postgres_stores(self.dsn)
        graph, tasks, status = await build_migration_stores(
            settings, MemoryGraphStore(), MemoryAgentTaskStore(), database,
            postgres_graph=pg_graph, postgres_tasks=pg_tasks, ranges=PostgresRanges(database),
        )
        app.state.migration = status.state  # type: ignore[attr-defined]
        app.state.graph, app.state.tasks = graph, tasks
        self.loop = asyncio.get_running_loop()
        try:
            yield
        finally:
            await status.state.close()  # type: ignore[attr-defined]
            await database.close()

    def call(self, work: Awaitable[Any], timeout: float = 60.0) -> Any:
        """Run `work` (a coroutine on the server's stores) in the server's own loop."""
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout)  # type: ignore[arg-type]

    def __enter__(self) -> AdminServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("admin server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
