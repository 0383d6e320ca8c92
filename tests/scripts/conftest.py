"""One PostgreSQL and one real API process (`python -m app`, dual-write on, an admin
token) for the whole tests/scripts package module that asks for it."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devcluster.api_process import LocalApi
from devcluster.postgres import (
    APP_PASSWORD,
    create_migrated_database,
    start_postgres,
    with_database,
)

TOKEN = "scripts-test-admin-token"
SECRET = {"sm-admin": {"token": TOKEN}}


@dataclass
class RunningApi:
    api: LocalApi
    admin_dsn: str

    @property
    def url(self) -> str:
        return self.api.url


@pytest.fixture(scope="module")
def running_api() -> Iterator[RunningApi]:
    base = Path(tempfile.mkdtemp(prefix="sm-scripts-"))
    server = start_postgres()
    api = None
    try:
        asyncio.run(create_migrated_database(server.dsn, "sm_scripts"))
        dsn = with_database(server.dsn, "sm_scripts", "storemigration_app", APP_PASSWORD)
        api = LocalApi(base / "data", base / "api.log", env={
            "DATABASE_URL": dsn, "DUAL_WRITE_MODE": "true", "ADMIN_TOKEN": TOKEN,
            "JOURNAL_FSYNC": "never"})
        api.start()
        yield RunningApi(api, with_database(server.dsn, "sm_scripts"))
    finally:
        if api is not None:
            api.stop()
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
