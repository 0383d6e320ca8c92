"""Every GraphStore and AgentTaskStore operation, timed on six backends, plus the bulk
import (the backfill path) against a raw COPY of the same rows, and search at 100k.

`.venv/bin/python -m benchmarks stores [--quick]` starts its own durable PostgreSQL
(unless DATABASE_URL names a server), then measures, one caller, back to back:
  memory       the in-memory stores (no journal: the pure data-structure cost)
  postgres     PostgresGraphStore / PostgresAgentTaskStore on an asyncpg pool
  direct       the stores the PostgreSQL-only service serves after Cleanup, built by
               app.postgres_service.postgres_stores (the adapters, instrumented)
  cleanup-router  what Cleanup served before: the migration router over them with
               STORE_BACKEND=postgres
  dual-write   the migration router, memory trusted, every write copied to PostgreSQL
  read-50%     the router in dual-write with READ_FROM_POSTGRES_PERCENT=50
and prints ops/s and p50/p95/p99 per operation with the p50 ratio to memory, then the
p50 ratio of direct and cleanup-router to postgres. postgres, direct and cleanup-router
run interleaved, sample by sample, on one fresh migrated database (the comparison is the
wiring's cost and nothing else); memory, dual-write and read-50% each run on a database
of their own. Writes benchmarks/results/stores[-quick].json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
from app.canonical import search_fold
from app.metrics import instrument_graph, instrument_tasks
from app.migration.graph_router import MigratingGraphStore
from app.migration.task_router import MigratingAgentTaskStore
from app.models import (
    AgentTaskCreate,
    AgentTaskUpdate,
    AssetCreate,
    AssetType,
    ContributionCreate,
    ContributorCreate,
    ProjectUpsert,
    TaskStatus,
    TaskType,
)
from app.postgres_service import postgres_stores
from app.settings import Settings, StoreMode
from app.stores.memory.graph_store import MemoryGraphStore
from app.stores.memory.task_store import MemoryAgentTaskStore
from app.stores.ports import GraphRecords
from app.stores.postgres.graph_store import PostgresGraphStore
from app.stores.postgres.pool import Database
from app.stores.postgres.task_store import PostgresAgentTaskStore

from benchmarks.common import RESULTS, WORDS, database, machine, name_of, projects, summary
from devcluster.postgres import (
    APP_PASSWORD,
    create_migrated_database,
    drop_database,
    with_database,
)

BACKENDS = ("memory", "postgres", "direct", "cleanup-router", "dual-write", "read-50%")
VS_POSTGRES = ("direct", "cleanup-router")
INTERLEAVED = ("postgres", *VS_POSTGRES)
SEARCH_TERMS_100K = {
    "exact name (1 match)": "data-yaml-20000123",
    "rare (~11 matches)": "library number 4242",
    "none (0 matches)": "zzzq",
    "medium (1% of rows)": "yaml-core",
    "common (~30% of rows)": "react",
}


async def timed(n: int, op: Callable[[int], Awaitable[Any]]) -> list[float]:
    out = []
    for i in range(n):
        start = time.perf_counter()
        await op(i)
        out.append(time.perf_counter() - start)
    return out


Op = Callable[[int], Awaitable[Any]]


async def operations(graph: Any, tasks: Any, n: int, tag: str, seed: int
                     ) -> dict[str, list[float]]:
    """Latency samples of every store operation; writes use keys unique to `tag`."""
    ops = await op_table(graph, tasks, tag, seed)
    return {name: await timed(n, op) for name, op in ops.items()}


async def op_table(graph: Any, tasks: Any, tag: str, seed: int) -> dict[str, Op]:
    """Every store operation as a call of sample i, in the order they must run."""
    c = await graph.create_contributor(ContributorCreate(name=f"bench-{tag}"))
    a = await graph.create_asset(AssetCreate(type=AssetType.CODE, name=f"bench-{tag}"))
    small = await graph.create_asset(AssetCreate(type=AssetType.CODE, name=f"small-{tag}"))
    pay = ContributionCreate(contributor_id=c.id, asset_id=small.id,
                             cost_amount=Decimal("2.50"))
    for _ in range(5):
        await graph.create_contribution(pay, 0.5)
    made: dict[str, list[Any]] = {"contributors": [], "assets": [], "contributions": [],
                                  "tasks": []}

    async def keep(kind: str, coro: Awaitable[Any]) -> None:
        made[kind].append(await coro)

    def seeded(i: int) -> str:
        return name_of((i * 7) % 2000, seed)

    ops: dict[str, Op] = {
        "get_project": lambda i: graph.get_project("npm", seeded(i * 3)),
        "upsert_project (insert)": lambda i: graph.upsert_project(
            "npm", f"bench-{tag}-{i}", ProjectUpsert(description="d")),
        "upsert_project (update)": lambda i: graph.upsert_project(
            "npm", f"bench-{tag}-{i}", ProjectUpsert(description=f"d{i}", version="2")),
        "search (2k projects)": lambda i: graph.search(WORDS[i % 10]),
        "count_projects": lambda i: graph.count_projects(),
        "add_dependency": lambda i: graph.add_dependency(
            "npm", f"bench-{tag}-{i}", "npm", f"left-pad-{i % 50}"),
        "count_dependents": lambda i: graph.count_dependents("npm", f"left-pad-{i % 50}"),
        "create_contributor": lambda i: keep("contributors", graph.create_contributor(
            ContributorCreate(name=f"c{i}", email=f"c{i}@{tag}.example"))),
        "get_contributor": lambda i: graph.get_contributor(made["contributors"][i].id),
        "list_contributors (100)": lambda i: graph.list_contributors(100),
        "create_asset": lambda i: keep("assets", graph.create_asset(
            AssetCreate(type=AssetType.CODE, name=f"a{i}"))),
        "get_asset": lambda i: graph.get_asset(made["assets"][i].id),
        "list_assets (100)": lambda i: graph.list_assets(100),
        "create_contribution": lambda i: keep("contributions", graph.create_contribution(
            ContributionCreate(contributor_id=c.id, asset_id=a.id,
                               cost_amount=Decimal("1.00")), 0.5)),
        "get_contribution": lambda i: graph.get_contribution(made["contributions"][i].id),
        "list_contributions (100)": lambda i: graph.list_contributions(100),
        "get_asset_contributions (5)": lambda i: graph.get_asset_contributions(small.id),
        "get_contributor_contributions": lambda i: graph.get_contributor_contributions(
            made["contributors"][i].id),
        "create_task": lambda i: keep("tasks", tasks.create_task(AgentTaskCreate(
            direction=f"t{i}", task_type=(TaskType.impl, TaskType.spec)[i % 2]))),
        "get_task": lambda i: tasks.get_task(made["tasks"][i].id),
        "update_task": lambda i: tasks.update_task(
            made["tasks"][i].id, AgentTaskUpdate(status=TaskStatus.running)),
        "list_tasks (20)": lambda i: tasks.list_tasks(),
        "get_attention_tasks": lambda i: tasks.get_attention_tasks(),
        "get_task_count": lambda i: tasks.get_task_count(),
        "get_review_summary": lambda i: tasks.get_review_summary(),
        "get_usage_summary": lambda i: tasks.get_usage_summary(),
        "get_pipeline_status": lambda i: tasks.get_pipeline_status(),
    }
    return ops


def router_mode(store: str, read_percent: int, backend: str = "memory") -> StoreMode:
    dual = backend == "memory"
    return StoreMode(store=store, postgres_configured=True, dual_write=dual,
                     memory_writes=True, read_percent=read_percent, backend=backend)


@asynccontextmanager
async def own_database(admin_dsn: str) -> AsyncIterator[Database]:
    """A fresh migrated database on the benchmark's server and a pool of 4 on it."""
    name = f"sm_bench_{uuid.uuid4().hex[:8]}"
    await create_migrated_database(admin_dsn, name)
    dsn = with_database(admin_dsn, name, "storemigration_app", APP_PASSWORD)
    db = Database.from_settings(
        Settings.model_validate({"database_url": dsn, "postgres_pool_size": 4}))
    await db.connect()
    try:
        yield db
    finally:
        await db.close()
        await drop_database(admin_dsn, name)


