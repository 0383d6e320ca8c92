"""The CRD's structural schema rejects bad values before the operator ever sees them."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
import yaml

CRD = yaml.safe_load((Path(__file__).resolve().parents[2] / "crds/storemigrations.yaml")
                     .read_text())
SCHEMA = CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def errors(spec: dict) -> list[str]:
    validator = jsonschema.Draft4Validator(SCHEMA)
    return [e.message for e in validator.iter_errors({"spec": {"deployment": "api", **spec}})]


def test_a_full_valid_spec_passes():
    assert errors({"stores": ["graph"], "targetPhase": "Cleanup", "paused": False,
                   "readStep": {"start": 10, "step": 10, "interval": "24h"},
                   "gates": {"interval": "1m", "window": "5m", "errorRateCeiling": 0.01,
                             "p95CeilingSeconds": 0.5, "minRequests": 100},
                   "verify": {"interval": "24h"}, "primaryHold": "48h",
                   "cleanup": {"approved": True, "archive": "s3://bucket/snap.json"},
                   "jobs": {"verify": {"image": "api:1", "command": ["python"]}}}) == []


@pytest.mark.parametrize("spec", [
    {"readStep": {"start": 101}},
    {"readStep": {"step": 0}},
    {"readStep": {"interval": "1 day"}},
    {"gates": {"window": "5"}},
    {"primaryHold": "48hours"},
    {"targetPhase": "Complete"},
    {"targetPhase": "postgres"},
    {"stores": ["graph", "cache"]},
    {"stores": []},
    {"gates": {"errorRateCeiling": 1.5}},
    {"gates": {"p95CeilingSeconds": 0}},
    {"cleanup": {"archive": "relative/path"}},
    {"paused": "yes"},
])
def test_bad_values_are_rejected(spec):
    assert errors(spec)


def test_deployment_is_required_and_printer_columns_are_declared():
    assert list(jsonschema.Draft4Validator(SCHEMA).iter_errors({"spec": {}}))
    names = [c["name"] for c in CRD["spec"]["versions"][0]["additionalPrinterColumns"]]
    assert names == ["Phase", "Read%", "ErrorRate", "P95", "Reason", "Age"]
    assert CRD["spec"]["names"]["shortNames"] == ["sm"]
    assert CRD["spec"]["versions"][0]["subresources"] == {"status": {}}
