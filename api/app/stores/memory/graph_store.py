"""MemoryGraphStore: the graph held in dicts, made durable by journal.py.

Why this shape: every operation checks, journals and applies without an `await` in
between, so concurrent requests on the event loop can never interleave a check with
another's write (email uniqueness, total_cost). Each operation is ONE journal record
listing the whole records it produced (a contribution together with its asset), so a
replay applies all of it or, for a torn record, none of it. Replay and live calls go
through the same `_set_*` functions of memory_index.GraphIndex, which also keep the
derived values (dependency_count, total_cost) and the indexes (described there).

`MemoryGraphStore()` is volatile (tests); `await MemoryGraphStore.open(data_dir)` keeps
its journal and snapshots in `data_dir/graph/` (the task store uses
`data_dir/agent_tasks/`, so both may be given the same data directory).
"""

from __future__ import annotations

import heapq
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

from pydantic import BaseModel

from app.canonical import fold
from app.domain.graph import hit, matches, normalize_query, rank_key
from app.errors import ConflictError, NotFoundError, check_contribution_total
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
from app.stores import snapshot as snap
from app.stores.memory.index import (
    KIND_OF,
    RECORD_KINDS,
    ZERO,
    GraphIndex,
    SortedKeys,
    build,
    project_key,
    tick,
)
from app.stores.memory.journaled import Journaled
from app.stores.ports import GraphRecords, ImportStats

__all__ = ["SUBDIR", "MemoryGraphStore", "SortedKeys", "tick"]  # SortedKeys, tick: task store

SUBDIR = "graph"