def wired(name: str, db: Database, k: int) -> tuple[Any, Any, Any, Any]:
    """(graph, tasks) as backend `name` serves them, and the memory and PostgreSQL graph
    stores underneath (to seed)."""
    mem_g, mem_t = MemoryGraphStore(), MemoryAgentTaskStore()
    pg_g, pg_t = PostgresGraphStore(db), PostgresAgentTaskStore(db)
    graph: Any
    tasks: Any
    if name == "memory":
        return mem_g, mem_t, mem_g, None
    if name == "postgres":
        return pg_g, pg_t, None, pg_g
    settings = Settings.model_validate({"database_url": "postgresql://bench@localhost/x"})
    if name == "direct":
        graph, tasks = postgres_stores(db, settings)
        return graph, tasks, None, pg_g
    if name == "cleanup-router":
        pg_graph, pg_tasks = postgres_stores(db, settings)
        graph = MigratingGraphStore(instrument_graph(mem_g, "memory"), pg_graph,
                                    router_mode("graph", 0, "postgres"), rng=random.Random(k))
        tasks = MigratingAgentTaskStore(instrument_tasks(mem_t, "memory"), pg_tasks,
                                        router_mode("agent_task", 0, "postgres"),
                                        rng=random.Random(k))
        return graph, tasks, None, pg_g
    pct = 0 if name == "dual-write" else 50
    graph = MigratingGraphStore(mem_g, pg_g, router_mode("graph", pct), rng=random.Random(k))
    tasks = MigratingAgentTaskStore(mem_t, pg_t, router_mode("agent_task", pct),
                                    rng=random.Random(k))
    return graph, tasks, mem_g, pg_g


