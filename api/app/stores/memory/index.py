"""The memory graph's state: records, derived values and indexes, and how a record lands.

Why apart from memory_graph_store.py: replay, snapshot restore and live writes all go through
the same `_set_*` functions here, which keep the derived values (dependency_count,
total_cost) and the indexes, so a store rebuilt from disk is identical to the one that wrote
it. The store module only decides what to write; this module decides what a write means.
Indexes:
- projects by (ecosystem, name); edges by their four-part key plus per-key in/out
  counts, so get_project, count_dependents and count_projects are O(1);
- contributors, assets and contributions by id, with sorted (created_at, id) keys
  (`SortedKeys`, appends are O(1) because new records are the newest) so a listing
  costs O(limit), and per-asset / per-contributor contribution keys by (timestamp, id);
- search is a linear scan of a lowercased "name NUL description" string per project (a
  superset filter), each candidate then confirmed and ranked by app.domain.graph.

SortedKeys and tick are shared with the agent-task store.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Generic, TypeVar
from uuid import UUID

from pydantic import BaseModel, ValidationError

from app.canonical import search_fold
from app.errors import InvalidDataError
from app.models import Asset, Contribution, Contributor, Dependency, Project

K = TypeVar("K", bound=tuple[Any, ...])
M = TypeVar("M", bound=BaseModel)
ZERO = Decimal("0.00")
Key = tuple[str, str]
EdgeKey = tuple[str, str, str, str]


class SortedKeys(Generic[K]):
    """A sorted list of keys; adding the largest key (the common case) is an append."""

    def __init__(self) -> None:
        self._keys: list[K] = []

    def add(self, key: K) -> None:
        if not self._keys or self._keys[-1] < key:
            self._keys.append(key)
        else:
            insort(self._keys, key)

    def discard(self, key: K) -> None:
        i = bisect_left(self._keys, key)
        if i < len(self._keys) and self._keys[i] == key:
            del self._keys[i]

    def __len__(self) -> int:
        return len(self._keys)

    def newest(self, limit: int, offset: int = 0) -> list[K]:
        end = max(0, len(self._keys) - max(0, offset))
        return self._keys[max(0, end - max(0, limit)) : end][::-1]

    def oldest(self, limit: int | None = None) -> list[K]:
        return self._keys[:] if limit is None else self._keys[: max(0, limit)]

    def descending(self) -> Iterator[K]:
        for i in range(len(self._keys) - 1, -1, -1):
            yield self._keys[i]


def tick(previous: datetime | None = None) -> datetime:
    """Now, strictly after `previous`, so updated_at always moves forward."""
    now = datetime.now(UTC)
    if previous is not None and now <= previous:
        return previous + timedelta(microseconds=1)
    return now


def build(model: type[M], **fields: Any) -> M:
    try:
        return model(**fields)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidDataError(f"{where}: {first['msg']}") from None


def project_key(ecosystem: str, name: str) -> Key:
    return (ecosystem.strip().lower(), name.strip().lower())


RECORD_KINDS: dict[str, type[BaseModel]] = {
    "project": Project,
    "dependency": Dependency,
    "contributor": Contributor,
    "asset": Asset,
    "contribution": Contribution,
}
KIND_OF: dict[type[BaseModel], str] = {v: k for k, v in RECORD_KINDS.items()}


class GraphIndex:
    """Every graph record by key, the derived values and the sorted indexes."""

    def __init__(self) -> None:
        self._projects: dict[Key, Project] = {}
        self._haystacks: dict[Key, str] = {}
        self._next_project_id = 1
        self._edges: dict[EdgeKey, Dependency] = {}
        self._out: dict[Key, int] = {}
        self._in: dict[Key, int] = {}
        self._contributors: dict[UUID, Contributor] = {}
        self._emails: dict[str, UUID] = {}
        self._assets: dict[UUID, Asset] = {}
        self._costs: dict[UUID, Decimal] = {}
        self._contributions: dict[UUID, Contribution] = {}
        self._by_asset: dict[UUID, SortedKeys[tuple[datetime, UUID]]] = {}
        self._by_contributor: dict[UUID, SortedKeys[tuple[datetime, UUID]]] = {}
        self._contributor_order: SortedKeys[tuple[datetime, UUID]] = SortedKeys()
        self._asset_order: SortedKeys[tuple[datetime, UUID]] = SortedKeys()
        self._contribution_order: SortedKeys[tuple[datetime, UUID]] = SortedKeys()

    def _set(self, m: BaseModel) -> None:
        if isinstance(m, Project):
            self._set_project(m)
        elif isinstance(m, Dependency):
            self._set_dependency(m)
        elif isinstance(m, Contributor):
            self._set_contributor(m)
        elif isinstance(m, Asset):
            self._set_asset(m)
        elif isinstance(m, Contribution):
            self._set_contribution(m)
        else:
            raise TypeError(f"not a graph record: {type(m).__name__}")

    def _set_project(self, p: Project) -> None:
        key = (p.ecosystem, p.name)
        count = self._out.get(key, 0)
        if p.dependency_count != count:
            p = p.model_copy(update={"dependency_count": count})
        self._projects[key] = p
        self._haystacks[key] = f"{p.name}\x00{search_fold(p.description) or ''}"
        self._next_project_id = max(self._next_project_id, p.id + 1)

    def _set_dependency(self, d: Dependency) -> None:
        ek = (d.from_ecosystem, d.from_name, d.to_ecosystem, d.to_name)
        if ek in self._edges:
            return
        self._edges[ek] = d
        src, dst = (d.from_ecosystem, d.from_name), (d.to_ecosystem, d.to_name)
        self._out[src] = self._out.get(src, 0) + 1
        self._in[dst] = self._in.get(dst, 0) + 1
        source = self._projects.get(src)
        if source is not None:
            self._projects[src] = source.model_copy(update={"dependency_count": self._out[src]})

    def _set_contributor(self, c: Contributor) -> None:
        old = self._contributors.get(c.id)
        if old is not None:
            if old.email_key is not None:
                self._emails.pop(old.email_key, None)
            self._contributor_order.discard((old.created_at, old.id))
        self._contributors[c.id] = c
        if c.email_key is not None:
            self._emails[c.email_key] = c.id
        self._contributor_order.add((c.created_at, c.id))

    def _set_asset(self, a: Asset) -> None:
        total = self._costs.get(a.id, ZERO)
        if a.total_cost != total:
            a = a.model_copy(update={"total_cost": total})
        old = self._assets.get(a.id)
        if old is not None:
            self._asset_order.discard((old.created_at, old.id))
        self._assets[a.id] = a
        self._asset_order.add((a.created_at, a.id))

    def _set_contribution(self, c: Contribution) -> None:
        if c.id in self._contributions:
            return
        self._contributions[c.id] = c
        key = (c.timestamp, c.id)
        self._contribution_order.add(key)
        self._by_asset.setdefault(c.asset_id, SortedKeys()).add(key)
        self._by_contributor.setdefault(c.contributor_id, SortedKeys()).add(key)
        total = self._costs.get(c.asset_id, ZERO) + c.cost_amount
        self._costs[c.asset_id] = total
        asset = self._assets.get(c.asset_id)
        if asset is not None:
            self._assets[c.asset_id] = asset.model_copy(update={"total_cost": total})

    def _is_news(self, m: BaseModel) -> bool:
        if isinstance(m, Dependency):
            return (m.from_ecosystem, m.from_name, m.to_ecosystem, m.to_name) not in self._edges
        if isinstance(m, Contribution):
            return m.id not in self._contributions
        held: Project | Contributor | Asset | None
        if isinstance(m, Project):
            held = self._projects.get((m.ecosystem, m.name))
            if held is not None:
                m = m.model_copy(update={"dependency_count": held.dependency_count})
        elif isinstance(m, Asset):
            held = self._assets.get(m.id)
            if held is not None:
                m = m.model_copy(update={"total_cost": held.total_cost})
        elif isinstance(m, Contributor):
            held = self._contributors.get(m.id)
        else:
            raise TypeError(f"not a graph record: {type(m).__name__}")
        if held is None:
            return True
        return held.updated_at <= m.updated_at and held != m
