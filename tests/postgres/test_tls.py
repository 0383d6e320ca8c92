"""TLS to PostgreSQL for real: a server started with ssl=on and a certificate authority
plus a server certificate generated for this test (openssl), the API's pool connecting
with sslmode=verify-full and the CA as sslrootcert, and what the checks refuse.

The server certificate names only `localhost`, so the same server shows what each mode
checks: verify-full refuses 127.0.0.1 (not the name on the certificate), verify-ca
accepts it (the CA signed it), and a client trusting another CA refuses both.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
from app.errors import StoreUnavailableError
from app.settings import Settings
from app.stores.postgres.pool import Database

from devcluster.api_process import LocalApi
from devcluster.postgres import (
    APP_PASSWORD,
    PostgresServer,
    create_migrated_database,
    make_tls_files,
    start_postgres,
    with_database,
)

SSL_OF_MY_BACKEND = "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()"


@dataclass
class TlsWorld:
    server: PostgresServer
    other_ca: Path

    def app_url(self, host: str, sslmode: str, ca: Path | None = None) -> str:
        assert self.server.tls is not None
        base = with_database(self.server.dsn, "tls_db", "storemigration_app", APP_PASSWORD)
        base = base.replace("@127.0.0.1:", f"@{host}:")
        return f"{base}?sslmode={sslmode}&sslrootcert={ca or self.server.tls.ca}"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsWorld]:
    server = start_postgres(tls=True, tls_hosts=("localhost",))
    try:
        asyncio.run(create_migrated_database(server.dsn, "tls_db"))
        other = make_tls_files(tmp_path_factory.mktemp("other-ca"))
        yield TlsWorld(server, other.ca)
    finally:
        server.stop()


async def connected_ssl(url: str, **settings: object) -> tuple[bool, str]:
    db = Database.from_settings(Settings(database_url=url, postgres_pool_size=1,
                                         postgres_max_overflow=0, **settings))
    await db.connect()
    try:
        async with db.acquire() as conn:
            row = await conn.fetchrow(SSL_OF_MY_BACKEND)
    finally:
        await db.close()
    assert row is not None
    return bool(row["ssl"]), str(row["version"])


async def test_the_pool_connects_with_verify_full_and_a_root_certificate(tls: TlsWorld) -> None:
    used, version = await connected_ssl(tls.app_url("localhost", "verify-full"),
                                        app_env="production")
    assert used and version.startswith("TLS")


async def test_verify_full_checks_the_name_and_verify_ca_the_signature(tls: TlsWorld) -> None:
    with pytest.raises(StoreUnavailableError, match="cannot connect to PostgreSQL"):
        await connected_ssl(tls.app_url("127.0.0.1", "verify-full"))
    used, _ = await connected_ssl(tls.app_url("127.0.0.1", "verify-ca"), app_env="production")
    assert used
    for mode in ("verify-full", "verify-ca"):
        with pytest.raises(StoreUnavailableError) as refused:
            await connected_ssl(tls.app_url("localhost", mode, tls.other_ca))
        assert APP_PASSWORD not in str(refused.value.detail)


async def test_plain_connections_are_not_tls(tls: TlsWorld) -> None:
    plain = with_database(tls.server.dsn, "tls_db")
    conn = await asyncpg.connect(plain, ssl=False)
    try:
        assert (await conn.fetchrow(SSL_OF_MY_BACKEND))["ssl"] is False  # type: ignore[index]
    finally:
        await conn.close()


@pytest.mark.parametrize("sslmode", ["require", "prefer", "disable"])
def test_production_refuses_tls_without_certificate_checks(tls: TlsWorld, sslmode: str) -> None:
    url = tls.app_url("localhost", sslmode)
    with pytest.raises(ValueError) as refused:
        Settings(app_env="production", database_url=url)
    message = str(refused.value)
    assert "verify-full" in message and APP_PASSWORD not in message
    if sslmode == "require":
        assert "does not check the server's certificate" in message
    Settings(app_env="production", database_url=url, postgres_ssl_required=False)
    with pytest.raises(ValueError, match="verify-full"):
        Settings(app_env="development", database_url=url, postgres_ssl_required=True)


def run_api(tmp_path: Path, env: dict[str, str]) -> tuple[LocalApi, dict[str, object]]:
    api = LocalApi(tmp_path / "data", tmp_path / "api.log",
                   env={"DUAL_WRITE_MODE": "true", "JOURNAL_FSYNC": "never", **env})
    api.start()
    try:
        ready = httpx.get(f"{api.url}/api/ready", timeout=10)
        status = httpx.get(f"{api.url}/api/agent/store-status", timeout=10).json()
        assert ready.status_code == 200, ready.text
        return api, status
    finally:
        api.stop(signal.SIGTERM)


def test_the_api_process_serves_on_verify_full(tls: TlsWorld, tmp_path: Path) -> None:
    url = tls.app_url("localhost", "verify-full")
    api, status = run_api(tmp_path, {"APP_ENV": "production", "DATABASE_URL": url})
    assert status["postgres"]["tls"] == {  # type: ignore[index]
        "sslmode": "verify-full", "required": True, "override": False}
    assert "POSTGRES_SSL_REQUIRED=false" not in api.log_path.read_text()


def test_the_override_warns_at_every_start_and_shows_in_store_status(
    tls: TlsWorld, tmp_path: Path
) -> None:
    url = with_database(tls.server.dsn, "tls_db", "storemigration_app", APP_PASSWORD)
    env = {"APP_ENV": "production", "DATABASE_URL": url, "POSTGRES_SSL_REQUIRED": "false"}
    for start in (1, 2):
        api, status = run_api(tmp_path, env)
        assert status["postgres"]["tls"] == {  # type: ignore[index]
            "sslmode": None, "required": False, "override": True}
        warnings = [line for line in api.log_path.read_text().splitlines()
                    if "WARNING" in line and "POSTGRES_SSL_REQUIRED=false" in line]
        assert len(warnings) == start, warnings
        assert APP_PASSWORD not in api.log_path.read_text()
