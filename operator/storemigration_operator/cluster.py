"""Observe and act on the cluster with the kubernetes client: the only impure half of reconcile.

Everything is plain JSON (`_preload_content=False`) so what the planner sees is exactly what
the API server holds. The env patch is a JSON patch guarded by a resourceVersion `test`, so a
concurrent edit of the Deployment makes us re-read instead of overwriting someone's change.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

import kubernetes
from kubernetes.client.exceptions import ApiException

from .core.durations import parse_time
from .core.jobs import container_env
from .core.model import DeploymentObservation, JobObservation, JobRequest
from .core.statuswrite import status_json_patch
from .core.switchset import PodObservation
from .settings import OperatorSettings

# (connect, read) seconds on every call: a hung API server fails the reconcile, which kopf
# retries, instead of blocking a thread forever.
_AT_IMPORT = OperatorSettings()
REQUEST_TIMEOUT = (_AT_IMPORT.kube_connect_timeout, _AT_IMPORT.kube_read_timeout)
RAW: dict[str, Any] = {"_preload_content": False, "_request_timeout": REQUEST_TIMEOUT}
GROUP, VERSION, PLURAL = "migrations.storemigration.dev", "v1alpha1", "storemigrations"
NAME_LABEL = "storemigration.dev/name"
KIND_LABEL = "storemigration.dev/job-kind"
_clients: dict[str, kubernetes.client.ApiClient] = {}


def api_client() -> kubernetes.client.ApiClient:
    """In-cluster credentials when present, else the kubeconfig named by KUBECONFIG."""
    settings = OperatorSettings()
    key = settings.kubeconfig or ""
    if key not in _clients:
        if settings.kubernetes_service_host and not key:
            kubernetes.config.load_incluster_config()  # type: ignore[no-untyped-call]
            _clients[key] = kubernetes.client.ApiClient()
        else:
            _clients[key] = kubernetes.config.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=key or None)
    return _clients[key]


def _json(resp: Any) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(resp.data)
    return doc


def container_of(dep: dict[str, Any], container: str) -> tuple[int, dict[str, Any]] | None:
    for i, c in enumerate(dep["spec"]["template"]["spec"].get("containers", [])):
        if c.get("name") == container:
            return i, c
    return None


def read_deployment(ns: str, name: str) -> dict[str, Any] | None:
    try:
        return _json(kubernetes.client.AppsV1Api(api_client()).read_namespaced_deployment(
            name, ns, **RAW))
    except ApiException as e:
        if e.status == 404:
            return None
        raise


def observe_deployment(dep: dict[str, Any] | None, container: str
                       ) -> DeploymentObservation | None:
    if dep is None:
        return None
    found = container_of(dep, container)
    entries = (found[1].get("env") or []) if found else []
    env = {e["name"]: e.get("value") for e in entries}
    refs = {e["name"]: ref["name"] for e in entries
            if (ref := (e.get("valueFrom") or {}).get("configMapKeyRef"))
            and ref.get("key") == e["name"]}
    status = dep.get("status") or {}
    return DeploymentObservation(
        name=dep["metadata"]["name"], replicas=int(dep["spec"].get("replicas", 1)),
        container_found=found is not None, env=env, config_refs=refs,
        strategy=dict(dep["spec"].get("strategy") or {}),
        image=found[1].get("image") if found else None,
        generation=dep["metadata"].get("generation"),
        observed_generation=status.get("observedGeneration"),
        status_replicas=int(status.get("replicas") or 0),
        updated_replicas=int(status.get("updatedReplicas") or 0),
        available_replicas=int(status.get("availableReplicas") or 0))


def _finished(job: dict[str, Any]) -> tuple[str, datetime | None]:
    status = job.get("status") or {}
    for cond in status.get("conditions") or []:
        if cond.get("status") == "True" and cond.get("type") in ("Complete", "Failed"):
            state = "Succeeded" if cond["type"] == "Complete" else "Failed"
            return state, parse_time(status.get("completionTime") or
                                     cond.get("lastTransitionTime"))
    return "Running", None


def observe_jobs(ns: str, owner: str) -> dict[str, JobObservation]:
    batch = kubernetes.client.BatchV1Api(api_client())
    core = kubernetes.client.CoreV1Api(api_client())
    jobs = _json(batch.list_namespaced_job(ns, label_selector=f"{NAME_LABEL}={owner}",
                                           **RAW))["items"]
    result: dict[str, JobObservation] = {}
    for job in jobs:
        name = job["metadata"]["name"]
        state, finished = _finished(job)
        doc, message = None, None
        if state != "Running":
            pods = _json(core.list_namespaced_pod(ns, label_selector=f"job-name={name}",
                                                  **RAW))["items"]
            for pod in pods:
                for cs in (pod.get("status") or {}).get("containerStatuses") or []:
                    term = (cs.get("state") or {}).get("terminated") or {}
                    if term.get("message"):
                        message = term["message"]
            if message:
                try:
                    parsed = json.loads(message)
                    doc = parsed if isinstance(parsed, dict) else None
                except ValueError:
                    doc = None
        result[name] = JobObservation(name, state, doc, finished, message)
    return result


def patch_env(dep: dict[str, Any], container: str, env_set: dict[str, str],
              env_remove: list[str], adopt: list[str] | None = None,
              config_map: str | None = None, replicas: int | None = None,
              strategy: dict[str, Any] | None = None) -> None:
    """Set literal values, remove names, and (adoption) make `adopt` read the ConfigMap key
    of the same name; optional, so a key the phase does not set leaves the API's default.
    `replicas` and `strategy` (core.scaling) go into the same guarded patch."""
    found = container_of(dep, container)
    assert found is not None
    index, c = found
    adopt = adopt or []
    env = [e for e in (c.get("env") or []) if e["name"] not in env_set and
           e["name"] not in env_remove and e["name"] not in adopt]
    env += [{"name": k, "value": v} for k, v in sorted(env_set.items())]
    env += [{"name": k, "valueFrom": {"configMapKeyRef": {"name": config_map, "key": k,
                                                          "optional": True}}}
            for k in adopt]
    meta = dep["metadata"]
    body = [{"op": "test", "path": "/metadata/resourceVersion", "value": meta["resourceVersion"]},
            {"op": "add", "path": f"/spec/template/spec/containers/{index}/env", "value": env}]
    if not (env_set or env_remove or adopt):
        body.pop()  # the shape only: the pod template stays as it is (no restart)
    if replicas is not None:
        body.append({"op": "add", "path": "/spec/replicas", "value": replicas})
    if strategy is not None:
        body.append({"op": "add", "path": "/spec/strategy", "value": strategy})
    kubernetes.client.AppsV1Api(api_client()).patch_namespaced_deployment(
        meta["name"], meta["namespace"], body, **RAW)


def owner_reference(owner: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"],
            "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
            "controller": True, "blockOwnerDeletion": True}


def write_config_map(ns: str, name: str, data: dict[str, str], owner: dict[str, Any]) -> None:
    """Create or replace the switches' ConfigMap (owned by the StoreMigration)."""
    core = kubernetes.client.CoreV1Api(api_client())
    meta: dict[str, Any] = {"name": name, "namespace": ns, "labels": {
        NAME_LABEL: owner["metadata"]["name"],
        "app.kubernetes.io/managed-by": "storemigration-operator"},
        "ownerReferences": [owner_reference(owner)]}
    body: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap", "data": dict(data),
                            "metadata": meta}
    try:
        current = _json(core.read_namespaced_config_map(name, ns, **RAW))
    except ApiException as e:
        if e.status != 404:
            raise
        core.create_namespaced_config_map(ns, body, **RAW)  # type: ignore[arg-type]
        return
    if current.get("data") != body["data"]:  # guarded like the env patch
        core.patch_namespaced_config_map(name, ns, [
            {"op": "test", "path": "/metadata/resourceVersion",
             "value": current["metadata"]["resourceVersion"]},
            {"op": "add", "path": "/data", "value": body["data"]}], **RAW)


