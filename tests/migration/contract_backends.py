"""The migration router as contract-suite backends, one per phase (0-3), over the
real in-memory stores and a real PostgreSQL database.

Run the unchanged contract suite through them with
    pytest tests/contract -p tests.migration.contract_backends
(loading this module registers the factories in tests.contract.backends.BACKENDS), or
add the ROUTER_BACKENDS entries to BACKENDS permanently.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest

from tests.contract.backends import BACKENDS

Stores = tuple[Any, Any]


def router_backend(
    phase: int,
) -> Callable[[pytest.FixtureRequest], AbstractAsyncContextManager[Stores]]:
    @asynccontextmanager
    async def factory(request: pytest.FixtureRequest) -> AsyncIterator[Stores]:
        from app.adapters.memory_agent_task_store import MemoryAgentTaskStore
        from app.adapters.memory_graph_store import MemoryGraphStore
        from app.adapters.migration_graph_router import MigratingGraphStore
        from app.adapters.migration_task_router import MigratingAgentTaskStore

        from tests.harness.postgres import (
            APP_PASSWORD,
            create_migrated_database,
            drop_database,
            postgres_stores,
            with_database,
        )
        from tests.migration.conftest import mode

        server = request.getfixturevalue("pg_server")  # sync: safe inside the test's loop
        name = f"sm_router_{uuid.uuid4().hex[:12]}"
        await create_migrated_database(server, name)
        dsn = with_database(server, name, "storemigration_app", APP_PASSWORD)
        pg_graph, pg_tasks, database = await postgres_stores(dsn)
        graph = MigratingGraphStore(MemoryGraphStore(), pg_graph, mode("graph", phase),
                                    second_write_timeout=5.0, shadow_read_percent=50,
                                    rng=random.Random(phase))
        tasks = MigratingAgentTaskStore(MemoryAgentTaskStore(), pg_tasks,
                                        mode("agent_task", phase), second_write_timeout=5.0,
                                        shadow_read_percent=50, rng=random.Random(phase))
        try:
            yield graph, tasks
            for router in (graph, tasks):
                await router.drain()
                status = router.store_status()
                assert status["dual_write_failures"] == 0, status
                assert status["read_fallbacks"] == 0, status
        finally:
            await database.close()
            await drop_database(server, name)

    return factory


ROUTER_BACKENDS = {f"router-phase{p}": router_backend(p) for p in (0, 1, 2, 3)}
BACKENDS.update(ROUTER_BACKENDS)
