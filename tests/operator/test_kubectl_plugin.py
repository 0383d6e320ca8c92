"""`kubectl storemigration`, run by the real kubectl as a plugin, against the real operator
(kopf's KopfRunner) on the Kubernetes API emulator: every command is a spec patch the
operator acts on. Gate readings come from a JSON file (OPERATOR_GATE_READINGS_FILE): it
STANDS IN FOR PROMETHEUS here, as in test_e2e_operator; Jobs are finished by the harness's
ClusterSimulator with the results a real script writes."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from kopf.testing import KopfRunner

from tests.harness.kube import ClusterSimulator, KubeCluster, SwitchPod

from .test_e2e_operator import KINDS, ROOT, deployment, env_of

pytestmark = pytest.mark.slow
HEALTHY = {"error_rate": 0.001, "p95_seconds": 0.02, "mismatch_ratio": 0.0, "requests": 500}
QUIET = {**HEALTHY, "requests": 1}
FAILING = {**HEALTHY, "error_rate": 0.3}
SPEC = {"deployment": "api", "targetPhase": "PostgresPrimary",
        "readStep": {"start": 50, "step": 50, "interval": "1h"},
        "gates": {"interval": "1s", "window": "1h", "minRequests": 10},
        "verify": {"interval": "1h"}, "primaryHold": "1h", "rollback": {"maxRetries": 5},
        "snapshotVolume": {"claimName": "snapshots"}}


def plugin_env(kube: KubeCluster, home: Path) -> dict[str, str]:
    bin_dir = str(Path(sys.executable).parent)  # the venv's bin holds kubectl-storemigration
    env = {k: os.environ[k] for k in ("PATH", "LANG") if k in os.environ}
    env.update(PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", HOME=str(home),
               KUBECONFIG=str(kube.kubeconfig))
    return env


async def kubectl(env: dict[str, str], *args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        "kubectl", "storemigration", *args, env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


def obj(kube: KubeCluster) -> dict[str, Any]:
    found = kube.emulator.obj("migrations.storemigration.dev/v1alpha1/storemigrations",
                              "default", "move")
    assert found is not None
    return found


def cond(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions", []) if c["type"] == type_), {})


async def until(kube: KubeCluster, pred: Any, what: str, limit: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        status = obj(kube).get("status") or {}
        if pred(status):
            return status
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}: {json.dumps(obj(kube).get('status'))}")


def evaluated_since_last_move(status: dict[str, Any]) -> bool:
    interval = status.get("gateInterval") or {}
    return interval.get("passed", 0) >= 1 and "notPassed" not in interval


async def test_the_plugin_drives_a_migration_to_complete(kube_cluster, tmp_path, monkeypatch):
    assert shutil.which("kubectl-storemigration", path=str(Path(sys.executable).parent)), \
        "kubectl-storemigration is not installed: run bash scripts/bootstrap.sh"
    readings = tmp_path / "readings.json"
    readings.write_text(json.dumps(HEALTHY))
    monkeypatch.setenv("OPERATOR_GATE_READINGS_FILE", str(readings))
    env = plugin_env(kube_cluster, tmp_path)
    await kube_cluster.apply_file(ROOT / "crds" / "storemigrations.yaml")
    await kube_cluster.create(deployment())
    pod = SwitchPod()
    await pod.start()
    sim = ClusterSimulator(kube_cluster, {k: (True, {"mismatch_ratio": 0.0, "checked": 42,
                                                     "passed": True, "refused": 0})
                                          for k in KINDS}, pod=pod)
    sim.start(0.1)
    args = ["run", "-m", "storemigration_operator.handlers", "--standalone",
            "--namespace", "default"]
    try:
        with KopfRunner(args) as runner:
            await kube_cluster.create({
                "apiVersion": "migrations.storemigration.dev/v1alpha1",
                "kind": "StoreMigration", "metadata": {"name": "move", "namespace": "default"},
                "spec": SPEC})
            await until(kube_cluster, lambda s: s.get("readPercent") == 50
                        and evaluated_since_last_move(s), "reads at 50% with a passed gate")

            code, out = await kubectl(env, "get", "move")
            assert code == 0, out
            assert "Phase:       ReadSwitchover, reads 50% on PostgreSQL" in out
            assert "errorRate" in out and "PromQL: sum(rate(storemigration_store_operations" \
                in out and "[1h]" in out
            assert "backfill" in out and "42 checked" in out and "Promote now: allowed" in out
            code, out = await kubectl(env, "get", "move", "-o", "json")
            view = json.loads(out)
            assert (code, view["phase"], view["readPercent"]) == (0, "ReadSwitchover", 50)
            assert [c["gate"] for c in view["gates"]["checks"]] == [
                "errorRate", "p95", "mismatchRatio", "requests"]

            # pause, resume
            code, out = await kubectl(env, "pause", "move")
            assert code == 0 and obj(kube_cluster)["spec"]["paused"] is True, out
            await until(kube_cluster, lambda s: cond(s, "Paused").get("status") == "True",
                        "Paused")
            code, out = await kubectl(env, "resume", "move", "-o", "json")
            assert code == 0 and json.loads(out)["patch"] == {
                "spec": {"paused": False, "abort": False}}
            await until(kube_cluster, lambda s: cond(s, "Paused").get("status") == "False",
                        "not Paused")

            # promote refused: an evaluation of this interval did not pass
            readings.write_text(json.dumps(QUIET))
            await until(kube_cluster, lambda s: (s.get("lastGate") or {}).get("result")
                        == "Inconclusive", "an Inconclusive evaluation")
            readings.write_text(json.dumps(HEALTHY))
            await until(kube_cluster, lambda s: s["lastGate"]["result"] == "Successful",
                        "a successful evaluation again")
            code, out = await kubectl(env, "promote", "move")
            assert code == 1, out
            assert "promote refused: the gate evaluation at" in out
            assert "was Inconclusive: traffic 1 below minimum 10" in out
            assert "promoteToken" not in obj(kube_cluster)["spec"]
            assert obj(kube_cluster)["status"]["readPercent"] == 50

            # abort: reads to 0% and hold; resume
            code, out = await kubectl(env, "abort", "move")
            assert code == 0, out
            await until(kube_cluster, lambda s: s["readPercent"] == 0
                        and cond(s, "Paused").get("reason") == "Aborted", "aborted at 0%")
            assert obj(kube_cluster)["status"]["history"][-1]["type"] == "Abort"
            code, out = await kubectl(env, "resume", "move")
            assert code == 0, out
            await until(kube_cluster, lambda s: cond(s, "Paused").get("status") == "False"
                        and evaluated_since_last_move(s), "resumed, a clean interval")
            assert pod.doc["stores"]["graph"]["read_percent"] == 0  # live on the pod

            # promote allowed: the next step now instead of in an hour
            code, out = await kubectl(env, "promote", "move")
            assert code == 0, out
            assert "promote accepted: the next read step is taken now" in out
            assert obj(kube_cluster)["status"]["readPercent"] == 50
            assert obj(kube_cluster)["status"]["promotion"]["token"] == \
                obj(kube_cluster)["spec"]["promoteToken"]

            # status: 2 on timeout, 1 on a rollback (Degraded)
            code, out = await kubectl(env, "status", "move", "--until", "Complete",
                                      "--timeout", "3s")
            assert code == 2 and "timed out: Complete not reached within 3s" in out, out
            readings.write_text(json.dumps(FAILING))
            await until(kube_cluster, lambda s: s["readPercent"] == 0, "the rollback")
            readings.write_text(json.dumps(HEALTHY))  # before the next evaluation, 1s later
            code, out = await kubectl(env, "status", "move", "--until", "Complete",
                                      "--timeout", "30s", "-o", "json")
            result = json.loads(out)
            assert code == 1 and result["result"] == "Degraded", out
            assert result["degraded"]["reason"] == "RolledBack"

            # retry: a new retryToken the operator acknowledges
            code, out = await kubectl(env, "retry", "move")
            assert code == 0, out
            token = obj(kube_cluster)["spec"]["retryToken"]
            await until(kube_cluster, lambda s: s.get("retryToken") == token
                        and evaluated_since_last_move(s), "the retry acknowledged")

            # promote to 100%, into PostgresPrimary, then approve-cleanup and promote again
            for percent in (50, 100):
                code, out = await kubectl(env, "promote", "move")
                assert code == 0, out
                await until(kube_cluster, lambda s, p=percent: s["readPercent"] == p
                            and evaluated_since_last_move(s), f"reads at {percent}%")
            code, out = await kubectl(env, "promote", "move")
            assert code == 0 and "promotion into PostgresPrimary begins now" in out, out
            await until(kube_cluster, lambda s: s["phase"] == "PostgresPrimary"
                        and evaluated_since_last_move(s), "PostgresPrimary", limit=60)
            code, out = await kubectl(env, "promote", "move")
            assert code == 1 and "approve-cleanup" in out, out
            code, out = await kubectl(env, "approve-cleanup", "move")
            assert code == 0, out
            spec = obj(kube_cluster)["spec"]
            assert spec["cleanup"] == {"approved": True} and spec["targetPhase"] == "Cleanup"
            await until(kube_cluster, lambda s: s.get("observedGeneration") ==
                        obj(kube_cluster)["metadata"]["generation"], "the approval seen")
            code, out = await kubectl(env, "promote", "move")
            assert code == 0 and "without the rest of primaryHold" in out, out
            code, out = await kubectl(env, "status", "move", "--until", "Complete",
                                      "--timeout", "60s")
            assert code == 0 and "reached Complete" in out, out
            code, out = await kubectl(env, "abort", "move")
            assert code == 1 and "cannot be undone" in out, out
    finally:
        await sim.stop()
        await pod.stop()
    assert runner.exit_code == 0, runner.output
    assert env_of(kube_cluster) == {"DATABASE_URL": "postgresql://db/app",
                                    "STORE_BACKEND": "postgres"}
    history = [(h["type"], h.get("to")) for h in obj(kube_cluster)["status"]["history"]]
    assert ("Abort", 0) in history and ("Rollback", 0) in history
    assert ("Phase", "Complete") in history


async def test_plugin_errors_and_usage_exit_3(kube_cluster, tmp_path):
    env = plugin_env(kube_cluster, tmp_path)
    code, out = await kubectl(env, "get", "nothing-here")
    assert code == 3 and "storemigration 'nothing-here' not found in namespace 'default'" in out
    code, out = await kubectl(env, "pause", "nothing-here", "-o", "json")
    assert code == 3 and "not found" in json.loads(out)["error"]
    code, out = await kubectl(env, "status", "x", "--timeout", "soon")
    assert code == 3 and "not a duration" in out


async def test_get_watch_redraws_in_place_on_a_terminal_and_appends_changes_otherwise(
        kube_cluster, tmp_path):
    env = plugin_env(kube_cluster, tmp_path)
    await kube_cluster.apply_file(ROOT / "crds" / "storemigrations.yaml")
    await kube_cluster.create({"apiVersion": "migrations.storemigration.dev/v1alpha1",
                               "kind": "StoreMigration",
                               "metadata": {"name": "move", "namespace": "default"},
                               "spec": SPEC})
    sm = "/apis/migrations.storemigration.dev/v1alpha1/namespaces/default/storemigrations"
    # a terminal: `script` gives the plugin a pseudo-TTY, as a person's shell would
    proc = await asyncio.create_subprocess_exec(
        "script", "-qfec", "kubectl storemigration get move --watch --interval 1s",
        "/dev/null", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    await asyncio.sleep(6)
    await kube_cluster.request("PATCH", f"{sm}/move/status",
                               {"status": {"phase": "DualWrite", "reason": "WaitingForJob"}})
    await asyncio.sleep(3)
    proc.terminate()
    tty, _ = await proc.communicate()
    screens = tty.decode(errors="replace").split("\x1b[H\x1b[2J")
    assert len(screens) >= 4, tty  # redrawn every second, in place
    assert "Phase:       Preparation" in screens[1] and "Phase:       DualWrite" in screens[-1]
    # a pipe: a new view only when the object changed
    proc = await asyncio.create_subprocess_exec(
        "kubectl", "storemigration", "get", "move", "--watch", "--interval", "1s", "-o", "json",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    await asyncio.sleep(5)
    await kube_cluster.request("PATCH", f"{sm}/move/status", {"status": {"readPercent": 10}})
    await asyncio.sleep(3)
    proc.terminate()
    piped, _ = await proc.communicate()
    views = [json.loads(line) for line in piped.decode().splitlines()]
    assert [v["readPercent"] for v in views] == [0, 10], piped
