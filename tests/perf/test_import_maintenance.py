"""A large import leaves the search indexes' pending lists merged (migration 007) and,
when it at least doubled the table, projects analyzed (005), done by the
least-privilege app role through the owner's SECURITY DEFINER functions; a small
import leaves that to autovacuum. The contributions import's parents (contributors,
assets) are analyzed while a batched backfill fills them (015)."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import asyncpg
from app.models import Asset, AssetType, Contributor
from app.stores.ports import GraphRecords
from app.stores.postgres.import_maintenance import MAINTAIN_AFTER_PROJECTS

from benchmarks.common import projects
from tests.harness.postgres import PgDatabase, postgres_stores

LAST_ANALYZE = "SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'projects'"
# As the owner: pages still in each trigram index's pending list (cleaning them here).
PENDING = ("SELECT gin_clean_pending_list('projects_name_trgm')"
           " + gin_clean_pending_list('projects_description_trgm')")


async def _owner_rows(owner_dsn: str, query: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(owner_dsn)
    try:
        return await conn.fetch(query)
    finally:
        await conn.close()


async def _owner_value(owner_dsn: str, query: str) -> object:
    return (await _owner_rows(owner_dsn, query))[0][0]


async def _last_analyze(owner_dsn: str) -> object:
    return await _owner_value(owner_dsn, LAST_ANALYZE)


async def test_large_import_analyzes_projects_as_the_app_role(pg_database: PgDatabase) -> None:
    graph, _, db = await postgres_stores(pg_database.app_dsn)
    try:
        small = await graph.import_graph(GraphRecords(projects=projects(10)))
        assert small.written["projects"] == 10
        assert await _last_analyze(pg_database.owner_dsn) is None

        rows = projects(MAINTAIN_AFTER_PROJECTS, offset=1_000)
        stats = await graph.import_graph(GraphRecords(projects=rows))
        assert stats.written["projects"] == MAINTAIN_AFTER_PROJECTS
        assert await _last_analyze(pg_database.owner_dsn) is not None
        found = await graph.search(rows[7].name)
        assert [p.name for p in found.results][:1] == [rows[7].name]
    finally:
        await db.close()


async def test_import_into_a_larger_table_merges_pending_lists_without_analyze(
    pg_database: PgDatabase,
) -> None:
    graph, _, db = await postgres_stores(pg_database.app_dsn)
    try:
        await graph.import_graph(GraphRecords(projects=projects(3 * MAINTAIN_AFTER_PROJECTS)))
        analyzed = await _last_analyze(pg_database.owner_dsn)
        assert analyzed is not None

        # an import of a third of the table: merged, not analyzed
        more = projects(MAINTAIN_AFTER_PROJECTS, offset=100_000)
        await graph.import_graph(GraphRecords(projects=more))
        assert await _owner_value(pg_database.owner_dsn, PENDING) == 0
        assert await _last_analyze(pg_database.owner_dsn) == analyzed

        # below the threshold nothing is maintained: the pending list keeps the rows
        await graph.import_graph(GraphRecords(projects=projects(100, offset=200_000)))
        assert await _owner_value(pg_database.owner_dsn, PENDING) > 0
    finally:
        await db.close()


async def test_app_role_cannot_analyze_directly(pg_database: PgDatabase) -> None:
    conn = await asyncpg.connect(pg_database.app_dsn)
    try:
        await conn.execute("ANALYZE projects")  # skipped with a WARNING: not the owner
        assert await conn.fetchval(LAST_ANALYZE) is None
    finally:
        await conn.close()


PARENTS_ANALYZED = ("SELECT relname, last_analyze FROM pg_stat_user_tables"
                    " WHERE relname IN ('contributors', 'assets')")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _parents(n: int, offset: int) -> GraphRecords:
    return GraphRecords(
        contributors=[Contributor(id=UUID(int=offset + i), name=f"c{i}", created_at=T0,
                                  updated_at=T0) for i in range(n)],
        assets=[Asset(id=UUID(int=offset + i), type=AssetType.DATA, name=f"a{i}",
                      created_at=T0, updated_at=T0) for i in range(n)])


async def _parents_analyzed(owner_dsn: str) -> dict[str, object]:
    return {r["relname"]: r["last_analyze"] for r in await _owner_rows(owner_dsn, PARENTS_ANALYZED)}


async def test_backfill_batches_of_parents_are_analyzed_until_the_estimate_holds(
    pg_database: PgDatabase,
) -> None:
    graph, _, db = await postgres_stores(pg_database.app_dsn)
    try:
        assert set((await _parents_analyzed(pg_database.owner_dsn)).values()) == {None}
        await graph.import_graph(_parents(500, offset=1))  # never analyzed: analyzed now
        first = await _parents_analyzed(pg_database.owner_dsn)
        assert None not in first.values(), first
        await graph.import_graph(_parents(500, offset=10_001))  # doubles them: again
        second = await _parents_analyzed(pg_database.owner_dsn)
        assert all(second[k] > first[k] for k in first), (first, second)  # type: ignore[operator]
        await graph.import_graph(_parents(100, offset=20_001))  # a tenth: autovacuum's job
        assert await _parents_analyzed(pg_database.owner_dsn) == second
    finally:
        await db.close()
