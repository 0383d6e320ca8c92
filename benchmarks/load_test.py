"""HTTP load test: the API under uvicorn (one worker) in dual-write mode with half the
reads from PostgreSQL, driven by wrk with a mixed request mix across both stores.

`.venv/bin/python -m benchmarks load [--quick | --full]` starts a durable PostgreSQL
(devcluster.postgres) and `python -m app` (devcluster.api_process.LocalApi) on
127.0.0.1 with DUAL_WRITE_MODE=true and READ_FROM_POSTGRES_PERCENT=50, seeds it over
HTTP, then runs two phases with the same mix (benchmarks/mixed.lua):
  fixed  a fixed rate (default 1,000 req/s) paced by benchmarks/fixed_rate.lua
  max    wrk as fast as it can (closed loop) for the highest sustained rate
Each phase reports req/s, p50/p95/p99 and errors (non-2xx responses and socket
errors: the mix only sends requests the API answers with 2xx). Everything is bounded:
wrk's -d, a hard timeout on every subprocess, loopback only. --quick is ~10 s of load
(the test suite's smoke), the default 30 s + 20 s, --full the spec's 10 minutes at
1,000 req/s. Writes benchmarks/results/load[-quick|-full].json.

`--ab N` is the fast path's A/B in one command: N pairs of runs, FAST_PATH=false then the
default (true), back to back, each on a fresh PostgreSQL and API process, then a
before/after table with the load average each run started under (the machine is shared,
so the pairs alternate rather than run one variant first). Writes load-ab.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks.common import RESULTS, ROOT, database, machine
from devcluster.api_process import LocalApi

HERE = ROOT / "benchmarks"


def api_env(app_dsn: str, read_percent: int, fast_path: str | None = None) -> dict[str, str]:
    return {
        "DATABASE_URL": app_dsn,
        "DUAL_WRITE_MODE": "true",
        "READ_FROM_POSTGRES_PERCENT": str(read_percent),
        "LOG_LEVEL": "WARNING",
        "POSTGRES_POOL_SIZE": os.environ.get("POSTGRES_POOL_SIZE", "10"),
        "POSTGRES_MAX_OVERFLOW": "0",
        "FAST_PATH": fast_path or os.environ.get("FAST_PATH", "true"),
    }


async def seed(url: str, projects: int, tasks: int, parties: int) -> dict[str, list[str]]:
    """Keys the mix reads and writes, created through the API so both stores hold them."""
    keys: dict[str, list[str]] = {"PROJECTS": [], "TASKS": [], "CONTRIBUTORS": [], "ASSETS": []}
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        gate = asyncio.Semaphore(8)

        async def call(kind: str, method: str, path: str, body: dict[str, Any]) -> None:
            async with gate:
                r = await client.request(method, path, json=body)
            r.raise_for_status()
            doc = r.json()
            keys[kind].append(doc["name"] if kind == "PROJECTS" else str(doc["id"]))

        jobs = [call("PROJECTS", "PUT", f"/api/projects/npm/load-{i}",
                     {"version": "1.0.0", "description": f"load test project {i}"})
                for i in range(projects)]
        jobs += [call("TASKS", "POST", "/api/agent/tasks",
                      {"direction": f"seed {i}", "task_type": ("impl", "spec", "test")[i % 3]})
                 for i in range(tasks)]
        jobs += [call("CONTRIBUTORS", "POST", "/v1/contributors", {"name": f"c{i}"})
                 for i in range(parties)]
        jobs += [call("ASSETS", "POST", "/v1/assets", {"type": "CODE", "name": f"a{i}"})
                 for i in range(parties)]
        await asyncio.gather(*jobs)
    return keys


def script(keys: dict[str, list[str]], rate: int | None, threads: int, into: Path) -> Path:
    lines = [f"{k} = {{{', '.join(json.dumps(v) for v in vals)}}}" for k, vals in keys.items()]
    body = "\n".join(lines) + "\n" + (HERE / "mixed.lua").read_text()
    if rate:
        body += f"\nRATE = {rate}\nTHREADS = {threads}\n" + (HERE / "fixed_rate.lua").read_text()
    into.write_text(body)
    return into


def run_wrk(url: str, lua: Path, seconds: int, threads: int, connections: int) -> dict[str, Any]:
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s",
           "-s", str(lua), url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=True)
    line = next(x for x in out.stdout.splitlines() if x.startswith("WRK_JSON "))
    raw = json.loads(line.removeprefix("WRK_JSON "))
    errors = raw["non2xx"] + raw["connect"] + raw["read"] + raw["write"] + raw["timeout"]
    return {"req_s": raw["requests"] / (raw["duration_us"] / 1e6), "requests": raw["requests"],
            "p50_ms": raw["p50_us"] / 1e3, "p95_ms": raw["p95_us"] / 1e3,
            "p99_ms": raw["p99_us"] / 1e3, "max_ms": raw["max_us"] / 1e3, "errors": errors,
            "error_detail": {k: raw[k] for k in ("non2xx", "connect", "read", "write",
                                                 "timeout")},
            "command": " ".join(cmd[:-3] + ["<mix>.lua", url])}


def non_2xx_by_route(url: str) -> dict[str, float]:
    """The API's own count of non-2xx answers per route, from /metrics: names any error."""
    out: dict[str, float] = {}
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith("storemigration_http_requests_total{") and 'status="2' not in line:
            labels, value = line.rsplit(" ", 1)
            out[labels.split("{", 1)[1].rstrip("}")] = float(value)
    return out


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run(args: argparse.Namespace, fast_path: str | None = None) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (bash scripts/bootstrap.sh installs it)")
    result: dict[str, Any] = {"machine": machine(), "mode": {"DUAL_WRITE_MODE": True,
                              "READ_FROM_POSTGRES_PERCENT": args.read_percent}}
    tmp = Path(tempfile.mkdtemp(prefix="sm-load-"))
    async with database() as (_, app_dsn):
        api = LocalApi(data_dir=tmp / "data", log_path=tmp / "api.log",
                       env=api_env(app_dsn, args.read_percent, fast_path))
        api.start()
        try:
            assert api.process is not None
            keys = await asyncio.to_thread(lambda: asyncio.run(
                seed(api.url, args.projects, args.tasks, 50)))
            result["seeded"] = {k: len(v) for k, v in keys.items()}
            phases = [("fixed", args.rate, args.fixed_seconds, args.fixed_connections),
                      ("max", None, args.max_seconds, args.max_connections)]
            for name, rate, seconds, conns in phases:
                if seconds <= 0:
                    continue
                lua = script(keys, rate, args.threads, tmp / f"{name}.lua")
                cpu0, t0 = cpu_seconds(api.process.pid), time.monotonic()
                phase = await asyncio.to_thread(run_wrk, api.url, lua, seconds, args.threads,
                                                conns)
                phase["api_cpu_percent_of_one_core"] = round(
                    100 * (cpu_seconds(api.process.pid) - cpu0) / (time.monotonic() - t0), 1)
                phase["target_req_s"] = rate
                result[name] = phase
            async with httpx.AsyncClient(timeout=10) as client:
                status = await client.get(f"{api.url}/api/agent/store-status")
            result["store_status"] = status.json()
            result["non_2xx_by_route"] = await asyncio.to_thread(non_2xx_by_route, api.url)
        finally:
            api.stop()
            result["api_log_tail"] = (tmp / "api.log").read_text(errors="replace")[-2000:]
            shutil.rmtree(tmp, ignore_errors=True)
    return result


