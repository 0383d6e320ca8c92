"""The controllers a real cluster would run, played for real on this machine.

Deployments: each replica is a local API process (its own port, the shared data dir: pods
on one volume) and a Pod in the emulator with the template's labels, status.podIP
127.0.0.1, its port as the container's `http` port and a Ready condition: the address the
operator PUTs live switches to. The Deployment's Service is devcluster.proxy: clients use
its one address, and it routes to the ready pods. When the pod template changes (not when
a ConfigMap its env reads changes: env valueFrom is resolved when a container starts, as
the kubelet does), the pods are replaced by the Deployment's strategy: Recreate stops the
old process before the new one starts; RollingUpdate (the operator sets maxUnavailable 0,
maxSurge 1 from PostgresPrimary on) starts a new process, waits for /api/ready, adds it
to the Service, then takes the old one out of the Service, waits until no request is in
flight on it, and only then stops it (SIGTERM). spec.replicas is honoured the same way
(scale-in drains before it stops). Only then is the Deployment's status written with
observedGeneration, which is what the operator waits for. Each replacement records
whether memory was trusted (the API's own GET /api/admin/switches says which store each
store trusts) just before the old process stopped.

Jobs: each new Job's container command runs as a local process from the repository root with
the Job's env (secretKeyRef values resolved from the emulator's Secrets) and a per-Job
TERMINATION_LOG file. When it exits, a Pod labelled job-name=<job> carries the exit code and
the termination message (the file, or the log tail on error, as FallbackToLogsOnError does),
and the Job gets succeeded/failed and a Complete/Failed condition: what the operator's
cluster.observe_jobs reads.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from devcluster.api_process import LocalApi
from devcluster.kube import KubeCluster, now_iso
from devcluster.proxy import Service

ROOT = Path(__file__).resolve().parent.parent
BASE_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV")
MESSAGE_LIMIT = 4096
JOB_TIMEOUT = 300.0


@dataclass
class JobRun:
    name: str
    kind: str
    started: float
    exit_code: int | None = None
    message: str = ""
    seconds: float = 0.0


@dataclass
class Rollout:
    at: float
    generation: int
    changed: dict[str, str | None]
    seconds: float
    memory_trusted: bool = False  # a process it replaced trusted memory for some store
    strategy: str = "Recreate"
    replaced: int = 0  # processes stopped for the new template


@dataclass
class PodProcess:
    """One replica: its Pod's name, the process, and the template and env it started with."""

    name: str
    api: LocalApi
    template: str
    env: dict[str, str]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.api.port}"


