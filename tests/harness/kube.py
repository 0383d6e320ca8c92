"""Kubernetes fixtures for the operator's end-to-end tests.

The emulator itself lives in devcluster.kube (the demo runs it too); this module adds the
pytest fixture that serves it with a kubeconfig, and `ClusterSimulator`, which plays the
controllers with outcomes the test chooses (devcluster.controller runs them for real).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import kmock
import pytest
import pytest_asyncio

from devcluster.kube import KubeCluster, KubeEmulator, write_kubeconfig
from devcluster.kube import now_iso as _now


@pytest_asyncio.fixture()
async def kube_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                       ) -> AsyncIterator[KubeCluster]:
    """The emulator on 127.0.0.1 with a kubeconfig pointing at it (KUBECONFIG is set)."""
    async with KubeEmulator() as emulator, kmock.Server(emulator) as server:
        url = str(server.url).rstrip("/")
        config = write_kubeconfig(tmp_path / "kubeconfig", url)
        monkeypatch.setenv("KUBECONFIG", str(config))
        import kubernetes.config.kube_config as kc
        monkeypatch.setattr(kc, "KUBE_CONFIG_DEFAULT_LOCATION", str(config))
        # v1/namespaces is declared for discovery only: kmock 0.8 cannot parse its URLs.
        yield KubeCluster(emulator, url, config)


@attrs.define
class ClusterSimulator:
    """Plays the controllers: rolls Deployments out and finishes Jobs as the test decides.

    `outcomes` maps a Job kind (its `storemigration.dev/job-kind` label) to (succeeded, the
    JSON its pod writes as a termination message).
    """

    cluster: KubeCluster
    outcomes: dict[str, tuple[bool, dict[str, Any]]] = attrs.field(factory=dict)
    finished: list[str] = attrs.field(factory=list)
    _task: asyncio.Task[None] | None = None

    async def step(self) -> None:
        emu = self.cluster.emulator
        for dep in emu.objs("apps/v1/deployments"):
            meta = dep["metadata"]
            if (dep.get("status") or {}).get("observedGeneration") != meta["generation"]:
                replicas = dep["spec"].get("replicas", 1)
                await self.cluster.request(
                    "PATCH", f"/apis/apps/v1/namespaces/{meta['namespace']}/deployments/"
                    f"{meta['name']}/status", {"status": {
                        "observedGeneration": meta["generation"], "replicas": replicas,
                        "updatedReplicas": replicas, "readyReplicas": replicas,
                        "availableReplicas": replicas}})
        for job in emu.objs("batch/v1/jobs"):
            name, ns = job["metadata"]["name"], job["metadata"]["namespace"]
            kind = (job["metadata"].get("labels") or {}).get("storemigration.dev/job-kind", "")
            if name in self.finished or kind not in self.outcomes:
                continue
            ok, message = self.outcomes[kind]
            container = job["spec"]["template"]["spec"]["containers"][0]["name"]
            await self.cluster.create({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": f"{name}-pod", "namespace": ns,
                             "labels": {"job-name": name}},
                "spec": job["spec"]["template"]["spec"]})
            await self.cluster.request("PATCH", f"/api/v1/namespaces/{ns}/pods/{name}-pod/status",
                                       {"status": {"phase": "Succeeded" if ok else "Failed",
                                        "containerStatuses": [{"name": container, "state": {
                                            "terminated": {"exitCode": 0 if ok else 1,
                                                           "message": json.dumps(message)}}}]}})
            cond = "Complete" if ok else "Failed"
            await self.cluster.request(
                "PATCH", f"/apis/batch/v1/namespaces/{ns}/jobs/{name}/status",
                {"status": {"succeeded" if ok else "failed": 1, "completionTime": _now(),
                            "conditions": [{"type": cond, "status": "True",
                                            "lastTransitionTime": _now()}]}})
            self.finished.append(name)

    async def _loop(self, period: float) -> None:
        while True:
            await self.step()
            await asyncio.sleep(period)

    def start(self, period: float = 0.2) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(period))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


__all__ = ["ClusterSimulator", "KubeCluster", "KubeEmulator", "kube_cluster", "write_kubeconfig"]
