"""Run the backup CronJob's containers exactly as the chart renders them: the command,
args and env come from `helm template` of the production values (tests/chart/render.py),
the volume mounted at /backups is a local directory, and the Secret values the kubelet
would inject (DATABASE_URL by secretKeyRef, the S3 credentials by envFrom) are handed in
by the test. The pg_dump step runs the machine's PostgreSQL 15 client (the image is
postgres:15), the upload step the repository root standing in for the image's /app.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from devcluster.postgres import PG_BIN
from tests.chart.render import PRODUCTION_VALUES, ROOT, find, template

BASE_ENV = ("HOME", "LANG", "LC_ALL", "TMPDIR")
MOUNT = "/backups"


def backup_pod(*extra: str) -> dict[str, Any]:
    docs = template("-f", str(PRODUCTION_VALUES), *extra, include_crds=False)
    cron = find(docs, "CronJob", "-pg-dump")
    pod: dict[str, Any] = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return pod


def container(pod: dict[str, Any], name: str) -> dict[str, Any]:
    every = [*pod.get("initContainers", []), *pod["containers"]]
    (found,) = [c for c in every if c["name"] == name]
    return found


def run(spec: dict[str, Any], backups: Path, secrets: dict[str, str],
        extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run one container of the pod. `secrets` are the values of its secretKeyRef and
    envFrom entries; every secretKeyRef it names must be given (the kubelet would refuse
    to start it otherwise). Paths under /backups point into `backups`."""
    assert any(m["mountPath"] == MOUNT for m in spec["volumeMounts"])
    env = {k: os.environ[k] for k in BASE_ENV if k in os.environ}
    env["PATH"] = os.pathsep.join([str(PG_BIN), str(Path(sys.executable).parent),
                                   os.environ.get("PATH", "")])
    for item in spec.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"].replace(MOUNT, str(backups), 1) \
                if item["value"].startswith(MOUNT) else item["value"]
        else:
            assert item["name"] in secrets, f"secret for {item['name']} not given"
            env[item["name"]] = secrets[item["name"]]
    if spec.get("envFrom"):
        env |= {k: v for k, v in secrets.items() if k.startswith("AWS_")}
    env |= extra_env or {}
    argv = [a.replace(MOUNT, str(backups), 1) if a.startswith(MOUNT) else a
            for a in spec["command"] + spec.get("args", [])]
    if argv[0] == "python":
        argv[0] = sys.executable
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
                          check=False)
