"""Every record kind in one key order, shared by both stores.

The resumable backfill and the chunked verify walk each kind by key ranges: the same
order in memory (sorted here, once per run) and in PostgreSQL (app.stores.postgres
.range_queries, whose ORDER BY matches): projects by id, contributors, assets and
contributions by uuid (bytewise in both), tasks by id and dependencies by their four
keys, both in code-point order (COLLATE "C"). A key travels as JSON (a cursor in a
checkpoint row, a line of a report), so each kind's key has a JSON shape and back.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import TypeAdapter

from app.stores.ports import RECORD_MODELS, GraphRecords

GRAPH_ORDER = ("projects", "contributors", "assets", "dependencies", "contributions")
"""Foreign-key order: a record's parents are copied before it."""
KINDS = (*GRAPH_ORDER, "tasks")
STORE_OF = {**{k: "graph" for k in GRAPH_ORDER}, "tasks": "agent_task"}
RECORD_LISTS: dict[str, TypeAdapter[list[Any]]] = {
    kind: TypeAdapter(list[model])  # type: ignore[valid-type]
    for kind, model in RECORD_MODELS.items()}
"""A list of each kind's records, to and from JSON in one call (a range handed over)."""


def sort_key(kind: str, record: Any) -> Any:
    if kind == "projects":
        return int(record.id)
    if kind == "dependencies":
        return (record.from_ecosystem, record.from_name, record.to_ecosystem, record.to_name)
    if kind == "tasks":
        return str(record.id)
    return record.id if isinstance(record.id, UUID) else UUID(str(record.id))


def to_json(kind: str, key: Any) -> Any:
    """A sort key as JSON: int, a list of four strings, or a string."""
    if key is None:
        return None
    if kind == "dependencies":
        return list(key)
    if kind == "projects":
        return int(key)
    return str(key)


def from_json(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "dependencies":
        parts = tuple(str(v) for v in value)
        if len(parts) != 4:
            raise ValueError("a dependency key has four parts")
        return parts
    if kind == "projects":
        return int(value)
    if kind == "tasks":
        return str(value)
    return UUID(str(value))


def label(kind: str, record: Any) -> str:
    """The name an operator knows a record by (a project by ecosystem/name)."""
    if kind == "projects":
        return f"{record.ecosystem}/{record.name}"
    if kind == "dependencies":
        return f"{record.from_ecosystem}/{record.from_name}->{record.to_ecosystem}/{record.to_name}"
    return str(record.id)


def created(record: Any) -> datetime | None:
    for name in ("created_at", "timestamp"):
        value = getattr(record, name, None)
        if isinstance(value, datetime):
            return value
    return None


def _indexed(key: Any) -> Any:
    """A key as Ordered holds it: a uuid as its int (the same order: uuid compares by
    int). An int is not tracked by the garbage collector and compares in C; a uuid is
    both tracked and compared in Python, which at 1,000,000 records made the index
    seconds to sort and a full collection's longest walk."""
    return key.int if isinstance(key, UUID) else key


@dataclass
class Ordered:
    """One kind's records sorted by key (references to memory's immutable records)."""

    keys: list[Any] = field(default_factory=list)
    records: list[Any] = field(default_factory=list)

    @classmethod
    def of(cls, kind: str, records: Iterable[Any], cutoff: datetime | None = None) -> Ordered:
        kept = [r for r in records if cutoff is None or (created(r) or cutoff) <= cutoff]
        keys = [_indexed(sort_key(kind, r)) for r in kept]
        order = sorted(range(len(keys)), key=keys.__getitem__)
        return cls([keys[i] for i in order], [kept[i] for i in order])

    def __len__(self) -> int:
        return len(self.keys)

    def _right(self, key: Any) -> int:
        return 0 if key is None else bisect.bisect_right(self.keys, _indexed(key))

    def after(self, key: Any, limit: int) -> list[Any]:
        start = self._right(key)
        return self.records[start : start + limit]

    def find(self, key: Any) -> Any:
        want = _indexed(key)
        i = bisect.bisect_left(self.keys, want)
        return self.records[i] if i < len(self.keys) and self.keys[i] == want else None

    def remaining(self, key: Any) -> int:
        return len(self.keys) - self._right(key)


def order_all(
    graph: GraphRecords | None, tasks: list[Any] | None, cutoff: datetime | None = None
) -> dict[str, Ordered]:
    out: dict[str, Ordered] = {}
    if graph is not None:
        for kind in GRAPH_ORDER:
            out[kind] = Ordered.of(kind, getattr(graph, kind), cutoff)
    if tasks is not None:
        out["tasks"] = Ordered.of("tasks", tasks, cutoff)
    return out
