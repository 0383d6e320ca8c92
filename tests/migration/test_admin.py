"""The admin endpoints over real HTTP: token checks, and the online modes of the
backfill and verify scripts."""

from __future__ import annotations

import httpx
from app.migration.keyed import RECORD_LISTS
from app.stores.ports import RECORD_MODELS

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


async def test_verify_memory_side_serves_memory_records_in_key_order(
    pg_database: PgDatabase,
) -> None:
    """POST /api/admin/verify/memory: what --compare-here asks the API for."""
    from tests.migration.conftest import populate

    with AdminServer(pg_database.app_dsn) as server:
        made = server.call(populate(server.app.state.graph, server.app.state.tasks, n=10))
        want = sorted(str(c.id) for c in made["contributions"])
        auth = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(base_url=server.url, headers=auth) as client:
            path = "/api/admin/verify/memory"
            assert (await client.post(path, params={"run": "r", "kind": "tasks"},
                                      headers={"Authorization": "Bearer no"})).status_code == 401
            bad = await client.post(path, params={"run": "r", "kind": "projects",
                                                  "after": '{"a": 1}'})
            assert bad.status_code == 422 and "after" in bad.json()["detail"]
            first = (await client.post(path, params={"run": "r", "kind": "contributions",
                                                     "limit": 4})).json()
            assert first["window"] == server.app.state.migration.settings.second_write_timeout
            assert [r["id"] for r in first["records"]] == want[:4]
            rest = (await client.post(path, params={
                "run": "r", "kind": "contributions", "limit": 100,
                "after": f'"{want[3]}"'})).json()["records"]
            assert [r["id"] for r in rest] == want[4:]
            # each record as the API's own JSON form of memory's record
            assert rest[0] == next(c for c in made["contributions"]
                                   if str(c.id) == want[4]).model_dump(mode="json")
            # --compare-here judges the records it rebuilds from this JSON: each must
            # come back with the very JSON form it left with, or a difference from
            # PostgreSQL could be lost (or made up) on the way
            for kind in RECORD_MODELS:
                served = (await client.post(path, params={
                    "run": f"all-{kind}", "kind": kind, "limit": 1000})).json()["records"]
                assert len(served) == len(made[kind]) > 0, kind
                back = RECORD_LISTS[kind].validate_python(served)
                assert [m.model_dump(mode="json") for m in back] == served, kind
