"""The Deployment's shape around cutover: how many API pods, and how they are replaced.

While memory is written (phases 0-2) there is one pod and it is replaced with Recreate:
two processes must never hold memory's journal at once. Once every pod confirmed
PostgresPrimary (memory writes off, PostgreSQL trusted), pods hold nothing of their own,
so the operator sets RollingUpdate with maxUnavailable 0 and maxSurge 1 (a new pod is
ready before an old one goes: the Cleanup restart serves throughout) and spec.replicas.
A rollback out of PostgresPrimary first takes the Deployment back to one Recreate pod,
waits until the others are gone, and only then turns memory writes on.

Pure: the planner asks for a shape; the handlers patch spec.replicas and spec.strategy
(with the env, in one guarded JSON patch).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .context import Context
from .spec import Phase
from .switchset import confirmation

ROLLING: Mapping[str, Any] = {"type": "RollingUpdate",
                              "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
RECREATE: Mapping[str, Any] = {"type": "Recreate"}


def _same(have: Mapping[str, Any], want: Mapping[str, Any]) -> bool:
    """Strategies compared as Kubernetes holds them (maxSurge may be 1 or "1")."""
    if have.get("type") != want.get("type"):
        return False
    if want.get("type") != "RollingUpdate":
        return True
    got, need = have.get("rollingUpdate") or {}, want["rollingUpdate"]
    return all(str(got.get(k)) == str(v) for k, v in need.items())


def request(ctx: Context, replicas: int | None, strategy: Mapping[str, Any]) -> bool:
    """Ask for this shape; True when the Deployment already has it and runs it (every
    replica updated and available, no old pod left)."""
    dep = ctx.dep
    if replicas is not None and dep.replicas != replicas:
        ctx.plan.replicas = replicas
    if not _same(dep.strategy, strategy):
        ctx.plan.strategy = dict(strategy)
    if not ctx.plan.shape_changed:
        return dep.observed()
    ctx.event("Normal", "DeploymentShape", f"Deployment {dep.name}: replicas "
              f"{ctx.plan.replicas or dep.replicas}, strategy {strategy['type']}"
              + (" (maxUnavailable 0, maxSurge 1)" if strategy is ROLLING else "")
              + f", in {ctx.st.phase}")
    return False


def scale_out(ctx: Context) -> None:
    """From PostgresPrimary on: RollingUpdate and spec.replicas, once every pod confirmed
    that memory writes are off (in PostgresPrimary; later phases never write memory)."""
    if ctx.phase < Phase.PostgresPrimary:
        return
    if ctx.phase == Phase.PostgresPrimary and not confirmation(ctx.seen.pods,
                                                                ctx.switches())[0]:
        return
    request(ctx, ctx.spec.replicas, ROLLING)


def scaled_out(ctx: Context) -> bool:
    """PostgresPrimary's shape is in place and rolled out (Cleanup's restart then rolls
    with maxSurge 1, and spec.replicas serve the hold); else status says why it waits."""
    dep, want = ctx.dep, ctx.spec.replicas
    if _same(dep.strategy, ROLLING) and (want is None or dep.replicas == want) \
            and dep.observed():
        return True
    ctx.wait_unless_said("ScalingOut", f"waiting for Deployment {dep.name} to run "
                         f"{want or dep.replicas} replica(s) with RollingUpdate "
                         "(maxUnavailable 0, maxSurge 1) before cleanup")
    return False


def scale_in(ctx: Context) -> bool:
    """Before a rollback out of PostgresPrimary: one Recreate pod. True once one pod runs
    alone (the strategy may be patched in the same reconcile: the Deployment patch is
    applied before any pod is told to write memory); until then status says why it waits."""
    request(ctx, 1, RECREATE)
    if ctx.plan.replicas is None and (ctx.dep.status_replicas or 0) <= 1:
        return True
    ctx.wait("ScalingIn", f"rolling back from PostgresPrimary turns memory writes back on: "
             f"Deployment {ctx.dep.name} goes to 1 replica with the Recreate strategy first "
             f"(it has {ctx.dep.replicas}, {ctx.dep.status_replicas or 0} running)")
    return False
