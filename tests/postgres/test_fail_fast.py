"""Start-up without PostgreSQL, and a schema-version mismatch found early or late, with
the API as a real process (`python -m app`) and a PostgreSQL server of each test's own
that is halted and started again on the same port.

- Phases that serve from memory (1-2) start without PostgreSQL: /api/ready answers 503
  and the pool is retried every 5 s until it connects.
- A schema-version mismatch, at start-up or at a later connect, ends the retries: the
  process keeps serving from memory, /api/ready answers 503 naming the mismatch, and
  one error is logged per minute, not one per retry.
- Phases that trust PostgreSQL exit non-zero on either.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from app.stores.postgres.schema import EXPECTED_SCHEMA_VERSION

from devcluster.api_process import BASE_ENV, ROOT, LocalApi
from devcluster.net import free_port
from devcluster.postgres import (
    APP_PASSWORD,
    PostgresServer,
    create_migrated_database,
    start_postgres,
    with_database,
)

pytestmark = pytest.mark.slow
DB = "failfast"
PHASE_1 = {"DUAL_WRITE_MODE": "true"}
PHASE_3 = {"DUAL_WRITE_MODE": "true", "READ_FROM_POSTGRES_PERCENT": "100",
           "IN_MEMORY_WRITES": "false"}
APP_CONNECTIONS = ("SELECT count(*) FROM pg_stat_activity "
                   "WHERE application_name = 'storemigration-api'")


@pytest.fixture
def server() -> Iterator[PostgresServer]:
    pg = start_postgres()
    try:
        asyncio.run(create_migrated_database(pg.dsn, DB))
        yield pg
    finally:
        pg.stop()


def app_url(server: PostgresServer) -> str:
    return with_database(server.dsn, DB, "storemigration_app", APP_PASSWORD)


def future_schema(server: PostgresServer) -> None:
    """The database now claims a migration newer than this code ships."""
    async def insert() -> None:
        conn = await asyncpg.connect(with_database(server.dsn, DB))
        await conn.execute("INSERT INTO schema_migrations (version, name, checksum) "
                           "VALUES ($1, 'from_newer_code', repeat('0', 64))",
                           EXPECTED_SCHEMA_VERSION + 1)
        await conn.close()
    asyncio.run(insert())


def app_connections(server: PostgresServer) -> int:
    async def count() -> int:
        conn = await asyncpg.connect(server.dsn)
        try:
            return int(await conn.fetchval(APP_CONNECTIONS))
        finally:
            await conn.close()
    return asyncio.run(count())


@pytest.fixture
def api(tmp_path: Path) -> Iterator[LocalApi]:
    process = LocalApi(tmp_path / "data", tmp_path / "api.log")
    try:
        yield process
    finally:
        process.stop()


def ready(api: LocalApi) -> httpx.Response:
    return httpx.get(f"{api.url}/api/ready", timeout=10)


def wait_ready(api: LocalApi, check: str, timeout: float = 20.0) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        answer = ready(api)
        if answer.json().get("checks", {}).get("postgres") == check:
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"/api/ready never said {check}: {answer.text}")
        time.sleep(0.2)


def log_lines(api: LocalApi, *words: str) -> list[str]:
    return [line for line in api.log_path.read_text(errors="replace").splitlines()
            if all(w in line for w in words)]


def write_a_project(api: LocalApi, name: str) -> None:
    answer = httpx.put(f"{api.url}/api/projects/pypi/{name}", json={"version": "1"}, timeout=10)
    assert answer.status_code == 200, answer.text


def test_start_without_postgres_serves_from_memory_then_connects(
    server: PostgresServer, api: LocalApi
) -> None:
    server.halt()
    api.start({"DATABASE_URL": app_url(server), **PHASE_1})
    answer = wait_ready(api, "unreachable")
    assert answer.status_code == 503
    write_a_project(api, "written-while-down")
    assert log_lines(api, "ERROR", "retrying in background")
    server.start()
    answer = wait_ready(api, "ok", timeout=15)
    assert answer.status_code == 200
    assert log_lines(api, "PostgreSQL connected")
    write_a_project(api, "written-after")
    assert api.process is not None and api.process.poll() is None


def test_schema_mismatch_at_a_late_connect_stops_retrying(
    server: PostgresServer, api: LocalApi
) -> None:
    future_schema(server)
    server.halt()
    api.start({"DATABASE_URL": app_url(server), **PHASE_1})
    assert wait_ready(api, "unreachable").status_code == 503
    server.start()
    answer = wait_ready(api, "schema_mismatch", timeout=15)
    assert answer.status_code == 503
    detail = answer.json()["detail"]["postgres"]
    assert f"this code expects {EXPECTED_SCHEMA_VERSION}" in detail
    assert f"version is {EXPECTED_SCHEMA_VERSION + 1}" in detail
    found = time.monotonic()
    retries_before = len(log_lines(api, "still unavailable"))
    time.sleep(11)  # two more retry intervals: nothing may retry or log again
    assert len(log_lines(api, "ERROR", "schema mismatch")) == 1
    assert len(log_lines(api, "still unavailable")) == retries_before
    assert app_connections(server) == 0, "the retry loop stopped and keeps no pool open"
    assert ready(api).json()["checks"]["postgres"] == "schema_mismatch"
    status = httpx.get(f"{api.url}/api/agent/store-status", timeout=10).json()
    assert status["postgres"]["connected"] is False
    assert status["postgres"]["schema_error"] == detail
    write_a_project(api, "served-from-memory")  # phases 1-2 keep serving from memory
    assert api.process is not None and api.process.poll() is None
    assert time.monotonic() - found < 60, "within the first minute: one error only"


def test_schema_mismatch_at_start_in_dual_write_is_not_ready(
    server: PostgresServer, api: LocalApi
) -> None:
    future_schema(server)
    api.start({"DATABASE_URL": app_url(server), **PHASE_1})
    answer = ready(api)
    assert answer.status_code == 503 and answer.json()["checks"]["postgres"] == "schema_mismatch"
    assert len(log_lines(api, "ERROR", "schema mismatch")) == 1
    assert app_connections(server) == 0


def run_to_exit(tmp_path: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    env = {k: os.environ[k] for k in BASE_ENV if k in os.environ} | {
        "PYTHONPATH": str(ROOT / "api"), "HOST": "127.0.0.1", "PORT": str(free_port()),
        "DATA_DIR": str(tmp_path / "data"), **settings}
    return subprocess.run([sys.executable, "-m", "app"], capture_output=True, text=True,
                          timeout=60, env=env)


@pytest.mark.parametrize("phase", [PHASE_3, {"STORE_BACKEND": "postgres"}])
def test_phases_that_trust_postgres_exit_without_it(
    server: PostgresServer, tmp_path: Path, phase: dict[str, str]
) -> None:
    server.halt()
    done = run_to_exit(tmp_path, DATABASE_URL=app_url(server), **phase)
    assert done.returncode != 0
    assert "PostgreSQL is unreachable at start-up" in done.stdout + done.stderr
    assert APP_PASSWORD not in done.stdout + done.stderr


@pytest.mark.parametrize("phase", [PHASE_3, {"STORE_BACKEND": "postgres"}])
def test_phases_that_trust_postgres_exit_on_a_schema_mismatch(
    server: PostgresServer, tmp_path: Path, phase: dict[str, str]
) -> None:
    future_schema(server)
    done = run_to_exit(tmp_path, DATABASE_URL=app_url(server), **phase)
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert "schema mismatch" in output and f"this code expects {EXPECTED_SCHEMA_VERSION}" in output
