"""The real operator process (`python -m storemigration_operator`) killed with SIGKILL in
the middle of a step, against the Kubernetes API emulator: the step's ConfigMap is written
and its PUT is in flight on the API pod (held there, a pod that answers slowly) when the
process dies. Started again, the operator neither repeats nor skips the step: one history
entry for it, the same revision the killed process PUT, and the ConfigMap and the pod agree.

Twice in one run: at the read step 50% -> 100%, the held PUT is dropped (the pod never
applied it: the restarted operator PUTs it again); at the step into PostgresPrimary, the
held PUT is applied after the kill (the restarted operator finds the pod ahead of status
and takes the same decision instead of undoing it). Gate readings come from a file
(OPERATOR_GATE_READINGS_FILE STANDS IN FOR PROMETHEUS here), Jobs are finished by the
harness's ClusterSimulator, and SwitchPod stands in for the API pod's switches endpoint.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp.web
import attrs
import pytest

from tests.harness.kube import ClusterSimulator, KubeCluster, SwitchPod

from .test_e2e_operator import KINDS, ROOT, deployment, migration, wait_for

pytestmark = pytest.mark.slow
CM = "move-switches"


@attrs.define
class SlowPod(SwitchPod):
    """A SwitchPod whose next PUT waits for `release` once `hold` is set; `apply` says
    whether the held PUT then takes effect (False: the pod dropped it)."""

    hold: bool = False
    held: asyncio.Event = attrs.field(factory=asyncio.Event)
    release: asyncio.Event = attrs.field(factory=asyncio.Event)
    apply: bool = True
    held_body: dict[str, Any] | None = None

    async def _handle(self, request: aiohttp.web.Request) -> aiohttp.web.Response:
        if request.method == "PUT" and self.hold:
            self.hold = False
            self.held_body = await request.json()
            self.held.set()
            await self.release.wait()
            if not self.apply:
                return aiohttp.web.Response(status=503, text="dropped")
        return await super()._handle(request)


class Operator:
    """The operator as a process of its own, so it can be SIGKILLed."""

    def __init__(self, kubeconfig: Path, readings: Path, log: Path) -> None:
        self.env = {**os.environ, "KUBECONFIG": str(kubeconfig), "WATCH_NAMESPACE": "default",
                    "OPERATOR_TIMER_INTERVAL": "0.5", "OPERATOR_RETRY_DELAY": "1",
                    "OPERATOR_GATE_READINGS_FILE": str(readings), "PYTHONUNBUFFERED": "1",
                    "PYTHONPATH": os.pathsep.join(str(ROOT / p) for p in ("api", "operator",
                                                                         ""))}
        self.env.pop("OPERATOR_PEERING", None)
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "storemigration_operator"],
                                         env=self.env, cwd=ROOT, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def history(cluster: KubeCluster) -> list[dict[str, Any]]:
    obj = cluster.emulator.obj("migrations.storemigration.dev/v1alpha1/storemigrations",
                               "default", "move") or {}
    return list((obj.get("status") or {}).get("history") or [])


def config(cluster: KubeCluster) -> dict[str, str]:
    return dict((cluster.emulator.obj("v1/configmaps", "default", CM) or {}).get("data") or {})


async def kill_mid_step(cluster: KubeCluster, op: Operator, pod: SlowPod, apply: bool,
                        key: str, value: str) -> str:
    """Hold the next PUT; once it arrives (the ConfigMap already says `key`=`value`), kill
    the operator, let the pod drop or apply the PUT, start the operator again. Returns the
    revision the killed operator PUT."""
    pod.apply, pod.hold = apply, True
    await asyncio.wait_for(pod.held.wait(), 60)
    assert config(cluster)[key] == value  # move (a) done, move (b) in flight
    before = history(cluster)
    op.kill()
    pod.release.set()
    assert pod.held_body is not None
    revision = str(pod.held_body["desired_revision"])
    await asyncio.sleep(1.0)
    assert history(cluster) == before  # the killed process wrote no status
    pod.held.clear()
    pod.release.clear()
    op.start()
    return revision


async def test_an_operator_killed_mid_step_neither_repeats_nor_skips_it(
        kube_cluster: KubeCluster, tmp_path: Path) -> None:
    started = time.monotonic()
    readings = tmp_path / "readings.json"
    readings.write_text(json.dumps({"error_rate": 0.001, "p95_seconds": 0.02,
                                    "mismatch_ratio": 0.0, "requests": 500}))
    await kube_cluster.apply_file(ROOT / "crds" / "storemigrations.yaml")
    await kube_cluster.create(deployment())
    pod = SlowPod()
    await pod.start()
    sim = ClusterSimulator(kube_cluster, {k: (True, {"mismatch_ratio": 0.0, "checked": 42})
                                          for k in KINDS}, pod=pod)
    sim.start(0.1)
    op = Operator(kube_cluster.kubeconfig, readings, tmp_path / "operator.log")
    op.start()
    try:
        await kube_cluster.create(migration("move", snapshotVolume={"claimName": "snapshots"}))
        await wait_for(kube_cluster, "move", lambda s: s.get("readPercent") == 50 and (
            s.get("switches") or {}).get("confirmed"), limit=60)

        # 1. Killed with the 50% -> 100% PUT in flight; the pod drops it.
        step = await kill_mid_step(kube_cluster, op, pod, False,
                                   "READ_FROM_POSTGRES_PERCENT", "100")
        assert pod.doc["stores"]["graph"]["read_percent"] == 50  # not applied
        obj = await wait_for(kube_cluster, "move", lambda s: s.get("readPercent") == 100 and (
            s.get("switches") or {}).get("confirmed"), limit=60)
        status = obj["status"]
        assert [h["to"] for h in status["history"] if h["type"] == "Step"] == [50, 100]
        assert status["switches"]["revision"] == step == pod.doc["desired_revision"]
        assert pod.doc["stores"]["graph"]["read_percent"] == 100
        assert config(kube_cluster)["READ_FROM_POSTGRES_PERCENT"] == "100"

        # 2. Killed with the PostgresPrimary PUT in flight; the pod applies it meanwhile.
        puts = len(pod.puts)
        step = await kill_mid_step(kube_cluster, op, pod, True, "IN_MEMORY_WRITES", "false")
        obj = await wait_for(kube_cluster, "move", lambda s: s.get("phase") ==
                             "PostgresPrimary" and (s.get("switches") or {}).get("confirmed"),
                             limit=60)
        status = obj["status"]
        entered = [h for h in status["history"] if h["type"] == "Phase"
                   and h["to"] == "PostgresPrimary"]
        assert len(entered) == 1
        assert status["switches"]["revision"] == step == pod.doc["desired_revision"]
        assert set(pod.puts[puts:]) == {step}  # never undone on the pod, never a new step
        assert [h["to"] for h in status["history"] if h["type"] == "Step"] == [50, 100]
    finally:
        op.stop()
        await sim.stop()
        await pod.stop()
    # The ConfigMap and every pod agree, and status says so pod by pod.
    cm = config(kube_cluster)
    assert cm == {"DUAL_WRITE_MODE": "true", "READ_FROM_POSTGRES_PERCENT": "100",
                  "IN_MEMORY_WRITES": "false"}
    assert pod.doc["stores"]["graph"] == {"dual_write": True, "read_percent": 100,
                                          "memory_writes": False}
    assert pod.doc["stores"]["agent_task"] == pod.doc["stores"]["graph"]
    assert [p["confirmed"] for p in status["pods"]] == [True]
    print(f"wall {time.monotonic() - started:.1f}s")
