"""The real operator (kopf's KopfRunner) against the kmock-based API emulator.

Gate readings come from a JSON file through OPERATOR_GATE_READINGS_FILE: it STANDS IN FOR
PROMETHEUS in this test (the real-Prometheus end-to-end test is a separate step). Jobs are
finished by the harness's ClusterSimulator, which writes Job status and a Pod whose
termination message carries the script's JSON result, as a real kubelet would.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from kopf.testing import KopfRunner

from tests.harness.kube import ClusterSimulator, KubeCluster, SwitchPod

os.environ.setdefault("OPERATOR_TIMER_INTERVAL", "0.5")
ROOT = Path(__file__).resolve().parents[2]
SM = "/apis/migrations.storemigration.dev/v1alpha1/namespaces/default/storemigrations"
KINDS = ("backfill", "verify", "verify-full", "snapshot", "rehydrate", "archive")
pytestmark = pytest.mark.slow


def deployment() -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "api", "namespace": "default"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "api"}}, "template": {
                "metadata": {"labels": {"app": "api"}},
                "spec": {"containers": [{"name": "api", "image": "storemigration-api:test",
                                         "env": [{"name": "DATABASE_URL",
                                                  "value": "postgresql://db/app"}]}]}}}}


def migration(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "migrations.storemigration.dev/v1alpha1", "kind": "StoreMigration",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"deployment": "api", "targetPhase": "PostgresPrimary",
                     "readStep": {"start": 50, "step": 50, "interval": "2s"},
                     "gates": {"interval": "1s", "minRequests": 10},
                     "verify": {"interval": "3s"}, **spec}}


async def wait_for(cluster: KubeCluster, name: str, pred: Any, limit: float = 20) -> dict:
    deadline = time.monotonic() + limit
    obj: dict = {}
    while time.monotonic() < deadline:
        obj = cluster.emulator.obj("migrations.storemigration.dev/v1alpha1/storemigrations",
                                   "default", name) or {}
        if pred(obj.get("status") or {}):
            return obj
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out; status={json.dumps(obj.get('status'), indent=1)}")


def condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions") or [] if c["type"] == type_), {})


def degraded(status: dict[str, Any]) -> str | None:
    return condition(status, "Degraded").get("reason")


def job_kinds(cluster: KubeCluster) -> set[str]:
    return {j["metadata"]["labels"]["storemigration.dev/job-kind"]
            for j in cluster.emulator.objs("batch/v1/jobs")}


def env_of(cluster: KubeCluster) -> dict[str, str]:
    dep = cluster.emulator.obj("apps/v1/deployments", "default", "api")
    assert dep is not None
    return {e["name"]: e.get("value") for e in dep["spec"]["template"]["spec"]["containers"][0]
            .get("env", [])}


async def test_operator_drives_the_migration_to_postgres_primary(kube_cluster, tmp_path,
                                                                 monkeypatch):
    readings = tmp_path / "readings.json"
    readings.write_text(json.dumps({"error_rate": 0.001, "p95_seconds": 0.02,
                                    "mismatch_ratio": 0.0, "requests": 500}))
    monkeypatch.setenv("OPERATOR_GATE_READINGS_FILE", str(readings))
    await kube_cluster.apply_file(ROOT / "crds" / "storemigrations.yaml")
    await kube_cluster.create(deployment())
    pod = SwitchPod()
    await pod.start()
    sim = ClusterSimulator(kube_cluster, {k: (True, {"mismatch_ratio": 0.0, "checked": 42})
                                          for k in KINDS}, pod=pod)
    sim.start(0.1)
    args = ["run", "-m", "storemigration_operator.handlers", "--standalone",
            "--namespace", "default"]
    try:
        with KopfRunner(args) as runner:
            with pytest.raises(RuntimeError, match="422"):
                await kube_cluster.create(migration("bad", readStep={"start": 150}))
            await kube_cluster.create(migration("move"))
            await wait_for(kube_cluster, "move", lambda s: s.get("phase") == "DualWrite")
            await wait_for(kube_cluster, "move", lambda s: (s.get("switches") or {}).get(
                "confirmed") and s["switches"]["desired"].get("DUAL_WRITE_MODE") == "true")
            assert pod.doc["stores"]["graph"]["dual_write"] is True
            obj = await wait_for(kube_cluster, "move",
                                 lambda s: s.get("phase") == "ReadSwitchover")
            assert obj["status"]["readPercent"] == 50
            # No snapshot volume and no s3:// archive: promotion is refused at 100%, the
            # Degraded condition says why, memory writes stay on; a volume lets it go on.
            obj = await wait_for(kube_cluster, "move", lambda s: degraded(s) ==
                                 "SnapshotNotDurable")
            assert obj["status"]["phase"] == "ReadSwitchover"
            assert obj["status"]["readPercent"] == 100
            assert "spec.snapshotVolume" in condition(obj["status"], "Degraded")["message"]
            assert "snapshot" not in job_kinds(kube_cluster)
            cm = kube_cluster.emulator.obj("v1/configmaps", "default", "move-switches")
            assert cm["data"]["IN_MEMORY_WRITES"] == "true"
            await kube_cluster.request("PATCH", f"{SM}/move",
                                       {"spec": {"snapshotVolume": {"claimName": "snaps"}}})
            obj = await wait_for(kube_cluster, "move",
                                 lambda s: s.get("phase") == "PostgresPrimary")
            assert degraded(obj["status"]) == "AsExpected"
            proc = await asyncio.create_subprocess_exec(
                "kubectl", "--kubeconfig", str(kube_cluster.kubeconfig), "get",
                "storemigrations", stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE)
            out, err = await proc.communicate()
            obj = await wait_for(kube_cluster, "move", lambda s: (s.get("switches") or {}).get(
                "confirmed") and s["switches"]["desired"].get("IN_MEMORY_WRITES") == "false")
            deadline = time.monotonic() + 20
            while (dep := kube_cluster.emulator.obj("apps/v1/deployments", "default", "api")
                   )["spec"].get("strategy", {}).get("type") != "RollingUpdate":
                assert time.monotonic() < deadline, dep["spec"]
                await asyncio.sleep(0.1)
            obj = await wait_for(kube_cluster, "move", lambda s: s.get("phase") ==
                                 "PostgresPrimary")
    finally:
        await sim.stop()
        await pod.stop()
    assert runner.exit_code == 0, runner.output
    # One env patch, the adoption in Preparation: every flag reads the ConfigMap since;
    # once every pod confirmed PostgresPrimary, the strategy (no new pod template).
    assert dep["metadata"]["generation"] == 3
    assert obj["status"]["adoption"]["phase"] == "Preparation"
    assert dep["spec"]["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {
        "maxUnavailable": 0, "maxSurge": 1}} and dep["spec"]["replicas"] == 1
    assert env_of(kube_cluster) == {"DATABASE_URL": "postgresql://db/app",
                                    "DUAL_WRITE_MODE": None, "IN_MEMORY_WRITES": None,
                                    "READ_FROM_POSTGRES_PERCENT": None,
                                    "REHYDRATE_ON_START": None}
    cm = kube_cluster.emulator.obj("v1/configmaps", "default", "move-switches")
    assert cm["data"] == {"DUAL_WRITE_MODE": "true", "READ_FROM_POSTGRES_PERCENT": "100",
                          "IN_MEMORY_WRITES": "false"}
    assert cm["metadata"]["ownerReferences"][0]["name"] == "move"
    assert pod.doc["stores"]["graph"] == {"dual_write": True, "read_percent": 100,
                                          "memory_writes": False}
    assert pod.puts[-1] == obj["status"]["switches"]["revision"]
    assert [p["name"] for p in obj["status"]["pods"]] == ["api-gen2"]
    assert obj["status"]["pods"][0]["confirmed"] is True
    status = obj["status"]
    assert [h["to"] for h in status["history"] if h["type"] == "Step"] == [50, 100]
    assert {"backfill", "verify", "verify-full", "snapshot"} <= job_kinds(kube_cluster)
    snapshot = next(j for j in kube_cluster.emulator.objs("batch/v1/jobs") if j["metadata"][
        "labels"]["storemigration.dev/job-kind"] == "snapshot")
    assert snapshot["spec"]["template"]["spec"]["volumes"][0]["persistentVolumeClaim"] == \
        {"claimName": "snaps"}
    reasons = {e.get("reason") for e in kube_cluster.emulator.objs("v1/events")}
    assert "SnapshotNotDurable" in reasons
    assert status["jobs"]["verify"]["result"]["checked"] == 42
    assert status["observedGeneration"] == 2  # the spec once more: the snapshotVolume patch
    header, row = out.decode().splitlines()[:2]
    assert header.split() == ["NAME", "PHASE", "READ%", "ERRORRATE", "P95", "REASON", "AGE"]
    assert row.split()[:5] == ["move", "PostgresPrimary", "100", "0.001", "0.02"], err
