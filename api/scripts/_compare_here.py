"""The full verify's comparison in the verify's own process (--compare-here).

By default each chunk is compared inside the API (POST /api/admin/verify/chunk): the
API reads PostgreSQL's range, makes a model of every row and compares every pair on the
event loop that serves requests. At 1,000,000 records that work kept the API's p95 at
2.5-4.6x its baseline (docs/BENCHMARKS.md section 9). Here the API only hands over
memory's side of the range, serialized in one call (POST /api/admin/verify/memory);
this process reads PostgreSQL's side itself, with the app's own range queries and
models, and compares the pairs. A pair that does not agree is looked at again by the
API (POST /api/admin/verify/keys) after the second-write window, against memory's
current record, exactly as the in-API chunk's recheck does, so both ways write the same
report lines.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import _common as c
from app.migration.chunked import agree, pair_range
from app.migration.keyed import RECORD_LISTS, from_json, sort_key, to_json
from app.stores.postgres.ranges import PostgresRanges
from pydantic import ValidationError


class CompareHere:
    """Chunks compared in this process: PostgreSQL through its own small pool, memory
    through the API. Once memory's side of a kind has run out (fewer than `limit`
    records came back, and the API let its index go), what came back is kept, so the
    rest of the kind's PostgreSQL rows are matched without asking again."""

    def __init__(self, api_url: str, dsn: str, run: str) -> None:
        self.api_url, self.run = api_url, run
        self.loop = asyncio.new_event_loop()
        _, _, self.database = self.loop.run_until_complete(c.open_postgres(dsn))
        self.ranges = PostgresRanges(self.database)
        self._rest: dict[str, list[Any]] = {}
        self.window = 0.0

    def close(self) -> None:
        self.loop.run_until_complete(self.database.close())
        self.loop.close()

    def _memory(self, kind: str, after: Any, limit: int) -> list[Any]:
        if kind in self._rest:
            start = from_json(kind, after)
            return [r for r in self._rest[kind]
                    if start is None or sort_key(kind, r) > start][:limit]
        params: dict[str, Any] = {"run": self.run, "kind": kind, "limit": limit}
        if after is not None:
            params["after"] = json.dumps(after)
        doc = c.call_admin(self.api_url, "POST", "/api/admin/verify/memory", params)
        try:
            records = RECORD_LISTS[kind].validate_python(doc["records"])
        except ValidationError as e:  # the count only: the errors quote the records
            raise c.ScriptError(c.EXIT_FAILED, f"memory's {kind} records do not read back "
                                f"from their JSON ({e.error_count()} validation errors): "
                                "verify without --compare-here (the API compares them as "
                                "held)") from None
        if len(records) < limit:
            self._rest[kind] = records
        self.window = float(doc["window"])
        return records

    def chunk(self, kind: str, after: Any, limit: int) -> dict[str, Any]:
        """The same document as POST /api/admin/verify/chunk answers."""
        ahead = self._memory(kind, after, limit)
        try:
            theirs = self.loop.run_until_complete(
                self.ranges.read_range(kind, after, None, limit))
        except Exception as e:  # noqa: BLE001 - the class only: a message may hold the DSN
            raise c.ScriptError(c.EXIT_UNREACHABLE,
                                f"PostgreSQL range read failed ({type(e).__name__})") from None
        upto, pairs = pair_range(kind, limit, ahead, theirs)
        bad = sorted(k for k, (mine, held) in pairs.items() if not agree(mine, held))
        lines: list[dict[str, Any]] = []
        if bad:
            time.sleep(self.window)
            for keys in c.batches([{"kind": kind, "key": to_json(kind, k)} for k in bad]):
                doc = c.call_admin_json(self.api_url, "/api/admin/verify/keys", {"keys": keys})
                lines += doc["lines"]
        return {"kind": kind, "next": to_json(kind, upto), "done": upto is None,
                "checked": len(pairs), "lines": lines}
