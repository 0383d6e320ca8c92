"""The GraphStore protocol: projects, dependency edges, contributors, assets, contributions.

Routers depend on `GraphStore` only. `GraphReplica` is the second face every backend
offers to the migration router, the backfill and the verifier: it copies whole records
(the state the trusted store produced) instead of replaying commands, so ids,
timestamps and derived values are never recomputed on the copy.

Rules every backend keeps (the contract suite checks them):
- get_* return None for a missing key; create_contribution and the per-asset /
  per-contributor listings raise NotFoundError("Contributor not found") first, then
  NotFoundError("Asset not found"). add_dependency raises NotFoundError("Project not
  found") when the source project does not exist; the target need not exist.
- An asset's total_cost is the sum of its contributions' cost_amount, changed in the
  same transaction as the contribution; put_asset and import_graph never set it.
- Listings are newest first by (created_at, id) descending; per-asset and
  per-contributor contribution listings are oldest first by (timestamp, id).
- put_* and import_graph never overwrite a record held at a newer updated_at, and
  are idempotent: applying the same record twice changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable
from uuid import UUID

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


@runtime_checkable
class GraphStore(Protocol):
    async def get_project(self, ecosystem: str, name: str) -> Project | None: ...

    async def upsert_project(self, ecosystem: str, name: str, data: ProjectUpsert) -> Project: ...

    async def search(self, query: str, limit: int = 20) -> SearchResult: ...

    async def count_projects(self) -> int: ...

    async def add_dependency(
        self, from_ecosystem: str, from_name: str, to_ecosystem: str, to_name: str
    ) -> Dependency: ...

    async def count_dependents(self, ecosystem: str, name: str) -> int: ...

    async def create_contributor(self, data: ContributorCreate) -> Contributor: ...

    async def get_contributor(self, contributor_id: UUID) -> Contributor | None: ...

    async def list_contributors(self, limit: int = 100) -> list[Contributor]: ...

    async def create_asset(self, data: AssetCreate) -> Asset: ...

    async def get_asset(self, asset_id: UUID) -> Asset | None: ...

    async def list_assets(self, limit: int = 100) -> list[Asset]: ...

    async def create_contribution(
        self, data: ContributionCreate, coherence_score: float
    ) -> Contribution: ...

    async def get_contribution(self, contribution_id: UUID) -> Contribution | None: ...

    async def list_contributions(self, limit: int = 100) -> list[Contribution]: ...

    async def get_asset_contributions(self, asset_id: UUID) -> list[Contribution]: ...

    async def get_contributor_contributions(self, contributor_id: UUID) -> list[Contribution]: ...


@dataclass
class GraphRecords:
    """Every graph record, as a snapshot holds them and the backfill moves them."""

    projects: list[Project] = field(default_factory=list)
    dependencies: list[Dependency] = field(default_factory=list)
    contributors: list[Contributor] = field(default_factory=list)
    assets: list[Asset] = field(default_factory=list)
    contributions: list[Contribution] = field(default_factory=list)

    def count(self) -> int:
        return (
            len(self.projects)
            + len(self.dependencies)
            + len(self.contributors)
            + len(self.assets)
            + len(self.contributions)
        )


@dataclass
class ImportStats:
    """What an import did, per kind: rows written and rows skipped as not newer."""

    written: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)


@runtime_checkable
class GraphReplica(Protocol):
    async def put_project(self, project: Project) -> None: ...

    async def put_dependency(self, dependency: Dependency) -> None: ...

    async def put_contributor(self, contributor: Contributor) -> None: ...

    async def put_asset(self, asset: Asset) -> None: ...

    async def put_contribution(self, contribution: Contribution) -> None: ...

    async def export_graph(self) -> GraphRecords: ...

    async def import_graph(self, records: GraphRecords) -> ImportStats: ...
