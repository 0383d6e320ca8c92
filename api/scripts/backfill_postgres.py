#!/usr/bin/env python3
"""Copy every in-memory record into PostgreSQL: idempotent bulk upserts that never
overwrite a row PostgreSQL holds at a newer updated_at and never write an asset's
total_cost (the contribution trigger counts each contribution once).

Run it AFTER dual-write is on (docs/ARCHITECTURE.md, departure 1): writes made from then on are
copied by the router, and the backfill copies everything before.

  online:  backfill_postgres.py --api-url http://api:8000      (ADMIN_TOKEN in env)
  offline: backfill_postgres.py --snapshot snap.json --database-url URL (or DATABASE_URL)

Online, the copy goes one batch per call (POST /api/admin/backfill/batch): keyset
order, kinds in foreign-key order, each batch checkpointed in PostgreSQL under --run
(default $BACKFILL_RUN, else "backfill"). A Job killed and started again with the same
run continues after the last committed batch (and copies again each kind PostgreSQL
refused a record of: a run has not succeeded until it copies them); --restart begins
the run anew. The run
copies the records that existed at its first batch (dual-write carries the rest).
Throttle: --batch-size, --delay between batches, and --p95-ceiling: pause while the
API's p95 latency (its own /metrics) is above it. Progress (done/total per kind, rate,
ETA) is in the checkpoint (GET /api/admin/backfill/progress?run=RUN) and the summary.
--whole keeps the former single call (POST /api/admin/backfill).

It exits 1 when PostgreSQL refused any record (named in the error and in rejected_ids):
a backfill that could not copy everything has not succeeded.

--stores names the stores being migrated (recorded in the summary); the API's backfill
copies both stores, which is harmless for one that is not migrated (idempotent upserts).
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import _common as c
from _throttle import Throttle


def build_parser() -> Any:
    p = c.parser(__doc__ or "")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--api-url", help="the running API: POST /api/admin/backfill")
    src.add_argument("--snapshot", help="a snapshot file to import offline")
    p.add_argument("--database-url", help="offline target (default: $DATABASE_URL)")
    p.add_argument("--chunk", type=int, default=20_000, help="records per bulk import")
    p.add_argument("--run", default=os.environ.get("BACKFILL_RUN", "backfill"),
                   help="the checkpoint's name: the same run resumes (default $BACKFILL_RUN)")
    p.add_argument("--restart", action="store_true", help="start the run from zero")
    p.add_argument("--batch-size", type=int, default=1000, help="records per batch (online)")
    p.add_argument("--delay", type=float, default=0.0, help="seconds between batches")
    p.add_argument("--p95-ceiling", type=float, default=None,
                   help="pause while the API's p95 (seconds, from its /metrics) is above it")
    p.add_argument("--pause", type=float, default=5.0, help="seconds per pause")
    p.add_argument("--whole", action="store_true", help="online: the former single call")
    c.add_stores(p)
    return p


def scraper(api_url: str) -> Any:
    import httpx

    def scrape() -> str:
        return httpx.get(api_url.rstrip("/") + "/metrics", timeout=10.0).text

    return scrape


def online(args: Any, progress: c.Progress) -> dict[str, Any]:
    """Batches until the run is finished; the last answer is the run's progress."""
    throttle = Throttle(delay=args.delay, ceiling=args.p95_ceiling, pause=args.pause,
                        scrape=scraper(args.api_url) if args.p95_ceiling else None)
    throttle.start()
    params: dict[str, Any] = {"run": args.run, "limit": args.batch_size,
                              "retry_refused": "true"}
    if args.restart:
        params["restart"] = "true"
    copied = batches = 0
    while True:
        doc = c.call_admin(args.api_url, "POST", "/api/admin/backfill/batch", params)
        params.pop("restart", None)
        params.pop("retry_refused", None)
        progress(doc["done"], doc["total"])
        copied += doc["batch"]["records"]
        batches += doc["batch"]["kind"] is not None
        if doc["finished"]:
            break
        throttle.wait()
    return {**doc, "this_job": {"batches": batches, "records": copied},
            "throttle": throttle.as_dict()}


async def offline(snapshot: str, dsn: str, chunk: int, progress: c.Progress) -> dict[str, Any]:
    from app.migration.backfill import copy_records

    graph, tasks = c.load_snapshot(snapshot)
    pg_graph, pg_tasks, database = await c.open_postgres(dsn)
    try:
        report = await copy_records(graph, tasks, pg_graph, pg_tasks, chunk=chunk,
                                    progress=progress)
    except Exception as e:  # noqa: BLE001 - report the class only
        raise c.ScriptError(c.EXIT_UNREACHABLE, f"import failed ({type(e).__name__})") from None
    finally:
        await database.close()
    return report.as_dict()


SHOWN = 10


def refused(summary: dict[str, Any]) -> str:
    """What PostgreSQL refused, naming the records: the backfill did not copy them, so a
    full verify cannot pass until they are repaired at the source."""
    named = []
    for kind, ids in sorted(summary.get("rejected_ids", {}).items()):
        more = summary["rejected"][kind] - min(len(ids), SHOWN)
        named.append(f"{kind} {', '.join(ids[:SHOWN])}" + (f" (+{more} more)" if more else ""))
    return (f"PostgreSQL refused {summary['rejected_total']} record(s), not copied: "
            f"{'; '.join(named)}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    summary: dict[str, Any] = {"script": "backfill_postgres", "stores": list(args.stores)}
    try:
        if args.batch_size < 1 or args.delay < 0 or args.pause <= 0:
            raise c.ScriptError(c.EXIT_USAGE, "--batch-size >= 1, --delay >= 0, --pause > 0")
        if args.api_url and args.whole:
            summary["mode"] = "api"
            c.Progress("backfill", not args.quiet)(0, 1)
            summary |= c.call_admin(args.api_url, "POST", "/api/admin/backfill")
            c.Progress("backfill", not args.quiet)(1, 1)
        elif args.api_url:
            summary["mode"] = "api-batched"
            summary |= online(args, c.Progress("backfill", not args.quiet))
        else:
            summary["mode"] = "snapshot"
            dsn = c.database_url(args.database_url)
            progress = c.Progress("backfill", not args.quiet)
            summary |= asyncio.run(offline(args.snapshot, dsn, args.chunk, progress))
        if summary.get("rejected_total"):
            raise c.ScriptError(c.EXIT_FAILED, refused(summary))
        return c.succeed(summary, args.termination_log)
    except c.ScriptError as e:
        return c.fail(summary, "backfill", e, args.termination_log)


if __name__ == "__main__":
    sys.exit(main())
