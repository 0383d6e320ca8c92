"""The StoreMigration CRD, generated from the spec and status models.

pydantic writes JSON Schema (draft 2020-12: $refs, anyOf with null, numeric
exclusiveMinimum); Kubernetes wants a structural OpenAPI v3.0 schema: everything inlined,
one type per field, boolean exclusiveMinimum, no additionalProperties beside properties.
`structural` converts one into the other and refuses a property without a description, so
`kubectl explain storemigration.spec` and `.status` document every field. Defaults are
written into the descriptions, not as `default:` (the API server would otherwise store them
in every object, and the operator's defaults could no longer change).
"""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import yaml
from pydantic.json_schema import GenerateJsonSchema

from .durations import format_duration
from .spec import MigrationSpec
from .status import MigrationStatus

GROUP, VERSION, KIND, PLURAL = "migrations.storemigration.dev", "v1alpha1", "StoreMigration", \
    "storemigrations"
PRINTER_COLUMNS = [
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "Read%", "type": "integer", "jsonPath": ".status.readPercent"},
    {"name": "ErrorRate", "type": "number", "jsonPath": ".status.lastGate.errorRate"},
    {"name": "P95", "type": "number", "jsonPath": ".status.lastGate.p95Seconds"},
    {"name": "Reason", "type": "string", "jsonPath": ".status.reason"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]
HEADER = """\
# StoreMigration: one gated, reversible move of the API's in-memory stores to PostgreSQL.
# GENERATED from operator/storemigration_operator/core/{spec,status}.py by
# `python scripts/sync_crd.py`; do not edit (tests/operator/test_crd_generated.py checks it).
# The structural schema rejects bad values at admission; the operator validates again.
"""
_DROPPED = ("title", "additionalProperties", "default", "$defs")


class _Schema(GenerateJsonSchema):
    def encode_default(self, dft: Any) -> Any:
        if isinstance(dft, timedelta):
            return format_duration(dft)
        return super().encode_default(dft)


class SchemaError(ValueError):
    """The models cannot be written as a structural schema (the message says where)."""


def _shown(default: Any) -> str | None:
    if default is None or default == "" or isinstance(default, dict):
        return None
    if isinstance(default, list) and not all(isinstance(v, str | int | float) for v in default):
        return None
    text = ", ".join(map(str, default)) if isinstance(default, list) else default
    if isinstance(text, bool):
        text = str(text).lower()
    return f"Default: {text}."


def structural(node: dict[str, Any], defs: dict[str, Any], where: str,
               defaults: bool = True) -> dict[str, Any]:
    """One pydantic schema node as a Kubernetes structural schema node; with `defaults`, a
    field's default is named in its description."""
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    variants = node.get("anyOf")
    if variants and "x-kubernetes-int-or-string" not in node:
        kept = [v for v in variants if v != {"type": "null"}]
        if len(kept) != 1:
            raise SchemaError(f"{where}: one type per field, got {variants}")
        node = {**{k: v for k, v in node.items() if k != "anyOf"}, **kept[0],
                **({"description": node["description"]} if "description" in node else {})}
        if "$ref" in node:
            return structural(node, defs, where, defaults)
    first: dict[str, Any] = {k: node[k] for k in ("type", "description") if k in node}
    out: dict[str, Any] = {**first, **{k: copy.deepcopy(v) for k, v in node.items()
                                       if k not in (*_DROPPED, *first, "properties", "items",
                                                    "exclusiveMinimum")}}
    if "exclusiveMinimum" in node:
        out.update(minimum=node["exclusiveMinimum"], exclusiveMinimum=True)
    shown = _shown(node.get("default")) if defaults else None
    if shown and "description" in out:
        out["description"] = f"{out['description']} {shown}"
    if "properties" in node:
        out["properties"] = {}
        for name, prop in node["properties"].items():
            child = structural(prop, defs, f"{where}.{name}", defaults)
            if not child.get("description"):
                raise SchemaError(f"{where}.{name}: no description")
            out["properties"][name] = child
    extra = node.get("additionalProperties")
    if isinstance(extra, dict) and "properties" not in node:
        out["additionalProperties"] = structural(extra, defs, f"{where}.*", defaults)
    if "items" in node:
        out["items"] = structural(node["items"], defs, f"{where}[]", defaults)
    return out


def _without(node: Any, key: str) -> Any:
    if isinstance(node, dict):
        return {k: _without(v, key) for k, v in node.items() if k != key}
    if isinstance(node, list):
        return [_without(v, key) for v in node]
    return node


def open_api_schema() -> dict[str, Any]:
    spec_raw = MigrationSpec.model_json_schema(by_alias=True, schema_generator=_Schema)
    status_raw = MigrationStatus.model_json_schema(by_alias=True, schema_generator=_Schema)
    spec = structural(spec_raw, spec_raw.get("$defs", {}), "spec")
    # Transition rules belong to the spec: status.lastValidSpec is the operator's copy.
    status = _without(structural(status_raw, status_raw.get("$defs", {}), "status", False),
                      "x-kubernetes-validations")
    return {"type": "object", "required": ["spec"],
            "description": "A StoreMigration resource.",
            "properties": {"spec": spec, "status": status}}


def crd() -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP, "scope": "Namespaced",
            "names": {"kind": KIND, "listKind": f"{KIND}List", "plural": PLURAL,
                      "singular": KIND.lower(), "shortNames": ["sm"]},
            "versions": [{
                "name": VERSION, "served": True, "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": PRINTER_COLUMNS,
                "schema": {"openAPIV3Schema": open_api_schema()},
            }],
        },
    }


def render() -> str:
    """The CRD file's text, exactly as committed."""
    return HEADER + yaml.safe_dump(crd(), sort_keys=False, width=100, allow_unicode=True)
