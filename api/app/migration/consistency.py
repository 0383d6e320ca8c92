"""Compare a sample of memory's records with PostgreSQL's, per kind.

Memory is the trusted store during dual-write, so the sample is drawn from memory and
each sampled record is looked up in PostgreSQL: absent there is "missing", present with
other values is "different" (with the names of the fields that differ). Both sides are
exported whole and indexed by key (an export of 100k rows takes well under a second on
either backend, far less than 10k point reads). A record written while the check runs
can look missing for the few milliseconds between its two writes, so mismatches are
checked again once, after the second-write timeout, before they are reported.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from app.adapters.agent_task_store import AgentTaskReplica
from app.adapters.graph_store import GraphRecords, GraphReplica
from app.migration import telemetry

GRAPH_KINDS = ("projects", "dependencies", "contributors", "assets", "contributions")
DEFAULT_SAMPLE = 0.10
MAX_LISTED = 1000


def record_key(kind: str, record: Any) -> Hashable:
    if kind == "projects":
        return (record.ecosystem, record.name)
    if kind == "dependencies":
        return (record.from_ecosystem, record.from_name, record.to_ecosystem, record.to_name)
    return str(record.id)


def key_text(key: Hashable) -> str:
    return "/".join(key) if isinstance(key, tuple) else str(key)


def differing_fields(ours: BaseModel, theirs: BaseModel) -> list[str]:
    a, b = ours.model_dump(), theirs.model_dump()
    return sorted(name for name in a.keys() | b.keys() if a.get(name) != b.get(name))


@dataclass
class KindReport:
    checked: int = 0
    total: int = 0
    missing: list[str] = field(default_factory=list)
    different: list[dict[str, Any]] = field(default_factory=list)

    @property
    def mismatches(self) -> int:
        return len(self.missing) + len(self.different)

    def as_dict(self) -> dict[str, Any]:
        return {
            "total_in_memory": self.total,
            "checked": self.checked,
            "missing_count": len(self.missing),
            "different_count": len(self.different),
            "missing": self.missing[:MAX_LISTED],
            "different": self.different[:MAX_LISTED],
        }


@dataclass
class ConsistencyReport:
    sample: float
    seed: int | None
    kinds: dict[str, KindReport] = field(default_factory=dict)
    started_at: float = 0.0
    duration_seconds: float = 0.0

    @property
    def checked(self) -> int:
        return sum(k.checked for k in self.kinds.values())

    @property
    def mismatches(self) -> int:
        return sum(k.mismatches for k in self.kinds.values())

    @property
    def mismatch_ratio(self) -> float:
        return self.mismatches / self.checked if self.checked else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "sample": self.sample,
            "seed": self.seed,
            "checked": self.checked,
            "mismatches": self.mismatches,
            "missing_count": sum(len(k.missing) for k in self.kinds.values()),
            "different_count": sum(len(k.different) for k in self.kinds.values()),
            "mismatch_ratio": round(self.mismatch_ratio, 6),
            "kinds": {name: k.as_dict() for name, k in self.kinds.items()},
            "duration_seconds": round(self.duration_seconds, 3),
        }


def _index(kind: str, records: Iterable[Any]) -> dict[Hashable, Any]:
    return {record_key(kind, r): r for r in records}


def compare_kind(
    kind: str, ours: Iterable[Any], theirs: Iterable[Any], sample: float, rng: random.Random
) -> tuple[KindReport, list[Hashable]]:
    """Compare a sample of `ours` against `theirs`. Returns the report and the keys
    that did not match (for a re-check). sample=1.0 checks every record."""
    mine = sorted(_index(kind, ours).items(), key=lambda kv: key_text(kv[0]))
    other = _index(kind, theirs)
    report = KindReport(total=len(mine))
    picked = mine if sample >= 1.0 else [kv for kv in mine if rng.random() < sample]
    report.checked = len(picked)
    bad: list[Hashable] = []
    for key, record in picked:
        found = other.get(key)
        if found is None:
            report.missing.append(key_text(key))
            bad.append(key)
            continue
        fields = differing_fields(record, found)
        if fields:
            report.different.append({"id": key_text(key), "fields": fields})
            bad.append(key)
    return report, bad


def _recheck(
    kind: str, report: KindReport, bad: list[Hashable], ours: Iterable[Any], theirs: Iterable[Any]
) -> None:
    """Keep only the mismatches that persist in fresh exports."""
    mine, other = _index(kind, ours), _index(kind, theirs)
    report.missing, report.different = [], []
    for key in bad:
        record, found = mine.get(key), other.get(key)
        if record is None:
            continue
        if found is None:
            report.missing.append(key_text(key))
            continue
        fields = differing_fields(record, found)
        if fields:
            report.different.append({"id": key_text(key), "fields": fields})


def _graph_kinds(records: GraphRecords) -> dict[str, list[Any]]:
    return {kind: list(getattr(records, kind)) for kind in GRAPH_KINDS}


async def check_consistency(
    memory_graph: GraphReplica | None,
    postgres_graph: GraphReplica | None,
    memory_tasks: AgentTaskReplica | None,
    postgres_tasks: AgentTaskReplica | None,
    *,
    sample: float = DEFAULT_SAMPLE,
    seed: int | None = None,
    recheck_delay: float = 0.5,
    record_metrics: bool = True,
    clock: Callable[[], float] = time.time,
) -> ConsistencyReport:
    """Check each store pair given (graph, agent tasks). Metrics are labelled per store."""
    if not 0.0 < sample <= 1.0:
        raise ValueError("sample must be in (0, 1]")
    rng = random.Random(seed)
    report = ConsistencyReport(sample=sample, seed=seed, started_at=clock())
    started = time.monotonic()
    per_store: dict[str, list[str]] = {}
    pending: list[tuple[str, list[Hashable]]] = []

    if memory_graph is not None and postgres_graph is not None:
        ours = _graph_kinds(await memory_graph.export_graph())
        theirs = _graph_kinds(await postgres_graph.export_graph())
        for kind in GRAPH_KINDS:
            report.kinds[kind], bad = compare_kind(kind, ours[kind], theirs[kind], sample, rng)
            if bad:
                pending.append((kind, bad))
        per_store["graph"] = list(GRAPH_KINDS)
    if memory_tasks is not None and postgres_tasks is not None:
        mine_tasks = await memory_tasks.export_tasks()
        report.kinds["tasks"], bad = compare_kind(
            "tasks", mine_tasks, await postgres_tasks.export_tasks(), sample, rng
        )
        if bad:
            pending.append(("tasks", bad))
        per_store["agent_task"] = ["tasks"]

    if pending:
        await asyncio.sleep(recheck_delay)
        graph_kinds = {k for k, _ in pending} - {"tasks"}
        fresh: dict[str, tuple[list[Any], list[Any]]] = {}
        if graph_kinds and memory_graph is not None and postgres_graph is not None:
            ours = _graph_kinds(await memory_graph.export_graph())
            theirs = _graph_kinds(await postgres_graph.export_graph())
            fresh |= {k: (ours[k], theirs[k]) for k in graph_kinds}
        if any(k == "tasks" for k, _ in pending):
            assert memory_tasks is not None and postgres_tasks is not None
            fresh["tasks"] = (
                await memory_tasks.export_tasks(),
                await postgres_tasks.export_tasks(),
            )
        for kind, bad in pending:
            _recheck(kind, report.kinds[kind], bad, *fresh[kind])

    report.duration_seconds = time.monotonic() - started
    if record_metrics:
        for store, kinds in per_store.items():
            checked = sum(report.kinds[k].checked for k in kinds)
            bad_count = sum(report.kinds[k].mismatches for k in kinds)
            ratio = bad_count / checked if checked else 0.0
            telemetry.consistency_result(
                store, "pass" if bad_count == 0 else "fail", ratio, report.started_at
            )
    return report


def record_error(stores: Iterable[str], clock: Callable[[], float] = time.time) -> None:
    """Count a check that could not run (PostgreSQL unreachable)."""
    for store in stores:
        telemetry.consistency_result(store, "error", None, clock())
