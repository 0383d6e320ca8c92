"""The rollback script's Kubernetes half, on the operator's own path (issue 11 item 4): write
the switches ConfigMap, PUT the switches to every ready API pod through the admin endpoint,
then read each pod back and confirm. A pod that does not confirm is named and the script
fails; nothing restarts.

It reuses the operator's code rather than a copy of it: storemigration_operator.cluster
reads the Deployment, its pods and the admin token's Secret; podswitches PUTs and reads
back; core.switchset decides what counts as confirmed. A Deployment whose flags are still
literals (never adopted by an operator) gets the old env patch, which restarts its pod.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any

import _common as c
from kubernetes.client.exceptions import ApiException
from storemigration_operator import cluster, podswitches
from storemigration_operator.core.switchset import (
    DesiredSwitches,
    PodObservation,
    confirmation,
)

# What each rollback sets live, per store (the env names' switches, app.migration.switch_models).
PHASE_SWITCHES: dict[int, dict[str, bool | int]] = {
    1: {"dual_write": False, "read_percent": 0},
    2: {"read_percent": 0},
    3: {"memory_writes": True, "read_percent": 0},
}


@dataclass
class Target:
    """The Deployment as read: its container, env names, and the ConfigMap its switches
    come from (None: literal env, the pre-operator shape)."""

    name: str
    namespace: str
    container: str
    raw: dict[str, Any]
    present: set[str]
    config_refs: dict[str, str] = field(default_factory=dict)
    replicas: int = 1

    def config_map(self, names: list[str]) -> str | None:
        refs = {self.config_refs.get(n) for n in names}
        if refs == {None}:
            return None
        if len(refs) != 1:
            other = sorted(n for n in names if n not in self.config_refs)
            raise c.ScriptError(c.EXIT_USAGE, f"{self.namespace}/{self.name}: {other} do not "
                                "read the switches ConfigMap (literal or absent from the env), "
                                "so a pod that restarts would not boot with the rollback; "
                                f"{sorted(names)} must all read one ConfigMap")
        return refs.pop()


def _unreachable(e: Exception) -> c.ScriptError:
    return c.ScriptError(c.EXIT_UNREACHABLE, f"Kubernetes unreachable ({type(e).__name__})")


def read_target(name: str, namespace: str, container: str | None) -> Target:
    try:
        dep = cluster.read_deployment(namespace, name)
    except ApiException as e:
        raise c.ScriptError(c.EXIT_UNREACHABLE, f"cannot read deployment {namespace}/{name}: "
                            f"{e.status}") from None
    except Exception as e:  # noqa: BLE001 - connection or kubeconfig errors
        raise _unreachable(e) from None
    if dep is None:
        raise c.ScriptError(c.EXIT_USAGE, f"cannot read deployment {namespace}/{name}: 404")
    containers = dep["spec"]["template"]["spec"].get("containers") or []
    chosen = container or (containers[0]["name"] if containers else "")
    seen = cluster.observe_deployment(dep, chosen)
    if seen is None or not seen.container_found:
        raise c.ScriptError(c.EXIT_USAGE, f"no container {chosen!r} in {namespace}/{name}")
    return Target(name, namespace, chosen, dep, set(seen.env), dict(seen.config_refs),
                  seen.replicas)


def desired(phase: int, store: str, config_map: str, data: dict[str, str]) -> DesiredSwitches:
    scope = "all" if store == "all" else store
    body: dict[str, Any] = {scope: dict(PHASE_SWITCHES[phase])}
    digest = hashlib.sha256(json.dumps({"data": data, "body": body}, sort_keys=True)
                            .encode()).hexdigest()[:12]
    revision = f"rollback-from-phase-{phase}-{digest}"
    body["desired_revision"] = revision
    return DesiredSwitches(config_map, data, body, revision)


def write_config_map(target: Target, name: str, changes: dict[str, str]) -> dict[str, str]:
    """Merge `changes` into the ConfigMap's data (guarded by its resourceVersion, as the
    operator's write is); create it when the Deployment refers to one that is missing."""
    import kubernetes

    core = kubernetes.client.CoreV1Api(cluster.api_client())
    try:
        try:
            resp: Any = core.read_namespaced_config_map(name, target.namespace, **cluster.RAW)
            current = json.loads(resp.data)
        except ApiException as e:
            if e.status != 404:
                raise
            core.create_namespaced_config_map(target.namespace, {  # type: ignore[arg-type]
                "apiVersion": "v1", "kind": "ConfigMap", "data": dict(changes),
                "metadata": {"name": name, "namespace": target.namespace}}, **cluster.RAW)
            return dict(changes)
        data = {**(current.get("data") or {}), **changes}
        core.patch_namespaced_config_map(name, target.namespace, [
            {"op": "test", "path": "/metadata/resourceVersion",
             "value": current["metadata"]["resourceVersion"]},
            {"op": "add", "path": "/data", "value": data}], **cluster.RAW)
        return data
    except ApiException as e:
        raise c.ScriptError(c.EXIT_FAILED, f"write of configmap {target.namespace}/{name} "
                            f"refused: {e.status}") from None
    except c.ScriptError:
        raise
    except Exception as e:  # noqa: BLE001 - connection errors
        raise _unreachable(e) from None


