"""Kubernetes fixtures for the operator's end-to-end tests.

The emulator itself lives in devcluster.kube (the demo runs it too); this module adds the
pytest fixture that serves it with a kubeconfig, and `ClusterSimulator`, which plays the
controllers with outcomes the test chooses (devcluster.controller runs them for real).

`SwitchPod` STANDS IN FOR THE API POD'S GET/PUT /api/admin/switches in these operator
tests (the real API takes them in the demo and tests/e2e): it keeps what was PUT, answers
with it and a fingerprint, and forgets it when its pod is replaced, as a restarted process
boots from its env again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp.web
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
class SwitchPod:
    token: str | None = None
    doc: dict[str, Any] = attrs.field(factory=dict)
    puts: list[str] = attrs.field(factory=list)
    reachable: bool = True
    port: int = 0
    _runner: aiohttp.web.AppRunner | None = None

    def reset(self) -> None:
        self.doc = {"desired_revision": None, "fingerprint": "boot", "stores": {},
                    "last_error": None}

    async def _handle(self, request: aiohttp.web.Request) -> aiohttp.web.Response:
        if not self.reachable:
            return aiohttp.web.Response(status=503, text="unreachable")
        if self.token and request.headers.get("Authorization") != f"Bearer {self.token}":
            return aiohttp.web.Response(status=401, text="bad token")
        if request.method == "PUT":
            body = await request.json()
            self.puts.append(body.get("desired_revision"))
            stores = dict(self.doc.get("stores") or {})
            for scope, patch in body.items():
                if isinstance(patch, dict):
                    for store in (("graph", "agent_task") if scope == "all" else (scope,)):
                        stores[store] = {**stores.get(store, {}), **patch}
            self.doc = {"desired_revision": body.get("desired_revision"),
                        "fingerprint": json.dumps(stores, sort_keys=True)[:16],
                        "stores": stores, "last_error": None}
        return aiohttp.web.json_response(self.doc)

    async def start(self) -> None:
        self.reset()
        app = aiohttp.web.Application()
        app.router.add_route("*", "/api/admin/switches", self._handle)
        self._runner = aiohttp.web.AppRunner(app)
        await self._runner.setup()
        site = aiohttp.web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@attrs.define
class ClusterSimulator:
    """Plays the controllers: rolls Deployments out and finishes Jobs as the test decides.

    `outcomes` maps a Job kind (its `storemigration.dev/job-kind` label) to (succeeded, the
    JSON its pod writes as a termination message).
    """

    cluster: KubeCluster
    outcomes: dict[str, tuple[bool, dict[str, Any]]] = attrs.field(factory=dict)
    finished: list[str] = attrs.field(factory=list)
    pod: SwitchPod | None = None  # with it, each Deployment runs one pod answering switches
    _templates: dict[str, str] = attrs.field(factory=dict)  # Deployment -> its pods' template
    _task: asyncio.Task[None] | None = None

    async def _replace_pod(self, dep: dict[str, Any]) -> None:
        assert self.pod is not None
        meta, template = dep["metadata"], dep["spec"]["template"]
        ns = meta["namespace"]
        for old in self.cluster.emulator.objs("v1/pods", ns):
            if old["metadata"]["name"].startswith(f"{meta['name']}-gen"):
                await self.cluster.request(
                    "DELETE", f"/api/v1/namespaces/{ns}/pods/{old['metadata']['name']}")
        name = f"{meta['name']}-gen{meta['generation']}"
        containers = [{**c, "ports": [{"name": "http", "containerPort": self.pod.port}]}
                      for c in template["spec"]["containers"]]
        await self.cluster.create({
            "apiVersion": "v1", "kind": "Pod", "metadata": {
                "name": name, "namespace": ns, "labels": dict(template["metadata"]["labels"])},
            "spec": {**template["spec"], "containers": containers}})
        await self.cluster.request("PATCH", f"/api/v1/namespaces/{ns}/pods/{name}/status", {
            "status": {"phase": "Running", "podIP": "127.0.0.1",
                       "conditions": [{"type": "Ready", "status": "True"}]}})
        self.pod.reset()

    async def step(self) -> None:
        emu = self.cluster.emulator
        for dep in emu.objs("apps/v1/deployments"):
            meta = dep["metadata"]
            if (dep.get("status") or {}).get("observedGeneration") != meta["generation"]:
                template = json.dumps(dep["spec"]["template"], sort_keys=True)
                if self.pod is not None and self._templates.get(meta["name"]) != template:
                    await self._replace_pod(dep)  # a new template, not replicas or strategy
                    self._templates[meta["name"]] = template
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