async def interleaved(names: tuple[str, ...], db: Database, n: int, seed_rows: GraphRecords
                      ) -> dict[str, dict[str, list[float]]]:
    """`names` on one database, one pool, sample by sample: for each operation, sample i
    of every backend runs before sample i + 1 of any, in an order rotated with i, so
    that neither the order nor the table's growth favours one of them."""
    await PostgresGraphStore(db).import_graph(seed_rows)
    tables: dict[str, dict[str, Op]] = {}
    for k, name in enumerate(names):
        graph, tasks, _, _ = wired(name, db, k)
        tables[name] = await op_table(graph, tasks, f"i{k}", 1_000_000)
    out: dict[str, dict[str, list[float]]] = {name: {} for name in names}
    for op in tables[names[0]]:
        for name in names:
            out[name][op] = []
        for i in range(n):
            for j in range(len(names)):
                name = names[(i + j) % len(names)]
                start = time.perf_counter()
                await tables[name][op](i)
                out[name][op].append(time.perf_counter() - start)
    return out


async def backend_samples(admin_dsn: str, db: Database, n: int
                          ) -> dict[str, dict[str, list[float]]]:
    """memory, dual-write and read-50% one after another, each on a database of its own;
    postgres, direct and cleanup-router interleaved on one (`interleaved`)."""
    out: dict[str, dict[str, list[float]]] = {}
    for k, name in enumerate(BACKENDS):
        seed_rows = GraphRecords(projects=projects(2000, offset=(k + 1) * 1_000_000,
                                                   ecosystem="npm"))
        if name in INTERLEAVED[1:]:
            continue
        async with AsyncExitStack() as stack:
            own = db if name == "memory" else await stack.enter_async_context(
                own_database(admin_dsn))
            if name == INTERLEAVED[0]:
                out |= await interleaved(INTERLEAVED, own, n, seed_rows)
                continue
            graph, tasks, mem_g, pg_g = wired(name, own, k)
            if mem_g is not None:
                await mem_g.import_graph(seed_rows)
            if pg_g is not None:
                await pg_g.import_graph(seed_rows)
            out[name] = await operations(graph, tasks, n, f"b{k}", (k + 1) * 1_000_000)
    return out


def versus_postgres(table: dict[str, Any]) -> dict[str, Any]:
    """Per backend in VS_POSTGRES: the p50 ratio to postgres, median / min / max over
    the operations."""
    out: dict[str, Any] = {}
    for b in VS_POSTGRES:
        ratios = sorted(r[b]["p50_ratio_to_postgres"] for r in table.values())
        out[b] = {"median": statistics.median(ratios), "min": ratios[0], "max": ratios[-1],
                  "operations": len(ratios)}
    return out


async def bulk(app_dsn: str, graph: PostgresGraphStore, size: int, offset: int
               ) -> dict[str, float]:
    """import_graph of `size` new projects vs a raw COPY of the same rows, same run."""
    rows = projects(size, offset=offset)
    start = time.perf_counter()
    stats = await graph.import_graph(GraphRecords(projects=rows))
    imported = time.perf_counter() - start
    assert stats.written["projects"] == size, stats
    start = time.perf_counter()
    await graph.import_graph(GraphRecords(projects=rows))
    reimport = time.perf_counter() - start
    conn = await asyncpg.connect(app_dsn)
    try:
        await conn.execute("DELETE FROM projects WHERE id > $1", offset)
        await conn.execute("VACUUM projects")
        tuples = [(p.id, p.ecosystem, p.name, p.version, p.description, p.homepage_url,
                   p.repository_url, p.created_at, p.updated_at, search_fold(p.description))
                  for p in rows]
        start = time.perf_counter()
        async with conn.transaction():
            await conn.copy_records_to_table(
                "projects", records=tuples,
                columns=["id", "ecosystem", "name", "version", "description", "homepage_url",
                         "repository_url", "created_at", "updated_at", "description_lower"])
        raw = time.perf_counter() - start
        await conn.execute("DELETE FROM projects WHERE id > $1", offset)
        await conn.execute("VACUUM projects")
    finally:
        await conn.close()
    return {"import_graph_s": imported, "reimport_unchanged_s": reimport, "raw_copy_s": raw,
            "import_vs_copy_speed": raw / imported, "rows_per_s": size / imported}


