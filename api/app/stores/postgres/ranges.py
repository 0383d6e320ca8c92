"""PostgresRanges: PostgreSQL read by key ranges and the backfill checkpoint.

The chunked verify compares memory and PostgreSQL one key range at a time, so neither
side is ever held whole; the resumable backfill records its place after every batch in
migration_checkpoint (014) so a restarted Job finds it. Keys arrive JSON-shaped
(app.stores.ports.RangeKey) and are turned into each kind's parameters here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from app.pacing import paced
from app.stores.ports import RECORD_MODELS
from app.stores.postgres import range_queries as q
from app.stores.postgres.pool import Database

RANGE = {"projects": q.RANGE_PROJECTS, "contributors": q.RANGE_CONTRIBUTORS,
         "assets": q.RANGE_ASSETS, "contributions": q.RANGE_CONTRIBUTIONS,
         "tasks": q.RANGE_TASKS}
KEYS = {"projects": q.KEYS_PROJECTS, "contributors": q.KEYS_CONTRIBUTORS,
        "assets": q.KEYS_ASSETS, "contributions": q.KEYS_CONTRIBUTIONS, "tasks": q.KEYS_TASKS}
DELETE = {"projects": q.DELETE_PROJECT, "contributors": q.DELETE_CONTRIBUTOR,
          "assets": q.DELETE_ASSET, "contributions": q.DELETE_CONTRIBUTION,
          "tasks": q.DELETE_TASK}
UUID_KINDS = ("contributors", "assets", "contributions")


def _param(kind: str, key: Any) -> Any:
    if key is None:
        return None
    if kind in UUID_KINDS:
        return UUID(str(key))
    if kind == "projects":
        return int(key)
    return str(key)


def _dep(key: Any) -> list[Any]:
    return [None] * 4 if key is None else [str(part) for part in key]


class PostgresRanges:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def read_range(self, kind: str, after: Any, upto: Any, limit: int) -> list[Any]:
        model = RECORD_MODELS[kind]
        async with self.db.acquire() as conn:
            if kind == "dependencies":
                rows = await conn.fetch(q.RANGE_DEPENDENCIES, *_dep(after), *_dep(upto), limit)
            else:
                rows = await conn.fetch(RANGE[kind], _param(kind, after), _param(kind, upto),
                                        limit)
        return [model.model_validate(dict(r)) async for r in paced(rows)]

    async def read_keys(self, kind: str, keys: list[Any]) -> list[Any]:
        if not keys:
            return []
        model = RECORD_MODELS[kind]
        async with self.db.acquire() as conn:
            if kind == "dependencies":
                columns = list(zip(*(_dep(k) for k in keys), strict=True))
                rows = await conn.fetch(q.KEYS_DEPENDENCIES, *[list(c) for c in columns])
            else:
                rows = await conn.fetch(KEYS[kind], [_param(kind, k) for k in keys])
        return [model.model_validate(dict(r)) async for r in paced(rows)]

    async def delete_record(self, kind: str, key: Any) -> int:
        async with self.db.acquire() as conn:
            if kind == "dependencies":
                status = await conn.execute(q.DELETE_DEPENDENCY, *_dep(key))
            else:
                status = await conn.execute(DELETE[kind], _param(kind, key))
        return int(status.split()[-1])

    async def recount_asset_total(self, asset_id: Any) -> None:
        async with self.db.acquire() as conn:
            await conn.execute(q.RECOUNT_ASSET_TOTAL, UUID(str(asset_id)))

    async def checkpoint(self, run: str) -> list[dict[str, Any]]:
        async with self.db.acquire() as conn:
            rows = await conn.fetch(q.GET_CHECKPOINT, run)
        return [dict(r) for r in rows]

    async def start_checkpoint(
        self, run: str, totals: list[tuple[str, int]], cutoff: datetime
    ) -> None:
        async with self.db.transaction() as conn:
            for position, (kind, total) in enumerate(totals):
                await conn.execute(q.START_CHECKPOINT, run, kind, position, total, cutoff)

    async def advance_checkpoint(
        self, run: str, kind: str, last_key: Any, done: int, written: int, skipped: int,
        refused: list[str], finished: bool,
    ) -> None:
        async with self.db.acquire() as conn:
            await conn.execute(q.ADVANCE_CHECKPOINT, run, kind, last_key, done, written,
                               skipped, refused, finished)

    async def retry_refused(self, run: str) -> None:
        async with self.db.acquire() as conn:
            await conn.execute(q.RETRY_REFUSED, run)

    async def reset_checkpoint(self, run: str) -> None:
        async with self.db.acquire() as conn:
            await conn.execute(q.RESET_CHECKPOINT, run)
