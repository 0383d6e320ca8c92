"""HTTP load test: the API under uvicorn (one worker) in dual-write mode with half the
reads from PostgreSQL, driven by wrk with a mixed request mix across both stores.

`.venv/bin/python -m benchmarks load [--quick | --full | --double]` starts a durable
PostgreSQL (devcluster.postgres) and `python -m app` (devcluster.api_process.LocalApi)
on 127.0.0.1 with DUAL_WRITE_MODE=true and READ_FROM_POSTGRES_PERCENT=50, seeds it over
HTTP, then runs up to two phases with the same mix (benchmarks/mixed.lua):
  fixed  a fixed rate (default 1,000 req/s) paced by benchmarks/fixed_rate.lua
  max    wrk as fast as it can (closed loop) for the highest sustained rate
A phase runs as consecutive wrk runs of --slice-seconds (30 s), so every slice has its
own line: req/s, p50/p95/p99/max, HTTP errors, and the dual-write copy failures the
API counted meanwhile (storemigration_dual_write_failures_total; the timeouts among
them from the API's log) and the copy-retry queue's depth. A phase's own percentiles
merge its slices' quantiles (111 points each, finest at the tail). HTTP errors are
non-2xx answers and socket errors: the mix only sends requests the API answers with
2xx. A copy failure is a second class of error: the client got its answer, but
PostgreSQL missed the write until the copy-retry queue copied it again. After the
load, once the queue has drained (or 60 s), a full verify (every record, the
consistency check the operator runs) reports what PostgreSQL is missing or holds
differently.

Lengths: --quick ~10 s (the test suite's smoke), the default 30 s + 20 s, --full the
spec's 10 minutes at 1,000 req/s then 60 s max, --double the spec's 2x load, 2,000
req/s for 2 minutes. Everything is bounded: wrk's -d, a hard timeout on every
subprocess, loopback only. Writes benchmarks/results/load[-quick|-full|-double].json.

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
import re
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
TOKEN = "load-test-admin-token"
QUANTILES = [*range(1, 100), 99.1, 99.2, 99.3, 99.4, 99.5, 99.6, 99.7, 99.8, 99.9, 99.95, 99.99]
DRAIN_SECONDS = 60.0
FAILURE_LINE = re.compile(r"dual write to postgres failed: .* reason=(\w+)")


def api_env(app_dsn: str, read_percent: int, fast_path: str | None = None) -> dict[str, str]:
    return {
        "DATABASE_URL": app_dsn,
        "DUAL_WRITE_MODE": "true",
        "READ_FROM_POSTGRES_PERCENT": str(read_percent),
        "LOG_LEVEL": "WARNING",
        "ADMIN_TOKEN": TOKEN,
        "POSTGRES_POOL_SIZE": os.environ.get("POSTGRES_POOL_SIZE", "10"),
        "POSTGRES_MAX_OVERFLOW": "0",
        "FAST_PATH": fast_path or os.environ.get("FAST_PATH", "true"),
        "GC_FREEZE_AFTER_MS": os.environ.get("GC_FREEZE_AFTER_MS", "0"),
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
    quantiles = ", ".join(f"{q:g}" for q in QUANTILES)
    body = "\n".join(lines) + f"\nQUANTILES = {{{quantiles}}}\n" + (HERE / "mixed.lua").read_text()
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
            "seconds": raw["duration_us"] / 1e6,
            "p50_ms": raw["p50_us"] / 1e3, "p95_ms": raw["p95_us"] / 1e3,
            "p99_ms": raw["p99_us"] / 1e3, "max_ms": raw["max_us"] / 1e3, "errors": errors,
            "error_detail": {k: raw[k] for k in ("non2xx", "connect", "read", "write",
                                                 "timeout")},
            "quantiles_us": raw["quantiles_us"],
            "command": " ".join(cmd[:-3] + ["<mix>.lua", url])}


def merged_percentile(slices: list[dict[str, Any]], q: float) -> float:
    """The q-th percentile (ms) of a phase from its slices' quantile points: each slice's
    CDF is the step through its points, weighted by its request count."""
    total = sum(s["requests"] for s in slices) or 1
    candidates: list[float] = sorted({float(v) for s in slices for v in s["quantiles_us"]})

    def cdf(x: float) -> float:
        below = 0.0
        for s in slices:
            points = [(p, v) for p, v in zip(QUANTILES, s["quantiles_us"], strict=True)
                      if v <= x]
            below += s["requests"] * (points[-1][0] / 100 if points else 0.0)
        return below / total

    for x in candidates:
        if cdf(x) >= q / 100 - 1e-12:
            return x / 1e3
    return float(max(s["max_ms"] for s in slices))


def scrape(url: str) -> dict[str, float]:
    """Sums of the counters and gauges the load result reports, from /metrics."""
    sums = {"dual_write_failures": 0.0, "copy_retry_depth": 0.0, "gc_pause_s": 0.0,
            "gc_full": 0.0, "gc_full_s": 0.0}
    names = {"storemigration_dual_write_failures_total": "dual_write_failures",
             "storemigration_copy_retry_queue_depth": "copy_retry_depth",
             "storemigration_gc_pause_seconds_sum": "gc_pause_s"}
    full = {"storemigration_gc_pause_seconds_count": "gc_full",
            "storemigration_gc_pause_seconds_sum": "gc_full_s"}
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        name = line.split("{", 1)[0].split(" ", 1)[0]
        value = float(line.rsplit(" ", 1)[1]) if name in names or name in full else 0.0
        if name in names:
            sums[names[name]] += value
        if name in full and 'generation="2"' in line:
            sums[full[name]] += value
    return sums


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def non_2xx_by_route(url: str) -> dict[str, float]:
    """The API's own count of non-2xx answers per route, from /metrics: names any error."""
    out: dict[str, float] = {}
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith("storemigration_http_requests_total{") and 'status="2' not in line:
            labels, value = line.rsplit(" ", 1)
            out[labels.split("{", 1)[1].rstrip("}")] = float(value)
    return out


