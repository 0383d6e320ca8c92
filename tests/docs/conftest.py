"""One PostgreSQL server and one API process for the docs tests: the API runs dual-write
with an admin token on the migrated database `storemigration`; SETUP.md creates its own
database on the same server."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from devcluster.api_process import LocalApi
from devcluster.stack import api_on_postgres

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
    with api_on_postgres({"DUAL_WRITE_MODE": "true", "ADMIN_TOKEN": TOKEN}) as stack:
        seed(stack.api.url)
        yield DocsSetup(stack.base, stack.admin_dsn, stack.owner_dsn, stack.app_dsn, stack.api)
