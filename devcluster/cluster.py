"""The whole system on one machine, with no cluster: what the demo and the e2e tests run.

A temporary PostgreSQL with the project's migrations; the Kubernetes API emulator with the
StoreMigration CRD, a Secret and the API Deployment; the API's Service (devcluster.proxy,
the one address every client uses); LocalController playing the Deployment and Job
controllers (each replica a real API process, replaced by the Deployment's strategy on a
pod-template change, Jobs the real scripts); Prometheus scraping every API pod each
second; and the real operator as a subprocess (`python -m storemigration_operator`)
pointed at the emulator by a kubeconfig. The
StoreMigration then runs with seconds where production has hours (`Timing`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import kmock
import yaml
from storemigration_operator.core.spec import STORES
from storemigration_operator.core.switchset import adoption_names, config_map_name

from devcluster.controller import LocalController
from devcluster.kube import KubeCluster, KubeEmulator, write_kubeconfig
from devcluster.postgres import (
    APP_PASSWORD,
    PostgresServer,
    create_migrated_database,
    start_postgres,
    with_database,
)
from devcluster.prometheus import LocalPrometheus, PrometheusMissing
from devcluster.proxy import Service

ROOT = Path(__file__).resolve().parent.parent
NAMESPACE = "default"
DEPLOYMENT, CONTAINER, SECRET, MIGRATION = "api", "api", "api-secrets", "store-migration"
DATABASE = "storemigration"
GROUP_PATH = "/apis/migrations.storemigration.dev/v1alpha1/namespaces/default/storemigrations"
PEERING = "storemigration"
KOPF_PEERING_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "kopfpeerings.kopf.dev"},
    "spec": {"group": "kopf.dev", "scope": "Namespaced", "names": {
        "kind": "KopfPeering", "plural": "kopfpeerings", "singular": "kopfpeering"},
        "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
            "openAPIV3Schema": {"type": "object",
                                "x-kubernetes-preserve-unknown-fields": True}}}]}}
# Without Prometheus (demo only, never the tests) the gates are switched off: these
# readings always pass, and the demo says so loudly.
PASSING_READINGS = {"error_rate": 0.0, "p95_seconds": 0.0, "requests": 1e9}
BASE_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV", "OPERATOR_VERBOSE")


@dataclass(frozen=True)
class Timing:
    """A StoreMigration schedule in seconds instead of days."""

    read_start: int = 10
    read_step: int = 10
    read_interval: str = "10s"
    gate_interval: str = "2s"
    window: str = "20s"
    min_requests: float = 100.0
    p95_ceiling: float = 2.0
    verify_interval: str = "30s"
    primary_hold: str = "10s"
    target_phase: str = "Cleanup"
    retry: bool = True
    replicas: int | None = None  # spec.replicas: API pods from PostgresPrimary on


def migration_spec(timing: Timing, api_url: str, prometheus_url: str | None,
                   workdir: Path) -> dict[str, Any]:
    gates: dict[str, Any] = {
        "interval": timing.gate_interval, "window": timing.window,
        "errorRateCeiling": 0.01, "p95CeilingSeconds": timing.p95_ceiling,
        "minRequests": timing.min_requests}
    if prometheus_url:
        gates["prometheusURL"] = prometheus_url
    return {
        "deployment": DEPLOYMENT, "container": CONTAINER, "stores": ["graph", "agent_task"],
        "targetPhase": timing.target_phase, "apiURL": api_url,
        "snapshotPath": str(workdir / "snapshots" / "final.json"),
        # The Jobs run as local processes: the claim is the host's own directory here; in a
        # cluster PostgresPrimary is refused without a volume (or an s3:// archive).
        "snapshotVolume": {"claimName": "snapshots"},
        "adminTokenSecret": {"name": SECRET, "key": "ADMIN_TOKEN"},
        "primaryHold": timing.primary_hold,
        "readStep": {"start": timing.read_start, "step": timing.read_step,
                     "interval": timing.read_interval},
        "gates": gates,
        # The full verify Job reads PostgreSQL itself and compares in its own process.
        "verify": {"interval": timing.verify_interval, "databaseSecret": {"name": SECRET}},
        # The demo's few hundred records take seconds in small batches, so the live progress
        # (status.backfill from the API's metrics) is seen mid-run.
        "backfill": {"batchSize": 25, "delay": "400ms"},
        "rollback": {"retry": timing.retry},
        "cleanup": {"approved": True, "archive": str(workdir / "archive")},
        **({"replicas": timing.replicas} if timing.replicas else {}),
    }


class LocalCluster:
    """Start with `async with LocalCluster(workdir) as lc:`; everything stops on exit."""

    def __init__(self, workdir: Path, *, require_prometheus: bool = True,
                 on_event: Callable[[str], None] = lambda _m: None) -> None:
        self.workdir = workdir
        self.logs = workdir / "logs"
        self.require_prometheus = require_prometheus
        self.on_event = on_event
        self.admin_token = base64.urlsafe_b64encode(os.urandom(18)).decode()
        self.pg: PostgresServer | None = None
        self.owner_dsn = self.app_dsn = ""
        self.kube: KubeCluster | None = None
        self.api = Service(log_path=self.logs / "service.log")  # the API's stable address
        self.controller: LocalController | None = None
        self.prometheus: LocalPrometheus | None = None
        self.prometheus_missing: str | None = None
        self.gate_file = workdir / "no-gates.json"
        self.operator: subprocess.Popen[bytes] | None = None
        self._stack = contextlib.AsyncExitStack()

    # ---- lifecycle ----
    async def __aenter__(self) -> LocalCluster:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    async def start(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        self.on_event("starting PostgreSQL")
        # its own temp dir: as root PostgreSQL runs as `postgres`, which may not enter ours
        self.pg = await asyncio.to_thread(start_postgres)
        self._stack.callback(self.pg.stop)
        await create_migrated_database(self.pg.dsn, DATABASE)
        self.owner_dsn = with_database(self.pg.dsn, DATABASE)
        self.app_dsn = with_database(self.pg.dsn, DATABASE, "storemigration_app", APP_PASSWORD)

        self.on_event("starting the Kubernetes API emulator")
        emulator = await self._stack.enter_async_context(KubeEmulator())
        server = await self._stack.enter_async_context(kmock.Server(emulator))
        url = str(server.url).rstrip("/")
        self.kube = KubeCluster(emulator, url, write_kubeconfig(self.workdir / "kubeconfig", url))
        await self.kube.apply_file(ROOT / "crds" / "storemigrations.yaml")
        await self.kube.create(KOPF_PEERING_CRD)
        await self.kube.create({"apiVersion": "kopf.dev/v1", "kind": "KopfPeering",
                                "metadata": {"name": PEERING, "namespace": NAMESPACE}})
        await self.kube.create(self._secret())
        await self.kube.create(self._deployment())

        self.on_event(f"starting the API's Service at {self.api.url} (devcluster.proxy)")
        await self.api.start()
        self._stack.push_async_callback(self.api.stop)
        self.on_event("starting the API (the Deployment's pod)")
        controller = LocalController(self.kube, NAMESPACE, DEPLOYMENT, CONTAINER, self.api,
                                     self.workdir, on_event=self.on_event)
        self.controller = controller
        controller.start()
        self._stack.push_async_callback(controller.stop)
        await self.wait_for(lambda: bool(controller.rollouts), 60, "the API to start")

        prom = LocalPrometheus(self.workdir / "prometheus", {"api": controller.addresses})
        try:
            await asyncio.to_thread(prom.start)
            self.prometheus = prom
            self._stack.callback(prom.stop)
            controller.on_pods = lambda addresses: prom.set_targets("api", addresses)
            self.on_event(f"Prometheus scraping the API every 1s at {prom.url}")
        except PrometheusMissing as e:
            if self.require_prometheus:
                raise
            self.prometheus_missing = str(e)
            self.gate_file.write_text(json.dumps(PASSING_READINGS))

        self.on_event("starting the operator (python -m storemigration_operator)")
        self._start_operator()

    def _start_operator(self) -> None:
        assert self.kube is not None
        env = {k: os.environ[k] for k in BASE_ENV if k in os.environ}
        env.update(KUBECONFIG=str(self.kube.kubeconfig), WATCH_NAMESPACE=NAMESPACE,
                   OPERATOR_PEERING=PEERING, OPERATOR_TIMER_INTERVAL="1", OPERATOR_RETRY_DELAY="2",
                   PYTHONPATH=os.pathsep.join(str(ROOT / p) for p in ("api", "operator", "")),
                   PYTHONUNBUFFERED="1")
        if self.prometheus_missing:
            env["OPERATOR_GATE_READINGS_FILE"] = str(self.gate_file)
        log = open(self.logs / "operator.log", "wb")  # noqa: SIM115 - lives with the process
        self.operator = subprocess.Popen(
            [sys.executable, "-m", "storemigration_operator"], env=env, cwd=str(ROOT),
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self._stack.callback(self._stop_operator)

    def _stop_operator(self) -> None:
        proc, self.operator = self.operator, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    async def stop(self) -> None:
        await self._stack.aclose()

    # ---- objects ----
    def _secret(self) -> dict[str, Any]:
        data = {"DATABASE_URL": self.app_dsn, "ADMIN_TOKEN": self.admin_token}
        return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": {"name": SECRET, "namespace": NAMESPACE},
                "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}

    def _deployment(self) -> dict[str, Any]:
        labels = {"app.kubernetes.io/name": "store-migration-api"}
        secret_env = [{"name": k, "valueFrom": {"secretKeyRef": {"name": SECRET, "key": k}}}
                      for k in ("DATABASE_URL", "ADMIN_TOKEN")]
        # As the chart ships it: the migration flags come from the ConfigMap the
        # StoreMigration will own (optional keys: absent until it exists, the API's
        # defaults meanwhile), so no adoption restart is needed.
        switch_env = [{"name": k, "valueFrom": {"configMapKeyRef": {
            "name": config_map_name(MIGRATION), "key": k, "optional": True}}}
            for k in adoption_names(tuple(STORES))]
        return {"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": DEPLOYMENT, "namespace": NAMESPACE, "labels": labels},
                "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                         # as the chart ships it while memory is written; the operator sets
                         # RollingUpdate from PostgresPrimary on
                         "strategy": {"type": "Recreate"}, "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{
                        "name": CONTAINER, "image": "storemigration-api:local",
                        "env": [{"name": "APP_ENV", "value": "development"}, *secret_env,
                                *switch_env]}]}}}}

    async def patch_migration(self, spec: dict[str, Any], name: str = MIGRATION) -> None:
        assert self.kube is not None
        await self.kube.request("PATCH", f"{GROUP_PATH}/{name}", {"spec": spec})

    async def create_migration(self, spec: dict[str, Any], name: str = MIGRATION) -> None:
        assert self.kube is not None
        await self.kube.create({
            "apiVersion": "migrations.storemigration.dev/v1alpha1", "kind": "StoreMigration",
            "metadata": {"name": name, "namespace": NAMESPACE}, "spec": spec})

    def migration(self, name: str = MIGRATION) -> dict[str, Any] | None:
        assert self.kube is not None
        return self.kube.emulator.obj("migrations.storemigration.dev/v1alpha1/storemigrations",
                                      NAMESPACE, name)

    def status(self, name: str = MIGRATION) -> dict[str, Any]:
        obj = self.migration(name)
        return dict((obj or {}).get("status") or {})

    def deployment_env(self) -> dict[str, str | None]:
        assert self.kube is not None
        dep = self.kube.emulator.obj("apps/v1/deployments", NAMESPACE, DEPLOYMENT) or {}
        containers = dep.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
        for c in containers:
            if c.get("name") == CONTAINER:
                return {e["name"]: e.get("value") for e in c.get("env") or []}
        return {}

    def switches_config(self, name: str = MIGRATION) -> dict[str, str]:
        """The data of the ConfigMap the StoreMigration owns (what a restarting pod boots
        with)."""
        assert self.kube is not None
        cm = self.kube.emulator.obj("v1/configmaps", NAMESPACE, f"{name}-switches") or {}
        return dict(cm.get("data") or {})

    def live_at(self, percent: int, name: str = MIGRATION) -> bool:
        """The operator wants reads at `percent`, and every API pod confirmed it."""
        sw = self.status(name).get("switches") or {}
        return bool(sw.get("confirmed")) and \
            sw.get("desired", {}).get("READ_FROM_POSTGRES_PERCENT") == str(percent)

    async def api_switches(self) -> dict[str, Any]:
        """The API process's own GET /api/admin/switches."""
        async with httpx.AsyncClient(timeout=10) as client:
            resp = await client.get(f"{self.api.url}/api/admin/switches",
                                    headers={"Authorization": f"Bearer {self.admin_token}"})
        resp.raise_for_status()
        doc: dict[str, Any] = resp.json()
        return doc

    def events(self) -> list[dict[str, Any]]:
        assert self.kube is not None
        return self.kube.emulator.objs("v1/events", NAMESPACE) + \
            self.kube.emulator.objs("events.k8s.io/v1/events", NAMESPACE)

    def operator_alive(self) -> bool:
        return self.operator is not None and self.operator.poll() is None

    async def wait_for(self, predicate: Callable[[], bool], limit: float, what: str,
                       period: float = 0.2) -> None:
        """Poll `predicate` until true; fail fast if the operator died."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while not predicate():
            if loop.time() > deadline:
                raise TimeoutError(f"timed out after {limit:.0f}s waiting for {what}")
            if self.operator is not None and self.operator.poll() is not None:
                raise RuntimeError(f"the operator exited ({self.operator.returncode}); see "
                                   f"{self.logs / 'operator.log'}")
            await asyncio.sleep(period)


def dump_yaml(doc: Any) -> str:
    return yaml.safe_dump(doc, sort_keys=False)