@dataclass
class LocalController:
    """Plays the Deployment controller for one Deployment (its pods behind `service`) and
    the Job controller for every Job in `namespace`."""

    cluster: KubeCluster
    namespace: str
    deployment: str
    container: str
    service: Service
    workdir: Path
    on_event: Callable[[str], None] = lambda _msg: None
    on_pods: Callable[[list[str]], None] = lambda _addresses: None
    jobs: dict[str, JobRun] = field(default_factory=dict)
    rollouts: list[Rollout] = field(default_factory=list)
    pods: list[PodProcess] = field(default_factory=list)
    peak_pods: int = 0  # the most API processes that ran at once
    _pod_count: int = 0
    _job_tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _loop_task: asyncio.Task[None] | None = None
    _job_procs: dict[str, asyncio.subprocess.Process] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def addresses(self) -> list[str]:
        return [p.address for p in self.pods]

    # ---- env resolution ----
    def secret_value(self, name: str, key: str) -> str | None:
        secret = self.cluster.emulator.obj("v1/secrets", self.namespace, name)
        if secret is None:
            return None
        if key in (secret.get("stringData") or {}):
            return str(secret["stringData"][key])
        raw = (secret.get("data") or {}).get(key)
        return base64.b64decode(raw).decode() if raw is not None else None

    def resolve_env(self, entries: list[dict[str, Any]]) -> dict[str, str]:
        env: dict[str, str] = {}
        for e in entries:
            if "value" in e:
                env[e["name"]] = str(e["value"])
                continue
            cm_ref = (e.get("valueFrom") or {}).get("configMapKeyRef")
            if cm_ref:
                cm = self.cluster.emulator.obj("v1/configmaps", self.namespace, cm_ref["name"])
                data = (cm or {}).get("data") or {}
                if cm_ref["key"] in data:
                    env[e["name"]] = str(data[cm_ref["key"]])
                elif not cm_ref.get("optional"):
                    raise LookupError(f"configmap {cm_ref['name']}/{cm_ref['key']} not found "
                                      f"for env {e['name']}")
                continue
            ref = (e.get("valueFrom") or {}).get("secretKeyRef")
            if ref:
                value = self.secret_value(ref["name"], ref["key"])
                if value is None and not ref.get("optional"):
                    raise LookupError(f"secret {ref['name']}/{ref['key']} not found for "
                                      f"env {e['name']}")
                if value is not None:
                    env[e["name"]] = value
        return env

    # ---- Deployment controller ----
    async def reconcile_deployment(self) -> None:
        dep = self.cluster.emulator.obj("apps/v1/deployments", self.namespace, self.deployment)
        if dep is None:
            return
        generation = int(dep["metadata"].get("generation", 1))
        replicas = int(dep["spec"].get("replicas", 1))
        template = json.dumps(dep["spec"]["template"], sort_keys=True)
        self.pods = [p for p in self.pods
                     if p.api.process is not None and p.api.process.poll() is None]
        if (dep.get("status") or {}).get("observedGeneration") == generation \
                and len(self.pods) == replicas:
            return
        old = [p for p in self.pods if p.template != template]
        if old or not self.pods:
            await self.roll(dep, template, old, replicas)
        running = [p for p in self.pods if p.template == template]
        for _ in range(replicas - len(running)):
            await self.launch(dep, template, self.env_for(dep))
        for extra in running[replicas:]:
            await self.retire(extra)
        n = len(self.pods)
        await self.cluster.request(
            "PATCH", f"/apis/apps/v1/namespaces/{self.namespace}/deployments/"
            f"{self.deployment}/status",
            {"status": {"observedGeneration": generation, "replicas": n,
                        "readyReplicas": n, "updatedReplicas": n,
                        "availableReplicas": n}})

    def env_for(self, dep: dict[str, Any]) -> dict[str, str]:
        containers = dep["spec"]["template"]["spec"]["containers"]
        container = next(c for c in containers if c["name"] == self.container)
        return self.resolve_env(container.get("env") or [])  # at container start only

    async def roll(self, dep: dict[str, Any], template: str, old: list[PodProcess],
                   replicas: int) -> None:
        """Replace `old` by pods of `template` (the first start when there is none)."""
        strategy = str((dep["spec"].get("strategy") or {}).get("type") or "RollingUpdate")
        env = self.env_for(dep)
        trusted = any([await self.memory_trusted(p) for p in old])
        started = time.monotonic()
        before = old[0].env if old else {}
        changed: dict[str, str | None] = {k: v for k, v in env.items() if before.get(k) != v}
        changed.update({k: None for k in before if k not in env})
        for k in ("DATABASE_URL", "ADMIN_TOKEN"):
            if k in changed:
                changed[k] = "<secret>"
        if strategy == "Recreate" or not old:
            for p in old:
                await self.retire(p)
            for _ in range(max(1, replicas) if not old else max(1, len(old))):
                await self.launch(dep, template, env)
        else:  # RollingUpdate, one surge pod at a time: ready before an old one drains
            for p in old:
                await self.launch(dep, template, env)
                await self.retire(p)
        seconds = time.monotonic() - started
        generation = int(dep["metadata"].get("generation", 1))
        self.rollouts.append(Rollout(time.monotonic(), generation, changed, seconds, trusted,
                                     strategy, len(old)))
        self.on_event(f"rollout {self.deployment} gen {generation} ({strategy}, "
                      f"{len(old)} replaced): {changed} ({seconds:.1f}s)")

    async def launch(self, dep: dict[str, Any], template: str, env: dict[str, str]
                     ) -> PodProcess:
        """A new process, ready (/api/ready), as a Ready Pod, then in the Service."""
        self._pod_count += 1
        digest = hashlib.sha256(template.encode()).hexdigest()[:8]
        name = f"{self.deployment}-{digest}-{self._pod_count}"
        api = LocalApi(data_dir=self.workdir / "api-data",
                       log_path=self.workdir / "logs" / "api.log")
        await asyncio.to_thread(api.start, env, 60.0, "/api/ready")
        pod = PodProcess(name, api, template, env)
        spec = dep["spec"]["template"]
        containers = [{**c, "ports": [{"name": "http", "containerPort": api.port}]}
                      if c["name"] == self.container else c
                      for c in spec["spec"]["containers"]]
        await self.cluster.create({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": self.namespace,
                         "labels": dict((spec.get("metadata") or {}).get("labels") or {})},
            "spec": {**spec["spec"], "containers": containers}})
        await self.cluster.request(
            "PATCH", f"/api/v1/namespaces/{self.namespace}/pods/{name}/status",
            {"status": {"phase": "Running", "podIP": "127.0.0.1",
                        "conditions": [{"type": "Ready", "status": "True",
                                        "lastTransitionTime": now_iso()}]}})
        self.pods.append(pod)
        self.peak_pods = max(self.peak_pods, len(self.pods))
        await self.service.set_backends(self.addresses)
        self.on_pods(self.addresses)
        self.on_event(f"pod {name} ready at {pod.address}")
        return pod

    async def retire(self, pod: PodProcess) -> None:
        """Out of the Service, drained, its Pod deleted, then SIGTERM (graceful)."""
        self.pods = [p for p in self.pods if p is not pod]
        await self.service.set_backends(self.addresses)
        await self.cluster.request(
            "DELETE", f"/api/v1/namespaces/{self.namespace}/pods/{pod.name}")
        await asyncio.to_thread(pod.api.stop)
        self.on_pods(self.addresses)
        self.on_event(f"pod {pod.name} drained and stopped")

    async def memory_trusted(self, pod: PodProcess) -> bool:
        """Whether this process trusts memory for any store (then a restart loses what
        only memory holds until the journal is replayed)."""
        token = pod.env.get("ADMIN_TOKEN")
        try:
            async with httpx.AsyncClient(timeout=5) as client:
                resp = await client.get(f"{pod.api.url}/api/admin/switches",
                                        headers={"Authorization": f"Bearer {token}"})
            routing = resp.json().get("routing") or {}
            return any(r.get("trusted") == "memory" for r in routing.values())
        except (httpx.HTTPError, ValueError):
            return pod.env.get("STORE_BACKEND", "memory") != "postgres" and \
                pod.env.get("IN_MEMORY_WRITES", "true") != "false"

    # ---- Job controller ----
    async def reconcile_jobs(self) -> None:
        for job in self.cluster.emulator.objs("batch/v1/jobs", self.namespace):
            name = job["metadata"]["name"]
            if name in self.jobs:
                continue
            kind = (job["metadata"].get("labels") or {}).get("storemigration.dev/job-kind", "")
            self.jobs[name] = JobRun(name, kind, time.monotonic())
            task = asyncio.get_running_loop().create_task(self._run_job(job))
            self._job_tasks.add(task)
            task.add_done_callback(self._job_tasks.discard)

    def _command(self, container: dict[str, Any]) -> list[str]:
        argv = [*(container.get("command") or []), *(container.get("args") or [])]
        if not argv:
            raise ValueError("the Job's container has no command (no image entrypoint here)")
        if argv[0] in ("python", "python3"):
            argv[0] = sys.executable
        return argv

    async def _run_job(self, job: dict[str, Any]) -> None:
        name = job["metadata"]["name"]
        run = self.jobs[name]
        spec = job["spec"]["template"]["spec"]
        container = spec["containers"][0]
        pod = f"{name}-local"
        jobs_dir = self.workdir / "jobs"
        jobs_dir.mkdir(parents=True, exist_ok=True)
        term_path, log_path = jobs_dir / f"{name}.termination", jobs_dir / f"{name}.log"
        await self.cluster.create({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": pod, "namespace": self.namespace,
                         "labels": {"job-name": name, **(job["spec"]["template"].get(
                             "metadata", {}).get("labels") or {})}},
            "spec": spec})
        await self._patch_job(name, {"active": 1, "startTime": now_iso()})
        self.on_event(f"job {name} started")
        code, message = 1, ""
        try:
            env = {k: os.environ[k] for k in BASE_ENV if k in os.environ}
            env.update(self.resolve_env(container.get("env") or []))
            env.update(PYTHONPATH=os.pathsep.join(str(ROOT / p) for p in ("api", "operator", "")),
                       TERMINATION_LOG=str(term_path), PYTHONUNBUFFERED="1")
            log = await asyncio.to_thread(open, log_path, "wb")
            try:
                proc = await asyncio.create_subprocess_exec(
                    *self._command(container), cwd=str(ROOT), env=env, stdout=log,
                    stderr=asyncio.subprocess.STDOUT, start_new_session=True)
                self._job_procs[name] = proc
                try:
                    code = await asyncio.wait_for(proc.wait(), JOB_TIMEOUT)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
                    code = 137
            finally:
                self._job_procs.pop(name, None)
                log.close()
            message = term_path.read_text(errors="replace") if term_path.exists() else ""
            if not message.strip() and code != 0:
                message = log_path.read_text(errors="replace")[-MESSAGE_LIMIT:]
        except (OSError, ValueError, LookupError) as e:
            code, message = 128, f"could not start the Job's container: {e}"
        message = message[:MESSAGE_LIMIT]
        run.exit_code, run.message = code, message
        run.seconds = time.monotonic() - run.started
        ok = code == 0
        await self.cluster.request(
            "PATCH", f"/api/v1/namespaces/{self.namespace}/pods/{pod}/status",
            {"status": {"phase": "Succeeded" if ok else "Failed", "containerStatuses": [{
                "name": container["name"], "ready": False, "restartCount": 0,
                "state": {"terminated": {"exitCode": code, "message": message,
                                         "reason": "Completed" if ok else "Error",
                                         "finishedAt": now_iso()}}}]}})
        cond = "Complete" if ok else "Failed"
        await self._patch_job(name, {
            "active": None, "succeeded" if ok else "failed": 1, "completionTime": now_iso(),
            "conditions": [{"type": cond, "status": "True", "lastTransitionTime": now_iso(),
                            "reason": "Completed" if ok else "BackoffLimitExceeded"}]})
        self.on_event(f"job {name} exited {code} in {run.seconds:.1f}s")

    async def _patch_job(self, name: str, status: dict[str, Any]) -> None:
        await self.cluster.request(
            "PATCH", f"/apis/batch/v1/namespaces/{self.namespace}/jobs/{name}/status",
            {"status": status})

    # ---- loop ----
    async def step(self) -> None:
        await self.reconcile_deployment()
        await self.reconcile_jobs()

    async def _loop(self, period: float) -> None:
        while True:
            try:
                await self.step()
            except Exception as e:  # noqa: BLE001 - a controller keeps going, as kube's do
                self.errors.append(f"{type(e).__name__}: {e}")
                self.on_event(f"controller error: {type(e).__name__}: {e}")
            await asyncio.sleep(period)

    def start(self, period: float = 0.25) -> None:
        self._loop_task = asyncio.get_running_loop().create_task(self._loop(period))

    async def stop(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        for proc in list(self._job_procs.values()):
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        for task in list(self._job_tasks):
            task.cancel()
        await asyncio.gather(*self._job_tasks, return_exceptions=True)
        for pod in self.pods:
            await asyncio.to_thread(pod.api.stop)
        self.pods = []
