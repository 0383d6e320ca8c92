"""Issue 16 item 6: a `helm upgrade` in the middle of a migration cannot move a switch.

The real helm renders the upgrade with `--dry-run=server`, so the chart's `lookup` reads the
live objects from the Kubernetes API emulator (devcluster.kube; no real API server can run
here). The live state is what the operator leaves mid-migration: the switches ConfigMap at
ReadSwitchover values, or after Cleanup a Deployment with STORE_BACKEND=postgres and no
flags. The upgrade is given values that try to move every switch back.

What helm then sends is a three-way strategic merge of (last release, this render, live).
The emulator cannot compute that merge, so `env_after_upgrade` does it for the env list the
way Kubernetes does for a list merged by `name`; the test shows that merge would reset the
switches if the chart rendered them as literals (the old chart), and leaves them with the
chart as it is.
"""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path
from typing import Any

import kmock
import pytest
import yaml
from storemigration_operator.cluster import observe_deployment
from storemigration_operator.core.spec import STORES
from storemigration_operator.core.switchset import adoption_names, config_map_name

from devcluster.kube import KubeCluster, KubeEmulator, write_kubeconfig
from tests.chart.render import CHART, Docs, find, helm_binary, template

NS = "default"
RELEASE = "t"
MIGRATION = "t-store-migration"  # the release's full name: what exampleMigration is called
CM = config_map_name(MIGRATION)
OWNED = {"STORE_BACKEND", *adoption_names(tuple(STORES)), "GRAPH_STORE_BACKEND",
         "AGENT_TASK_STORE_BACKEND",
         *(f"{p}{f}" for p in ("GRAPH_STORE_", "AGENT_TASK_STORE_")
           for f in ("DUAL_WRITE_MODE", "READ_FROM_POSTGRES_PERCENT", "IN_MEMORY_WRITES"))}
# Values that try to move every switch back to the start of a migration.
RESET = ["--set", "api.migration.dualWriteMode=false",
         "--set", "api.migration.readFromPostgresPercent=0",
         "--set", "api.migration.inMemoryWrites=true",
         "--set", "api.env.storeBackend=memory",
         "--set", "image.tag=0.2.0"]
MID_MIGRATION = {"DUAL_WRITE_MODE": "true", "READ_FROM_POSTGRES_PERCENT": "50",
                 "IN_MEMORY_WRITES": "true"}


