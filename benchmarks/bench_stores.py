"""Store latency, in memory and on PostgreSQL side by side, and the bulk-import speed.

`.venv/bin/python benchmarks/bench_stores.py [--quick]` starts its own PostgreSQL
(default durability, via tests.harness.postgres) unless DATABASE_URL names one, then
prints p50/p95/p99 per operation for both backends with their ratio, the time to
import 10,000 and 100,000 projects through import_graph next to a raw COPY of the same
rows measured in the same run, and project search on 100,000 projects. Numbers only,
no assertions: absolute times drift between machines, ratios from one run do not.
Writes benchmarks/results/stores.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "api"), str(ROOT)]

import asyncpg  # noqa: E402
from app.adapters.graph_store import GraphRecords  # noqa: E402
from app.adapters.memory_agent_task_store import MemoryAgentTaskStore  # noqa: E402
from app.adapters.memory_graph_store import MemoryGraphStore  # noqa: E402
from app.models import (  # noqa: E402
    AgentTaskCreate,
    AgentTaskUpdate,
    AssetCreate,
    AssetType,
    ContributionCreate,
    ContributorCreate,
    Project,
    ProjectUpsert,
    TaskStatus,
    TaskType,
)

from tests.harness.postgres import (  # noqa: E402
    create_migrated_database,
    drop_database,
    postgres_stores,
    start_postgres,
    with_database,
)

T0 = datetime(2025, 1, 1, tzinfo=UTC)
WORDS = ["http", "json", "yaml", "data", "flask", "react", "test", "core", "util", "net"]


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(samples: list[float]) -> dict[str, float]:
    return {"p50_ms": pct(samples, 0.50) * 1e3, "p95_ms": pct(samples, 0.95) * 1e3,
            "p99_ms": pct(samples, 0.99) * 1e3, "n": len(samples)}


async def timed(n: int, op: Callable[[int], Awaitable[Any]]) -> list[float]:
    out = []
    for i in range(n):
        start = time.perf_counter()
        await op(i)
        out.append(time.perf_counter() - start)
    return out


def name_of(i: int, offset: int = 0) -> str:
    return f"{WORDS[i % 10]}-{WORDS[(i // 10) % 10]}-{offset + i}"


def projects(n: int, offset: int = 0) -> list[Project]:
    return [Project(id=offset + i + 1, ecosystem=("npm", "pypi", "cargo")[i % 3],
                    name=name_of(i, offset),
                    version="1.0.0", description=f"{WORDS[(i * 7) % 10]} library number {i}",
                    created_at=T0 + timedelta(microseconds=i),
                    updated_at=T0 + timedelta(microseconds=i)) for i in range(n)]


async def operations(graph: Any, tasks: Any, n: int) -> dict[str, list[float]]:
    """Per-operation latency samples on one backend, each op on its own fresh data."""
    await graph.import_graph(GraphRecords(projects=projects(2000)))
    c = await graph.create_contributor(ContributorCreate(name="bench"))
    a = await graph.create_asset(AssetCreate(type=AssetType.CODE, name="bench"))
    created = [await tasks.create_task(AgentTaskCreate(direction=f"t{i}", task_type=TaskType.impl))
               for i in range(n)]
    ids = [t.id for t in created]
    return {
        "get_project": await timed(n, lambda i: graph.get_project("npm", name_of((i * 3) % 2000))),
        "upsert_project": await timed(n, lambda i: graph.upsert_project(
            "npm", f"bench-{i}", ProjectUpsert(description="d"))),
        "search(limit 20, 2k projects)": await timed(n, lambda i: graph.search(WORDS[i % 10])),
        "add_dependency": await timed(n, lambda i: graph.add_dependency(
            "npm", f"bench-{i}", "npm", "left-pad")),
        "create_contribution": await timed(n, lambda i: graph.create_contribution(
            ContributionCreate(contributor_id=c.id, asset_id=a.id, cost_amount=Decimal("1.00")),
            0.5)),
        "list_contributions(100)": await timed(n, lambda i: graph.list_contributions(100)),
        "create_task": await timed(n, lambda i: tasks.create_task(
            AgentTaskCreate(direction="x", task_type=TaskType.spec))),
        "get_task": await timed(n, lambda i: tasks.get_task(ids[i])),
        "update_task": await timed(n, lambda i: tasks.update_task(
            ids[i], AgentTaskUpdate(status=TaskStatus.running))),
        "list_tasks(20)": await timed(n, lambda i: tasks.list_tasks()),
        "get_pipeline_status": await timed(n, lambda i: tasks.get_pipeline_status()),
    }


async def bulk(admin_dsn: str, app_dsn: str, graph: Any, size: int) -> dict[str, float]:
    """import_graph of `size` new projects vs a raw COPY of the same rows into the table."""
    rows = projects(size, offset=10_000_000)
    start = time.perf_counter()
    stats = await graph.import_graph(GraphRecords(projects=rows))
    imported = time.perf_counter() - start
    assert stats.written["projects"] == size
    start = time.perf_counter()
    await graph.import_graph(GraphRecords(projects=rows))
    reimport = time.perf_counter() - start

    conn = await asyncpg.connect(app_dsn)
    try:
        await conn.execute("DELETE FROM projects WHERE id > 10000000")
        tuples = [(p.id, p.ecosystem, p.name, p.version, p.description, p.homepage_url,
                   p.repository_url, p.created_at, p.updated_at) for p in rows]
        start = time.perf_counter()
        async with conn.transaction():
            await conn.copy_records_to_table(
                "projects", records=tuples,
                columns=["id", "ecosystem", "name", "version", "description", "homepage_url",
                         "repository_url", "created_at", "updated_at"])
        raw = time.perf_counter() - start
        await conn.execute("DELETE FROM projects WHERE id > 10000000")
    finally:
        await conn.close()
    return {"import_graph_s": imported, "reimport_unchanged_s": reimport, "raw_copy_s": raw,
            "import_vs_copy_speed": raw / imported}


async def search_100k(graph: Any, memory: Any, n: int) -> dict[str, Any]:
    rows = projects(100_000, offset=20_000_000)
    await graph.import_graph(GraphRecords(projects=rows))
    await memory.import_graph(GraphRecords(projects=rows))
    queries = ["flask-json-20000123", "react", "yaml-core", "library number 4242", "zzz"]
    out = {}
    for name, store in (("memory", memory), ("postgres", graph)):
        out[name] = summary(await timed(n, lambda i, s=store: s.search(queries[i % 5])))
    return out


async def run(quick: bool) -> dict[str, Any]:
    n = 200 if quick else 2000
    server = None
    url = os.environ.get("DATABASE_URL")
    if not url:
        server = start_postgres(Path(tempfile.mkdtemp(prefix="sm-bench-")), durable=True)
        url = server.dsn
    name = f"sm_bench_{uuid.uuid4().hex[:8]}"
    try:
        await create_migrated_database(url, name)
        app_dsn = with_database(url, name, "storemigration_app", "app-test-secret-pw")
        graph, tasks, database = await postgres_stores(app_dsn, postgres_pool_size=4)
        try:
            mem = await operations(MemoryGraphStore(), MemoryAgentTaskStore(), n)
            pg = await operations(graph, tasks, n)
            result: dict[str, Any] = {"samples_per_op": n, "operations": {}}
            for op in mem:
                m, p = summary(mem[op]), summary(pg[op])
                result["operations"][op] = {"memory": m, "postgres": p,
                                            "p50_ratio": p["p50_ms"] / max(m["p50_ms"], 1e-6)}
            sizes = [10_000] if quick else [10_000, 100_000]
            result["bulk_import"] = {str(s): await bulk(url, app_dsn, graph, s) for s in sizes}
            result["search_100k"] = await search_100k(graph, MemoryGraphStore(),
                                                      50 if quick else 500)
            result["pool"] = database.stats()
        finally:
            await database.close()
            await drop_database(url, name)
    finally:
        if server is not None:
            server.stop()
    return result


def show(result: dict[str, Any]) -> None:
    print(f"{'operation':34} {'memory p50/p95/p99 ms':>24} {'postgres p50/p95/p99 ms':>26}"
          f" {'p50 x':>8}")
    for op, r in result["operations"].items():
        m, p = r["memory"], r["postgres"]
        print(f"{op:34} {m['p50_ms']:7.3f} {m['p95_ms']:7.3f} {m['p99_ms']:7.3f}   "
              f"{p['p50_ms']:7.3f} {p['p95_ms']:7.3f} {p['p99_ms']:7.3f}  {r['p50_ratio']:7.1f}")
    print("\nbulk import of new projects (import_graph vs raw COPY of the same rows)")
    for size, b in result["bulk_import"].items():
        print(f"  {int(size):>7,} projects: import_graph {b['import_graph_s']:.3f} s, "
              f"re-import unchanged {b['reimport_unchanged_s']:.3f} s, raw COPY "
              f"{b['raw_copy_s']:.3f} s -> import runs at {b['import_vs_copy_speed']:.0%} of COPY")
    print("\nsearch on 100,000 projects (+2k) p50/p95/p99 ms")
    for name, s in result["search_100k"].items():
        print(f"  {name:9} {s['p50_ms']:7.3f} {s['p95_ms']:7.3f} {s['p99_ms']:7.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description="in-memory vs PostgreSQL store benchmark")
    parser.add_argument("--quick", action="store_true", help="fewer samples, 10k import only")
    args = parser.parse_args()
    started = time.perf_counter()
    result = asyncio.run(run(args.quick))
    result["quick"] = args.quick
    result["seconds"] = round(time.perf_counter() - started, 1)
    show(result)
    out = ROOT / "benchmarks" / "results" / "stores.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {out.relative_to(ROOT)} ({result['seconds']} s)")


if __name__ == "__main__":
    main()
