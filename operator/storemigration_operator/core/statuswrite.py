"""How the operator writes status: the whole object, replaced, guarded by resourceVersion.

A JSON merge patch (what kopf's `patch.status` sends) merges nested objects, so a key the new
status no longer has survives unless it is nulled explicitly: a new verify attempt inherited
`acted: true` from the previous one and its failure was ignored. Replacing `/status` as a
whole cannot keep stale keys. The `test` of metadata.resourceVersion makes the write fail
(422 from the JSON patch, like 409 for a stale update) when anyone changed the object since
it was read, so two reconciles can never overwrite each other's decisions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def status_json_patch(status: Mapping[str, Any], resource_version: str | None
                      ) -> list[dict[str, Any]]:
    """The JSON patch (RFC 6902) for the status subresource: test the version, replace all."""
    ops: list[dict[str, Any]] = []
    if resource_version is not None:
        ops.append({"op": "test", "path": "/metadata/resourceVersion",
                    "value": resource_version})
    ops.append({"op": "add", "path": "/status", "value": dict(status)})
    return ops
