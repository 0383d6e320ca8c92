"""Runs the real helm binary and picks objects out of rendered manifests.

helm comes from scripts/bootstrap.sh (.tools/bin/helm); without it the chart tests skip
with that reason, never silently pass.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "store-migration"
PRODUCTION_VALUES = CHART / "ci" / "production-values.yaml"
KUBE_VERSION = "1.32.0"

Docs = list[dict[str, Any]]


def helm_binary() -> str | None:
    local = ROOT / ".tools" / "bin" / "helm"
    return str(local) if local.exists() else shutil.which("helm")


def run_helm(*args: str) -> subprocess.CompletedProcess[str]:
    helm = helm_binary()
    if helm is None:
        pytest.skip("helm not installed: run scripts/bootstrap.sh (installs .tools/bin/helm)")
    return subprocess.run([helm, *args], capture_output=True, text=True, timeout=60, check=False)


def template(*extra: str, include_crds: bool = True) -> Docs:
    args = ["template", "t", str(CHART), "--namespace", "sm", "--kube-version", KUBE_VERSION]
    if include_crds:
        args.append("--include-crds")
    done = run_helm(*args, *extra)
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def find(docs: Docs, kind: str, name_suffix: str = "") -> dict[str, Any]:
    matches = [d for d in docs if d["kind"] == kind
               and d["metadata"]["name"].endswith(name_suffix)]
    assert len(matches) == 1, f"expected one {kind} *{name_suffix}, got {len(matches)}"
    return matches[0]


def pod_specs(docs: Docs) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for d in docs:
        spec = d.get("spec", {})
        if d["kind"] in ("Deployment", "Job"):
            out.append((d["metadata"]["name"], spec["template"]["spec"]))
        elif d["kind"] == "CronJob":
            out.append((d["metadata"]["name"], spec["jobTemplate"]["spec"]["template"]["spec"]))
    return out