async def at_100k(admin_dsn: str, graph: PostgresGraphStore, n: int) -> dict[str, Any]:
    """Search (each term class), get_project and count_projects with 100k projects held:
    once right after the bulk import (the trigram indexes' GIN pending lists still hold
    the new rows and every search scans them), then after VACUUM ANALYZE, the state
    autovacuum reaches on its own (only a table owner may run it: the app role cannot)."""
    rows = projects(100_000, offset=20_000_000)
    await graph.import_graph(GraphRecords(projects=rows))
    memory = MemoryGraphStore()
    await memory.import_graph(await graph.export_graph())  # the same rows, all of them
    out: dict[str, Any] = {}
    def searching(store: Any, term: str) -> Callable[[int], Awaitable[Any]]:
        return lambda i: store.search(term)

    for label, term in SEARCH_TERMS_100K.items():
        samples = await timed(max(n // 5, 10), searching(graph, term))
        out[f"search {label}, right after import"] = {"term": term, "postgres": summary(samples)}
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute("VACUUM ANALYZE projects")
    finally:
        await conn.close()
    for label, term in SEARCH_TERMS_100K.items():
        found = await graph.search(term)
        assert found == await memory.search(term), label
        out[f"search {label}"] = {
            "term": term, "total": found.total,
            "memory": summary(await timed(n, searching(memory, term))),
            "postgres": summary(await timed(n, searching(graph, term)))}
    for store_name, store in (("memory", memory), ("postgres", graph)):
        out.setdefault("get_project", {})[store_name] = summary(await timed(
            n, lambda i, s=store: s.get_project("npm", rows[i * 3].name)))  # type: ignore[misc]
        out.setdefault("count_projects", {})[store_name] = summary(await timed(
            n, lambda i, s=store: s.count_projects()))  # type: ignore[misc]
    out["import_graph 10k new projects into 100k"] = await import_into(admin_dsn, graph)
    return out


async def import_into(admin_dsn: str, graph: PostgresGraphStore) -> dict[str, Any]:
    """import_graph of 10k new projects into the table holding 100k (the backfill of a
    store that already holds data), three times; each batch is deleted and the table
    vacuumed before the next (seconds, end to end at the adapter)."""
    conn = await asyncpg.connect(admin_dsn)
    seconds = []
    try:
        for k in range(3):
            rows = projects(10_000, offset=30_000_000 + k * 100_000)
            start = time.perf_counter()
            stats = await graph.import_graph(GraphRecords(projects=rows))
            seconds.append(time.perf_counter() - start)
            assert stats.written["projects"] == len(rows), stats
            await conn.execute("DELETE FROM projects WHERE id > 30000000")
            await conn.execute("VACUUM ANALYZE projects")
    finally:
        await conn.close()
    return {"seconds": sorted(seconds)}


async def run(n: int, sizes: list[int], search_samples: int) -> dict[str, Any]:
    result: dict[str, Any] = {"machine": machine(), "samples_per_op": n}
    async with database() as (admin_dsn, app_dsn):
        db = Database.from_settings(
            Settings.model_validate({"database_url": app_dsn, "postgres_pool_size": 4}))
        await db.connect()
        try:
            samples = await backend_samples(admin_dsn, db, n)
            result["machine"]["loadavg_after_operations"] = os.getloadavg()
            table: dict[str, Any] = {}
            for op in samples["memory"]:
                m = summary(samples["memory"][op])
                row: dict[str, Any] = {"memory": m}
                for b in BACKENDS[1:]:
                    s = summary(samples[b][op])
                    s["p50_ratio_to_memory"] = s["p50_ms"] / max(m["p50_ms"], 1e-6)
                    row[b] = s
                for b in VS_POSTGRES:
                    row[b]["p50_ratio_to_postgres"] = \
                        row[b]["p50_ms"] / max(row["postgres"]["p50_ms"], 1e-6)
                table[op] = row
            result["operations"] = table
            result["vs_postgres"] = versus_postgres(table)
            graph = PostgresGraphStore(db)
            result["bulk_import"] = {str(s): await bulk(app_dsn, graph, s, 10_000_000)
                                     for s in sizes}
            if search_samples:
                result["at_100k"] = await at_100k(admin_dsn, graph, search_samples)
            result["pool"] = db.stats()
        finally:
            await db.close()
    return result


def show(result: dict[str, Any]) -> None:
    load = result["machine"]
    print(f"load average at start {load['loadavg_at_start']}, after the operations "
          f"{load.get('loadavg_after_operations')}")
    head = "".join(f"{b + ' p50/p95/p99 ms':>27}{'x':>5}" for b in BACKENDS[1:])
    print(f"{'operation':31}{'memory p50/p95/p99 ms':>24}{head}")
    for op, r in result["operations"].items():
        m = r["memory"]
        line = f"{op:31}{m['p50_ms']:8.3f}{m['p95_ms']:8.3f}{m['p99_ms']:8.3f}"
        for b in BACKENDS[1:]:
            s = r[b]
            line += (f"   {s['p50_ms']:7.3f} {s['p95_ms']:7.3f} {s['p99_ms']:7.3f}"
                     f"{s['p50_ratio_to_memory']:5.1f}")
        print(line)
    ops = result["operations"].values()
    medians = {b: sorted(r[b]["ops_s"] for r in ops)[len(ops) // 2] for b in BACKENDS}
    print("\nops/s, one caller back to back, median over operations: "
          + "; ".join(f"{b} {v:,.0f}" for b, v in medians.items()))
    print("\np50 ratio to postgres (the adapters alone), over the operations: " + "; ".join(
        f"{b} median {v['median']:.3f} (min {v['min']:.3f}, max {v['max']:.3f})"
        for b, v in result["vs_postgres"].items()))
    for op, r in result["operations"].items():
        print(f"  {op:31}" + "".join(f"  {b} {r[b]['p50_ratio_to_postgres']:.3f}"
                                     for b in VS_POSTGRES))
    print("\nbulk import of new projects: import_graph (backfill path) vs raw COPY, same run")
    for size, b in result["bulk_import"].items():
        print(f"  {int(size):>7,}: import_graph {b['import_graph_s']:.3f} s "
              f"({b['rows_per_s']:,.0f} rows/s), re-import unchanged "
              f"{b['reimport_unchanged_s']:.3f} s, raw COPY {b['raw_copy_s']:.3f} s "
              f"-> {b['import_vs_copy_speed']:.0%} of COPY speed")
    print("\nwith 100,000 projects held: memory vs postgres p50/p95/p99 ms")
    for label, r in result.get("at_100k", {}).items():
        if "seconds" in r:
            print(f"  {label}: " + " / ".join(f"{t:.3f}" for t in r["seconds"])
                  + " s (min / median / max of 3)")
            continue
        p = r["postgres"]
        m = r.get("memory")
        total = f" total={r['total']}" if "total" in r else ""
        mem = (f"{m['p50_ms']:7.3f} {m['p95_ms']:7.3f} {m['p99_ms']:7.3f}" if m
               else f"{'-':>7} {'-':>7} {'-':>7}")
        print(f"  {label + total:62} {mem}   {p['p50_ms']:7.3f} {p['p95_ms']:7.3f}"
              f" {p['p99_ms']:7.3f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks stores")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="200 samples, 10k import only")
    size.add_argument("--smoke", action="store_true",
                      help="20 samples, 1k import, no 100k search: proves the command runs")
    parser.add_argument("--out", type=Path, default=None, help="result file (JSON)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    if args.smoke:
        result = asyncio.run(run(20, [1_000], 0))
    elif args.quick:
        result = asyncio.run(run(200, [10_000], 50))
    else:
        result = asyncio.run(run(1000, [10_000, 100_000], 300))
    result["preset"] = "smoke" if args.smoke else "quick" if args.quick else "full"
    result["seconds"] = round(time.perf_counter() - started, 1)
    show(result)
    suffix = {"smoke": "-smoke", "quick": "-quick", "full": ""}[result["preset"]]
    out = args.out or RESULTS / f"stores{suffix}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {out} ({result['seconds']} s)")


if __name__ == "__main__":
    main()
