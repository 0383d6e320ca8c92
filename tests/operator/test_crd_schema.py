"""The CRD's structural schema rejects bad values before the operator ever sees them."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
import yaml
from storemigration_operator.core.spec import InvalidSpec, parse_spec

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
    {"readStep": {"interval": "0s"}},
    {"primaryHold": "0h"},
    {"gates": {"window": "0m"}},
    {"gates": {"interval": "00s"}},
    {"rollback": {"retryAfter": "0s0m"}},
    {"verify": {"interval": "0d"}},
])
def test_bad_values_are_rejected(spec):
    assert errors(spec)
    with pytest.raises(InvalidSpec):  # the parser agrees with admission
        parse_spec({"deployment": "api", **spec})


@pytest.mark.parametrize("duration", ["90s", "5m", "1h30m", "2d", "1500ms", "10m", "0h5m"])
def test_non_zero_durations_pass_both(duration):
    assert errors({"readStep": {"interval": duration}}) == []
    parse_spec({"deployment": "api", "readStep": {"interval": duration}})


def test_duplicate_stores_are_a_set_for_the_api_server_and_rejected_by_the_parser():
    stores = SCHEMA["properties"]["spec"]["properties"]["stores"]
    assert stores["x-kubernetes-list-type"] == "set"  # kube-apiserver rejects duplicates
    with pytest.raises(InvalidSpec, match="distinct"):
        parse_spec({"deployment": "api", "stores": ["graph", "graph"]})


def test_deployment_is_required_and_printer_columns_are_declared():
    assert list(jsonschema.Draft4Validator(SCHEMA).iter_errors({"spec": {}}))
    names = [c["name"] for c in CRD["spec"]["versions"][0]["additionalPrinterColumns"]]
    assert names == ["Phase", "Read%", "ErrorRate", "P95", "Reason", "Age"]
    assert CRD["spec"]["names"]["shortNames"] == ["sm"]
    assert CRD["spec"]["versions"][0]["subresources"] == {"status": {}}


def test_deployment_and_stores_carry_an_immutability_rule():
    props = SCHEMA["properties"]["spec"]["properties"]
    for field in ("deployment", "stores"):
        assert props[field]["x-kubernetes-validations"][0]["rule"] == "self == oldSelf"
