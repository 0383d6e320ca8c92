#!/usr/bin/env python3
"""Compare a sample (default 10%) of the in-memory records with PostgreSQL's and report
the records PostgreSQL is missing and those it holds with other values (by id and
field). Exits 1 when the mismatch ratio is above --max-mismatch (default 1%), or when
more than --max-missing records are missing (default: no limit; promotion runs with
--sample 1.0 --max-missing 0, since a sampled ratio can pass with records lost).
With --stores only those stores are judged (the API checks both; the other's kinds are
left out of the ratio). The summary carries `passed` and `mismatch_ratio`, the keys the
operator reads from the verify Job's termination message.

  online:  verify_data_consistency.py --api-url http://api:8000   (ADMIN_TOKEN in env)
  offline: verify_data_consistency.py --snapshot snap.json --database-url URL

--mode full (online) compares every record, one key range per call
(POST /api/admin/verify/chunk, --chunk records), so neither the API nor this script
holds more than a chunk of PostgreSQL's rows. Every missing, different (with both
values of each differing field) and extra key is written to the JSON-lines --report;
the summary names the file and keeps the counts. Extra keys (PostgreSQL only) are
counted apart (extra_count; --max-extra to fail on them). --keys-from REPORT
re-verifies only that report's keys. --repair copies memory's record to PostgreSQL for
each missing or different key (of --keys-from, else of a full verify run first),
re-verifies them and exits 0 only if they now agree; extra keys are deleted only with
--delete-extra. --delay and --p95-ceiling throttle the full mode as they do the backfill.
--compare-here (full, and --repair's full verify) compares in this process: it reads
PostgreSQL itself ($DATABASE_URL, or --database-url) and asks the API only for memory's
side of each range (POST /api/admin/verify/memory), so the comparison's CPU is off the
API's event loop; mismatches are still re-checked by the API (scripts/_compare_here.py).
The full mode saves its place after every chunk beside the report (REPORT.state):
--resume continues an interrupted run (--max-chunks stops one on purpose; an incomplete
run never passes: its summary carries an error, so the operator holds, never rolls back).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import _common as c
from _throttle import Throttle


def build_parser() -> Any:
    p = c.parser(__doc__ or "")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--api-url", help="the running API: POST /api/admin/consistency-check")
    src.add_argument("--snapshot", help="a snapshot file standing for memory (offline)")
    p.add_argument("--database-url", help="offline: PostgreSQL (default: $DATABASE_URL)")
    p.add_argument("--sample", type=float, default=0.10, help="fraction sampled, (0, 1]")
    p.add_argument("--seed", type=int, default=None, help="seed the sample (repeatable)")
    p.add_argument("--max-mismatch", type=float, default=0.01,
                   help="highest acceptable mismatch ratio (default 0.01)")
    p.add_argument("--max-missing", type=int, default=None,
                   help="most records PostgreSQL may be missing (default: no limit)")
    p.add_argument("--mode", choices=("sampled", "full"), default="sampled",
                   help="sampled (the gate) or full: every key, by key ranges (online)")
    p.add_argument("--report", default=None,
                   help="full/keys-from/repair: the JSON-lines report to write (default "
                        "$VERIFY_REPORT_DIR or . / verify-<run>.jsonl)")
    p.add_argument("--chunk", type=int, default=1000, help="full: records per key range")
    p.add_argument("--run", default=None, help="full: a name for this run")
    p.add_argument("--keys-from", default=None, help="re-verify only this report's keys")
    p.add_argument("--max-extra", type=int, default=None,
                   help="most extra records PostgreSQL may hold (default: no limit)")
    p.add_argument("--repair", action="store_true",
                   help="copy memory's record to PostgreSQL for missing/different keys")
    p.add_argument("--delete-extra", action="store_true",
                   help="with --repair: delete the extra keys from PostgreSQL")
    p.add_argument("--resume", action="store_true",
                   help="full: continue the interrupted run of --report (its .state file)")
    p.add_argument("--max-chunks", type=int, default=None,
                   help="full: stop after this many chunks (not passed; --resume goes on)")
    p.add_argument("--compare-here", action="store_true",
                   help="full: compare in this process, reading PostgreSQL itself "
                        "($DATABASE_URL or --database-url); the API serves memory's side")
    p.add_argument("--delay", type=float, default=0.0, help="full: seconds between chunks")
    p.add_argument("--p95-ceiling", type=float, default=None,
                   help="full: pause while the API's p95 (seconds) is above it")
    c.add_stores(p)
    return p


STORE_KINDS = {"graph": ("projects", "dependencies", "contributors", "assets", "contributions"),
               "agent_task": ("tasks",)}


def scope(report: dict[str, Any], stores: tuple[str, ...]) -> dict[str, Any]:
    """The report restricted to the kinds of `stores`, its counts and ratio recomputed."""
    wanted = {k for s in stores for k in STORE_KINDS[s]}
    kinds = {k: v for k, v in report.get("kinds", {}).items() if k in wanted}
    if kinds == report.get("kinds", {}):
        return report
    checked = sum(v["checked"] for v in kinds.values())
    missing = sum(v["missing_count"] for v in kinds.values())
    different = sum(v["different_count"] for v in kinds.values())
    return {**report, "kinds": kinds, "checked": checked, "mismatches": missing + different,
            "missing_count": missing, "different_count": different,
            "in_flight_count": sum(v.get("in_flight_count", 0) for v in kinds.values()),
            "mismatch_ratio_by_kind": {k: v.get("mismatch_ratio") for k, v in kinds.items()},
            "mismatch_ratio": round((missing + different) / checked, 6) if checked else 0.0}


async def offline(args: Any) -> dict[str, Any]:
    from app.migration.consistency import check_consistency

    dsn = c.database_url(args.database_url)
    graph, tasks = c.load_snapshot(args.snapshot)
    memory = c.Frozen(graph, tasks)
    pg_graph, pg_tasks, database = await c.open_postgres(dsn)
    with_graph, with_tasks = "graph" in args.stores, "agent_task" in args.stores
    try:
        report = await check_consistency(
            memory if with_graph else None, pg_graph if with_graph else None,  # type: ignore[arg-type]
            memory if with_tasks else None, pg_tasks if with_tasks else None,  # type: ignore[arg-type]
            sample=args.sample, seed=args.seed, recheck_delay=0.0, record_metrics=False,
        )
    except Exception as e:  # noqa: BLE001 - report the class only
        raise c.ScriptError(c.EXIT_UNREACHABLE, f"check failed ({type(e).__name__})") from None
    finally:
        await database.close()
    return report.as_dict()


STATUSES = ("missing", "different", "extra", "in_flight")


def _kinds(stores: tuple[str, ...]) -> list[str]:
    order = ("projects", "contributors", "assets", "dependencies", "contributions", "tasks")
    wanted = {k for s in stores for k in STORE_KINDS[s]}
    return [k for k in order if k in wanted]


def _report_path(args: Any, run: str) -> Path:
    if args.report:
        return Path(args.report)
    return Path(os.environ.get("VERIFY_REPORT_DIR", ".")) / f"verify-{run}.jsonl"


def _counts(lines: list[dict[str, Any]]) -> dict[str, int]:
    out = dict.fromkeys(STATUSES, 0)
    for line in lines:
        out[line["status"]] += 1
    return out


def _totals(by_kind: dict[str, dict[str, int]]) -> dict[str, Any]:
    checked = sum(v["checked"] for v in by_kind.values())
    sums = {s: sum(v[s] for v in by_kind.values()) for s in STATUSES}
    bad = sums["missing"] + sums["different"]
    return {"checked": checked, "mismatches": bad, "missing_count": sums["missing"],
            "different_count": sums["different"], "extra_count": sums["extra"],
            "in_flight_count": sums["in_flight"],
            "mismatch_ratio": round(bad / checked, 6) if checked else 0.0,
            "mismatch_ratio_by_kind": {
                k: round((v["missing"] + v["different"]) / v["checked"], 6) if v["checked"]
                else 0.0 for k, v in by_kind.items()},
            "kinds": by_kind}


class Stopped(Exception):
    """--max-chunks reached: the state file holds where --resume goes on."""


def _state_path(report: Path) -> Path:
    return report.with_name(report.name + ".state")


def _save(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(state, sort_keys=True))
    tmp.replace(path)


def full(args: Any, out: Any, report: Path, progress: c.Progress) -> dict[str, Any]:
    """full_in(), with the comparison here when --compare-here asks for it."""
    if not args.compare_here:
        return full_in(args, out, report, progress, None)
    from _compare_here import CompareHere

    here = CompareHere(args.api_url, c.database_url(args.database_url), args.run)
    try:
        return full_in(args, out, report, progress, here)
    finally:
        here.close()


def full_in(args: Any, out: Any, report: Path, progress: c.Progress, here: Any
            ) -> dict[str, Any]:
    """Every key of the migrated stores' kinds, chunk by chunk, into `out`. After each
    chunk the place and the counts so far are saved beside the report (REPORT.state), so
    `--resume` continues an interrupted run; the file goes once the run is complete."""
    state_file = _state_path(report)
    state: dict[str, Any] = json.loads(state_file.read_text()) if args.resume else {
        "run": args.run, "kind": None, "after": None, "by_kind": {}, "chunks": 0}
    throttle = Throttle(delay=args.delay, ceiling=args.p95_ceiling,
                        scrape=_scraper(args.api_url) if args.p95_ceiling else None)
    throttle.start()
    kinds = _kinds(args.stores)
    this_job = 0
    for n, kind in enumerate(kinds):
        if kind in state["by_kind"] and state["kind"] != kind:
            continue  # done before the interruption
        counts = state["by_kind"].setdefault(kind, {"checked": 0, **dict.fromkeys(STATUSES, 0)})
        params: dict[str, Any] = {"run": state["run"], "kind": kind, "limit": args.chunk}
        if state["kind"] == kind and state["after"] is not None:
            params["after"] = json.dumps(state["after"])
        state["kind"] = kind
        while True:
            if args.max_chunks is not None and this_job >= args.max_chunks:
                raise Stopped(f"stopped after {this_job} chunks (--max-chunks): "
                              f"--resume --report {report} continues")
            if here is not None:
                doc = here.chunk(kind, json.loads(params.get("after", "null")), args.chunk)
            else:
                doc = c.call_admin(args.api_url, "POST", "/api/admin/verify/chunk", params)
            this_job += 1
            counts["checked"] += doc["checked"]
            for line in doc["lines"]:
                out.write(json.dumps(line, sort_keys=True) + "\n")
                counts[line["status"]] += 1
            out.flush()
            state["chunks"] += 1
            state["after"] = None if doc["done"] else doc["next"]
            _save(state_file, state)
            if doc["done"]:
                break
            params["after"] = json.dumps(doc["next"])
            throttle.wait()
        state["kind"] = None
        _save(state_file, state)
        progress(n + 1, len(kinds))
    state_file.unlink(missing_ok=True)
    return {"run": state["run"], "chunks": state["chunks"], "chunks_this_job": this_job,
            "chunk": args.chunk, "resumed": bool(args.resume), "compare_here": here is not None,
            "throttle": throttle.as_dict(), **_totals(state["by_kind"])}


def _scraper(api_url: str) -> Any:
    import httpx

    return lambda: httpx.get(api_url.rstrip("/") + "/metrics", timeout=10.0).text


def read_report(path: str) -> list[dict[str, Any]]:
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise c.ScriptError(c.EXIT_USAGE, f"cannot read report {path} ({type(e).__name__})"
                            ) from None
    lines = []
    for n, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except ValueError:
            raise c.ScriptError(c.EXIT_USAGE, f"{path}:{n}: not JSON") from None
        if not isinstance(line, dict) or "kind" not in line or "key" not in line:
            raise c.ScriptError(c.EXIT_USAGE, f"{path}:{n}: not a report line")
        lines.append(line)
    return lines


def keys_again(args: Any, items: list[dict[str, Any]], out: Any) -> dict[str, Any]:
    """Re-verify the report's keys; what still disagrees goes into `out`."""
    by_kind: dict[str, dict[str, int]] = {}
    for part in c.batches(items):
        keys = [{"kind": i["kind"], "key": i["key"]} for i in part]
        doc = c.call_admin_json(args.api_url, "/api/admin/verify/keys", {"keys": keys})
        for i in keys:
            by_kind.setdefault(i["kind"], {"checked": 0, **dict.fromkeys(STATUSES, 0)})
            by_kind[i["kind"]]["checked"] += 1
        for line in doc["lines"]:
            out.write(json.dumps(line, sort_keys=True) + "\n")
            by_kind[line["kind"]][line["status"]] += 1
    return {"keys_from": args.keys_from, **_totals(by_kind)}