def owning_migration(target: Target, name: str) -> str | None:
    """The StoreMigration that owns the ConfigMap and still exists: its operator, if it
    runs, applies its own phase to every pod again at its next reconcile (pausing does not
    stop that), which would undo this rollback."""
    import kubernetes

    try:
        resp: Any = kubernetes.client.CoreV1Api(cluster.api_client()).read_namespaced_config_map(
            name, target.namespace, **cluster.RAW)
        cm = json.loads(resp.data)
        owners = [o["name"] for o in (cm["metadata"].get("ownerReferences") or [])
                  if o.get("kind") == "StoreMigration"]
        objects = kubernetes.client.CustomObjectsApi(cluster.api_client())
        for owner in owners:
            try:
                objects.get_namespaced_custom_object(cluster.GROUP, cluster.VERSION,
                                                     target.namespace, cluster.PLURAL, owner,
                                                     **cluster.RAW)
                return str(owner)
            except ApiException as e:
                if e.status != 404:
                    raise
    except ApiException as e:
        if e.status == 404:
            return None
        raise c.ScriptError(c.EXIT_UNREACHABLE, f"cannot read configmap {name}: "
                            f"{e.status}") from None
    except Exception as e:  # noqa: BLE001 - connection errors
        raise _unreachable(e) from None
    return None


def admin_token(target: Target) -> str:
    """ADMIN_TOKEN from the environment, else from the Secret the API container reads."""
    if os.environ.get("ADMIN_TOKEN"):
        return os.environ["ADMIN_TOKEN"]
    found = cluster.container_of(target.raw, target.container)
    for e in (found[1].get("env") or []) if found else []:
        ref = (e.get("valueFrom") or {}).get("secretKeyRef")
        if e["name"] == "ADMIN_TOKEN" and ref:
            value = cluster.secret_value(target.namespace, ref["name"], ref["key"])
            if value:
                return value
    raise c.ScriptError(c.EXIT_USAGE, "ADMIN_TOKEN is not set and the API container reads "
                        "none from a Secret")


def pods(target: Target) -> list[PodObservation]:
    try:
        return cluster.api_pods(target.namespace, target.raw, target.container)
    except Exception as e:  # noqa: BLE001 - connection errors
        raise _unreachable(e) from None


def _values_match(pod: PodObservation, want: DesiredSwitches, stores: tuple[str, ...]) -> bool:
    """The read-back's values, not only its label: every store in scope runs the set."""
    for scope, patch in want.body.items():
        if not isinstance(patch, dict):
            continue
        for store in stores if scope == "all" else (scope,):
            for key, value in patch.items():
                if pod.switches.get(f"{store}.{key}") != json.dumps(value):
                    return False
    return True


def apply_live(target: Target, want: DesiredSwitches, token: str, timeout: float
               ) -> dict[str, Any]:
    """PUT to every ready pod, read back, confirm. Returns the per-pod report; raises
    ScriptError naming every pod that did not confirm."""
    found = pods(target)
    ready = [p for p in found if p.ready]
    started = time.monotonic()
    seen = asyncio.run(podswitches.apply(ready, want, token, timeout)) if ready else ()
    took = time.monotonic() - started
    observed = [*seen, *(p for p in found if not p.ready)]
    _, pending = confirmation(observed, want)
    wrong = [p.name for p in seen if p.confirms(want) and not _values_match(p, want, c.STORES)]
    report = {"seconds": round(took, 3), "revision": want.revision, "pods": [
        {"name": p.name, "ready": p.ready,
         "confirmed": p.confirms(want) and p.name not in wrong, "error": p.error}
        for p in observed]}
    failed = sorted({*pending, *wrong})
    if not ready:
        raise c.ScriptError(c.EXIT_FAILED, f"no ready pod of {target.namespace}/{target.name} "
                            f"to apply the switches to (the ConfigMap {want.config_map} "
                            "holds them for pods that start)")
    if failed:
        why = "; ".join(f"{p.name}: {p.error or 'other switches read back'}" for p in observed
                        if p.name in failed)
        raise c.ScriptError(c.EXIT_FAILED, f"pods that did not confirm the rollback: {why}")
    return report


def patch_literal_env(target: Target, changes: dict[str, str]) -> None:
    """The pre-operator shape: set the literals, which restarts the pods (the operator's
    JSON patch, guarded by resourceVersion)."""
    try:
        cluster.patch_env(target.raw, target.container, changes, [])
    except ApiException as e:
        raise c.ScriptError(c.EXIT_FAILED, f"patch of {target.namespace}/{target.name} "
                            f"refused: {e.status}") from None
    except Exception as e:  # noqa: BLE001 - connection errors
        raise _unreachable(e) from None
