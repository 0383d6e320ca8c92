"""Run a migration script exactly as the operator's Job would: the Job manifest is built by
the operator's own code (core.jobs.job_request through cluster.job_manifest), and its
command, args and env -- secretKeyRef values resolved the way the kubelet does -- are
executed here, from the repository root standing in for the image's WORKDIR /app.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from storemigration_operator.cluster import job_manifest
from storemigration_operator.core.jobs import job_request
from storemigration_operator.core.spec import parse_spec

ROOT = Path(__file__).resolve().parents[2]
BASE_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV")
OWNER = {"apiVersion": "storemigration.dev/v1alpha1", "kind": "StoreMigration",
         "metadata": {"name": "sm", "namespace": "default", "uid": "uid-1"}}


@dataclass
class JobRun:
    code: int
    summary: dict[str, Any]
    termination: dict[str, Any] | None
    termination_text: str | None
    stderr: str
    manifest: dict[str, Any]


def manifest_for(kind: str, spec_doc: dict[str, Any]) -> dict[str, Any]:
    request = job_request(kind, f"sm-{kind}-1", parse_spec(spec_doc), "storemigration-api:test")
    return job_manifest(request, "default", {**OWNER, "spec": spec_doc})


def resolve_env(container: dict[str, Any], secrets: dict[str, dict[str, str]]) -> dict[str, str]:
    """The container's env as the kubelet hands it over; a missing Secret key is left out
    (the real kubelet would refuse to start the pod; the scripts' own check is tested)."""
    out: dict[str, str] = {}
    for item in container.get("env") or []:
        if "value" in item:
            out[item["name"]] = item["value"]
            continue
        ref = item["valueFrom"]["secretKeyRef"]
        value = secrets.get(ref["name"], {}).get(ref["key"])
        if value is not None:
            out[item["name"]] = value
    return out


def last_json(stdout: str) -> dict[str, Any]:
    """The JSON summary the scripts print last (an indented object starting a line)."""
    start = stdout.rfind("\n{") + 1  # the last one: a chained Job prints two; 0 if only one
    doc: dict[str, Any] = json.loads(stdout[start:])
    return doc


def run_job(kind: str, spec_doc: dict[str, Any], tmp: Path,
            secrets: dict[str, dict[str, str]] | None = None,
            extra_env: dict[str, str] | None = None) -> JobRun:
    manifest = manifest_for(kind, spec_doc)
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    command = list(container["command"])
    if command[0] == "python":
        command[0] = sys.executable
    env = {k: os.environ[k] for k in BASE_ENV if k in os.environ}
    env |= resolve_env(container, secrets or {})
    term = tmp / f"termination-{kind}"
    term.unlink(missing_ok=True)
    env["TERMINATION_LOG"] = str(term)
    env |= extra_env or {}
    proc = subprocess.run([*command, *container["args"]], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    text = term.read_text() if term.exists() else None
    return JobRun(proc.returncode, last_json(proc.stdout), json.loads(text) if text else None,
                  text, proc.stderr, manifest)
