"""Compare a sample of memory's records with PostgreSQL's, per kind.

Memory is the trusted store during dual-write, so the sample is drawn from memory and
each sampled record is looked up in PostgreSQL: absent there is "missing", present with
other values is "different" (with the names of the fields that differ). Both sides are
exported whole and indexed by key (an export of 100k rows takes well under a second on
either backend, far less than 10k point reads). A record written while the check runs
can look missing for the few milliseconds between its two writes, so mismatches are
checked again once, after the second-write timeout, before they are reported; one whose
memory record changed after PostgreSQL's export began (less the second-write timeout)
is still in flight and reported as "in_flight", not as a mismatch. The ratio is
reported per kind as well as pooled (a small kind entirely missing must not hide in a
large pool), and a caller can require at most `max_missing` missing records.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel

from app.migration import telemetry
from app.stores.ports import AgentTaskReplica, GraphRecords, GraphReplica

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


def changed_at(record: Any) -> datetime | None:
    """When a record last changed: updated_at, else its timestamp or created_at."""
    for name in ("updated_at", "timestamp", "created_at"):
        value = getattr(record, name, None)
        if isinstance(value, datetime):
            return value
    return None


def _in_flight(record: Any, since: datetime | None) -> bool:
    stamp = changed_at(record)
    return since is not None and stamp is not None and stamp > since


def differing_fields(ours: BaseModel, theirs: BaseModel) -> list[str]:
    a, b = ours.model_dump(), theirs.model_dump()
    return sorted(name for name in a.keys() | b.keys() if a.get(name) != b.get(name))


@dataclass
class KindReport:
    checked: int = 0
    total: int = 0
    missing: list[str] = field(default_factory=list)
    different: list[dict[str, Any]] = field(default_factory=list)
    in_flight: list[str] = field(default_factory=list)

    @property
    def mismatches(self) -> int:
        return len(self.missing) + len(self.different)

    @property
    def mismatch_ratio(self) -> float:
        return self.mismatches / self.checked if self.checked else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "total_in_memory": self.total,
            "checked": self.checked,
            "missing_count": len(self.missing),
            "different_count": len(self.different),
            "in_flight_count": len(self.in_flight),
            "mismatch_ratio": round(self.mismatch_ratio, 6),
            "missing": self.missing[:MAX_LISTED],
            "different": self.different[:MAX_LISTED],
            "in_flight": self.in_flight[:MAX_LISTED],
        }

    def classify(self, key: Hashable, record: Any, found: Any, since: datetime | None) -> bool:
        """File one compared record; True if it did not match (in flight or not)."""
        if found is not None and not differing_fields(record, found):
            return False
        if _in_flight(record, since):
            self.in_flight.append(key_text(key))
        elif found is None:
            self.missing.append(key_text(key))
        else:
            self.different.append({"id": key_text(key), "fields": differing_fields(record, found)})
        return True


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

    @property
    def missing_count(self) -> int:
        return sum(len(k.missing) for k in self.kinds.values())

    def passed(self, max_mismatch: float, max_missing: int | None = None) -> bool:
        return self.mismatch_ratio <= max_mismatch and (
            max_missing is None or self.missing_count <= max_missing
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "sample": self.sample,
            "seed": self.seed,
            "checked": self.checked,
            "mismatches": self.mismatches,
            "missing_count": self.missing_count,
            "different_count": sum(len(k.different) for k in self.kinds.values()),
            "in_flight_count": sum(len(k.in_flight) for k in self.kinds.values()),
            "mismatch_ratio": round(self.mismatch_ratio, 6),
            "mismatch_ratio_by_kind": {
                name: round(k.mismatch_ratio, 6) for name, k in self.kinds.items()
            },
            "kinds": {name: k.as_dict() for name, k in self.kinds.items()},
            "duration_seconds": round(self.duration_seconds, 3),
        }


def _index(kind: str, records: Iterable[Any]) -> dict[Hashable, Any]:
    return {record_key(kind, r): r for r in records}


def compare_kind(
    kind: str,
    ours: Iterable[Any],
    theirs: Iterable[Any],
    sample: float,
    rng: random.Random,
    since: datetime | None = None,
) -> tuple[KindReport, list[Hashable]]:
    """Compare a sample of `ours` against `theirs`. Returns the report and the keys
    that did not match (for a re-check). sample=1.0 checks every record. A record of
    ours changed after `since` that does not match is in flight."""
    mine = sorted(_index(kind, ours).items(), key=lambda kv: key_text(kv[0]))
    other = _index(kind, theirs)
    report = KindReport(total=len(mine))
    picked = mine if sample >= 1.0 else [kv for kv in mine if rng.random() < sample]
    report.checked = len(picked)
    bad: list[Hashable] = []
    for key, record in picked:
        if report.classify(key, record, other.get(key), since):
            bad.append(key)
    return report, bad


def _recheck(
    kind: str,
    report: KindReport,
    bad: list[Hashable],
    ours: Iterable[Any],
    theirs: Iterable[Any],
    since: datetime | None = None,
) -> None:
    """Keep only the mismatches that persist in fresh exports."""
    mine, other = _index(kind, ours), _index(kind, theirs)
    report.missing, report.different, report.in_flight = [], [], []
    for key in bad:
        record = mine.get(key)
        if record is not None:
            report.classify(key, record, other.get(key), since)


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
    in_flight_window: float | None = None,
    record_metrics: bool = True,
    clock: Callable[[], float] = time.time,
) -> ConsistencyReport:
    """Check each store pair given (graph, agent tasks). Metrics are labelled per store.
    A mismatch whose memory record changed later than PostgreSQL's export start less
    `in_flight_window` seconds (default: recheck_delay, the second-write timeout) is
    reported in flight."""
    if not 0.0 < sample <= 1.0:
        raise ValueError("sample must be in (0, 1]")
    window = timedelta(seconds=recheck_delay if in_flight_window is None else in_flight_window)

    def since() -> datetime:
        return datetime.now(UTC) - window

    rng = random.Random(seed)
    report = ConsistencyReport(sample=sample, seed=seed, started_at=clock())
    started = time.monotonic()
    per_store: dict[str, list[str]] = {}
    pending: list[tuple[str, list[Hashable]]] = []

    if memory_graph is not None and postgres_graph is not None:
        ours = _graph_kinds(await memory_graph.export_graph())
        graph_since = since()
        theirs = _graph_kinds(await postgres_graph.export_graph())
        for kind in GRAPH_KINDS:
            report.kinds[kind], bad = compare_kind(
                kind, ours[kind], theirs[kind], sample, rng, graph_since
            )
            if bad:
                pending.append((kind, bad))
        per_store["graph"] = list(GRAPH_KINDS)
    if memory_tasks is not None and postgres_tasks is not None:
        mine_tasks = await memory_tasks.export_tasks()
        tasks_since = since()
        report.kinds["tasks"], bad = compare_kind(
            "tasks", mine_tasks, await postgres_tasks.export_tasks(), sample, rng, tasks_since
        )
        if bad:
            pending.append(("tasks", bad))
        per_store["agent_task"] = ["tasks"]

    if pending:
        await asyncio.sleep(recheck_delay)
        graph_kinds = {k for k, _ in pending} - {"tasks"}
        fresh: dict[str, tuple[list[Any], list[Any], datetime]] = {}
        if graph_kinds and memory_graph is not None and postgres_graph is not None:
            ours = _graph_kinds(await memory_graph.export_graph())
            graph_since = since()
            theirs = _graph_kinds(await postgres_graph.export_graph())
            fresh |= {k: (ours[k], theirs[k], graph_since) for k in graph_kinds}
        if any(k == "tasks" for k, _ in pending):
            assert memory_tasks is not None and postgres_tasks is not None
            mine_tasks = await memory_tasks.export_tasks()
            tasks_since = since()
            fresh["tasks"] = (mine_tasks, await postgres_tasks.export_tasks(), tasks_since)
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
