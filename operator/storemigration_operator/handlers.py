"""Thin kopf handlers: every entry point runs the same reconcile.

read (the StoreMigration as the API server holds it now) -> observe (Deployment, Jobs and
their pods, gate readings when due) -> plan (pure core) -> apply (ConfigMap, Deployment
patch, live switches, Jobs) -> one status write guarded by the resourceVersion that was
read -> events. Kopf hands each handler
the body of the event that woke it, which a timer and a change handler may share; planning
from it would let whichever writes second undo the other (a rollback vanishing, an unpause
sending reads back to PostgreSQL). So the body is only a wake-up call: the object is re-read
inside a per-object lock, and a write that finds a newer resourceVersion fails and becomes a
kopf.TemporaryError, so kopf runs the reconcile again from the fresh object.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from typing import Any, cast

import kopf
import urllib3.exceptions
from kubernetes.client.exceptions import ApiException

from . import cluster, metrics, podswitches
from .core.backfill_live import BackfillSample
from .core.invalid import effective_spec, invalid_spec_plan
from .core.livestatus import after_apply, merge
from .core.model import Event, Plan
from .core.planner import gates_due, plan
from .core.spec import MigrationSpec
from .core.switchset import PodObservation, pods_serve_switches
from .gatesource import gate_source_for, read_backfill
from .settings import OperatorSettings

GROUP, VERSION, PLURAL = cluster.GROUP, cluster.VERSION, cluster.PLURAL
TIMER_INTERVAL = OperatorSettings().timer_interval  # kopf registers the timer at import
TRANSIENT = (ApiException, urllib3.exceptions.HTTPError, OSError)
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
    if OperatorSettings().kubeconfig:
        return kopf.login_with_kubeconfig(**kwargs)
    return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)


def _with_kopf(current: Any, new: dict[str, Any]) -> dict[str, Any]:
    """The new status with kopf's own bookkeeping (status.kopf) carried over."""
    kopf_part = dict(current or {}).get("kopf")
    return {**new, "kopf": kopf_part} if kopf_part is not None else new


async def write_status(obj: dict[str, Any], status: dict[str, Any]) -> None:
    """Replace status if nobody changed the object since `obj` was read; else TemporaryError."""
    meta = obj["metadata"]
    ns, name, version = meta["namespace"], meta["name"], meta["resourceVersion"]
    try:
        await asyncio.to_thread(cluster.write_status, ns, name,
                                _with_kopf(obj.get("status"), status), version)
    except ApiException as e:
        conflict = e.status == 409
        if e.status == 422:  # a failed JSON-patch `test`: was it our resourceVersion?
            now = await asyncio.to_thread(cluster.read_migration, ns, name)
            conflict = now is not None and now["metadata"]["resourceVersion"] != version
        if conflict:
            raise kopf.TemporaryError("the StoreMigration changed while it was reconciled; "
                                      "planning again from the new version",
                                      delay=OperatorSettings().conflict_delay) from None
        raise


def _post(obj: dict[str, Any], events: list[Event]) -> None:
    for ev in events:
        kopf.event(cast(kopf.Body, obj), type=ev.type, reason=ev.reason, message=ev.message[:1000])


async def _admin_token(spec: MigrationSpec, ns: str) -> str | None:
    ref = spec.admin_token_secret
    if ref is None:
        return None
    return await asyncio.to_thread(cluster.secret_value, ns, ref.name, ref.key)


async def _apply(p: Plan, spec: MigrationSpec, owner: dict[str, Any], ns: str,
                 dep: dict[str, Any] | None, token: str | None,
                 pods: tuple[PodObservation, ...], logger: Logger) -> None:
    """ConfigMap first (a pod that restarts boots with it), then the Deployment (the env at
    adoption or Cleanup only; replicas and strategy around cutover), then every pod that
    has not confirmed, then the Jobs; the pods' read-backs go into the status about to be
    written."""
    if p.switches is not None:
        await asyncio.to_thread(cluster.write_config_map, ns, p.switches.config_map,
                                dict(p.switches.data), owner)
    if (p.env_changed or p.shape_changed) and dep is not None:
        await asyncio.to_thread(cluster.patch_env, dep, spec.container, p.env_set, p.env_remove,
                                p.env_adopt, p.switches.config_map if p.switches else None,
                                p.replicas, p.strategy)
        logger.info("Deployment %s: env set %s, removed %s, adopted %s; replicas %s, "
                    "strategy %s", spec.deployment, p.env_set, p.env_remove, p.env_adopt,
                    p.replicas, p.strategy)
    if p.switches is not None and p.pod_targets:
        answers = await podswitches.apply(p.pod_targets, p.switches, token,
                                          OperatorSettings().switch_timeout)
        for pod in answers:
            logger.info("switches %s on pod %s: %s", p.switches.revision, pod.name,
                        pod.error or f"confirmed {pod.desired_revision}")
        p.status = after_apply(p.status, merge(pods, answers), p.switches,
                               datetime.datetime.now(tz=datetime.UTC))
    for req in p.jobs:
        manifest = cluster.job_manifest(req, ns, owner)
        if await asyncio.to_thread(cluster.create_job, manifest):
            logger.info("created %s Job %s", req.kind, req.name)


