"""The backfill and the full verify at scale (issue 14): 1,000,000 records by default.

`.venv/bin/python -m benchmarks scale [--records N]` builds N records, mixed as a team's
data is (40% projects, 35% contributions, the ledger rows, 20% agent tasks, 2%
contributors, 3% assets; each asset's total_cost the sum of its contributions), writes
them into memory's journal directory directly (the memory store's own import, then one
compaction, so the API starts from a snapshot instead of N requests), starts a durable
PostgreSQL and `python -m app` (devcluster.api_process.LocalApi) in dual-write with
memory trusted, seeds the load mix's keys over HTTP, then measures, each phase under a
steady --rate (200) req/s of the load test's mix (wrk, benchmarks/mixed.lua paced by
benchmarks/fixed_rate.lua, as load_test.py drives it):

  baseline  the load alone, --baseline-seconds
  backfill  api/scripts/backfill_postgres.py --api-url (the resumable batched run the
            operator's Job runs) into the empty PostgreSQL
  verify    api/scripts/verify_data_consistency.py --mode full (key ranges, JSON-lines
            report), with the API's RSS sampled every 0.1 s; with --compare-here the
            script reads PostgreSQL itself (DATABASE_URL in its environment) and
            compares in its own process
  reverify  the report's findings kept in the result; once the copy-retry queue has
            drained, their keys verified again (--keys-from)
  copy      the same rows as COPY (binary) into the same indexed tables of a fresh
            migrated database on the same server: the backfill's rate as a ratio to it

The client-side p95 of each phase's wrk run is set against the baseline's. The machine is
shared: the load average is recorded beside every phase. Numbers only, no assertions.
Writes benchmarks/results/scale[-N].json (scale.json at 1,000,000).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
from app.domain.tasks import DEFAULT_ROUTING
from app.models import AgentTask, Asset, Contribution, Contributor, TaskStatus, TaskType
from app.stores.memory.durable import DurableMemory
from app.stores.ports import GraphRecords

from benchmarks.common import RESULTS, ROOT, T0, machine, projects
from benchmarks.load_test import TOKEN, api_env, rss_mb, script, seed, wait_drained
from devcluster.api_process import LocalApi
from devcluster.postgres import (
    APP_PASSWORD,
    create_migrated_database,
    start_postgres,
    with_database,
)

MIX = {"projects": 0.40, "contributors": 0.02, "assets": 0.03, "contributions": 0.35,
       "tasks": 0.20}
TABLES = ("projects", "project_dependencies", "contributors", "assets", "contributions",
          "agent_tasks")
SCRIPTS = ROOT / "api" / "scripts"
VERIFY_SUMMARY = ("exit_code", "error", "checked", "mismatches", "missing_count",
                  "different_count", "extra_count", "in_flight_count")


def counts(n: int) -> dict[str, int]:
    out = {k: max(1, int(n * share)) for k, share in MIX.items()}
    out["projects"] += n - sum(out.values())
    return out


def fixture(n: int) -> tuple[GraphRecords, list[AgentTask]]:
    """N valid records; contributions spread over the contributors and assets."""
    c = counts(n)
    at = [T0 + timedelta(seconds=i) for i in range(8)]
    people = [Contributor(id=uuid.UUID(int=i + 1), name=f"scale person {i}",
                          created_at=at[1], updated_at=at[1]) for i in range(c["contributors"])]
    cost = [Decimal(f"{1 + i % 50}.{i % 100:02d}") for i in range(100)]
    totals = [Decimal("0.00")] * c["assets"]
    ledger = []
    for i in range(c["contributions"]):
        asset = i % c["assets"]
        totals[asset] += cost[i % 100]
        ledger.append(Contribution(
            id=uuid.UUID(int=(1 << 64) + i), contributor_id=people[i % len(people)].id,
            asset_id=uuid.UUID(int=(1 << 32) + asset), cost_amount=cost[i % 100],
            coherence_score=0.5, metadata={"n": i}, timestamp=at[3]))
    assets = [Asset(id=uuid.UUID(int=(1 << 32) + i), type="CODE", name=f"scale asset {i}",
                    total_cost=totals[i], created_at=at[2], updated_at=at[2])
              for i in range(c["assets"])]
    tasks = [AgentTask(id=f"task_{i:016x}", direction=f"scale task {i}",
                       task_type=TaskType.impl, status=TaskStatus.pending, model="bench",
                       command="bench", created_at=at[4], updated_at=at[4])
             for i in range(c["tasks"])]
    graph = GraphRecords(projects=projects(c["projects"], ecosystem="pypi"),
                         contributors=people, assets=assets, contributions=ledger)
    return graph, tasks


async def write_memory(data_dir: Path, graph: GraphRecords, tasks: list[AgentTask]) -> None:
    """The records into memory's journals through the stores' own import, compacted once."""
    memory = DurableMemory(data_dir=data_dir, routing=DEFAULT_ROUTING, fsync="never",
                           snapshot_every=10**9)
    g, t = await memory.open()
    try:
        await g.import_graph(graph)
        await t.import_tasks(tasks)
        for store in (g, t):
            if store.journal is not None:
                await store.journal.compact()
    finally:
        await g.close()
        await t.close()


class Load:
    """wrk at a fixed rate until stopped (SIGINT: wrk stops and reports as at -d's end)."""

    def __init__(self, url: str, lua: Path, seconds: int) -> None:
        self.cmd = ["wrk", "-t2", "-c32", f"-d{seconds}s", "--timeout", "5s", "-s", str(lua),
                    url]
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)

    def stop(self) -> dict[str, Any]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        out, err = self.proc.communicate(timeout=60)
        line = next((x for x in out.splitlines() if x.startswith("WRK_JSON ")), None)
        if line is None:
            return {"error": (out + err)[-500:]}
        raw = json.loads(line.removeprefix("WRK_JSON "))
        errors = raw["non2xx"] + raw["connect"] + raw["read"] + raw["write"] + raw["timeout"]
        return {"req_s": round(raw["requests"] / (raw["duration_us"] / 1e6), 1),
                "requests": raw["requests"], "p50_ms": raw["p50_us"] / 1e3,
                "p95_ms": raw["p95_us"] / 1e3, "p99_ms": raw["p99_us"] / 1e3,
                "errors": errors, "command": " ".join(self.cmd[:-3] + ["<mix>.lua", "<api>"])}


