#!/usr/bin/env python3
"""Copy every in-memory record into PostgreSQL: idempotent bulk upserts that never
overwrite a row PostgreSQL holds at a newer updated_at and never write an asset's
total_cost (the contribution trigger counts each contribution once).

Run it AFTER dual-write is on (docs/ARCHITECTURE.md, departure 1): writes made from then on are
copied by the router, and the backfill copies everything before.

  online:  backfill_postgres.py --api-url http://api:8000      (ADMIN_TOKEN in env)
  offline: backfill_postgres.py --snapshot snap.json --database-url URL (or DATABASE_URL)

It exits 1 when PostgreSQL refused any record (named in the error and in rejected_ids):
a backfill that could not copy everything has not succeeded.

--stores names the stores being migrated (recorded in the summary); the API's backfill
copies both stores, which is harmless for one that is not migrated (idempotent upserts).
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import _common as c


def build_parser() -> Any:
    p = c.parser(__doc__ or "")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--api-url", help="the running API: POST /api/admin/backfill")
    src.add_argument("--snapshot", help="a snapshot file to import offline")
    p.add_argument("--database-url", help="offline target (default: $DATABASE_URL)")
    p.add_argument("--chunk", type=int, default=20_000, help="records per bulk import")
    c.add_stores(p)
    return p


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
        if args.api_url:
            summary["mode"] = "api"
            c.Progress("backfill", not args.quiet)(0, 1)
            summary |= c.call_admin(args.api_url, "POST", "/api/admin/backfill")
            c.Progress("backfill", not args.quiet)(1, 1)
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
