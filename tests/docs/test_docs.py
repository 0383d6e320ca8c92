"""Every shell command in docs/SETUP.md, docs/POSTGRESQL-MIGRATION.md and docs/RUNBOOK.md is
run (see tests/docs/mdblocks.py for the marker convention): `local` blocks against a
temporary PostgreSQL and a real API process, `serve` blocks are started and must answer,
`helm` blocks with the real helm binary (.tools/bin/helm), and `cluster` blocks with the
real kubectl against the Kubernetes API emulator (devcluster/kube.py) -- not with
--dry-run: the patches must land on the StoreMigration and are checked afterwards.
The `kubectl storemigration get` block also runs against the demo's own cluster
(devcluster.LocalCluster: PostgreSQL, the API under traffic, Prometheus, the operator)
mid-migration, and must show the parts of the output the doc prints.
Also: .env.example and app.settings.Settings name the same variables.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from app.settings import Settings

from devcluster.cluster import LocalCluster, Timing, migration_spec
from devcluster.kube import KubeCluster
from devcluster.net import free_port
from devcluster.postgres import APP_PASSWORD
from devcluster.traffic import Traffic
from tests.docs.conftest import TOKEN, DocsSetup
from tests.docs.mdblocks import ALLOWED_SKIPS, MODES, Block, blocks, for_test

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "docs" / name for name in ("SETUP.md", "POSTGRESQL-MIGRATION.md", "RUNBOOK.md")]
HELM = ROOT / ".tools" / "bin" / "helm"
BASE_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV")
SETTING_LINE = re.compile(r"^(# )?([A-Z][A-Z0-9_]*)=(.*)$")
OUTPUT_MARKER = "<!-- output: kubectl storemigration get -->"
DEMO_TIMING = Timing(read_start=10, read_step=10, read_interval="10m", gate_interval="2s",
                     window="15s", min_requests=30.0, verify_interval="10m",
                     primary_hold="10m", target_phase="ReadSwitchover")

CLUSTER_OBJECTS = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: default}
spec:
  replicas: 1
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers:
        - name: api
          image: storemigration-api:latest
          env:
            - {name: DUAL_WRITE_MODE, value: "true"}
            - {name: READ_FROM_POSTGRES_PERCENT, value: "100"}
            - {name: IN_MEMORY_WRITES, value: "false"}
---
apiVersion: migrations.storemigration.dev/v1alpha1
kind: StoreMigration
metadata: {name: api-migration, namespace: default}
spec: {deployment: api, targetPhase: PostgresPrimary, adminTokenSecret: {name: sm, key: token}}
"""


def base_env(setup: DocsSetup | None, kube: KubeCluster | None, tmp: Path) -> dict[str, str]:
    env = {k: os.environ[k] for k in BASE_ENV if k in os.environ}
    env["HOME"] = str(tmp / "home")  # kubectl's discovery cache stays in the test's dir
    # the venv's bin, as scripts/test.sh has it: kubectl finds kubectl-storemigration there
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    if kube is not None:
        env["KUBECONFIG"] = str(kube.kubeconfig)
    if setup is not None:
        host, port = setup.pg_host_port
        env |= {"PGHOST": host, "PGPORT": str(port), "ADMIN_DATABASE_URL": setup.admin_dsn,
                "APP_DB_PASSWORD": APP_PASSWORD, "API_URL": setup.api.url,
                "ADMIN_TOKEN": TOKEN, "DATABASE_URL": setup.app_dsn,
                "SCHEMA_DATABASE_URL": setup.schema_dsn,
                "SNAPSHOT": str(tmp / "snapshots" / "final.json")}
    return env