def env_after_upgrade(original: list[dict[str, Any]], modified: list[dict[str, Any]],
                      current: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The live env after helm's three-way strategic merge (entries merged by name): what
    the last release had and this render drops is deleted; what this render has replaces
    the live entry; live entries neither mentions stay."""
    result = {e["name"]: e for e in current}
    rendered = {e["name"]: e for e in modified}
    for e in original:
        if e["name"] not in rendered:
            result.pop(e["name"], None)
    for name, e in rendered.items():
        merged = {k: v for k, v in result.get(name, {}).items() if k not in ("value",
                                                                              "valueFrom")}
        result[name] = {**merged, **e}
    return result


def api_env(doc: dict[str, Any]) -> list[dict[str, Any]]:
    [c] = [c for c in doc["spec"]["template"]["spec"]["containers"] if c["name"] == "api"]
    return list(c.get("env") or [])


def switch_env(env: list[dict[str, Any]] | dict[str, dict[str, Any]]) -> dict[str, Any]:
    entries = env.values() if isinstance(env, dict) else env
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in entries
            if e["name"] in OWNED}


async def helm_against(kubeconfig: Path, *extra: str) -> Docs:
    helm = helm_binary()
    if helm is None:
        pytest.skip("helm not installed: run scripts/bootstrap.sh (installs .tools/bin/helm)")
    # asyncio's subprocess: the emulator serves helm's lookups from this same event loop
    proc = await asyncio.create_subprocess_exec(
        helm, "template", RELEASE, str(CHART), "--namespace", NS, "--dry-run=server",
        "--kubeconfig", str(kubeconfig), *extra,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    return [d for d in yaml.safe_load_all(out.decode()) if d]


def chart_objects_setting_switches(docs: Docs) -> list[str]:
    """Every rendered ConfigMap that carries a switch, and every pod template outside the
    API Deployment that sets one: the objects a merge could move a switch with."""
    found = []
    for d in docs:
        name = f"{d['kind']}/{d['metadata']['name']}"
        if d["kind"] == "ConfigMap" and OWNED & set(d.get("data") or {}):
            found.append(name)
        spec = d.get("spec", {})
        pod = spec.get("template", {}).get("spec") or \
            spec.get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec") or {}
        if d["kind"] == "Deployment" and name.endswith("-api"):
            continue
        for c in pod.get("containers", []):
            if OWNED & {e["name"] for e in c.get("env") or []}:
                found.append(name)
    return found


@pytest.fixture
async def cluster(tmp_path: Path) -> Any:
    emulator = KubeEmulator()
    async with emulator, kmock.Server(emulator) as server:
        url = str(server.url).rstrip("/")
        yield KubeCluster(emulator, url, write_kubeconfig(tmp_path / "kubeconfig", url))


async def install(kube: KubeCluster, docs: Docs, deployment: dict[str, Any],
                  switches: dict[str, str] | None) -> None:
    """The live objects after install plus the operator's work (`switches`: the
    ConfigMap's data the operator wrote; None: no ConfigMap, as after Cleanup)."""
    live = copy.deepcopy(deployment)
    live["metadata"]["namespace"] = NS
    await kube.create(live)
    if switches is not None:
        cm = copy.deepcopy(find(docs, "ConfigMap", "-switches"))
        cm["metadata"]["namespace"] = NS
        cm["data"] = dict(switches)
        await kube.create(cm)


async def test_an_upgrade_mid_migration_moves_no_switch(cluster: KubeCluster) -> None:
    installed = template(include_crds=False)
    first = find(installed, "Deployment", "-api")
    assert switch_env(api_env(first))["DUAL_WRITE_MODE"] == {
        "configMapKeyRef": {"name": CM, "key": "DUAL_WRITE_MODE", "optional": True}}
    await install(cluster, installed, first, MID_MIGRATION)

    upgrade = await helm_against(cluster.kubeconfig, *RESET)
    assert chart_objects_setting_switches(upgrade) == []
    assert [d for d in upgrade if d["metadata"]["name"] == CM] == []  # not rendered: kept
    rendered = find(upgrade, "Deployment", "-api")
    live = cluster.emulator.obj("apps/v1/deployments", NS, first["metadata"]["name"])
    assert live is not None
    merged = env_after_upgrade(api_env(first), api_env(rendered), api_env(live))
    assert switch_env(merged) == switch_env(api_env(live))
    assert rendered["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":0.2.0")
    cm = cluster.emulator.obj("v1/configmaps", NS, CM)
    assert cm is not None and cm["data"] == MID_MIGRATION
    # a pre-install hook: outside the release's manifest, so no upgrade or rollback applies it
    hook = find(installed, "ConfigMap", "-switches")["metadata"]["annotations"]
    assert hook["helm.sh/hook"] == "pre-install" and hook["helm.sh/resource-policy"] == "keep"

    # the same merge with the old chart's literals would have reset the switches
    literal = [{"name": k, "value": v} for k, v in
               {"DUAL_WRITE_MODE": "false", "READ_FROM_POSTGRES_PERCENT": "0",
                "IN_MEMORY_WRITES": "true", "STORE_BACKEND": "memory"}.items()]
    adopted = [e for e in api_env(live) if e["name"] not in {x["name"] for x in literal}]
    reset = env_after_upgrade(literal, literal, adopted + [
        {"name": "DUAL_WRITE_MODE", "value": "true"}])
    assert switch_env(reset)["DUAL_WRITE_MODE"] == "false"


async def test_an_upgrade_after_cleanup_keeps_postgres_and_adds_no_flag(
        cluster: KubeCluster) -> None:
    installed = template(include_crds=False)
    first = find(installed, "Deployment", "-api")
    cleaned = copy.deepcopy(first)
    [c] = cleaned["spec"]["template"]["spec"]["containers"]
    c["env"] = [e for e in c["env"] if e["name"] not in OWNED] + [
        {"name": "STORE_BACKEND", "value": "postgres"}]  # what Cleanup's env patch leaves
    await install(cluster, installed, cleaned, None)

    upgrade = await helm_against(cluster.kubeconfig, *RESET)
    assert chart_objects_setting_switches(upgrade) == []
    rendered = find(upgrade, "Deployment", "-api")
    merged = env_after_upgrade(api_env(first), api_env(rendered), c["env"])
    assert switch_env(merged) == {"STORE_BACKEND": "postgres"}


def test_the_chart_deployment_needs_no_adoption_restart() -> None:
    """The operator adopts a Deployment whose flags are literals (one restart, in
    Preparation); the chart's own shape is already adopted for the StoreMigration it
    names, and one with another name is adopted once more (its ConfigMap)."""
    docs = template("--set", "exampleMigration.enabled=true", include_crds=False)
    dep = find(docs, "Deployment", "-api")
    migration = find(docs, "StoreMigration")["metadata"]["name"]
    seen = observe_deployment(dep, "api")
    assert seen is not None
    names = adoption_names(tuple(STORES))
    assert seen.adopted(names, config_map_name(migration))
    assert not seen.adopted(names, config_map_name("another-migration"))
    legacy = copy.deepcopy(dep)
    [c] = legacy["spec"]["template"]["spec"]["containers"]
    c["env"] = [e if e["name"] not in names else {"name": e["name"], "value": "false"}
                for e in c["env"]]
    legacy_seen = observe_deployment(legacy, "api")
    assert legacy_seen is not None and not legacy_seen.adopted(names, config_map_name(migration))
