"""The rollback script's live path when a pod does not confirm (issue 11 item 4).

The Deployment (the chart's shape: flags from a ConfigMap) lives in the Kubernetes API
emulator with two ready pods: one is a real HTTP server with the admin router and real
stores (tests/migration/admin_server.py), the other's address refuses connections. The
script, without --dry-run, must write the ConfigMap, switch the live pod (read back), name
the other one and exit 1; and refuse to start at all while the ConfigMap belongs to a
StoreMigration unless told that its operator is stopped.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import httpx
import kmock
from app.routers.switches import router as switches_router

from devcluster.kube import KubeCluster, KubeEmulator, now_iso, write_kubeconfig
from devcluster.net import free_port
from tests.harness.postgres import PgDatabase
from tests.migration.admin_server import TOKEN, AdminServer

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "api" / "scripts" / "rollback_postgres_migration.py"
NS, CM, LABELS = "default", "m-switches", {"app": "api"}
FLAGS = ("DUAL_WRITE_MODE", "READ_FROM_POSTGRES_PERCENT", "IN_MEMORY_WRITES",
         "REHYDRATE_ON_START")


async def add_pod(kube: KubeCluster, name: str, port: int) -> None:
    await kube.create({"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"name": name, "namespace": NS, "labels": LABELS},
                       "spec": {"containers": [{"name": "api", "image": "api", "ports": [
                           {"name": "http", "containerPort": port}]}]}})
    await kube.request("PATCH", f"/api/v1/namespaces/{NS}/pods/{name}/status", {"status": {
        "phase": "Running", "podIP": "127.0.0.1",
        "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now_iso()}]}})


async def run_script(kube: KubeCluster, *extra: str) -> tuple[int, dict[str, Any], str]:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    env |= {"KUBECONFIG": str(kube.kubeconfig), "ADMIN_TOKEN": TOKEN}
    proc = await asyncio.create_subprocess_exec(  # the emulator answers from this loop
        sys.executable, str(SCRIPT), "--from-phase", "1", "--deployment", "api",
        "--namespace", NS, "--quiet", *extra, env=env, cwd=str(ROOT),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, json.loads(out.decode()), err.decode()


async def test_a_pod_that_does_not_confirm_is_named_and_fails_the_rollback(
        pg_database: PgDatabase, tmp_path: Path) -> None:
    emulator = KubeEmulator()
    server = AdminServer(pg_database.app_dsn, {"dual_write_mode": True})
    server.app.include_router(switches_router)  # PUT/GET /api/admin/switches, as the API has
    with server:
        async with emulator, kmock.Server(emulator) as http:
            url = str(http.url).rstrip("/")
            kube = KubeCluster(emulator, url, write_kubeconfig(tmp_path / "kubeconfig", url))
            env = [{"name": k, "valueFrom": {"configMapKeyRef": {
                "name": CM, "key": k, "optional": True}}} for k in FLAGS]
            await kube.create({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "api", "namespace": NS},
                "spec": {"replicas": 2, "selector": {"matchLabels": LABELS}, "template": {
                    "metadata": {"labels": LABELS}, "spec": {"containers": [
                        {"name": "api", "image": "api", "env": env}]}}}})
            await kube.create({"apiVersion": "v1", "kind": "ConfigMap",
                               "metadata": {"name": CM, "namespace": NS, "ownerReferences": [
                                   {"apiVersion": "migrations.storemigration.dev/v1alpha1",
                                    "kind": "StoreMigration", "name": "m", "uid": "u1"}]},
                               "data": {"DUAL_WRITE_MODE": "true"}})
            await add_pod(kube, "api-live", server.port)
            await add_pod(kube, "api-gone", free_port())

            # the owner is gone (no StoreMigration "m"): nothing to refuse
            code, summary, err = await run_script(kube)
            assert code == 1, (summary, err)
            assert "api-gone" in summary["error"] and "api-live" not in summary["error"]
            assert summary["ok"] is False
            cm = emulator.obj("v1/configmaps", NS, CM)
            assert cm is not None and cm["data"]["DUAL_WRITE_MODE"] == "false"
            async with httpx.AsyncClient(timeout=10) as client:
                doc = (await client.get(f"{server.url}/api/admin/switches", headers={
                    "Authorization": f"Bearer {TOKEN}"})).json()
            assert {s["dual_write"] for s in doc["stores"].values()} == {False}
            assert doc["desired_revision"].startswith("rollback-from-phase-1-")

            # a StoreMigration still owns the ConfigMap: refused until its operator is stopped
            await kube.apply_file(ROOT / "crds" / "storemigrations.yaml")
            await kube.create({"apiVersion": "migrations.storemigration.dev/v1alpha1",
                               "kind": "StoreMigration", "metadata": {"name": "m",
                                                                      "namespace": NS},
                               "spec": {"deployment": "api"}})
            code, summary, _ = await run_script(kube)
            assert code == 2 and "--operator-stopped" in summary["error"], summary
            code, summary, _ = await run_script(kube, "--operator-stopped")
            assert code == 1 and "api-gone" in summary["error"], summary
            assert summary["owner"] == "m"

