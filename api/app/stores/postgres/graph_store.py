"""PostgresGraphStore: the GraphStore and GraphReplica protocols on PostgreSQL.

Same answers as the in-memory backend: search matches and ranks with the rules of
app.domain.graph, expressed in SQL (trigram indexes serve the substring match),
listings use the protocol's orders, and errors carry the contract's texts. Every write
is atomic: a write that is one statement runs in autocommit (one round trip instead of
BEGIN, statement, COMMIT: the dual-write copies are all of this kind), upsert_project's
UPDATE-then-INSERT..ON CONFLICT is safe statement by statement, and what needs more
(import_graph, export_graph) runs in a transaction. The bulk import fills temp tables
with COPY and upserts each table with one statement, which is what makes a 100k-row
backfill take a second, not minutes; import_maintenance keeps the indexes and the
planner's statistics right for what an import wrote.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from app.canonical import search_fold
from app.domain.graph import normalize_query
from app.errors import (
    ConflictError,
    InvalidDataError,
    NotFoundError,
    total_overflow,
)
from app.models import (
    Asset,
    AssetCreate,
    Contribution,
    ContributionCreate,
    Contributor,
    ContributorCreate,
    Dependency,
    Project,
    ProjectUpsert,
    SearchHit,
    SearchResult,
)
from app.pacing import paced
from app.stores.ports import GraphRecords, ImportStats
from app.stores.postgres import graph_queries as q
from app.stores.postgres.import_maintenance import after_import
from app.stores.postgres.pool import ConstraintErrors, Database

PROJECT_NOT_FOUND = "Project not found"
CONTRIBUTOR_NOT_FOUND = "Contributor not found"
ASSET_NOT_FOUND = "Asset not found"
DUPLICATE_EMAIL = "Contributor with this email already exists"

CONSTRAINTS: ConstraintErrors = {
    "contributors_email_fold_key": ConflictError(DUPLICATE_EMAIL),
    "contributors_pkey": ConflictError("Contributor already exists"),
    "assets_pkey": ConflictError("Asset already exists"),
    "contributions_pkey": ConflictError("Contribution already exists"),
    "projects_pkey": ConflictError("A different project already holds this id"),
    "projects_ecosystem_name_key": ConflictError("Project already exists"),
    "project_dependencies_from_project_id_fkey": NotFoundError(PROJECT_NOT_FOUND),
    "contributions_contributor_id_fkey": NotFoundError(CONTRIBUTOR_NOT_FOUND),
    "contributions_asset_id_fkey": NotFoundError(ASSET_NOT_FOUND),
}


def _now() -> datetime:
    return datetime.now(UTC)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _project(row: asyncpg.Record) -> Project:
    return Project.model_validate(dict(row))


def _contributor(row: asyncpg.Record) -> Contributor:
    return Contributor.model_validate(dict(row))


def _asset(row: asyncpg.Record) -> Asset:
    return Asset.model_validate(dict(row))


def _contribution(row: asyncpg.Record) -> Contribution:
    return Contribution.model_validate(dict(row))


def _latest(records: Iterable[Any], key: Any) -> list[Any]:
    """One record per key, the newest by updated_at (a batch must not upsert a key twice)."""
    best: dict[Any, Any] = {}
    for r in records:
        k = key(r)
        held = best.get(k)
        if held is None or r.updated_at > held.updated_at:
            best[k] = r
    return list(best.values())


class PostgresGraphStore:
    def __init__(self, database: Database) -> None:
        self.db = database

    # ------------------------------------------------------------ projects

    async def get_project(self, ecosystem: str, name: str) -> Project | None:
        async with self.db.acquire() as conn:
            row = await conn.fetchrow(q.GET_PROJECT, ecosystem.strip().lower(),
                                      name.strip().lower())
        return None if row is None else _project(row)

    async def upsert_project(self, ecosystem: str, name: str, data: ProjectUpsert) -> Project:
        args = (ecosystem.strip().lower(), name.strip().lower(), data.version, data.description,
                data.homepage_url, data.repository_url, _now(), search_fold(data.description))
        async with self.db.acquire(CONSTRAINTS) as conn:
            row = await conn.fetchrow(q.UPDATE_PROJECT, *args)
            if row is None:  # INSERT .. ON CONFLICT DO UPDATE covers a concurrent insert
                row = await conn.fetchrow(q.INSERT_PROJECT, *args)
        return _project(row)

    async def search(self, query: str, limit: int = 20) -> SearchResult:
        needle = normalize_query(query)
        if not needle:
            return SearchResult(results=[], total=0)
        escaped = _like_escape(needle)
        async with self.db.acquire() as conn:
            rows = await conn.fetch(q.SEARCH, f"%{escaped}%", needle, f"{escaped}%", limit)
            if rows:
                total = rows[0]["total"]
            else:
                total = await conn.fetchval(q.COUNT_MATCHES, f"%{escaped}%")
        hits = [SearchHit(name=r["name"], ecosystem=r["ecosystem"], description=r["description"])
                for r in rows]
        return SearchResult(results=hits, total=total)

    async def count_projects(self) -> int:
        async with self.db.acquire() as conn:
            return int(await conn.fetchval(q.COUNT_PROJECTS))

    async def max_project_id(self) -> int:
        """The highest project id held (0 when empty): memory's id counter starts above
        it when memory becomes the store that assigns ids again."""
        async with self.db.acquire() as conn:
            return int(await conn.fetchval(q.MAX_PROJECT_ID) or 0)

    async def add_dependency(
        self, from_ecosystem: str, from_name: str, to_ecosystem: str, to_name: str
    ) -> Dependency:
        key = (from_ecosystem.strip().lower(), from_name.strip().lower(),
               to_ecosystem.strip().lower(), to_name.strip().lower())
        async with self.db.acquire(CONSTRAINTS) as conn:
            row = await conn.fetchrow(q.ADD_DEPENDENCY, *key, _now())
            if row["project_id"] is None:
                raise NotFoundError(PROJECT_NOT_FOUND)
            created = row["created_at"]
        if created is None:  # a concurrent call inserted it after our snapshot
            async with self.db.acquire() as conn:
                created = await conn.fetchval(q.GET_DEPENDENCY_CREATED, *key)
        return Dependency(from_ecosystem=key[0], from_name=key[1], to_ecosystem=key[2],
                          to_name=key[3], created_at=created)

    async def count_dependents(self, ecosystem: str, name: str) -> int:
        async with self.db.acquire() as conn:
            return int(await conn.fetchval(q.COUNT_DEPENDENTS, ecosystem.strip().lower(),
                                           name.strip().lower()))

    # ------------------------------------------------------------ contributors, assets

    async def create_contributor(self, data: ContributorCreate) -> Contributor:
        now = _now()
        c = Contributor(id=uuid4(), created_at=now, updated_at=now, **data.model_dump())
        async with self.db.acquire(CONSTRAINTS) as conn:
            await conn.execute(q.INSERT_CONTRIBUTOR, *self._contributor_args(c))
        return c

    @staticmethod
    def _contributor_args(c: Contributor) -> tuple[Any, ...]:
        return (c.id, c.type.value, c.name, c.email, c.github_username, c.wallet_address,
                c.hourly_rate, c.metadata, c.created_at, c.updated_at, c.email_key)

    async def get_contributor(self, contributor_id: UUID) -> Contributor | None:
        async with self.db.acquire() as conn:
            row = await conn.fetchrow(q.GET_CONTRIBUTOR, contributor_id)
        return None if row is None else _contributor(row)

    async def list_contributors(self, limit: int = 100) -> list[Contributor]:
        async with self.db.acquire() as conn:
            return [_contributor(r) for r in await conn.fetch(q.LIST_CONTRIBUTORS, limit)]

    async def create_asset(self, data: AssetCreate) -> Asset:
        now = _now()
        a = Asset(id=uuid4(), created_at=now, updated_at=now, **data.model_dump())
        async with self.db.acquire(CONSTRAINTS) as conn:
            await conn.execute(q.INSERT_ASSET, *self._asset_args(a))
        return a

    @staticmethod
    def _asset_args(a: Asset) -> tuple[Any, ...]:
        return (a.id, a.type.value, a.name, a.description, a.metadata, a.created_at,
                a.updated_at)

    async def get_asset(self, asset_id: UUID) -> Asset | None:
        async with self.db.acquire() as conn:
            row = await conn.fetchrow(q.GET_ASSET, asset_id)
        return None if row is None else _asset(row)

    async def list_assets(self, limit: int = 100) -> list[Asset]:
        async with self.db.acquire() as conn:
            return [_asset(r) for r in await conn.fetch(q.LIST_ASSETS, limit)]

    # ------------------------------------------------------------ contributions

    async def create_contribution(
        self, data: ContributionCreate, coherence_score: float
    ) -> Contribution:
        c = Contribution(id=uuid4(), contributor_id=data.contributor_id, asset_id=data.asset_id,
                         cost_amount=data.cost_amount, coherence_score=coherence_score,
                         metadata=data.metadata, timestamp=_now())
        try:
            async with self.db.acquire(CONSTRAINTS) as conn:
                row = await conn.fetchrow(q.CREATE_CONTRIBUTION, *self._contribution_args(c))
        except InvalidDataError:
            # The only value the database can refuse here that validation could not see:
            # the trigger's new total_cost overflowing numeric(18, 2).
            raise total_overflow() from None
        if not row["has_contributor"]:
            raise NotFoundError(CONTRIBUTOR_NOT_FOUND)
        if not row["has_asset"]:
            raise NotFoundError(ASSET_NOT_FOUND)
        return c

    @staticmethod
    def _contribution_args(c: Contribution) -> tuple[Any, ...]:
        return (c.id, c.contributor_id, c.asset_id, c.cost_amount, c.coherence_score,
                c.metadata, c.timestamp)

    async def get_contribution(self, contribution_id: UUID) -> Contribution | None:
        async with self.db.acquire() as conn:
            row = await conn.fetchrow(q.GET_CONTRIBUTION, contribution_id)
        return None if row is None else _contribution(row)

    async def list_contributions(self, limit: int = 100) -> list[Contribution]:
        async with self.db.acquire() as conn:
            return [_contribution(r) for r in await conn.fetch(q.LIST_CONTRIBUTIONS, limit)]

    async def get_asset_contributions(self, asset_id: UUID) -> list[Contribution]:
        async with self.db.acquire() as conn:
            rows = await conn.fetch(q.ASSET_CONTRIBUTIONS, asset_id)
            if not rows and not await conn.fetchval(q.ASSET_EXISTS, asset_id):
                raise NotFoundError(ASSET_NOT_FOUND)
        return [_contribution(r) for r in rows]

    async def get_contributor_contributions(self, contributor_id: UUID) -> list[Contribution]:
        async with self.db.acquire() as conn:
            rows = await conn.fetch(q.CONTRIBUTOR_CONTRIBUTIONS, contributor_id)
            if not rows and not await conn.fetchval(q.CONTRIBUTOR_EXISTS, contributor_id):
                raise NotFoundError(CONTRIBUTOR_NOT_FOUND)
        return [_contribution(r) for r in rows]

    # ------------------------------------------------------------ replica

    @staticmethod
    def _project_args(p: Project) -> tuple[Any, ...]:
        return (p.id, p.ecosystem, p.name, p.version, p.description, p.homepage_url,
                p.repository_url, p.created_at, p.updated_at, search_fold(p.description))

    async def put_project(self, project: Project) -> None:
        async with self.db.acquire(CONSTRAINTS) as conn:
            await conn.execute(q.PUT_PROJECT, *self._project_args(project))

    async def put_dependency(self, dependency: Dependency) -> None:
        d = dependency
        async with self.db.acquire(CONSTRAINTS) as conn:
            found = await conn.fetchval(q.PUT_DEPENDENCY, d.from_ecosystem, d.from_name,
                                        d.to_ecosystem, d.to_name, d.created_at)
        if not found:
            raise NotFoundError(PROJECT_NOT_FOUND)

    async def put_contributor(self, contributor: Contributor) -> None:
        async with self.db.acquire(CONSTRAINTS) as conn:
            await conn.execute(q.PUT_CONTRIBUTOR, *self._contributor_args(contributor))

    async def put_asset(self, asset: Asset) -> None:
        async with self.db.acquire(CONSTRAINTS) as conn:
            await conn.execute(q.PUT_ASSET, *self._asset_args(asset))

    async def put_contribution(self, contribution: Contribution) -> None:
        async with self.db.acquire(CONSTRAINTS) as conn:
            await conn.execute(q.PUT_CONTRIBUTION, *self._contribution_args(contribution))

    async def export_graph(self) -> GraphRecords:
        async with self.db.transaction() as conn:
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            projects = await conn.fetch(q.EXPORT_PROJECTS)
            deps = await conn.fetch(q.EXPORT_DEPENDENCIES)
            contributors = await conn.fetch(q.EXPORT_CONTRIBUTORS)
            assets = await conn.fetch(q.EXPORT_ASSETS)
            contributions = await conn.fetch(q.EXPORT_CONTRIBUTIONS)
        return GraphRecords(
            projects=[_project(r) for r in projects],
            dependencies=[Dependency.model_validate(dict(r)) for r in deps],
            contributors=[_contributor(r) for r in contributors],
            assets=[_asset(r) for r in assets],
            contributions=[_contribution(r) for r in contributions],
        )

    async def import_graph(self, records: GraphRecords) -> ImportStats:
        """One transaction: COPY each kind into a temp table, then one upsert per table."""
        stats = ImportStats()
        projects = _latest(records.projects, lambda p: (p.ecosystem, p.name))
        contributors = _latest(records.contributors, lambda c: c.id)
        assets = _latest(records.assets, lambda a: a.id)
        deps = {(d.from_ecosystem, d.from_name, d.to_ecosystem, d.to_name): d
                for d in records.dependencies}
        contributions = {c.id: c for c in records.contributions}
        async with self.db.transaction(CONSTRAINTS) as conn:
            await self._bulk(conn, stats, "projects", len(records.projects), q.TEMP_PROJECTS,
                             "import_projects", (self._project_args(p) for p in projects),
                             q.IMPORT_PROJECTS)
            if projects:
                await conn.execute(q.ADVANCE_PROJECT_IDS, max(p.id for p in projects))
            await self._bulk(
                conn, stats, "dependencies", len(records.dependencies), q.TEMP_DEPENDENCIES,
                "import_dependencies",
                ((d.from_ecosystem, d.from_name, d.to_ecosystem, d.to_name, d.created_at)
                 for d in deps.values()),
                q.IMPORT_DEPENDENCIES)
            await self._bulk(
                conn, stats, "contributors", len(records.contributors), q.TEMP_CONTRIBUTORS,
                "import_contributors",
                ((c.id, c.type.value, c.name, c.email, c.github_username, c.wallet_address,
                  c.hourly_rate, json.dumps(c.metadata), c.created_at, c.updated_at,
                  c.email_key)
                 for c in contributors),
                q.IMPORT_CONTRIBUTORS)
            await self._bulk(
                conn, stats, "assets", len(records.assets), q.TEMP_ASSETS, "import_assets",
                ((a.id, a.type.value, a.name, a.description, json.dumps(a.metadata),
                  a.created_at, a.updated_at) for a in assets),
                q.IMPORT_ASSETS)
            await self._bulk(
                conn, stats, "contributions", len(records.contributions), q.TEMP_CONTRIBUTIONS,
                "import_contributions",
                ((c.id, c.contributor_id, c.asset_id, c.cost_amount, c.coherence_score,
                  json.dumps(c.metadata), c.timestamp) for c in contributions.values()),
                q.IMPORT_CONTRIBUTIONS)
        await after_import(self.db, stats)
        return stats

    @staticmethod
    async def _bulk(conn: asyncpg.Connection, stats: ImportStats, kind: str, offered: int,
                    create_temp: str, temp: str, rows: Iterable[Sequence[Any]],
                    upsert: str) -> None:
        if offered == 0:
            stats.written[kind], stats.skipped[kind] = 0, 0
            return
        await conn.execute(create_temp)
        await conn.copy_records_to_table(temp, records=paced(rows))
        written = int(await conn.fetchval(upsert))
        stats.written[kind], stats.skipped[kind] = written, offered - written
