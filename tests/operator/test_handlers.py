"""The kopf entry points against the API emulator, called the way kopf calls them: with the
body of the event that woke them, which may be stale by the time they run."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import kopf
import pytest
from kubernetes.client.exceptions import ApiException
from storemigration_operator import cluster, handlers

from tests.harness.kube import ClusterSimulator, KubeCluster, SwitchPod

from .sim import HEALTHY, Sim
from .test_e2e_operator import deployment, env_of

ROOT = Path(__file__).resolve().parents[2]
SM = "/apis/migrations.storemigration.dev/v1alpha1/namespaces/default/storemigrations"
SPEC = {"deployment": "api", "readStep": {"interval": "1h"}, "gates": {"window": "1h"}}
FAILING = {"error_rate": 0.2, "p95_seconds": 0.05, "mismatch_ratio": 0.0, "requests": 5000}
LOG = logging.getLogger("test")


async def kopf_applies(cluster_: KubeCluster, patch: kopf.Patch) -> None:
    """What kopf does with a handler's `patch` after it returns (a merge patch)."""
    if patch.get("status"):
        await cluster_.request("PATCH", f"{SM}/sm/status", {"status": dict(patch["status"])})


def config_map(kube: KubeCluster) -> dict[str, str]:
    cm = kube.emulator.obj("v1/configmaps", "default", "sm-switches")
    assert cm is not None
    return dict(cm["data"])


async def migration_at_30_percent(kube: KubeCluster, pod: SwitchPod) -> dict[str, Any]:
    """A StoreMigration whose stored status is the planner's own at 30% reads (the simulated
    calendar ends now, so its times are the real clock's), the Deployment adopted (its flags
    from the ConfigMap) and one pod answering the switches."""
    sim = Sim(copy.deepcopy(SPEC), now=datetime.now(tz=UTC) - timedelta(hours=4))
    sim.run_until(lambda: sim.percent == 30, timedelta(minutes=5), limit=100)
    await kube.apply_file(ROOT / "crds" / "storemigrations.yaml")
    dep = deployment()
    dep["spec"]["template"]["spec"]["containers"][0]["env"] = [
        {"name": k, "value": v} for k, v in sim.env.items()] + [
        {"name": k, "valueFrom": {"configMapKeyRef": {"name": cm, "key": k, "optional": True}}}
        for k, cm in sim.refs.items()]
    await kube.create(dep)
    await ClusterSimulator(kube, pod=pod).step()  # the Deployment is rolled out, a pod runs
    await kube.create({"apiVersion": "migrations.storemigration.dev/v1alpha1",
                       "kind": "StoreMigration", "metadata": {"name": "sm",
                                                              "namespace": "default"},
                       "spec": copy.deepcopy(SPEC)})
    await kube.request("PATCH", f"{SM}/sm/status", {"status": sim.status})
    obj = kube.emulator.obj("migrations.storemigration.dev/v1alpha1/storemigrations",
                            "default", "sm")
    assert obj is not None and obj["status"]["readPercent"] == 30
    return obj


def stored(kube: KubeCluster) -> dict[str, Any]:
    obj = kube.emulator.obj("migrations.storemigration.dev/v1alpha1/storemigrations",
                            "default", "sm")
    assert obj is not None
    return dict(obj["status"])


async def call(handler: Any, kube: KubeCluster, body: dict[str, Any]) -> None:
    patch = kopf.Patch()
    await handler(body=kopf.Body(body), spec=body["spec"], status=body["status"],
                  patch=patch, logger=LOG, meta=body["metadata"])
    await kopf_applies(kube, patch)


async def test_a_change_handler_with_a_stale_body_cannot_undo_the_timers_rollback(
        kube_cluster, tmp_path, monkeypatch):
    readings = tmp_path / "readings.json"
    monkeypatch.setenv("OPERATOR_GATE_READINGS_FILE", str(readings))
    monkeypatch.setattr(kopf, "event", lambda *a, **k: None)
    pod = SwitchPod()
    await pod.start()
    stale = await migration_at_30_percent(kube_cluster, pod)
    # Both handlers were woken with the same body; the timer runs first, Prometheus fails.
    readings.write_text(json.dumps(FAILING))
    await call(handlers.on_timer, kube_cluster, stale)
    assert stored(kube_cluster)["readPercent"] == 0
    assert config_map(kube_cluster)["READ_FROM_POSTGRES_PERCENT"] == "0"
    assert pod.doc["stores"]["graph"]["read_percent"] == 0  # applied live, then read back
    assert stored(kube_cluster)["pods"][0]["confirmed"] is True
    assert env_of(kube_cluster)["READ_FROM_POSTGRES_PERCENT"] is None  # from the ConfigMap
    # The user paused meanwhile; on_change was handed the body from before the rollback.
    await kube_cluster.request("PATCH", f"{SM}/sm", {"spec": {"paused": True}})
    paused = copy.deepcopy(stale)
    paused["spec"]["paused"] = True
    await call(handlers.on_change, kube_cluster, paused)
    status = stored(kube_cluster)
    assert status["readPercent"] == 0 and status["rollbacks"] == 1
    assert status["history"][-1]["type"] == "Rollback"
    # Unpaused with Prometheus healthy again: reads stay on memory (the retry waits).
    readings.write_text(json.dumps(HEALTHY.__dict__))
    await kube_cluster.request("PATCH", f"{SM}/sm", {"spec": {"paused": False}})
    await call(handlers.on_change, kube_cluster, stale)
    assert stored(kube_cluster)["readPercent"] == 0
    assert config_map(kube_cluster)["READ_FROM_POSTGRES_PERCENT"] == "0"
    assert pod.doc["stores"]["graph"]["read_percent"] == 0
    await pod.stop()


async def test_a_status_write_from_an_old_version_is_a_conflict_and_a_retry(kube_cluster):
    obj = await migration_at_30_percent(kube_cluster, SwitchPod())
    await kube_cluster.request("PATCH", f"{SM}/sm/status", {"status": {"reason": "Other"}})
    with pytest.raises(ApiException):
        await asyncio.to_thread(cluster.write_status, "default", "sm", {"readPercent": 0},
                                obj["metadata"]["resourceVersion"])
    with pytest.raises(kopf.TemporaryError, match="changed while it was reconciled"):
        await handlers.write_status(obj, {"readPercent": 0})
    assert stored(kube_cluster)["readPercent"] == 30 and stored(kube_cluster)["reason"] == \
        "Other"