def repair(args: Any, items: list[dict[str, Any]]) -> dict[str, Any]:
    """--repair over `items`; passed only if every repaired key now agrees."""
    params = {"delete_extra": "true"} if args.delete_extra else None
    done: dict[str, Any] = {"passed": True, "repaired_total": 0, "extra_count": 0,
                            "extra_deleted": 0, "extra_remaining": 0, "unresolved": []}
    for part in c.batches(items):
        doc = c.call_admin_json(args.api_url, "/api/admin/repair", {"keys": part}, params)
        done["passed"] = done["passed"] and doc["passed"]
        for name in ("repaired_total", "extra_count", "extra_deleted", "extra_remaining"):
            done[name] += doc[name]
        done["unresolved"] += [line for line in doc["reverify"]["lines"]
                               if line["status"] != "in_flight"]
    done["unresolved_count"] = len(done["unresolved"])
    done["unresolved"] = done["unresolved"][:20]
    return done


def main(argv: list[str] | None = None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    if args.mode == "full" or args.keys_from or args.repair:
        return main_full(p, args)
    if not 0 < args.sample <= 1 or not 0 <= args.max_mismatch <= 1:
        p.error("--sample must be in (0, 1] and --max-mismatch in [0, 1]")
    if args.max_missing is not None and args.max_missing < 0:
        p.error("--max-missing must be 0 or more")
    summary: dict[str, Any] = {"script": "verify_data_consistency",
                               "stores": list(args.stores)}
    progress = c.Progress("verify", not args.quiet)
    try:
        progress(0, 1)
        if args.api_url:
            summary["mode"] = "api"
            params: dict[str, Any] = {"sample": args.sample, "max_mismatch": args.max_mismatch}
            if args.max_missing is not None:
                params["max_missing"] = args.max_missing
            if args.seed is not None:
                params["seed"] = args.seed
            summary |= scope(
                c.call_admin(args.api_url, "POST", "/api/admin/consistency-check", params),
                args.stores)
        else:
            summary["mode"] = "snapshot"
            summary |= asyncio.run(offline(args))
        progress(1, 1)
    except c.ScriptError as e:
        return c.fail(summary, "verify", e, args.termination_log, flag="passed")
    too_many_missing = args.max_missing is not None and summary["missing_count"] > args.max_missing
    passed = summary["mismatch_ratio"] <= args.max_mismatch and not too_many_missing
    summary |= {"passed": passed, "max_mismatch": args.max_mismatch,
                "max_missing": args.max_missing}
    if not passed:
        limit = (f"more than {args.max_missing} missing" if too_many_missing
                 else f"mismatch ratio {summary['mismatch_ratio']} above {args.max_mismatch}")
        sys.stderr.write(
            f"{limit}: {summary['missing_count']} missing, "
            f"{summary['different_count']} different\n"
        )
    return c.finish(summary, c.EXIT_OK if passed else c.EXIT_FAILED, args.termination_log)


def main_full(p: Any, args: Any) -> int:
    """--mode full, --keys-from and --repair: every key, written to the report."""
    if not args.api_url:
        p.error("--mode full, --keys-from and --repair need --api-url")
    if args.chunk < 1 or args.delay < 0 or not 0 <= args.max_mismatch <= 1:
        p.error("--chunk >= 1, --delay >= 0, --max-mismatch in [0, 1]")
    if args.delete_extra and not args.repair:
        p.error("--delete-extra needs --repair")
    args.run = args.run or f"{int(time.time())}-{os.getpid()}"
    mode = "repair" if args.repair else ("keys" if args.keys_from else "full")
    summary: dict[str, Any] = {"script": "verify_data_consistency", "mode": mode,
                               "stores": list(args.stores)}
    path = _report_path(args, args.run)
    progress = c.Progress("verify", not args.quiet)
    try:
        items = read_report(args.keys_from) if args.keys_from else None
        path.parent.mkdir(parents=True, exist_ok=True)
        if args.resume and not _state_path(path).exists():
            raise c.ScriptError(c.EXIT_USAGE, f"nothing to resume: no {_state_path(path)}")
        with path.open("a" if args.resume else "w") as out:
            if items is None:
                summary |= full(args, out, path, progress)
            else:
                summary |= keys_again(args, items, out)
        summary["report"] = str(path.resolve())
        if args.repair:
            found = items if items is not None else read_report(str(path))
            summary["repair"] = repair(args, found)
    except c.ScriptError as e:
        return c.fail(summary, "verify", e, args.termination_log, flag="passed")
    except Stopped as e:
        summary["report"] = str(path.resolve())
        return c.fail(summary, "verify", c.ScriptError(c.EXIT_FAILED, str(e)),
                      args.termination_log, flag="passed")
    too_many_missing = args.max_missing is not None and summary["missing_count"] > args.max_missing
    too_many_extra = args.max_extra is not None and summary["extra_count"] > args.max_extra
    if args.repair:
        passed = bool(summary["repair"]["passed"])
    else:
        passed = (summary["mismatch_ratio"] <= args.max_mismatch and not too_many_missing
                  and not too_many_extra)
    summary |= {"passed": passed, "max_mismatch": args.max_mismatch,
                "max_missing": args.max_missing, "max_extra": args.max_extra}
    sys.stderr.write(
        f"{summary['missing_count']} missing, {summary['different_count']} different, "
        f"{summary['extra_count']} extra of {summary['checked']} checked; report {path}\n")
    return c.finish(summary, c.EXIT_OK if passed else c.EXIT_FAILED, args.termination_log)


if __name__ == "__main__":
    sys.exit(main())