def _run(code: str, env: dict[str, str], timeout: float = 120
         ) -> subprocess.CompletedProcess[str]:
    """bash -euo pipefail; on timeout the whole process group is killed."""
    proc = subprocess.Popen(["bash", "-euo", "pipefail", "-c", code], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        return subprocess.CompletedProcess(proc.args, -9, out, err + "\n(timed out)")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _spawn(code: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start a server block in its own process group (stopped with killpg)."""
    with log.open("wb") as out:
        return subprocess.Popen(["bash", "-euo", "pipefail", "-c", code], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


async def _serve(block: Block, code: str, env: dict[str, str], tmp: Path) -> str | None:
    port = free_port()
    env = env | {"PORT": str(port), "DATA_DIR": str(tmp / f"serve-{block.line}")}
    log = tmp / f"serve-{block.line}.log"
    proc = _spawn(code, env, log)
    url = f"http://127.0.0.1:{port}{block.arg.split()[0]}"
    status = None
    try:
        async with httpx.AsyncClient(timeout=2) as client:
            for _ in range(300):
                if proc.poll() is not None:
                    break
                try:
                    status = (await client.get(url)).status_code
                    if status == 200:
                        return None
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                await asyncio.to_thread(proc.wait, 15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    return f"{url} answered {status}, exit {proc.returncode}: {log.read_text()[-1500:]}"


async def run_doc(doc: Path, env: dict[str, str], tmp: Path) -> dict[str, int]:
    """Run every block of one doc in order; fail listing every block that failed."""
    prelude, failures, counts = "", [], {m: 0 for m in MODES}
    for block in blocks(doc):
        counts[block.mode] += 1
        if block.mode == "env":
            prelude += block.code
            continue
        if block.mode == "skip":
            continue
        code = prelude + block.code
        if block.mode == "serve":
            problem = await _serve(block, code, env, tmp)
            if problem:
                failures.append(f"{block.where} serve: {problem}")
            continue
        code = prelude + for_test(block.mode, block.code)
        fails = block.mode == "local-fails"
        done = await asyncio.to_thread(_run, code, env, 30 if fails else 120)
        ok = done.returncode not in (0, -9) if fails else done.returncode == 0
        if not ok:
            failures.append(f"{block.where} {block.mode} exit {done.returncode}:\n"
                            f"{block.code}{done.stdout[-1500:]}\n{done.stderr[-1500:]}")
    assert not failures, "\n\n".join(failures)
    return counts


def kubectl(kube: KubeCluster, tmp: Path, *args: str, stdin: str | None = None) -> str:
    env = base_env(None, kube, tmp)
    done = subprocess.run(["kubectl", *args], input=stdin, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_every_bash_block_is_marked() -> None:
    for doc in DOCS:
        found = blocks(doc)
        assert found, doc
        for block in found:
            assert block.mode in MODES, f"{block.where}: no or unknown <!-- test: ... --> marker"
            if block.mode == "skip":
                assert block.code.strip() in ALLOWED_SKIPS and block.arg, block.where
            if block.mode == "serve":
                assert block.arg.startswith("/"), block.where


def test_env_example_names_every_setting_and_only_settings(monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    listed: dict[str, str | None] = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        match = SETTING_LINE.match(line)
        if match:
            listed[match.group(2)] = None if match.group(1) else match.group(3)
    assert set(listed) == {name.upper() for name in Settings.model_fields}
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    for name, value in listed.items():
        if value is not None:
            monkeypatch.setenv(name, value)
    loaded, defaults = Settings(), Settings.model_construct()
    for name in Settings.model_fields:  # the uncommented values are the defaults
        assert getattr(loaded, name) == getattr(defaults, name), name


async def test_setup_md(docs_setup: DocsSetup, kube_cluster: KubeCluster, tmp_path: Path
                        ) -> None:
    env = base_env(docs_setup, kube_cluster, tmp_path) | {"DB_NAME": "setup_docs"}
    for name in ("API_URL", "DATABASE_URL", "SCHEMA_DATABASE_URL"):
        env.pop(name)
    counts = await run_doc(DOCS[0], env, tmp_path)
    assert counts["serve"] == 6 and counts["local"] >= 2 and counts["cluster"] == 2
    assert counts["local-fails"] == 2
    listed = json.loads(await asyncio.to_thread(
        kubectl, kube_cluster, tmp_path, "get", "storemigration", "api-migration", "-o", "json"))
    assert listed["spec"]["adminTokenSecret"] == {"name": "store-migration", "key": "ADMIN_TOKEN"}


async def test_postgresql_migration_md(docs_setup: DocsSetup, kube_cluster: KubeCluster,
                                       tmp_path: Path) -> None:
    await asyncio.to_thread(kubectl, kube_cluster, tmp_path, "apply", "--validate=false",
                            "-f", str(ROOT / "crds" / "storemigrations.yaml"))
    await asyncio.to_thread(kubectl, kube_cluster, tmp_path, "apply", "--validate=false",
                            "-f", "-", stdin=CLUSTER_OBJECTS)
    env_file = tmp_path / ".env"
    text = (ROOT / ".env.example").read_text()
    for name, value in (("DUAL_WRITE_MODE", "true"), ("READ_FROM_POSTGRES_PERCENT", "100"),
                        ("IN_MEMORY_WRITES", "false")):
        text = re.sub(rf"^{name}=.*$", f"{name}={value}", text, flags=re.M)
    env_file.write_text(text)
    env = base_env(docs_setup, kube_cluster, tmp_path) | {"ENV_FILE": str(env_file)}
    counts = await run_doc(DOCS[1], env, tmp_path)
    assert counts["cluster"] >= 6 and counts["local"] >= 6
    final = json.loads(await asyncio.to_thread(
        kubectl, kube_cluster, tmp_path, "get", "storemigration", "api-migration", "-o", "json"))
    spec: dict[str, Any] = final["spec"]
    assert spec["targetPhase"] == "ReadSwitchover" and spec["paused"] is False
    assert spec["cleanup"] == {"approved": True, "archive": "/archive/"}
    assert spec["retryToken"].isdigit()
    assert (tmp_path / "snapshots" / "archive" / "final.json").exists()
    dep = json.loads(await asyncio.to_thread(
        kubectl, kube_cluster, tmp_path, "get", "deployment", "api", "-o", "json"))
    env_now = {e["name"]: e["value"] for e in dep["spec"]["template"]["spec"]["containers"][0]
               ["env"]}
    assert env_now["IN_MEMORY_WRITES"] == "false"  # the rollback script ran with --dry-run


async def test_runbook_md(docs_setup: DocsSetup, tmp_path: Path) -> None:
    if shutil.which("pg_isready") is None:
        pytest.fail("pg_isready (postgresql-client) is not installed")
    counts = await run_doc(DOCS[2], base_env(docs_setup, None, tmp_path), tmp_path)
    assert counts["local"] >= 6 and counts["local-fails"] == 1
    assert HELM.exists()


def sample_output(doc: Path) -> str:
    """The ```text block after the output marker: what the doc says `get` prints."""
    lines = doc.read_text().splitlines()
    start = lines.index(OUTPUT_MARKER) + 2
    assert lines[start - 1] == "```text"
    return "\n".join(lines[start:lines.index("```", start)])


def parts(view: str) -> list[str]:
    """The shape of a `get` view: its section labels and its gate rows, in order."""
    labels = [re.split(r"[ :(]", line, maxsplit=1)[0] for line in view.splitlines()
              if line and not line.startswith(" ")]
    gates = [line.split()[0] for line in view.splitlines()
             if re.match(r"  (errorRate|p95|mismatchRatio|requests) ", line)]
    queries = [line.split(":", 1)[0].strip() for line in view.splitlines()
               if line.startswith("      PromQL: ")]
    return [*labels, *gates, *queries]


@pytest.mark.slow
async def test_the_plugin_view_in_the_docs_is_what_the_demo_cluster_shows(tmp_path: Path
                                                                           ) -> None:
    doc = DOCS[1]
    [block] = [b for b in blocks(doc) if "kubectl storemigration get" in b.code]
    assert block.mode == "cluster"
    sample = sample_output(doc)
    async with LocalCluster(tmp_path / "cluster", require_prometheus=True) as lc:
        assert lc.prometheus is not None and lc.kube is not None
        traffic = Traffic(lc.api.url, rate=40)
        runner = asyncio.get_running_loop().create_task(traffic.run())
        try:
            await lc.create_migration(migration_spec(DEMO_TIMING, lc.api.url,
                                                     lc.prometheus.url, tmp_path))

            def mid_migration() -> bool:
                st = lc.status()
                return st.get("phase") == "ReadSwitchover" and \
                    (st.get("lastGate") or {}).get("result") == "Successful" and \
                    (st.get("jobs") or {}).get("verify", {}).get("passed") is True

            await lc.wait_for(mid_migration, 240, "ReadSwitchover with a successful gate")
            env = base_env(None, lc.kube, tmp_path) | {
                "NAMESPACE": "default", "MIGRATION": "store-migration", "ADMIN_TOKEN": "x"}
            prelude = "".join(b.code for b in blocks(doc) if b.mode == "env")
            done = await asyncio.to_thread(_run, prelude + block.code, env)
        finally:
            traffic.stop()
            await runner
    assert done.returncode == 0, done.stdout + done.stderr
    shown = "\n".join(done.stdout.splitlines()[:-1])  # the view; the last line is -o json's
    (tmp_path / "view.txt").write_text(shown)
    print(shown)
    assert parts(shown) == parts(sample), (shown, sample)
    assert "Phase:       ReadSwitchover, reads" in shown
    assert done.stdout.splitlines()[-1].startswith("ReadSwitchover ")  # the -o json line