class MemoryGraphStore(Journaled, GraphIndex):
    """GraphStore and GraphReplica in memory; durable when opened on a directory."""

    SUBDIR = SUBDIR

    @classmethod
    async def open(
        cls,
        directory: Path,
        *,
        fsync: str = "always",
        fsync_interval_ms: int = 50,
        snapshot_every: int = 50_000,
    ) -> MemoryGraphStore:
        """A durable store journaling in `directory/graph/`, rebuilt from what it holds."""
        store = cls()
        await store._attach(
            directory,
            fsync=fsync,
            fsync_interval_ms=fsync_interval_ms,
            snapshot_every=snapshot_every,
        )
        return store

    @property
    def next_project_id(self) -> int:
        return self._next_project_id

    # ------------------------------------------------------------------ journal glue

    def _log(self, ops: list[BaseModel]) -> int | None:
        if self._journal is None:
            return None
        return self._journal.append(
            {"ops": [[KIND_OF[type(m)], m.model_dump(mode="json")] for m in ops]}
        )

    def _write(self, ops: list[BaseModel]) -> int | None:
        position = self._log(ops)
        for m in ops:
            self._set(m)
        return position


    def _replay(self, record: dict[str, Any]) -> None:
        for kind, data in record.get("ops", []):
            self._set(RECORD_KINDS[kind].model_validate(data))
        if "next_project_id" in record:
            self._next_project_id = max(self._next_project_id, int(record["next_project_id"]))

    async def advance_project_ids(self, past: int) -> None:
        """Assign project ids above `past` from now on (journaled): ids another store
        handed out (PostgreSQL while it was primary) are never assigned again."""
        if past < self._next_project_id:
            return
        self._next_project_id = past + 1
        if self._journal is not None:
            await self._journal.commit(
                self._journal.append({"ops": [], "next_project_id": self._next_project_id})
            )

    def snapshot_records(self) -> tuple[GraphRecords, int]:
        """Every record (a consistent copy: records are immutable) and next_project_id."""
        return (
            GraphRecords(
                projects=sorted(self._projects.values(), key=lambda p: p.id),
                dependencies=list(self._edges.values()),
                contributors=[self._contributors[k[1]] for k in self._contributor_order.oldest()],
                assets=[self._assets[k[1]] for k in self._asset_order.oldest()],
                contributions=[
                    self._contributions[k[1]] for k in self._contribution_order.oldest()
                ],
            ),
            self._next_project_id,
        )

    def _capture(self) -> Any:
        records = GraphRecords(
            projects=list(self._projects.values()),
            dependencies=list(self._edges.values()),
            contributors=list(self._contributors.values()),
            assets=list(self._assets.values()),
            contributions=list(self._contributions.values()),
        )
        next_id = self._next_project_id

        def serialize() -> bytes:
            return snap.dumps(snap.Snapshot(snap.now(), graph=records, next_project_id=next_id))

        return serialize

    def restore(self, snapshot: snap.Snapshot) -> None:
        """Load a snapshot's graph into this (empty) store, without journaling it."""
        if snapshot.graph is None:
            raise snap.SnapshotFormatError("the snapshot holds no graph")
        g = snapshot.graph
        for group in (g.projects, g.dependencies, g.contributors, g.contributions, g.assets):
            for m in group:
                self._set(m)
        self._next_project_id = max(self._next_project_id, snapshot.next_project_id)

    def _restore_bytes(self, data: bytes) -> None:
        self.restore(snap.loads(data))

    # ------------------------------------------------------------------ state setters

    # ------------------------------------------------------------------ projects

    async def get_project(self, ecosystem: str, name: str) -> Project | None:
        return self._projects.get(project_key(ecosystem, name))

    async def upsert_project(self, ecosystem: str, name: str, data: ProjectUpsert) -> Project:
        key = project_key(ecosystem, name)
        fields = data.model_dump(
            include={"version", "description", "homepage_url", "repository_url"}
        )
        existing = self._projects.get(key)
        if existing is not None:
            project = existing.model_copy(update=fields | {"updated_at": tick(existing.updated_at)})
        else:
            now = tick()
            project = build(
                Project,
                id=self._next_project_id,
                ecosystem=key[0],
                name=key[1],
                dependency_count=self._out.get(key, 0),
                created_at=now,
                updated_at=now,
                **fields,
            )
        position = self._write([project])
        await self._durable(position)
        return project

    async def search(self, query: str, limit: int = 20) -> SearchResult:
        q = normalize_query(query)
        if not q:
            return SearchResult(results=[], total=0)
        projects = self._projects
        candidates = [k for k, hay in self._haystacks.items() if q in hay]
        found = [p for p in (projects[k] for k in candidates) if matches(q, p)]
        best = heapq.nsmallest(limit, found, key=lambda p: rank_key(q, p))
        return SearchResult(results=[hit(p) for p in best], total=len(found))

    async def count_projects(self) -> int:
        return len(self._projects)

    async def add_dependency(
        self, from_ecosystem: str, from_name: str, to_ecosystem: str, to_name: str
    ) -> Dependency:
        src, dst = project_key(from_ecosystem, from_name), project_key(to_ecosystem, to_name)
        source = self._projects.get(src)
        if source is None:
            raise NotFoundError("Project not found")
        existing = self._edges.get(src + dst)
        if existing is not None:
            return existing
        now = tick()
        edge = build(
            Dependency,
            from_ecosystem=src[0],
            from_name=src[1],
            to_ecosystem=dst[0],
            to_name=dst[1],
            created_at=now,
        )
        moved = source.model_copy(update={"updated_at": tick(source.updated_at)})
        position = self._write([edge, moved])
        await self._durable(position)
        return edge

    async def count_dependents(self, ecosystem: str, name: str) -> int:
        return self._in.get(project_key(ecosystem, name), 0)

    # ------------------------------------------------------------------ contributors

    async def create_contributor(self, data: ContributorCreate) -> Contributor:
        if data.email and fold(data.email) in self._emails:
            raise ConflictError("Contributor with this email already exists")
        now = tick()
        contributor = build(
            Contributor, id=uuid4(), created_at=now, updated_at=now, **data.model_dump()
        )
        position = self._write([contributor])
        await self._durable(position)
        return contributor

    async def get_contributor(self, contributor_id: UUID) -> Contributor | None:
        return self._contributors.get(contributor_id)

    async def list_contributors(self, limit: int = 100) -> list[Contributor]:
        return [self._contributors[k[1]] for k in self._contributor_order.newest(limit)]

    # ------------------------------------------------------------------ assets

    async def create_asset(self, data: AssetCreate) -> Asset:
        now = tick()
        asset = build(
            Asset,
            id=uuid4(),
            type=data.type,
            name=data.name,
            description=data.description,
            metadata=data.metadata,
            total_cost=ZERO,
            created_at=now,
            updated_at=now,
        )
        position = self._write([asset])
        await self._durable(position)
        return asset

    async def get_asset(self, asset_id: UUID) -> Asset | None:
        return self._assets.get(asset_id)

    async def list_assets(self, limit: int = 100) -> list[Asset]:
        return [self._assets[k[1]] for k in self._asset_order.newest(limit)]

    # ------------------------------------------------------------------ contributions

    async def create_contribution(
        self, data: ContributionCreate, coherence_score: float
    ) -> Contribution:
        if data.contributor_id not in self._contributors:
            raise NotFoundError("Contributor not found")
        asset = self._assets.get(data.asset_id)
        if asset is None:
            raise NotFoundError("Asset not found")
        check_contribution_total(asset.total_cost + data.cost_amount)
        contribution = build(
            Contribution,
            id=uuid4(),
            contributor_id=data.contributor_id,
            asset_id=data.asset_id,
            cost_amount=data.cost_amount,
            coherence_score=coherence_score,
            metadata=data.metadata,
            timestamp=tick(),
        )
        moved = asset.model_copy(update={"updated_at": tick(asset.updated_at)})
        position = self._write([contribution, moved])
        await self._durable(position)
        return contribution

    async def get_contribution(self, contribution_id: UUID) -> Contribution | None:
        return self._contributions.get(contribution_id)

    async def list_contributions(self, limit: int = 100) -> list[Contribution]:
        return [self._contributions[k[1]] for k in self._contribution_order.newest(limit)]

    async def get_asset_contributions(self, asset_id: UUID) -> list[Contribution]:
        if asset_id not in self._assets:
            raise NotFoundError("Asset not found")
        keys = self._by_asset.get(asset_id)
        return [] if keys is None else [self._contributions[k[1]] for k in keys.oldest()]

    async def get_contributor_contributions(self, contributor_id: UUID) -> list[Contribution]:
        if contributor_id not in self._contributors:
            raise NotFoundError("Contributor not found")
        keys = self._by_contributor.get(contributor_id)
        return [] if keys is None else [self._contributions[k[1]] for k in keys.oldest()]

    # ------------------------------------------------------------------ replica face

    def _put(self, m: BaseModel) -> tuple[bool, int | None]:
        """Write a copied record unless the store holds it at a newer updated_at or
        holds exactly it already. Returns (written, journal position)."""
        if not self._is_news(m):
            return False, None
        if isinstance(m, Contributor) and m.email_key is not None:
            holder = self._emails.get(m.email_key)
            if holder is not None and holder != m.id:
                raise ConflictError("Contributor with this email already exists")
        return True, self._write([m])

    async def put_project(self, project: Project) -> None:
        await self._durable(self._put(project)[1])

    async def put_dependency(self, dependency: Dependency) -> None:
        await self._durable(self._put(dependency)[1])

    async def put_contributor(self, contributor: Contributor) -> None:
        await self._durable(self._put(contributor)[1])

    async def put_asset(self, asset: Asset) -> None:
        await self._durable(self._put(asset)[1])

    async def put_contribution(self, contribution: Contribution) -> None:
        await self._durable(self._put(contribution)[1])

    async def export_graph(self) -> GraphRecords:
        return self.snapshot_records()[0]

    async def import_graph(self, records: GraphRecords) -> ImportStats:
        stats = ImportStats()
        last: int | None = None
        groups: list[tuple[str, list[Any]]] = [
            ("projects", records.projects),
            ("dependencies", records.dependencies),
            ("contributors", records.contributors),
            ("assets", records.assets),
            ("contributions", records.contributions),
        ]
        try:
            for kind, group in groups:
                stats.written[kind] = stats.skipped[kind] = 0
                for m in group:
                    written, position = self._put(m)
                    stats.written[kind] += written
                    stats.skipped[kind] += not written
                    last = position if position is not None else last
        finally:
            await self._durable(last)
        return stats
