"""The store protocols (ports): what routers, the migration and the scripts may rely on.

`GraphStore` and `AgentTaskStore` are what the routers call. `GraphReplica` and
`AgentTaskReplica` are the second face every backend offers to the migration router, the
backfill and the verifier: they copy whole records (the state the trusted store produced)
instead of replaying commands, so ids, timestamps and derived values are never recomputed
on the copy. `GraphBackend` and `TaskBackend` are both faces together, what the migration
router puts in front of each other.

Rules every graph backend keeps (the contract suite checks them):
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

Rules every agent-task backend keeps:
- create_task assigns id (`task_` + 16 hex), status pending, model/tier/command from
  the routing table (app.domain.tasks), created_at now, updated_at None.
- update_task checks app.domain.tasks.check_transition and raises
  InvalidTransitionError (409) on a bad one, NotFoundError("Task not found") on a
  missing id; it sets updated_at, sets started_at on the first entry to running, and a
  decision sent while needs_decision moves the task to running.
- Listings are newest first by (created_at, id) descending.
- Summaries are built by the pure functions in app.domain.tasks from the rows each
  backend selects, so every backend returns the same document.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable
from uuid import UUID

from app.models import (
    AgentTask,
    AgentTaskCreate,
    AgentTaskUpdate,
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
    TaskStatus,
    TaskType,
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


@runtime_checkable
class AgentTaskStore(Protocol):
    async def create_task(self, data: AgentTaskCreate) -> AgentTask: ...

    async def get_task(self, task_id: str) -> AgentTask | None: ...

    async def list_tasks(
        self,
        status: TaskStatus | None = None,
        task_type: TaskType | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> tuple[list[AgentTask], int]: ...

    async def update_task(self, task_id: str, data: AgentTaskUpdate) -> AgentTask: ...

    async def get_attention_tasks(self, limit: int = 20) -> tuple[list[AgentTask], int]: ...

    async def get_task_count(self) -> dict[str, Any]: ...

    async def get_review_summary(self) -> dict[str, Any]: ...

    async def get_usage_summary(self) -> dict[str, Any]: ...

    async def get_pipeline_status(self, now: datetime | None = None) -> dict[str, Any]: ...


@runtime_checkable
class AgentTaskReplica(Protocol):
    async def put_task(self, task: AgentTask) -> None: ...

    async def export_tasks(self) -> list[AgentTask]: ...

    async def import_tasks(self, tasks: list[AgentTask]) -> ImportStats: ...


class GraphBackend(GraphStore, GraphReplica, Protocol):
    """A graph backend offers both faces: the store and the record-copying replica."""


class TaskBackend(AgentTaskStore, AgentTaskReplica, Protocol):
    """An agent-task backend offers both faces: the store and the replica."""


RECORD_MODELS: dict[str, type[Any]] = {
    "projects": Project, "dependencies": Dependency, "contributors": Contributor,
    "assets": Asset, "contributions": Contribution, "tasks": AgentTask,
}
"""Each record kind's model: what a range or a record of that kind reads back as."""

RangeKey = Any
"""A record's key in range order, JSON-shaped: a project's id (int), a dependency's
[from_ecosystem, from_name, to_ecosystem, to_name], a uuid or task id (str)."""


@runtime_checkable
class RangeStore(Protocol):
    """PostgreSQL read by key ranges, and the backfill checkpoint (migration 014): what
    the resumable backfill, the chunked verify and the repair use beside the replicas."""

    async def read_range(
        self, kind: str, after: RangeKey | None, upto: RangeKey | None, limit: int
    ) -> list[Any]: ...

    async def read_keys(self, kind: str, keys: list[RangeKey]) -> list[Any]: ...

    async def delete_record(self, kind: str, key: RangeKey) -> int: ...

    async def recount_asset_total(self, asset_id: Any) -> None: ...

    async def checkpoint(self, run: str) -> list[dict[str, Any]]: ...

    async def start_checkpoint(
        self, run: str, totals: list[tuple[str, int]], cutoff: datetime
    ) -> None: ...

    async def advance_checkpoint(
        self, run: str, kind: str, last_key: RangeKey, done: int, written: int,
        skipped: int, refused: list[str], finished: bool,
    ) -> None: ...

    async def retry_refused(self, run: str) -> None: ...

    async def reset_checkpoint(self, run: str) -> None: ...