class FailureLog:
    """Reads the API log from where it was last read: copy failures by reason."""

    def __init__(self, path: Path) -> None:
        self.path, self.offset = path, 0

    def since_last(self) -> dict[str, int]:
        with self.path.open("rb") as f:
            f.seek(self.offset)
            text = f.read().decode(errors="replace")
            self.offset = f.tell()
        reasons: dict[str, int] = {}
        for match in FAILURE_LINE.finditer(text):
            reasons[match.group(1)] = reasons.get(match.group(1), 0) + 1
        return reasons


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_phase(api: LocalApi, lua: Path, seconds: int, rate: int | None, args: argparse.Namespace,
              connections: int, failures: FailureLog) -> dict[str, Any]:
    """One phase as consecutive wrk slices, each with its copy failures and queue depth."""
    assert api.process is not None
    slices: list[dict[str, Any]] = []
    cpu0, t0 = cpu_seconds(api.process.pid), time.monotonic()
    done = 0
    while done < seconds:
        length = min(args.slice_seconds, seconds - done)
        before = scrape(api.url)
        failures.since_last()
        one = run_wrk(api.url, lua, length, args.threads, connections)
        after = scrape(api.url)
        reasons = failures.since_last()
        one |= {"at_s": done, "dual_write_failures": int(after["dual_write_failures"]
                                                          - before["dual_write_failures"]),
                "dual_write_timeouts": reasons.get("TimeoutError", 0),
                "copy_retry_depth": int(after["copy_retry_depth"]),
                "gc_pause_ms": round(1000 * (after["gc_pause_s"] - before["gc_pause_s"]), 1),
                "gc_full": int(after["gc_full"] - before["gc_full"]),
                "gc_full_ms": round(1000 * (after["gc_full_s"] - before["gc_full_s"]), 1),
                "api_rss_mb": rss_mb(api.process.pid)}
        slices.append(one)
        print(slice_line(one), flush=True)
        done += length
    requests = sum(s["requests"] for s in slices)
    elapsed = sum(s["seconds"] for s in slices)
    phase: dict[str, Any] = {
        "req_s": requests / elapsed, "requests": requests, "seconds": round(elapsed, 1),
        "p50_ms": merged_percentile(slices, 50), "p95_ms": merged_percentile(slices, 95),
        "p99_ms": merged_percentile(slices, 99), "max_ms": max(s["max_ms"] for s in slices),
        "errors": sum(s["errors"] for s in slices),
        "error_detail": {k: sum(s["error_detail"][k] for s in slices)
                         for k in slices[0]["error_detail"]},
        "dual_write_failures": sum(s["dual_write_failures"] for s in slices),
        "dual_write_timeouts": sum(s["dual_write_timeouts"] for s in slices),
        "target_req_s": rate,
        "api_cpu_percent_of_one_core": round(
            100 * (cpu_seconds(api.process.pid) - cpu0) / (time.monotonic() - t0), 1),
        "command": slices[0]["command"],
        "slices": [{k: v for k, v in s.items() if k not in ("quantiles_us", "command")}
                   for s in slices],
    }
    return phase


def slice_line(s: dict[str, Any]) -> str:
    return (f"    {s['at_s']:>4}s +{s['seconds']:4.0f}s {s['req_s']:7,.0f} req/s  "
            f"p50 {s['p50_ms']:7.2f}  p95 {s['p95_ms']:7.2f}  p99 {s['p99_ms']:7.2f}  "
            f"max {s['max_ms']:7.1f} ms  HTTP errors {s['errors']}  dual-write failures "
            f"{s['dual_write_failures']} ({s['dual_write_timeouts']} timeouts)  "
            f"retry queue {s['copy_retry_depth']}  gc {s['gc_pause_ms']:.0f} ms paused "
            f"({s['gc_full']} full, {s['gc_full_ms']:.0f} ms)  RSS {s['api_rss_mb']:.0f} MB")


