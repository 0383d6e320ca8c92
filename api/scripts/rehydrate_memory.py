#!/usr/bin/env python3
"""Rebuild the API's in-memory stores from PostgreSQL: POST /api/admin/rehydrate.

This is the first step of rolling back phase 3 (docs/ARCHITECTURE.md, departure 2): memory is
rebuilt from PostgreSQL, the newest truth, never from the snapshot taken when phase 3
began. The operator runs it as the rehydrate Job; rollback_postgres_migration.py calls
the same endpoint before it switches memory writes back on.

  rehydrate_memory.py --api-url http://api:8000      (ADMIN_TOKEN in env)
"""

from __future__ import annotations

import sys
from typing import Any

import _common as c


def build_parser() -> Any:
    p = c.parser(__doc__ or "")
    p.add_argument("--api-url", required=True, help="the running API (ADMIN_TOKEN in env)")
    c.add_stores(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    summary: dict[str, Any] = {"script": "rehydrate_memory", "stores": list(args.stores)}
    progress = c.Progress("rehydrate", not args.quiet)
    try:
        progress(0, 1)
        summary |= c.call_admin(args.api_url, "POST", "/api/admin/rehydrate")
        progress(1, 1)
        return c.succeed(summary, args.termination_log)
    except c.ScriptError as e:
        return c.fail(summary, "rehydrate", e, args.termination_log)


if __name__ == "__main__":
    sys.exit(main())
