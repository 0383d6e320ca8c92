"""Thin kopf handlers: every entry point runs the same reconcile.

observe (Deployment, Jobs and their pods, gate readings when due) -> plan (pure core) ->
apply (env patch, Jobs, events) -> one status patch through kopf's `patch`. Kubernetes calls
run in threads; a per-object lock keeps a timer and a change handler from interleaving.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import os
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException

from . import cluster, metrics
from .core.invalid import invalid_spec_plan
from .core.model import Plan
from .core.planner import gates_due, plan
from .core.spec import InvalidSpec, MigrationSpec, parse_spec
from .gatesource import gate_source_for

GROUP, VERSION, PLURAL = cluster.GROUP, cluster.VERSION, cluster.PLURAL
TIMER_INTERVAL = float(os.environ.get("OPERATOR_TIMER_INTERVAL", "60"))
RETRY_DELAY = float(os.environ.get("OPERATOR_RETRY_DELAY", "15"))
_locks: dict[str, asyncio.Lock] = {}
Logger = logging.Logger | logging.LoggerAdapter[Any]


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.posting.level = logging.INFO
    settings.persistence.finalizer = "migrations.storemigration.dev/finalizer"
    settings.watching.server_timeout = 60
    metrics.serve()


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    if os.environ.get("KUBECONFIG"):
        return kopf.login_with_kubeconfig(**kwargs)
    return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)


def _with_kopf(current: Any, new: dict[str, Any]) -> dict[str, Any]:
    """The new status with kopf's own bookkeeping (status.kopf) carried over."""
    kopf_part = dict(current or {}).get("kopf")
    return {**new, "kopf": kopf_part} if kopf_part is not None else new


async def _apply(p: Plan, spec: MigrationSpec, body: kopf.Body, ns: str,
                 dep: dict[str, Any] | None, logger: Logger) -> None:
    if p.env_changed and dep is not None:
        await asyncio.to_thread(cluster.patch_env, dep, spec.container, p.env_set, p.env_remove)
        logger.info("env of %s: set %s, removed %s", spec.deployment, p.env_set, p.env_remove)
    for req in p.jobs:
        manifest = cluster.job_manifest(req, ns, dict(body))
        if await asyncio.to_thread(cluster.create_job, manifest):
            logger.info("created %s Job %s", req.kind, req.name)
    for ev in p.events:
        kopf.event(body, type=ev.type, reason=ev.reason, message=ev.message[:1000])


async def reconcile(body: kopf.Body, spec: kopf.Spec, status: kopf.Status, patch: kopf.Patch,
                    logger: Logger, raise_permanent: bool) -> None:
    meta = body["metadata"]
    ns, name = meta["namespace"], meta["name"]
    lock = _locks.setdefault(meta["uid"], asyncio.Lock())
    async with lock:
        now = datetime.datetime.now(tz=datetime.UTC)
        old = {k: v for k, v in dict(status).items() if k != "kopf"}
        generation = int(meta.get("generation") or 0)
        try:
            parsed = parse_spec(dict(spec))
        except InvalidSpec as e:
            bad = invalid_spec_plan(old, str(e), now, generation)
            if old.get("reason") != "InvalidSpec" or old.get("message") != str(e):
                for ev in bad.events:
                    kopf.event(body, type=ev.type, reason=ev.reason, message=ev.message)
            await asyncio.to_thread(cluster.write_status, ns, name,
                                    _with_kopf(status, bad.status), None)
            if raise_permanent:
                raise kopf.PermanentError(f"invalid spec: {e}") from None
            return
        try:
            dep = await asyncio.to_thread(cluster.read_deployment, ns, parsed.deployment)
            jobs = await asyncio.to_thread(cluster.observe_jobs, ns, name)
        except ApiException as e:
            raise kopf.TemporaryError(f"cannot observe the cluster: {e.status} {e.reason}",
                                      delay=RETRY_DELAY) from None
        readings = None
        if gates_due(parsed, old, now):
            readings = await gate_source_for(parsed.gates).read(parsed.gates)
        p = plan(parsed, old, readings, jobs, cluster.observe_deployment(dep, parsed.container),
                 now, name=name, generation=generation)
        try:
            await _apply(p, parsed, body, ns, dep, logger)
        except ApiException as e:
            raise kopf.TemporaryError(f"cannot apply the plan: {e.status} {e.reason}",
                                      delay=RETRY_DELAY) from None
        await asyncio.to_thread(cluster.write_status, ns, name, _with_kopf(status, p.status),
                                None)
        metrics.record(ns, name, old, p.status)
        logger.debug("reconciled: %s", p.status.get("message"))


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
async def on_change(body: kopf.Body, spec: kopf.Spec, status: kopf.Status, patch: kopf.Patch,
                    logger: Logger, **_: Any) -> None:
    await reconcile(body, spec, status, patch, logger, raise_permanent=True)


@kopf.timer(GROUP, VERSION, PLURAL, interval=TIMER_INTERVAL, initial_delay=TIMER_INTERVAL)
async def on_timer(body: kopf.Body, spec: kopf.Spec, status: kopf.Status, patch: kopf.Patch,
                   logger: Logger, **_: Any) -> None:
    await reconcile(body, spec, status, patch, logger, raise_permanent=False)
