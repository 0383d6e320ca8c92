"""MigratingGraphStore: the GraphStore the HTTP layer sees while the graph moves to
PostgreSQL. Each call is routed by a `StoreRouting` (see router.py); a write copies
the records it produced, not the command, so ids, timestamps and derived values come
from the trusted store: parents a write changed are read back from it (`route.writer()`,
memory under dual-write, PostgreSQL while memory is rebuilt for a live rollback).
"""

from __future__ import annotations

from uuid import UUID

from app.migration.router import RoutedStore, is_none
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
    SearchResult,
)
from app.stores.ports import GraphBackend


class MigratingGraphStore(RoutedStore[GraphBackend]):
    STORE = "graph"

    # ------------------------------------------------------------------ writes

    async def upsert_project(self, ecosystem: str, name: str, data: ProjectUpsert) -> Project:
        async def put(pg: GraphBackend, p: Project) -> None:
            await pg.put_project(p)

        return await self.route.write(
            "upsert_project", lambda s: s.upsert_project(ecosystem, name, data), put
        )

    async def add_dependency(
        self, from_ecosystem: str, from_name: str, to_ecosystem: str, to_name: str
    ) -> Dependency:
        route = self.route

        async def put(pg: GraphBackend, d: Dependency) -> None:
            # The source project's dependency_count changed with the edge: copy it too,
            # first, so a project PostgreSQL missed earlier is healed before the edge.
            source = await route.writer().get_project(from_ecosystem, from_name)
            if source is not None:
                await pg.put_project(source)
            await pg.put_dependency(d)

        return await route.write(
            "add_dependency",
            lambda s: s.add_dependency(from_ecosystem, from_name, to_ecosystem, to_name),
            put,
        )

    async def create_contributor(self, data: ContributorCreate) -> Contributor:
        async def put(pg: GraphBackend, c: Contributor) -> None:
            await pg.put_contributor(c)

        return await self.route.write(
            "create_contributor", lambda s: s.create_contributor(data), put
        )

    async def create_asset(self, data: AssetCreate) -> Asset:
        async def put(pg: GraphBackend, a: Asset) -> None:
            await pg.put_asset(a)

        return await self.route.write("create_asset", lambda s: s.create_asset(data), put)

    async def create_contribution(
        self, data: ContributionCreate, coherence_score: float
    ) -> Contribution:
        route = self.route

        async def put(pg: GraphBackend, c: Contribution) -> None:
            # Parents first, as the trusted store holds them now, so a contributor or asset that
            # PostgreSQL missed (written before dual-write, or a failed copy) is healed
            # before the row that references it. put_asset never writes total_cost: the
            # contribution's insert trigger adds its cost exactly once, and the asset's
            # newer updated_at (moved by this contribution) wins over any older copy.
            trusted = route.writer()
            contributor = await trusted.get_contributor(c.contributor_id)
            if contributor is not None:
                await pg.put_contributor(contributor)
            asset = await trusted.get_asset(c.asset_id)
            if asset is not None:
                await pg.put_asset(asset)
            await pg.put_contribution(c)

        return await route.write(
            "create_contribution", lambda s: s.create_contribution(data, coherence_score), put
        )

    # ------------------------------------------------------------------ reads

    async def get_project(self, ecosystem: str, name: str) -> Project | None:
        return await self.route.read(
            "get_project", lambda s: s.get_project(ecosystem, name), is_none
        )

    async def search(self, query: str, limit: int = 20) -> SearchResult:
        return await self.route.read("search", lambda s: s.search(query, limit))

    async def count_projects(self) -> int:
        return await self.route.read("count_projects", lambda s: s.count_projects())

    async def count_dependents(self, ecosystem: str, name: str) -> int:
        return await self.route.read(
            "count_dependents", lambda s: s.count_dependents(ecosystem, name)
        )

    async def get_contributor(self, contributor_id: UUID) -> Contributor | None:
        return await self.route.read(
            "get_contributor", lambda s: s.get_contributor(contributor_id), is_none
        )

    async def list_contributors(self, limit: int = 100) -> list[Contributor]:
        return await self.route.read("list_contributors", lambda s: s.list_contributors(limit))

    async def get_asset(self, asset_id: UUID) -> Asset | None:
        return await self.route.read("get_asset", lambda s: s.get_asset(asset_id), is_none)

    async def list_assets(self, limit: int = 100) -> list[Asset]:
        return await self.route.read("list_assets", lambda s: s.list_assets(limit))

    async def get_contribution(self, contribution_id: UUID) -> Contribution | None:
        return await self.route.read(
            "get_contribution", lambda s: s.get_contribution(contribution_id), is_none
        )

    async def list_contributions(self, limit: int = 100) -> list[Contribution]:
        return await self.route.read("list_contributions", lambda s: s.list_contributions(limit))

    async def get_asset_contributions(self, asset_id: UUID) -> list[Contribution]:
        return await self.route.read(
            "get_asset_contributions", lambda s: s.get_asset_contributions(asset_id)
        )

    async def get_contributor_contributions(self, contributor_id: UUID) -> list[Contribution]:
        return await self.route.read(
            "get_contributor_contributions",
            lambda s: s.get_contributor_contributions(contributor_id),
        )
