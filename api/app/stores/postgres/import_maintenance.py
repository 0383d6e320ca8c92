"""What a bulk import leaves for the database to catch up on, done before it returns.

After an import that wrote many projects, the trigram indexes' pending lists are merged,
so searches right after a backfill are not 5-10x slower until autovacuum comes round; the
projects table is analyzed too when the import at least doubled it. Contributors and
assets are analyzed while a backfill fills them batch by batch (migration 015), because
the next batch of contributions is planned against their statistics: planned for empty
parents, a batch at 1M records hit the statement timeout. The import is committed either
way, so a failure here is logged, not raised: it only leaves the work to autovacuum.
"""

from __future__ import annotations

import logging

from app.errors import StoreError
from app.stores.ports import ImportStats
from app.stores.postgres import graph_queries as q
from app.stores.postgres.pool import Database

log = logging.getLogger(__name__)

# An import that writes at least this many projects maintains the search indexes
# (migration 005) before it returns: ~55 ms after 10k rows, ~130 ms after 100k.
MAINTAIN_AFTER_PROJECTS = 1_000
PARENTS = ("contributors", "assets")


async def after_import(db: Database, stats: ImportStats) -> None:
    written = stats.written.get("projects", 0)
    if written >= MAINTAIN_AFTER_PROJECTS:
        await maintain_search_indexes(db, written)
    await refresh_parent_statistics(db, stats)


async def maintain_search_indexes(db: Database, written: int) -> None:
    try:
        async with db.acquire() as conn:
            held = int(await conn.fetchval(q.COUNT_PROJECTS))
            analyze = 2 * written >= held
            await conn.execute(q.MAINTAIN_PROJECTS if analyze else q.CLEAN_PROJECT_SEARCH)
    except StoreError as e:
        log.warning("search index maintenance after import skipped: %s", e)


async def refresh_parent_statistics(db: Database, stats: ImportStats) -> None:
    """ANALYZE a parent table when this import wrote at least half as many of its rows as
    its statistics claim, or it was never analyzed: while it grows batch by batch this
    runs until the estimate passes twice a batch."""
    grown = {k: stats.written.get(k, 0) for k in PARENTS}
    if not any(grown.values()):
        return
    try:
        async with db.acquire() as conn:
            estimates = {r["relname"]: float(r["reltuples"])
                         for r in await conn.fetch(q.PARENT_ESTIMATES)}
            stale = [k for k, n in grown.items()
                     if n and (estimates.get(k, -1) < 0 or 2 * n >= estimates[k])]
            if stale:
                await conn.execute(q.ANALYZE_PARENTS, stale)
    except StoreError as e:
        log.warning("statistics refresh after import skipped: %s", e)
