"""The admin endpoints over real HTTP: token checks, and the online modes of the
backfill and verify scripts."""

from __future__ import annotations

import httpx

from tests.harness.postgres import PgDatabase
from tests.migration.admin_server import TOKEN, AdminServer
from tests.migration.test_rollback import run, summary


async def test_admin_endpoints_and_online_scripts(pg_database: PgDatabase) -> None:
    with AdminServer(pg_database.app_dsn) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            assert (await client.post("/api/admin/backfill")).status_code == 401
            wrong = await client.post("/api/admin/backfill",
                                      headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401
            snap = await client.get("/api/admin/snapshot?source=postgres",
                                    headers={"Authorization": f"Bearer {TOKEN}"})
            assert snap.status_code == 200 and snap.json()["format"] == "storemigration-snapshot"
        filled = run("backfill_postgres.py", "--api-url", server.url)
        assert filled.returncode == 0 and summary(filled)["ok"] is True
        verified = run("verify_data_consistency.py", "--api-url", server.url, "--sample", "0.5")
        assert verified.returncode == 0 and summary(verified)["passed"] is True
        refused = run("verify_data_consistency.py", "--api-url", server.url,
                      env={"ADMIN_TOKEN": "wrong"})
        assert refused.returncode == 2


async def test_admin_is_forbidden_without_a_configured_token(pg_database: PgDatabase) -> None:
    server = AdminServer(pg_database.app_dsn)
    server.token = None
    with server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            answer = await client.post("/api/admin/rehydrate",
                                       headers={"Authorization": "Bearer x"})
    assert answer.status_code == 403 and "ADMIN_TOKEN" in answer.json()["detail"]