def wait_drained(url: str) -> tuple[float, int]:
    """Wait for the copy-retry queues to drain (at most DRAIN_SECONDS); the seconds
    waited and the depth left."""
    waited, deadline = time.monotonic(), time.monotonic() + DRAIN_SECONDS
    while scrape(url)["copy_retry_depth"] > 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    return round(time.monotonic() - waited, 1), int(scrape(url)["copy_retry_depth"])


def settle_and_verify(url: str) -> dict[str, Any]:
    """Wait for the copy-retry queues to drain, then a full verify (sample 1.0)."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    drained_in, depth = wait_drained(url)
    answer = httpx.post(f"{url}/api/admin/consistency-check", params={"sample": 1.0},
                        headers=headers, timeout=600)
    answer.raise_for_status()
    report = answer.json()
    return {"queue_drained_in_s": drained_in,
            "queue_depth_at_verify": depth, "passed": report["passed"],
            "checked": report["checked"], "missing": report["missing_count"],
            "different": report["different_count"], "in_flight": report["in_flight_count"]}


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
            keys = await asyncio.to_thread(lambda: asyncio.run(
                seed(api.url, args.projects, args.tasks, 50)))
            result["seeded"] = {k: len(v) for k, v in keys.items()}
            failures = FailureLog(api.log_path)
            phases = [("fixed", args.rate, args.fixed_seconds, args.fixed_connections),
                      ("max", None, args.max_seconds, args.max_connections)]
            for name, rate, seconds, conns in phases:
                if seconds <= 0:
                    continue
                print(f"  {name} ({f'{rate:,} req/s' if rate else 'as fast as it goes'}, "
                      f"{seconds} s, {conns} connections):", flush=True)
                lua = script(keys, rate, args.threads, tmp / f"{name}.lua")
                result[name] = await asyncio.to_thread(run_phase, api, lua, seconds, rate,
                                                       args, conns, failures)
            status = await asyncio.to_thread(
                lambda: httpx.get(f"{api.url}/api/agent/store-status", timeout=10).json())
            result["store_status"] = status
            result["copy_retry_peak_depth"] = sum(
                status[s]["copy_retry"].get("peak_depth", 0)
                for s in ("graph_store", "agent_task_store"))
            result["verify"] = await asyncio.to_thread(settle_and_verify, api.url)
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
                  f"ms ({r['requests']:,} requests, API CPU "
                  f"{r['api_cpu_percent_of_one_core']}% of a core)")
            print(f"        errors: HTTP {r['errors']}  |  dual-write copy failures "
                  f"{r['dual_write_failures']} ({r['dual_write_timeouts']} timeouts)")
    v = result["verify"]
    print(f"  copy-retry queue: peak depth {result['copy_retry_peak_depth']}, drained in "
          f"{v['queue_drained_in_s']} s (depth {v['queue_depth_at_verify']} at verify)")
    print(f"  full verify after the run: {v['checked']:,} records checked, {v['missing']} "
          f"missing, {v['different']} different, {v['in_flight']} in flight -> "
          f"{'passed' if v['passed'] else 'FAILED'}")
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


PRESETS = {  # name: (fixed seconds, max seconds, rate, slice seconds)
    "quick": (6, 4, 1000, 3),
    "full": (600, 60, 1000, 30),
    "double": (120, 0, 2000, 30),
    "default": (30, 20, 1000, 30),
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks load")
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--quick", action="store_true", help="~10 s of load: 6 s + 4 s")
    length.add_argument("--full", action="store_true",
                        help="the spec's run: 10 minutes at 1,000 req/s, then 60 s max")
    length.add_argument("--double", action="store_true",
                        help="the spec's 2x load: 2,000 req/s for 2 minutes")
    parser.add_argument("--rate", type=int, default=None, help="fixed-rate phase req/s")
    parser.add_argument("--read-percent", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--fixed-connections", type=int, default=None)
    parser.add_argument("--max-connections", type=int, default=32)
    parser.add_argument("--fixed-seconds", type=int, default=None)
    parser.add_argument("--max-seconds", type=int, default=None)
    parser.add_argument("--slice-seconds", type=int, default=None,
                        help="length of each reported slice (default 30)")
    parser.add_argument("--projects", type=int, default=1000)
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--out", type=Path, default=None, help="result file (JSON)")
    parser.add_argument("--ab", type=int, default=0, metavar="N",
                        help="N pairs of runs, FAST_PATH=false then true, and their table")
    args = parser.parse_args(argv)
    preset = next((p for p in ("quick", "full", "double") if getattr(args, p)), "default")
    fixed, most, rate, slice_s = PRESETS[preset]
    args.fixed_seconds = fixed if args.fixed_seconds is None else args.fixed_seconds
    args.max_seconds = most if args.max_seconds is None else args.max_seconds
    args.rate = rate if args.rate is None else args.rate
    args.slice_seconds = slice_s if args.slice_seconds is None else args.slice_seconds
    if args.fixed_connections is None:
        args.fixed_connections = 64 if args.rate > 1000 else 32
    if args.quick:
        args.projects, args.tasks = min(args.projects, 200), min(args.tasks, 100)
    suffix = "" if preset == "default" else f"-{preset}"
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
