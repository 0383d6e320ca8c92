"""The committed CRD is the one the spec and status models generate, it documents every
field, and it declares every status key the planner writes (a real API server prunes
undeclared keys, which would silently drop the operator's memory between reconciles)."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from storemigration_operator.core.crd import render
from storemigration_operator.core.gates import GateReadings

from .sim import HEALTHY, Sim

ROOT = Path(__file__).resolve().parents[2]
FILES = [ROOT / "crds" / "storemigrations.yaml",
         ROOT / "charts" / "store-migration" / "crds" / "storemigrations.yaml"]
SCHEMA = yaml.safe_load(FILES[0].read_text())["spec"]["versions"][0]["schema"][
    "openAPIV3Schema"]


def walk(node: dict[str, Any], where: str):
    """(path, node) for every property, array item and map value below `node`."""
    for name, child in (node.get("properties") or {}).items():
        yield f"{where}.{name}", child
        yield from walk(child, f"{where}.{name}")
    if isinstance(node.get("items"), dict):
        yield f"{where}[]", node["items"]
        yield from walk(node["items"], f"{where}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield f"{where}.*", node["additionalProperties"]
        yield from walk(node["additionalProperties"], f"{where}.*")


def undeclared(value: Any, schema: dict[str, Any], where: str = "") -> list[str]:
    """Keys of `value` a structural API server would prune."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [f for i, v in enumerate(value) for f in undeclared(v, schema["items"],
                                                                    f"{where}[{i}]")]
    if not isinstance(value, dict):
        return []
    props = schema.get("properties")
    if props is None:
        extra = schema.get("additionalProperties")
        return [f for k, v in value.items() for f in undeclared(v, extra, f"{where}.{k}")] \
            if isinstance(extra, dict) else [f"{where} (an object with no declared fields)"]
    return [f"{where}.{k}" for k in value if k not in props] + \
        [f for k, v in value.items() if k in props for f in undeclared(v, props[k],
                                                                       f"{where}.{k}")]


@pytest.mark.parametrize("path", FILES, ids=["crds", "chart"])
def test_the_committed_crd_is_the_generated_one(path: Path) -> None:
    assert path.read_text() == render(), \
        f"{path.relative_to(ROOT)} differs from the models: run python scripts/sync_crd.py"


def test_sync_crd_check_agrees() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "sync_crd.py"), "--check"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("root", ["spec", "status"])
def test_every_property_has_a_description(root: str) -> None:
    top = SCHEMA["properties"][root]
    nodes = list(walk(top, root))
    assert len(nodes) > 40
    missing = [where for where, node in nodes if not node.get("description")
               and not where.endswith(("[]", ".*"))]  # items and map values: their parent
    assert missing == []


def test_status_is_declared_not_preserved_and_every_node_is_structural() -> None:
    status = SCHEMA["properties"]["status"]
    assert "x-kubernetes-preserve-unknown-fields" not in status
    assert status["type"] == "object" and len(status["properties"]) >= 30
    for where, node in [("", SCHEMA), *walk(SCHEMA, "")]:
        typed = node.get("type") or node.get("x-kubernetes-int-or-string") or \
            node.get("x-kubernetes-preserve-unknown-fields")
        assert typed, f"{where}: no type"
        assert not ({"$ref", "oneOf", "allOf", "default", "title"} & set(node)), where
        assert "anyOf" not in node or node.get("x-kubernetes-int-or-string"), where
        assert not ("properties" in node and "additionalProperties" in node), where
        if "exclusiveMinimum" in node:
            assert node["exclusiveMinimum"] is True, where  # OpenAPI v3.0, not 2020-12


def test_preserved_fields_are_only_kopf_job_results_and_readings() -> None:
    kept = sorted(where for where, node in walk(SCHEMA, "")
                  if node.get("x-kubernetes-preserve-unknown-fields"))
    readings = ("errorRate", "p50Seconds", "p95Seconds", "p99Seconds", "mismatchRatio",
                "requests", "value")
    assert all(w.endswith(readings) or w.endswith((".kopf", ".result")) for w in kept), kept
    assert ".status.kopf" in kept and ".status.jobs.*.result" in kept


def statuses() -> list[dict[str, Any]]:
    """Status after every tick of runs that touch every part of it: a full migration with a
    rollback, a promote, an abort, dry-run gates, a failing Job and an invalid spec."""
    seen: list[dict[str, Any]] = []
    sim = Sim({"deployment": "api", "targetPhase": "Cleanup", "readStep": {"interval": "1h"},
               "verify": {"interval": "1h"}, "gates": {"window": "1h"}, "primaryHold": "1h",
               "cleanup": {"approved": True, "archive": "/archive/"},
               "snapshotVolume": {"claimName": "snapshots"}})
    sim.job_outcome = lambda kind: ("Failed", {"ok": False, "error": "refused", "extra": [1]}) \
        if kind == "backfill" and len(sim.created) < 3 else (
            "Succeeded", {"mismatch_ratio": 0.0, "checked": 3, "written": {"projects": 2}})
    steps = [timedelta(minutes=1)] * 10 + [timedelta(hours=1)] * 6
    for step in steps:
        sim.tick(step)
        seen.append(sim.status)
    sim.readings = lambda now: GateReadings(error_rate=0.3, p95_seconds=float("inf"),
                                            p50_seconds=0.01, p99_seconds=float("inf"),
                                            requests=10)
    seen.append(sim.tick(timedelta(minutes=1)).status)
    sim.readings = lambda now: GateReadings(error_rate=0.3, p95_seconds=float("nan"),
                                            requests=5000)
    seen.append(sim.tick(timedelta(minutes=1)).status)
    sim.readings = lambda now: HEALTHY
    sim.spec_doc.update(promoteToken="now", gates={"window": "1h", "dryRun": True})
    seen.append(sim.tick(timedelta(minutes=1)).status)
    sim.spec_doc.update(gates={"window": "1h"}, abort=True)
    seen.append(sim.tick(timedelta(minutes=1)).status)
    sim.spec_doc.update(abort=False, readStep={"interval": "soon"})
    seen.append(sim.tick(timedelta(minutes=1)).status)
    sim.spec_doc["readStep"] = {"interval": "1h"}
    for _ in range(40):
        seen.append(sim.tick(timedelta(hours=1)).status)
    assert sim.phase == "Complete"
    return seen


def test_every_status_the_planner_writes_is_declared_and_valid() -> None:
    validator = jsonschema.Draft4Validator(SCHEMA)
    keys: set[str] = set()
    for status in statuses():
        doc = {"spec": {"deployment": "api"}, "status": status}
        assert undeclared(status, SCHEMA["properties"]["status"], ".status") == []
        assert [e.message for e in validator.iter_errors(doc)] == []
        keys |= set(status)
    assert {"lastGate", "gateInterval", "promotion", "history", "jobs", "lastValidSpec",
            "lastRollbackTime", "nextStepTime"} <= keys