async def reconcile(ns: str, name: str, uid: str, logger: Logger,
                    raise_permanent: bool) -> None:
    lock = _locks.setdefault(uid, asyncio.Lock())
    settings = OperatorSettings()
    retry = settings.retry_delay
    async with lock:
        try:
            obj = await asyncio.to_thread(cluster.read_migration, ns, name)
        except TRANSIENT as e:
            raise kopf.TemporaryError(f"cannot read the StoreMigration: {e}",
                                      delay=retry) from None
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            return
        now = datetime.datetime.now(tz=datetime.UTC)
        old = {k: v for k, v in (obj.get("status") or {}).items() if k != "kopf"}
        generation = int(obj["metadata"].get("generation") or 0)
        spec_doc = obj.get("spec") or {}
        parsed, error = effective_spec(spec_doc, old)
        if parsed is None:
            bad = invalid_spec_plan(old, error or "", now, generation)
            await write_status(obj, bad.status)
            if old.get("reason") != "InvalidSpec" or old.get("message") != error:
                _post(obj, bad.events)
            if raise_permanent:
                raise kopf.PermanentError(f"invalid spec: {error}")
            return
        try:
            dep = await asyncio.to_thread(cluster.read_deployment, ns, parsed.deployment)
            jobs = await asyncio.to_thread(cluster.observe_jobs, ns, name)
        except TRANSIENT as e:
            raise kopf.TemporaryError(f"cannot observe the cluster: {e}",
                                      delay=retry) from None
        readings = None
        if gates_due(parsed, old, now):
            readings = await gate_source_for(parsed.gates, settings).read(parsed.gates)
        backfill: tuple[BackfillSample, ...] = ()
        if ((old.get("jobs") or {}).get("backfill") or {}).get("state") in ("Pending",
                                                                            "Running"):
            backfill = await read_backfill(parsed.gates, settings)
        try:
            token = await _admin_token(parsed, ns)
            pods: tuple[PodObservation, ...] = ()
            if dep is not None and pods_serve_switches(old.get("phase")):
                listed = await asyncio.to_thread(cluster.api_pods, ns, dep, parsed.container)
                pods = await podswitches.observe(listed, token, settings.switch_timeout)
        except TRANSIENT as e:
            raise kopf.TemporaryError(f"cannot observe the API pods: {e}",
                                      delay=retry) from None
        p = plan(parsed, old, readings, jobs, cluster.observe_deployment(dep, parsed.container),
                 now, name=name, generation=generation, invalid=error, pods=pods,
                 backfill=backfill)
        try:
            await _apply(p, parsed, obj, ns, dep, token, pods, logger)
        except TRANSIENT as e:
            raise kopf.TemporaryError(f"cannot apply the plan: {e}", delay=retry) from None
        await write_status(obj, p.status)
        _post(obj, p.events)
        metrics.record(ns, name, old, p.status)
        logger.debug("reconciled: %s", p.status.get("message"))
        if error is not None and raise_permanent:
            raise kopf.PermanentError(f"invalid spec: {error}; the last valid spec still "
                                      "drives the gates")


def _identity(body: kopf.Body) -> tuple[str, str, str]:
    meta = body["metadata"]
    return meta["namespace"], meta["name"], meta["uid"]


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
async def on_change(body: kopf.Body, logger: Logger, **_: Any) -> None:
    await reconcile(*_identity(body), logger, raise_permanent=True)


@kopf.timer(GROUP, VERSION, PLURAL, interval=TIMER_INTERVAL, initial_delay=TIMER_INTERVAL)
async def on_timer(body: kopf.Body, logger: Logger, **_: Any) -> None:
    await reconcile(*_identity(body), logger, raise_permanent=False)