def _port(pod: dict[str, Any], container: str) -> int | None:
    for c in pod["spec"].get("containers") or []:
        if c.get("name") == container:
            ports = c.get("ports") or []
            named = [p for p in ports if p.get("name") == "http"] or ports
            return int(named[0]["containerPort"]) if named else None
    return None


def api_pods(ns: str, dep: dict[str, Any], container: str) -> list[PodObservation]:
    """The Deployment's pods (its selector), each with podIP:port and readiness."""
    labels = (dep["spec"].get("selector") or {}).get("matchLabels") or {}
    selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    pods = _json(kubernetes.client.CoreV1Api(api_client()).list_namespaced_pod(
        ns, label_selector=selector, **RAW))["items"]
    result = []
    for pod in pods:
        if pod["metadata"].get("deletionTimestamp"):
            continue
        status = pod.get("status") or {}
        ip, port = status.get("podIP"), _port(pod, container)
        ready = status.get("phase") == "Running" and any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in status.get("conditions") or [])
        address = f"{ip}:{port}" if ip and port else None
        result.append(PodObservation(pod["metadata"]["name"], address, ready and bool(address),
                                     error=None if address else "no podIP or port"))
    return result


def secret_value(ns: str, name: str, key: str) -> str | None:
    try:
        secret = _json(kubernetes.client.CoreV1Api(api_client()).read_namespaced_secret(
            name, ns, **RAW))
    except ApiException as e:
        if e.status == 404:
            return None
        raise
    raw = (secret.get("data") or {}).get(key)
    return base64.b64decode(raw).decode() if raw is not None else None


