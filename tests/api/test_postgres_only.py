"""After Cleanup (STORE_BACKEND=postgres, no migration setting) `python -m app` serves the
PostgreSQL stores directly: the real entry point, under uvicorn, serving real requests,
never imports the memory store, the migration router or the migration's wiring, and
needs no DATA_DIR, and serves what the migration put into PostgreSQL. The control, which
shows the module check can fail, runs first: the same settings with memory's journal
still mounted keep the migration's wiring, whose start-up backfills the journal into
PostgreSQL (the safety net for data that never went through the migration), and name
the journal volume in the log.

The process is `app.__main__.main()` started from `python -c`, which also registers an
atexit hook writing sorted(sys.modules) to a file once uvicorn has shut down on SIGTERM:
the production code carries no introspection of its own.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from app.domain.tasks import DEFAULT_ROUTING
from app.models import ProjectUpsert
from app.stores.memory.durable import DurableMemory

from tests.api.test_process import env, free_port
from tests.harness.postgres import PgDatabase

TOKEN = "postgres-only-admin-token"
# uvicorn re-raises the SIGTERM it shut down on once it restored the handler it found:
# this one exits normally, so the atexit hook runs.
RUN = ("import atexit, json, signal, sys; "
       "atexit.register(lambda: open(sys.argv[1], 'w').write(json.dumps(sorted(sys.modules)))); "
       "signal.signal(signal.SIGTERM, lambda *_: sys.exit(0)); "
       "from app.__main__ import main; main([])")
RETIRED = ("app.migration", "app.stores.memory", "app.backends", "app.main",
           "app.routers.admin", "app.routers.switches")


def retired(modules: list[str]) -> list[str]:
    return [m for m in modules if m.startswith(RETIRED)]


class Served:
    """One `python -m app` process; `modules` is what it had imported when it exited."""

    def __init__(self, tmp: Path, dsn: str, **settings: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.out, self.log = tmp / f"modules-{self.port}.json", tmp / f"api-{self.port}.log"
        self.data_dir = tmp / f"data-{self.port}"
        self.env = env(PORT=str(self.port), DATABASE_URL=dsn, DATA_DIR=str(self.data_dir),
                       ADMIN_TOKEN=TOKEN, STORE_BACKEND="postgres", **settings)

    def __enter__(self) -> Served:
        with self.log.open("wb") as log:
            self.process = subprocess.Popen([sys.executable, "-c", RUN, str(self.out)],
                                            env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()
            try:
                if httpx.get(f"{self.url}/api/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.05)
        raise TimeoutError(self.log.read_text()[-2000:])

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)

    @property
    def modules(self) -> list[str]:
        assert self.process.returncode == 0, self.log.read_text()
        found: list[str] = json.loads(self.out.read_text())
        return found

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.url + path, headers={"Authorization": f"Bearer {TOKEN}"},
                         timeout=10)


def _write_and_read(api: Served, name: str) -> None:
    put = httpx.put(f"{api.url}/api/projects/pypi/{name}", json={"version": "1.0"}, timeout=10)
    assert put.status_code in (200, 201), put.text
    got = api.get(f"/api/projects/pypi/{name}")
    assert got.status_code == 200 and got.json()["version"] == "1.0"


async def test_postgres_only_process_never_loads_memory_or_migration(
    pg_database: PgDatabase, tmp_path: Path
) -> None:
    routed = Served(tmp_path, pg_database.app_dsn)
    graph, tasks = await DurableMemory(routed.data_dir, dict(DEFAULT_ROUTING)).open()
    await graph.upsert_project("pypi", "only-in-the-journal", ProjectUpsert(version="0.9"))
    await tasks.close()
    await graph.close()
    with routed:
        assert routed.get("/api/projects/pypi/only-in-the-journal").json()["version"] == "0.9"
        assert routed.get("/api/admin/switches").status_code == 200
    assert {"app.migration.router", "app.stores.memory.durable", "app.main"} <= set(
        retired(routed.modules)), "a journal left in DATA_DIR keeps the migration's wiring"
    assert "drop the journal volume" in routed.log.read_text()

    with Served(tmp_path, pg_database.app_dsn, DUAL_WRITE_MODE="false") as api:
        assert api.get("/api/projects/pypi/only-in-the-journal").json()["version"] == "0.9"
        _write_and_read(api, "served-directly")
        status = api.get("/api/agent/store-status").json()
        ready = api.get("/api/ready")
        switches = api.get("/api/admin/switches")
        metrics = api.get("/metrics").text
    for store in ("graph_store", "agent_task_store"):
        assert status[store]["write_target"] == status[store]["read_target"] == "postgres"
        assert status[store]["migration"] == "retired"
    assert status["postgres"]["connected"] is True and status["switches"] is None
    assert ready.status_code == 200 and ready.json()["checks"] == {"postgres": "ok"}
    assert switches.status_code == 404, "no live switches once the migration is retired"
    assert 'backend="postgres"' in metrics and 'backend="memory"' not in metrics
    assert not api.data_dir.exists(), "nothing opens DATA_DIR (no journal volume needed)"
    modules = api.modules
    assert retired(modules) == []
    assert {"app.postgres_service", "app.stores.postgres.graph_store"} <= set(modules)
