"""Issue 11 item 5: several API processes on one PostgreSQL, from PostgresPrimary on.

Three real `python -m app` processes in PostgresPrimary (dual-write on, reads at 100%,
memory writes off), each with its own DATA_DIR, share one real PostgreSQL. Clients write
through all of them at once, every kind of write on shared keys: project upserts and
dependencies, contributions on shared assets, tasks created on one process and moved on
another. Then:
- nothing lost, nothing duplicated: every acknowledged record is read back from every
  process, and the counts equal what was acknowledged;
- totals and counters exact: each asset's total_cost is the sum of its acknowledged
  contributions, each project's dependency_count its acknowledged edges, and the
  trigger-kept counters (project_counts, agent_task_counts) equal the rows;
- task transitions serialized: the same transition sent to two processes at once, and two
  conflicting ones (running -> completed against running -> failed), succeed exactly once
  each; the loser gets 409 and the task ends in the winner's status.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import pytest

from devcluster.api_process import LocalApi
from devcluster.stack import api_on_postgres

PRIMARY = {"DUAL_WRITE_MODE": "true", "READ_FROM_POSTGRES_PERCENT": "100",
           "IN_MEMORY_WRITES": "false", "ADMIN_TOKEN": "multi-replica-token-1234"}
REPLICAS = 3
PROJECTS, DEPS, ASSETS, TASKS, ROUNDS = 12, 9, 4, 24, 40


@pytest.fixture(scope="module")
def replicas() -> Any:
    with api_on_postgres(PRIMARY, database="sm_multi") as stack:
        others = [LocalApi(stack.base / f"data-{i}", stack.base / f"api-{i}.log",
                           env=dict(stack.api.env)) for i in range(1, REPLICAS)]
        try:
            for api in others:
                api.start()
            yield stack, [stack.api.url, *(a.url for a in others)]
        finally:
            for api in others:
                api.stop()


async def _ok(r: httpx.Response, *codes: int) -> dict[str, Any]:
    assert r.status_code in (codes or (200, 201)), f"{r.request.url}: {r.status_code} {r.text}"
    doc: dict[str, Any] = r.json()
    return doc


async def test_replicas_on_one_postgres_lose_nothing_and_keep_counters_exact(
        replicas: tuple[Any, list[str]]) -> None:
    stack, urls = replicas
    clients = [httpx.AsyncClient(base_url=u, timeout=30) for u in urls]
    started = time.monotonic()
    try:
        for c in clients:  # every process runs PostgresPrimary
            doc = await _ok(await c.get("/api/admin/switches", headers={
                "Authorization": f"Bearer {PRIMARY['ADMIN_TOKEN']}"}))
            assert {s["memory_writes"] for s in doc["stores"].values()} == {False}
        contributor = (await _ok(await clients[0].post("/v1/contributors",
                                                       json={"name": "shared dev"})))["id"]
        assets = [(await _ok(await clients[i % REPLICAS].post(
            "/v1/assets", json={"type": "CODE", "description": f"asset {i}"})))["id"]
            for i in range(ASSETS)]
        names = [*(f"shared-{i}" for i in range(PROJECTS)), *(f"dep-{i}" for i in range(DEPS))]
        for i, name in enumerate(names):
            await _ok(await clients[i % REPLICAS].put(f"/api/projects/pypi/{name}",
                                                      json={"version": "0"}))

        acked: dict[str, Any] = {"contributions": {}, "edges": set(), "versions": {}}

        async def writer(w: int) -> None:
            c = clients[w % REPLICAS]
            for n in range(ROUNDS):
                p = (w * 7 + n) % PROJECTS
                doc = await _ok(await c.put(f"/api/projects/pypi/shared-{p}",
                                            json={"version": f"{w}.{n}"}))
                acked["versions"].setdefault(f"shared-{p}", set()).add(doc["version"])
                asset = assets[(w + n) % ASSETS]
                doc = await _ok(await c.post("/v1/contributions", json={
                    "contributor_id": contributor, "asset_id": asset, "cost_amount": "1.25"}))
                acked["contributions"][doc["id"]] = asset
                src, dst = f"shared-{p}", f"dep-{(w + n) % DEPS}"
                r = await c.post(f"/api/projects/pypi/{src}/dependencies",
                                 json={"ecosystem": "pypi", "name": dst})
                await _ok(r, 200, 201)
                acked["edges"].add((src, dst))

        await asyncio.gather(*(writer(w) for w in range(REPLICAS * 3)))

        # tasks: created on one process, the same transition raced on two others
        tasks = [(await _ok(await clients[i % REPLICAS].post(
            "/api/agent/tasks", json={"direction": f"race {i}", "task_type": "impl"})))["id"]
            for i in range(TASKS)]

        async def race(tid: str, i: int, first: str, second: str) -> tuple[int, int, str]:
            a, b = clients[(i + 1) % REPLICAS], clients[(i + 2) % REPLICAS]
            ra, rb = await asyncio.gather(
                a.patch(f"/api/agent/tasks/{tid}", json={"status": first}),
                b.patch(f"/api/agent/tasks/{tid}", json={"status": second}))
            winner = first if ra.status_code == 200 else second
            return ra.status_code, rb.status_code, winner

        same = await asyncio.gather(*(race(t, i, "running", "running")
                                      for i, t in enumerate(tasks)))
        conflicting = await asyncio.gather(*(race(t, i, "completed", "failed")
                                             for i, t in enumerate(tasks)))
        for outcome in (*same, *conflicting):
            assert sorted(outcome[:2]) == [200, 409], outcome  # exactly one wins

        # read back from every process: nothing lost, nothing duplicated, exact totals
        final: dict[str, dict[str, Any]] = {}
        for c in clients:
            for key, versions in acked["versions"].items():
                doc = await _ok(await c.get(f"/api/projects/pypi/{key}"))
                assert doc["version"] in versions, key  # the last commit of an acked write
                final.setdefault(key, doc)
                assert doc == final[key], key  # every process reads the same record
            for i in range(PROJECTS):
                src = f"shared-{i}"
                doc = await _ok(await c.get(f"/api/projects/pypi/{src}"))
                assert doc["dependency_count"] == len({e for e in acked["edges"]
                                                       if e[0] == src}), src
            for asset in assets:
                mine = [k for k, a in acked["contributions"].items() if a == asset]
                doc = await _ok(await c.get(f"/v1/assets/{asset}"))
                assert Decimal(doc["total_cost"]) == Decimal("1.25") * len(mine), asset
                listed = await _ok(await c.get(f"/v1/assets/{asset}/contributions"))
                assert sorted(x["id"] for x in listed) == sorted(mine), asset
            for (tid, _), (_, _, winner) in zip(enumerate(tasks), conflicting, strict=True):
                doc = await _ok(await c.get(f"/api/agent/tasks/{tid}"))
                assert doc["status"] == winner, tid
            assert (await _ok(await c.get("/api/projects/count")))["count"] == len(names)
        counts = await _ok(await clients[0].get("/api/agent/tasks/count"))
        assert counts["total"] == TASKS, counts
    finally:
        for c in clients:
            await c.aclose()

    conn = await asyncpg.connect(stack.owner_dsn)
    try:
        rows = await conn.fetchval("SELECT count(*) FROM projects")
        assert await conn.fetchval("SELECT sum(n) FROM project_counts") == rows
        by_status = {r["status"]: r["n"] for r in await conn.fetch(
            "SELECT status::text, count(*) AS n FROM agent_tasks GROUP BY 1")}
        counted = {r["status"]: r["n"] for r in await conn.fetch(
            "SELECT status::text, sum(n)::bigint AS n FROM agent_task_counts "
            "GROUP BY 1 HAVING sum(n) <> 0")}
        assert counted == by_status and sum(by_status.values()) == TASKS
        assert rows == PROJECTS + DEPS
        assert await conn.fetchval("SELECT count(*) FROM project_dependencies") == \
            len(acked["edges"])
        assert await conn.fetchval("SELECT count(*) FROM contributions") == \
            len(acked["contributions"])
        dupes = await conn.fetchval("SELECT count(*) FROM (SELECT ecosystem, name FROM projects "
                                    "GROUP BY 1, 2 HAVING count(*) > 1) d")
        assert dupes == 0
    finally:
        await conn.close()
    print(f"\n{REPLICAS} API processes on one PostgreSQL: "
          f"{len(acked['contributions'])} contributions, {len(acked['edges'])} edges, "
          f"{TASKS * 2} raced transitions, 0 lost, 0 duplicated "
          f"({time.monotonic() - started:.1f}s)")

