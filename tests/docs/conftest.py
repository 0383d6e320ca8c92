"""One PostgreSQL server and one API process for the docs tests: the API runs dual-write
with an admin token on the migrated database `storemigration`; SETUP.md creates its own
database on the same server."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from devcluster.api_process import LocalApi
from devcluster.postgres import (
    APP_PASSWORD,
    create_migrated_database,
    start_postgres,
    with_database,
)

TOKEN = "docs-test-admin-token"


@dataclass
class DocsSetup:
    base: Path
    admin_dsn: str
    schema_dsn: str
    app_dsn: str
    api: LocalApi

    @property
    def pg_host_port(self) -> tuple[str, int]:
        parts = urlsplit(self.admin_dsn)
        assert parts.hostname and parts.port
        return parts.hostname, parts.port


def seed(url: str) -> None:
    with httpx.Client(base_url=url, timeout=10) as c:
        for i in range(3):
            c.put(f"/api/projects/pypi/docs-{i}", json={"version": "1.0"}).raise_for_status()
        dev = c.post("/v1/contributors", json={"name": "docs"}).json()["id"]
        asset = c.post("/v1/assets", json={"type": "CODE", "description": "d"}).json()["id"]
        c.post("/v1/contributions", json={"contributor_id": dev, "asset_id": asset,
                                          "cost_amount": "5.00", "metadata": {}}
               ).raise_for_status()
        for i in range(5):
            c.post("/api/agent/tasks", json={"direction": f"docs {i}", "task_type": "impl"}
                   ).raise_for_status()


@pytest.fixture(scope="module")
def docs_setup() -> Iterator[DocsSetup]:
    base = Path(tempfile.mkdtemp(prefix="sm-docs-"))
    server = start_postgres()
    api = None
    try:
        asyncio.run(create_migrated_database(server.dsn, "storemigration"))
        app_dsn = with_database(server.dsn, "storemigration", "storemigration_app", APP_PASSWORD)
        api = LocalApi(base / "api-data", base / "api.log", env={
            "DATABASE_URL": app_dsn, "DUAL_WRITE_MODE": "true", "ADMIN_TOKEN": TOKEN,
            "JOURNAL_FSYNC": "never"})
        api.start()
        seed(api.url)
        yield DocsSetup(base, server.dsn, with_database(server.dsn, "storemigration"), app_dsn,
                        api)
    finally:
        if api is not None:
            api.stop()
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