def job_manifest(req: JobRequest, ns: str, owner: dict[str, Any]) -> dict[str, Any]:
    """The Job for a request; everything in it comes from the request (the spec the planner
    used), the owner gives only its name and uid for labels and ownerReferences."""
    labels = {NAME_LABEL: owner["metadata"]["name"], KIND_LABEL: req.kind,
              "app.kubernetes.io/managed-by": "storemigration-operator"}
    secrets, mount = req.secret_env, req.snapshot_mount
    container: dict[str, Any] = {
        "name": req.kind, "image": req.image or "storemigration-api:latest",
        "command": list(req.command), "args": list(req.args),
        "env": container_env(req.env, secrets),
        "terminationMessagePolicy": "FallbackToLogsOnError"}
    pod: dict[str, Any] = {"restartPolicy": "Never", "containers": [container]}
    if mount:
        container["volumeMounts"] = [{"name": "snapshots", "mountPath": mount[1]}]
        pod["volumes"] = [{"name": "snapshots", "persistentVolumeClaim": {"claimName": mount[0]}}]
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": req.name, "namespace": ns, "labels": labels,
                     "ownerReferences": [owner_reference(owner)]},
        "spec": {"backoffLimit": 2, "template": {"metadata": {"labels": labels}, "spec": pod}},
    }


def create_job(manifest: dict[str, Any]) -> bool:
    """Create a Job; False when it already exists (a restarted operator re-requesting it)."""
    try:
        kubernetes.client.BatchV1Api(api_client()).create_namespaced_job(
            manifest["metadata"]["namespace"], manifest,  # type: ignore[arg-type]
            **RAW)
        return True
    except ApiException as e:
        if e.status == 409:
            return False
        raise


def read_migration(ns: str, name: str) -> dict[str, Any] | None:
    """The StoreMigration as the API server holds it now (None once it is gone)."""
    try:
        return _json(kubernetes.client.CustomObjectsApi(api_client()).get_namespaced_custom_object(
            GROUP, VERSION, ns, PLURAL, name, **RAW))
    except ApiException as e:
        if e.status == 404:
            return None
        raise


def write_status(ns: str, name: str, status: dict[str, Any], resource_version: str | None
                 ) -> None:
    """Replace the StoreMigration's whole status (see core.statuswrite)."""
    kubernetes.client.CustomObjectsApi(api_client()).patch_namespaced_custom_object_status(
        GROUP, VERSION, ns, PLURAL, name, status_json_patch(status, resource_version),
        _content_type="application/json-patch+json", **RAW)
