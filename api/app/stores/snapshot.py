"""The versioned JSON snapshot: the stores' compacted state, the admin export and the
spec's "final JSON snapshot" are one format, so any of them can seed a backfill or a
rollback.

    {"format": "storemigration-snapshot", "version": 1, "taken_at": "<ISO 8601>",
     "graph": {"projects": [...], "dependencies": [...], "contributors": [...],
               "assets": [...], "contributions": [...], "next_project_id": n},
     "agent_tasks": [...]}

Records are `model_dump(mode="json")` of the models in app.models, so a reader
validates them with the same rules the service applies. `next_project_id` is the id
the graph store assigns next. A store's own compacted snapshot holds only its part:
the other key is null, which means "not in this file" (not "empty").

This module depends on nothing but the models, so the backfill and verify scripts can
read snapshot files offline without a store.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from app.models import AgentTask, Asset, Contribution, Contributor, Dependency, Project
from app.stores.files import atomic_write
from app.stores.ports import GraphRecords

FORMAT = "storemigration-snapshot"
VERSION = 1


class SnapshotFormatError(ValueError):
    """The file is not a snapshot this version can read; the message says why."""


@dataclass
class Snapshot:
    taken_at: datetime
    graph: GraphRecords | None = None
    next_project_id: int = 1
    agent_tasks: list[AgentTask] | None = None

    @classmethod
    def of(cls, graph: GraphRecords, tasks: list[AgentTask]) -> Snapshot:
        """Both stores' exports, taken now; the next project id is past the highest held."""
        next_id = max((p.id for p in graph.projects), default=0) + 1
        return cls(taken_at=now(), graph=graph, next_project_id=next_id, agent_tasks=tasks)


def graph_to_json(records: GraphRecords, next_project_id: int) -> dict[str, Any]:
    return {
        "projects": [r.model_dump(mode="json") for r in records.projects],
        "dependencies": [r.model_dump(mode="json") for r in records.dependencies],
        "contributors": [r.model_dump(mode="json") for r in records.contributors],
        "assets": [r.model_dump(mode="json") for r in records.assets],
        "contributions": [r.model_dump(mode="json") for r in records.contributions],
        "next_project_id": next_project_id,
    }


def graph_from_json(doc: dict[str, Any]) -> tuple[GraphRecords, int]:
    records = GraphRecords(
        projects=[Project.model_validate(r) for r in doc.get("projects", [])],
        dependencies=[Dependency.model_validate(r) for r in doc.get("dependencies", [])],
        contributors=[Contributor.model_validate(r) for r in doc.get("contributors", [])],
        assets=[Asset.model_validate(r) for r in doc.get("assets", [])],
        contributions=[Contribution.model_validate(r) for r in doc.get("contributions", [])],
    )
    highest = max((p.id for p in records.projects), default=0)
    next_id = doc.get("next_project_id", highest + 1)
    if not isinstance(next_id, int) or isinstance(next_id, bool) or next_id < 1:
        raise SnapshotFormatError(f"graph.next_project_id must be a positive int, not {next_id!r}")
    return records, max(next_id, highest + 1)


def tasks_to_json(tasks: list[AgentTask]) -> list[dict[str, Any]]:
    return [t.model_dump(mode="json") for t in tasks]


def tasks_from_json(doc: list[Any]) -> list[AgentTask]:
    return [AgentTask.model_validate(t) for t in doc]


def to_document(snapshot: Snapshot) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "taken_at": snapshot.taken_at.isoformat(),
        "graph": None
        if snapshot.graph is None
        else graph_to_json(snapshot.graph, snapshot.next_project_id),
        "agent_tasks": None
        if snapshot.agent_tasks is None
        else tasks_to_json(snapshot.agent_tasks),
    }


def from_document(doc: Any) -> Snapshot:
    """A Snapshot, or SnapshotFormatError naming what is wrong."""
    if not isinstance(doc, dict):
        raise SnapshotFormatError("a snapshot must be a JSON object")
    if doc.get("format") != FORMAT:
        raise SnapshotFormatError(
            f"not a snapshot: format is {doc.get('format')!r}, expected {FORMAT!r}"
        )
    if doc.get("version") != VERSION:
        raise SnapshotFormatError(
            f"unsupported snapshot version {doc.get('version')!r}; this build reads "
            f"version {VERSION}"
        )
    try:
        taken_at = datetime.fromisoformat(doc["taken_at"])
        snapshot = Snapshot(taken_at=taken_at)
        graph = doc.get("graph")
        if graph is not None:
            if not isinstance(graph, dict):
                raise SnapshotFormatError("graph must be an object or null")
            snapshot.graph, snapshot.next_project_id = graph_from_json(graph)
        tasks = doc.get("agent_tasks")
        if tasks is not None:
            if not isinstance(tasks, list):
                raise SnapshotFormatError("agent_tasks must be a list or null")
            snapshot.agent_tasks = tasks_from_json(tasks)
    except SnapshotFormatError:
        raise
    except (KeyError, TypeError, ValueError, ValidationError) as e:
        raise SnapshotFormatError(f"snapshot content is invalid: {e}") from None
    return snapshot


def dumps(snapshot: Snapshot) -> bytes:
    return json.dumps(to_document(snapshot), separators=(",", ":"), ensure_ascii=False).encode()


def loads(data: bytes | str) -> Snapshot:
    try:
        doc = json.loads(data)
    except ValueError as e:
        raise SnapshotFormatError(f"snapshot is not valid JSON: {e}") from None
    return from_document(doc)


def write_snapshot(path: Path, snapshot: Snapshot) -> None:
    """Write atomically: a crash leaves the previous file or the complete new one."""
    atomic_write(path, dumps(snapshot))


def read_snapshot(path: Path) -> Snapshot:
    return loads(path.read_bytes())


def now() -> datetime:
    return datetime.now(UTC)
