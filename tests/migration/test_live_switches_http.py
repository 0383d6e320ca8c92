"""The live switches through PUT /api/admin/switches on a real API process (`python -m
app` on a real PostgreSQL): the endpoint's contract (token, 422 naming the switch,
idempotency, revision and fingerprint, metrics, store-status); switching under a mixed
HTTP load with no failed request, ending with the full consistency check both ways;
a live rollback in a process that started with every store PostgreSQL-primary, whose
rebuilt memory survives a restart. The rollback of reads to 0% is timed and printed
(a measurement, not an assertion)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from app.main import create_app
from app.migration.consistency import GRAPH_KINDS, record_key
from app.settings import Settings
from app.stores.snapshot import loads

from devcluster.api_process import LocalApi
from tests.harness.postgres import PgDatabase
from tests.migration.http_load import (
    HttpLoad,
    assert_acknowledged,
    from_json,
    http_writer,
)

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "live-switch-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PRIMARY = {"dual_write": True, "memory_writes": False, "read_percent": 100}


@pytest.fixture
def api_factory(pg_database: PgDatabase, tmp_path: Path) -> Iterator[Any]:
    started: list[LocalApi] = []

    def start(**env: str) -> LocalApi:
        api = LocalApi(tmp_path / "data", tmp_path / "api.log", env={
            "DATABASE_URL": pg_database.app_dsn, "JOURNAL_FSYNC": "never",
            "ADMIN_TOKEN": TOKEN, "SECOND_WRITE_TIMEOUT": "5", **env})
        api.start()
        started.append(api)
        return api

    yield start
    for api in started:
        api.stop()


async def put(client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    return await client.put("/api/admin/switches", json=body, headers=AUTH)


def metric(text: str, name: str, store: str | None = None) -> float:
    prefix = f'{name}{{store="{store}"}} ' if store else f"{name} "
    line = next(line for line in text.splitlines() if line.startswith(prefix))
    return float(line.split()[-1])


async def test_the_endpoint_contract(api_factory: Any) -> None:
    api = api_factory(DUAL_WRITE_MODE="true")
    async with httpx.AsyncClient(base_url=api.url, timeout=30) as c:
        assert (await c.get("/api/admin/switches")).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert (await c.get("/api/admin/switches", headers=wrong)).status_code == 401
        refused = await c.put("/api/admin/switches", headers=wrong, json={"x": 1})
        assert refused.status_code == 401  # the token is checked before the body
        doc = (await c.get("/api/admin/switches", headers=AUTH)).json()
        assert doc["revision"] == 1 and doc["desired_revision"] is None
        assert len(doc["fingerprint"]) == 16 and doc["last_error"] is None
        assert doc["stores"]["graph"] == {"dual_write": True, "read_percent": 0,
                                          "memory_writes": True, "shadow_read_percent": 0.0,
                                          "backend": "memory"}
        assert doc["routing"]["agent_task"]["trusted"] == "memory"

        body = {"desired_revision": "cm-41", "all": {"read_percent": 30},
                "agent_task": {"read_percent": 10}}
        first = (await put(c, body)).json()
        assert first["changed"] is True and first["revision"] == 2
        assert first["desired_revision"] == "cm-41"
        assert first["stores"]["graph"]["read_percent"] == 30
        assert first["stores"]["agent_task"]["read_percent"] == 10
        assert first["routing"]["graph"]["read_target"] == "split"
        assert [s["change"] for s in first["steps"]] == ["swap", "swap"]
        again = (await put(c, body)).json()
        assert again["changed"] is False and again["revision"] == 2 and again["steps"] == []
        assert again["fingerprint"] == first["fingerprint"]
        got = (await c.get("/api/admin/switches", headers=AUTH)).json()
        assert {k: got[k] for k in ("revision", "desired_revision", "fingerprint", "stores")} \
            == {k: first[k] for k in ("revision", "desired_revision", "fingerprint", "stores")}

        for bad, loc in (
            ({"graph": {"dual_write": False}}, ["body", "graph", "read_percent"]),
            ({"all": {"memory_writes": False}}, ["body", "all", "memory_writes"]),
            ({"graph": {"read_percent": 101}}, ["body", "graph", "read_percent"]),
            ({"graph": {"dual_writes": True}}, ["body", "graph", "dual_writes"]),
            ({"search": {"read_percent": 1}}, ["body", "search"]),
            ({"drain_timeout": 0}, ["body", "drain_timeout"]),
        ):
            answer = await put(c, bad)
            assert answer.status_code == 422, (bad, answer.text)
            assert answer.json()["detail"][0]["loc"] == loc, (bad, answer.text)
        incoherent = (await put(c, {"graph": {"dual_write": False}})).json()["detail"][0]
        assert "READ_FROM_POSTGRES_PERCENT" in incoherent["msg"]
        assert incoherent["msg"].startswith("graph store: ")
        after = (await c.get("/api/admin/switches", headers=AUTH)).json()
        assert after["revision"] == 2  # nothing invalid was applied

        status = (await c.get("/api/agent/store-status")).json()
        assert status["graph_store"]["read_from_postgres_percent"] == 30
        assert status["graph_store"]["read_target"] == "split"
        assert status["graph_store"]["switches"]["read_percent"] == 30
        assert status["agent_task_store"]["read_from_postgres_percent"] == 10
        assert status["switches"]["revision"] == 2
        assert status["switches"]["fingerprint"] == first["fingerprint"]
        assert status["switches"]["desired_revision"] == "cm-41"

        text = (await c.get("/metrics")).text
        assert metric(text, "storemigration_switch_revision") == 2
        for name in ("storemigration_read_percent_configured",
                     "storemigration_read_percent_actual"):
            assert metric(text, name, "graph") == 30 and metric(text, name, "agent_task") == 10
        for name in ("storemigration_dual_write_configured", "storemigration_dual_write_actual",
                     "storemigration_memory_writes_configured",
                     "storemigration_memory_writes_actual"):
            assert metric(text, name, "graph") == 1

        primary = (await put(c, {"all": PRIMARY, "desired_revision": "cm-42"})).json()
        assert [s["change"] for s in primary["steps"]] == ["enter_postgres"] * 2
        assert primary["routing"]["graph"]["write_target"] == "postgres"
        text = (await c.get("/metrics")).text
        assert metric(text, "storemigration_memory_writes_actual", "graph") == 0
        assert metric(text, "storemigration_read_percent_actual", "agent_task") == 100


async def test_admin_switches_are_forbidden_without_a_configured_token(
    pg_database: PgDatabase, tmp_path: Path
) -> None:
    app = create_app(Settings(database_url=pg_database.app_dsn, dual_write_mode=True,
                              data_dir=tmp_path, journal_fsync="never"))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as c:
            answer = await c.get("/api/admin/switches", headers={"Authorization": "Bearer x"})
            assert answer.status_code == 403 and "ADMIN_TOKEN" in answer.json()["detail"]
            answer = await c.put("/api/admin/switches", json={}, headers=AUTH)
            assert answer.status_code == 403


async def _reads_served(c: httpx.AsyncClient) -> dict[str, int]:
    doc = (await c.get("/api/agent/store-status")).json()
    return {store: doc[f"{store}_store"]["reads_served"]["postgres"]
            for store in ("graph", "agent_task")}


def _records(snapshot_bytes: bytes) -> dict[str, dict[Any, Any]]:
    snap = loads(snapshot_bytes)
    assert snap.graph is not None and snap.agent_tasks is not None
    kinds = {kind: {record_key(kind, r): r for r in getattr(snap.graph, kind)}
             for kind in GRAPH_KINDS}
    kinds["tasks"] = {t.id: t for t in snap.agent_tasks}
    return kinds


async def assert_same_records_both_sides(c: httpx.AsyncClient) -> None:
    """The full consistency check (memory -> PostgreSQL) and its mirror image: nothing
    is in one store only, nothing differs."""
    check = (await c.post("/api/admin/consistency-check", headers=AUTH,
                          params={"sample": 1, "max_missing": 0, "max_mismatch": 0})).json()
    assert check["passed"] and check["checked"] > 0, check
    assert (check["missing_count"], check["different_count"]) == (0, 0), check
    memory = _records((await c.get("/api/admin/snapshot", headers=AUTH)).content)
    postgres = _records((await c.get("/api/admin/snapshot?source=postgres", headers=AUTH)).content)
    for kind in memory:
        assert memory[kind].keys() == postgres[kind].keys(), kind
        different = [k for k, r in postgres[kind].items() if memory[kind][k] != r]
        assert different == [], (kind, different[:5])


def _ms(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return (f"median {statistics.median(values) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, "
            f"max {max(values) * 1000:.1f} ms (n={len(values)})")


@contextmanager
def load_process(url: str, tmp_path: Path) -> Iterator[list[HttpLoad]]:
    """The mixed HTTP load in a process of its own; the list holds its result after."""
    out = tmp_path / "load.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "api"), str(ROOT)])}
    proc = subprocess.Popen([sys.executable, "-m", "tests.migration.http_load", url, str(out)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "load running"
    result: list[HttpLoad] = []
    try:
        yield result
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    assert proc.returncode == 0
    result.append(from_json(json.loads(out.read_text())))


async def test_rollback_of_reads_to_zero_under_load_and_every_switch_loses_nothing(
    api_factory: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api = api_factory(DUAL_WRITE_MODE="true", READ_FROM_POSTGRES_PERCENT="100")
    rollback_rtt: list[float] = []
    rollback_server: list[float] = []
    step_rtt: list[float] = []
    enter: list[float] = []
    leave: list[float] = []
    async with httpx.AsyncClient(base_url=api.url, timeout=60) as c:
        with load_process(api.url, tmp_path) as loaded:
            await asyncio.sleep(1.5)
            for _ in range(20):
                t0 = time.perf_counter()
                answer = await put(c, {"all": {"read_percent": 0}})
                rollback_rtt.append(time.perf_counter() - t0)
                assert answer.status_code == 200, answer.text
                rollback_server.append(answer.json()["took_seconds"])
                await asyncio.sleep(0.05)  # reads that started under 100% finish under it
                before = await _reads_served(c)
                await asyncio.sleep(0.2)
                assert await _reads_served(c) == before  # no read went to PostgreSQL since
                t0 = time.perf_counter()
                assert (await put(c, {"all": {"read_percent": 100}})).status_code == 200
                step_rtt.append(time.perf_counter() - t0)
                await asyncio.sleep(0.2)
            for _ in range(3):
                t0 = time.perf_counter()
                answer = await put(c, {"all": PRIMARY})
                assert answer.status_code == 200, answer.text
                enter.append(time.perf_counter() - t0)
                assert answer.json()["memory_held"] is False  # as if started PostgresPrimary
                await asyncio.sleep(0.5)
                t0 = time.perf_counter()
                answer = await put(c, {"all": {"memory_writes": True, "read_percent": 0}})
                assert answer.status_code == 200, answer.text
                leave.append(time.perf_counter() - t0)
                steps = answer.json()["steps"]
                assert [s["change"] for s in steps] == ["leave_postgres"] * 2
                assert answer.json()["memory_held"] is True
                await asyncio.sleep(0.5)
                assert (await put(c, {"all": {"read_percent": 100}})).status_code == 200
                await asyncio.sleep(0.3)
        load = loaded[0]
        assert load.errors == [], load.errors[:10]
        assert load.requests > 0 and load.projects and load.tasks
        assert (await put(c, {"all": {"read_percent": 0}})).status_code == 200
        await assert_same_records_both_sides(c)
        await assert_acknowledged(api.url, load)
        status = (await c.get("/api/agent/store-status")).json()
        assert status["graph_store"]["dual_write_failures"] == 0
        records = sum(len(v) for v in _records(
            (await c.get("/api/admin/snapshot", headers=AUTH)).content).values())
    with capsys.disabled():
        print(f"\n[live switches] load: 6 HTTP clients in their own process, "
              f"{load.rate():.0f} req/s, {load.requests} requests, 0 errors; "
              f"{records} records at the end")
        print(f"[live switches] rollback of reads to 0% through PUT /api/admin/switches: "
              f"client round trip {_ms(rollback_rtt)}; in the server {_ms(rollback_server)}")
        print(f"[live switches] reads back to 100%: client round trip {_ms(step_rtt)}")
        print(f"[live switches] entering PostgresPrimary (backfill, drain, swap): {_ms(enter)}")
        print(f"[live switches] rollback from PostgresPrimary (rehydrate, mirror, drain, "
              f"swap): {_ms(leave)}")


async def test_live_rollback_where_every_store_started_postgres_primary(
    api_factory: Any, tmp_path: Path
) -> None:
    api = api_factory(DUAL_WRITE_MODE="true", IN_MEMORY_WRITES="false",
                      READ_FROM_POSTGRES_PERCENT="100")
    load, stop = HttpLoad(), asyncio.Event()
    async with httpx.AsyncClient(base_url=api.url, timeout=60) as c:
        writers = [asyncio.create_task(http_writer(api.url, f"p{n}", load, stop))
                   for n in range(2)]
        await asyncio.sleep(1.0)
        assert not any((tmp_path / "data" / sub).exists() for sub in ("graph", "agent_tasks"))
        answer = await put(c, {"all": {"memory_writes": True, "read_percent": 0},
                               "desired_revision": "rollback"})
        assert answer.status_code == 200, answer.text
        steps = answer.json()["steps"]
        assert all(s["rehydrated"] > 0 for s in steps), steps
        await asyncio.sleep(0.5)
        stop.set()
        await asyncio.gather(*writers)
        assert load.errors == [], load.errors[:10]
        await assert_same_records_both_sides(c)
    assert (tmp_path / "data" / "graph").is_dir()  # memory is durable again
    api.restart({**api.env, "IN_MEMORY_WRITES": "true", "READ_FROM_POSTGRES_PERCENT": "0"})
    async with httpx.AsyncClient(base_url=api.url, timeout=60) as c:
        await assert_same_records_both_sides(c)
    await assert_acknowledged(api.url, load)  # from memory, reads at 0%


async def test_a_rollback_cannot_trust_memory_another_process_holds(
    api_factory: Any, tmp_path: Path
) -> None:
    from app.stores.memory.graph_store import MemoryGraphStore

    api = api_factory(DUAL_WRITE_MODE="true", IN_MEMORY_WRITES="false",
                      READ_FROM_POSTGRES_PERCENT="100")
    back = {"all": {"memory_writes": True, "read_percent": 0}}
    async with httpx.AsyncClient(base_url=api.url, timeout=60) as c:
        assert (await c.put("/api/projects/pypi/held", json={})).status_code == 200
        other = await MemoryGraphStore.open(tmp_path / "data", fsync="never")
        try:
            answer = await put(c, back)
        finally:
            await other.close()
        assert answer.status_code == 409, answer.text
        assert "locked by another process" in answer.json()["detail"]
        doc = (await c.get("/api/admin/switches", headers=AUTH)).json()
        assert doc["revision"] == 1 and doc["memory_held"] is False
        assert doc["routing"]["graph"]["trusted"] == "postgres"
        assert doc["last_error"] == answer.json()["detail"]
        again = await put(c, back)
        assert again.status_code == 200 and again.json()["memory_held"] is True
        assert (await c.get("/api/projects/pypi/held")).status_code == 200