def show(result: dict[str, Any]) -> None:
    print(f"mode: dual-write, {result['mode']['READ_FROM_POSTGRES_PERCENT']}% of reads from "
          f"PostgreSQL; seeded {result['seeded']}")
    for name in ("fixed", "max"):
        if name in result:
            r = result[name]
            target = f" (target {r['target_req_s']:,})" if r["target_req_s"] else ""
            print(f"  {name:5} {r['req_s']:8,.0f} req/s{target}  p50 {r['p50_ms']:.2f} ms  "
                  f"p95 {r['p95_ms']:.2f} ms  p99 {r['p99_ms']:.2f} ms  max {r['max_ms']:.1f} "
                  f"ms  errors {r['errors']} ({r['requests']:,} requests, API CPU "
                  f"{r['api_cpu_percent_of_one_core']}% of a core)")
    for labels, count in result.get("non_2xx_by_route", {}).items():
        print(f"  non-2xx: {labels} = {count:.0f}")


def _cpu_ms_per_request(phase: dict[str, Any]) -> float:
    """The API's CPU time per request: less sensitive than req/s to a shared machine."""
    rate = phase.get("req_s") or 0.0
    return 10 * phase.get("api_cpu_percent_of_one_core", 0.0) / rate if rate else 0.0


def ab_table(runs: list[dict[str, Any]]) -> str:
    """The A/B as a markdown table, one row per run in the order they ran."""
    rows = ["| run | FAST_PATH | load avg (1 min) at start | max req/s | p95 at max | "
            "API CPU per request at max | fixed-rate req/s | p95 at fixed rate | errors |",
            "|---|---|---|---|---|---|---|---|---|"]
    for i, r in enumerate(runs, 1):
        fixed, most = r.get("fixed", {}), r.get("max", {})
        rows.append(
            f"| {i} | {r['fast_path']} | {r['machine']['loadavg_at_start'][0]:.2f} | "
            f"{most.get('req_s', 0):,.0f} | {most.get('p95_ms', 0):.1f} ms | "
            f"{_cpu_ms_per_request(most):.3f} ms | {fixed.get('req_s', 0):,.0f} | "
            f"{fixed.get('p95_ms', 0):.1f} ms | "
            f"{fixed.get('errors', 0) + most.get('errors', 0)} |")
    return "\n".join(rows)


