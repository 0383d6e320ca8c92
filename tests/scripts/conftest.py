"""One PostgreSQL and one real API process (`python -m app`, dual-write on, an admin
token) for the whole tests/scripts package module that asks for it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from devcluster.api_process import LocalApi
from devcluster.stack import api_on_postgres

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
    env = {"DUAL_WRITE_MODE": "true", "ADMIN_TOKEN": TOKEN}
    with api_on_postgres(env, database="sm_scripts") as stack:
        yield RunningApi(stack.api, stack.owner_dsn)
