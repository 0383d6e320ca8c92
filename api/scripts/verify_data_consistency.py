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
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import _common as c


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


def main(argv: list[str] | None = None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
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


if __name__ == "__main__":
    sys.exit(main())