def run_ab(args: argparse.Namespace, pairs: int) -> dict[str, Any]:
    runs = []
    for _ in range(pairs):
        for fast_path in ("false", "true"):
            result = asyncio.run(run(args, fast_path))
            result["fast_path"] = fast_path
            print(f"FAST_PATH={fast_path}:")
            show(result)
            runs.append(result)
    return {"runs": runs, "table": ab_table(runs)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks load")
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--quick", action="store_true", help="~10 s of load: 5 s + 5 s")
    length.add_argument("--full", action="store_true",
                        help="the spec's run: 10 minutes at the fixed rate, then 60 s max")
    parser.add_argument("--rate", type=int, default=1000, help="fixed-rate phase req/s")
    parser.add_argument("--read-percent", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--fixed-connections", type=int, default=32)
    parser.add_argument("--max-connections", type=int, default=32)
    parser.add_argument("--fixed-seconds", type=int, default=None)
    parser.add_argument("--max-seconds", type=int, default=None)
    parser.add_argument("--projects", type=int, default=1000)
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--out", type=Path, default=None, help="result file (JSON)")
    parser.add_argument("--ab", type=int, default=0, metavar="N",
                        help="N pairs of runs, FAST_PATH=false then true, and their table")
    args = parser.parse_args(argv)
    fixed, most = (5, 5) if args.quick else (600, 60) if args.full else (30, 20)
    args.fixed_seconds = fixed if args.fixed_seconds is None else args.fixed_seconds
    args.max_seconds = most if args.max_seconds is None else args.max_seconds
    if args.quick:
        args.projects, args.tasks = min(args.projects, 200), min(args.tasks, 100)
    suffix = "-quick" if args.quick else "-full" if args.full else ""
    if args.ab:
        result = run_ab(args, args.ab)
        print(result["table"])
        suffix = "-ab" + suffix
    else:
        result = asyncio.run(run(args))
        show(result)
    out = args.out or RESULTS / f"load{suffix}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