class RssPeak(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.halt = pid, 0.0, threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            self.peak = max(self.peak, rss_mb(self.pid))
            self.halt.wait(0.1)


def run_script(name: str, *args: str, env: dict[str, str] | None = None
               ) -> tuple[float, dict[str, Any], list[str]]:
    cmd = [sys.executable, str(SCRIPTS / name), *args]
    start = time.perf_counter()
    done = subprocess.run(cmd, env={**os.environ, "ADMIN_TOKEN": TOKEN, **(env or {})},
                          capture_output=True,
                          text=True, timeout=7200, check=False)
    seconds = time.perf_counter() - start
    try:
        summary = json.loads(done.stdout[done.stdout.index("{"):])
    except ValueError:
        summary = {"exit": done.returncode, "stderr": done.stderr[-800:]}
    summary["exit_code"] = done.returncode
    summary.setdefault("error", summary.get("error") or None)
    return seconds, summary, cmd


def under_load(api: LocalApi, lua: Path, what: Any) -> tuple[Any, dict[str, Any], list[float]]:
    """`what()` while wrk runs; its result, the load's figures, load average at start."""
    loadavg = list(os.getloadavg())
    load = Load(api.url, lua, 7200)
    time.sleep(1.0)  # wrk connected and pacing before the operation starts
    try:
        out = what()
    finally:
        figures = load.stop()
    return out, figures, loadavg


async def copy_ratio(server_url: str, source_dsn: str) -> dict[str, Any]:
    """The backfilled rows, COPY (binary) into the same indexed tables of a fresh database."""
    name = f"sm_scale_copy_{uuid.uuid4().hex[:8]}"
    await create_migrated_database(server_url, name)
    src = await asyncpg.connect(source_dsn)
    dst = await asyncpg.connect(with_database(server_url, name))
    try:
        blobs = {}
        for table in TABLES:
            buf = io.BytesIO()
            await src.copy_from_table(table, output=buf, format="binary")
            blobs[table] = buf.getvalue()
        loadavg = list(os.getloadavg())
        start = time.perf_counter()
        rows = 0
        async with dst.transaction():
            for table in TABLES:
                status = await dst.copy_to_table(table, source=io.BytesIO(blobs[table]),
                                                 format="binary")
                rows += int(status.split()[-1])  # "COPY <rows>"
        seconds = time.perf_counter() - start
    finally:
        await src.close()
        await dst.close()
    return {"seconds": round(seconds, 2), "rows": rows, "loadavg_at_start": loadavg}


def reverify(url: str, report: Path) -> dict[str, Any]:
    """The full verify's findings kept (they name each key and field), then, once the
    copy-retry queue has drained, those keys verified again (`--keys-from`): whether
    what the verify found under load was healed, or is a disagreement that stays."""
    found = [x for x in jsonl(report) if x.get("status") in ("missing", "different", "extra",
                                                              "in_flight")]
    drained_in, depth = wait_drained(url)
    out: dict[str, Any] = {"findings": found[:50], "findings_count": len(found),
                           "queue_drained_in_s": drained_in, "queue_depth_after": depth}
    if found:
        again = report.with_name("reverify.jsonl")
        _, summary, _ = run_script("verify_data_consistency.py", "--api-url", url,
                                   "--keys-from", str(report), "--report", str(again))
        out["summary"] = {k: summary.get(k) for k in VERIFY_SUMMARY}
        out["still"] = jsonl(again)[:50]
    return out


def jsonl(path: Path) -> list[dict[str, Any]]:
    """A JSON-lines report's lines; none when it was not written."""
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def phase_line(name: str, r: dict[str, Any]) -> str:
    load = r.get("load") or {}
    return (f"  {name:9} {r.get('seconds', '-')!s:>8} s  load {load.get('req_s', '-')} req/s "
            f"p95 {load.get('p95_ms', '-')} ms  errors {load.get('errors', '-')}  "
            f"(load avg {r['loadavg_at_start'][0]:.2f})")


async def run(args: argparse.Namespace) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (bash scripts/bootstrap.sh installs it)")
    result: dict[str, Any] = {"machine": machine(), "records": args.records,
                              "mix": counts(args.records), "rate": args.rate,
                              "throttle": {"batch_size": args.batch_size, "chunk": args.chunk,
                                           "delay": args.delay,
                                           "p95_ceiling": args.p95_ceiling,
                                           "compare_here": args.compare_here}}
    tmp = Path(tempfile.mkdtemp(prefix="sm-scale-"))
    server = start_postgres(durable=True)
    try:
        start = time.perf_counter()
        graph, tasks = fixture(args.records)
        await write_memory(tmp / "data", graph, tasks)
        del graph, tasks
        result["fixture_seconds"] = round(time.perf_counter() - start, 1)
        name = f"sm_scale_{uuid.uuid4().hex[:8]}"
        await create_migrated_database(server.dsn, name)
        owner_dsn = with_database(server.dsn, name)
        app_dsn = with_database(server.dsn, name, "storemigration_app", APP_PASSWORD)
        api = LocalApi(data_dir=tmp / "data", log_path=tmp / "api.log",
                       env=api_env(app_dsn, 0))
        start = time.perf_counter()
        api.start(timeout=1800)
        result["api_start_seconds"] = round(time.perf_counter() - start, 1)
        try:
            assert api.process is not None
            pid = api.process.pid
            result["api_rss_mb_loaded"] = rss_mb(pid)
            keys = await asyncio.to_thread(lambda: asyncio.run(seed(api.url, 200, 100, 20)))
            lua = script(keys, args.rate, 2, tmp / "fixed.lua")
            phases: dict[str, Any] = {}
            _, load, avg = await asyncio.to_thread(
                under_load, api, lua, lambda: time.sleep(args.baseline_seconds))
            phases["baseline"] = {"seconds": args.baseline_seconds, "load": load,
                                  "loadavg_at_start": avg}
            print(phase_line("baseline", phases["baseline"]), flush=True)
            backfill_args = ("--api-url", api.url, "--run", "scale", "--batch-size",
                             str(args.batch_size), "--delay", str(args.delay), "--quiet",
                             *(("--p95-ceiling", str(args.p95_ceiling))
                               if args.p95_ceiling else ()))
            (secs, summary, cmd), load, avg = await asyncio.to_thread(
                under_load, api, lua, lambda: run_script("backfill_postgres.py",
                                                         *backfill_args))
            phases["backfill"] = {"seconds": round(secs, 2), "load": load,
                                  "loadavg_at_start": avg, "command": " ".join(cmd[1:]),
                                  "records_per_second": round(
                                      (summary.get("done") or 0) / secs, 1),
                                  "summary": {k: summary.get(k) for k in (
                                      "exit_code", "error", "done", "total", "finished",
                                      "written_total", "skipped_total", "rejected_total")}}
            print(phase_line("backfill", phases["backfill"]), flush=True)
            rss = RssPeak(pid)
            before = rss_mb(pid)
            verify_args = ("--api-url", api.url, "--mode", "full", "--chunk",
                           str(args.chunk), "--delay", str(args.delay),
                           "--report", str(tmp / "full.jsonl"),
                           *(("--compare-here",) if args.compare_here else ()),
                           *(("--p95-ceiling", str(args.p95_ceiling))
                             if args.p95_ceiling else ()))

            def verify() -> tuple[float, dict[str, Any], list[str]]:
                rss.start()
                try:
                    return run_script("verify_data_consistency.py", *verify_args,
                                      env={"DATABASE_URL": app_dsn})
                finally:
                    rss.halt.set()

            (secs, summary, cmd), load, avg = await asyncio.to_thread(under_load, api, lua,
                                                                      verify)
            phases["verify"] = {"seconds": round(secs, 2), "load": load,
                                "loadavg_at_start": avg, "command": " ".join(cmd[1:]),
                                "api_rss_mb_before": before, "api_rss_mb_peak": rss.peak,
                                "summary": {k: summary.get(k) for k in VERIFY_SUMMARY}}
            print(phase_line("verify", phases["verify"]), flush=True)
            phases["reverify"] = await asyncio.to_thread(reverify, api.url, tmp / "full.jsonl")
            print(f"  reverify {phases['reverify']}", flush=True)
        finally:
            api.stop()
            log = (tmp / "api.log").read_text(errors="replace").splitlines()
            result["api_log_errors"] = [x for x in log if " ERROR " in x][:20]
            result["api_log_warnings"] = len([x for x in log if " WARNING " in x])
            result["api_log_tail"] = "\n".join(log[-10:])
        phases["copy"] = await copy_ratio(server.dsn, owner_dsn)
        base = phases["baseline"]["load"].get("p95_ms")
        for name in ("backfill", "verify"):
            p95 = phases[name]["load"].get("p95_ms")
            phases[name]["p95_ratio_to_baseline"] = round(p95 / base, 2) if p95 and base \
                else None
        copy_rate = phases["copy"]["rows"] / phases["copy"]["seconds"]
        phases["copy"]["rows_per_second"] = round(copy_rate, 1)
        phases["backfill"]["rate_ratio_to_copy"] = round(
            phases["backfill"]["records_per_second"] / copy_rate, 3)
        result["phases"] = phases
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return result


def show(r: dict[str, Any]) -> None:
    p = r["phases"]
    print(f"{r['records']:,} records {r['mix']}; fixture {r['fixture_seconds']} s, API start "
          f"{r['api_start_seconds']} s, API RSS loaded {r['api_rss_mb_loaded']} MB")
    b, v, c = p["backfill"], p["verify"], p["copy"]
    print(f"  backfill {b['seconds']} s = {b['records_per_second']:,} records/s, "
          f"{b['rate_ratio_to_copy']:.1%} of COPY ({c['rows_per_second']:,} rows/s, "
          f"{c['seconds']} s, load avg {c['loadavg_at_start'][0]:.2f}); "
          f"p95 {b['p95_ratio_to_baseline']}x baseline")
    print(f"  verify   {v['seconds']} s; API RSS {v['api_rss_mb_before']} -> peak "
          f"{v['api_rss_mb_peak']} MB; p95 {v['p95_ratio_to_baseline']}x baseline; "
          f"{v['summary']}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks scale")
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--rate", type=int, default=200, help="steady load, req/s")
    parser.add_argument("--baseline-seconds", type=float, default=30.0)
    parser.add_argument("--batch-size", type=int, default=1000, help="backfill batch")
    parser.add_argument("--chunk", type=int, default=1000, help="full verify key range")
    parser.add_argument("--delay", type=float, default=0.0,
                        help="seconds between backfill batches and between verify chunks")
    parser.add_argument("--p95-ceiling", type=float, default=None,
                        help="backfill and verify pause while the API's p95 is above it (s)")
    parser.add_argument("--compare-here", action="store_true",
                        help="full verify compares in its own process (reads PostgreSQL)")
    parser.add_argument("--out", type=Path, default=None, help="result file (JSON)")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args))
    show(result)
    suffix = "" if args.records == 1_000_000 else f"-{args.records}"
    out = args.out or RESULTS / f"scale{suffix}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
