"""Switches set outside the operator, and why it must not simply set its own again.

The rollback script (api/scripts/rollback_postgres_migration.py) and a person with the
admin token can switch the API pods without the operator. When such a switch turned a
store's writes off (dual-write off, or memory writes off while memory is trusted), every
write since then reached one store only. Re-applying the phase the operator remembers
would then serve reads from, or trust, a store that misses those writes: a record lost
to every reader. So the operator holds: it applies nothing, says Degraded with the pods'
names, and goes on only when spec.retryToken changes (in the same reconcile that saw the
switches, too: a person who restarts the operator with a new token has seen them), from
DualWrite with reads on memory and a new backfill and verify (a newer-wins copy, safe to
repeat). In PostgresPrimary, where memory missed the writes PostgreSQL took as primary,
it keeps holding after the retry: the way back is the operator's own rollback (lower
targetPhase), which rebuilds memory from PostgreSQL first.

A pod's switches are the operator's when their revision label is one it writes
(`<migration>-<phase>-...`, core.switchset); a pod that booted from a ConfigMap someone
else wrote reports no label.
"""

from __future__ import annotations

from collections.abc import Sequence

from .context import Context
from .spec import Phase
from .status import OutsideChange
from .switchset import DesiredSwitches, PodObservation

WRITE_SWITCHES = ("dual_write", "memory_writes")
WATCHED = (Phase.DualWrite, Phase.ReadSwitchover, Phase.PostgresPrimary)


def _wanted_on(desired: DesiredSwitches) -> list[tuple[str, str]]:
    """(scope, switch) pairs the operator wants on; scope "all" or a store's name."""
    return [(scope, switch) for scope, patch in desired.body.items() if isinstance(patch, dict)
            for switch in WRITE_SWITCHES if patch.get(switch) is True]


def _turned_off(key: str, value: str, scope: str, switch: str) -> bool:
    store, _, name = key.rpartition(".")
    return name == switch and value == "false" and scope in ("all", store)


def changed_outside(pods: Sequence[PodObservation], migration: str,
                    desired: DesiredSwitches) -> list[str]:
    """Ready pods running switches the operator did not write that turn off, for a store
    it migrates, a write switch it wants on (a store outside the migration is left be)."""
    wanted = _wanted_on(desired)
    found = []
    for pod in pods:
        if not pod.ready or pod.error is not None or not pod.switches:
            continue
        if (pod.desired_revision or "").startswith(f"{migration}-"):
            continue
        if any(_turned_off(key, value, scope, switch)
               for key, value in pod.switches.items() for scope, switch in wanted):
            found.append(pod.name)
    return sorted(found)


def hold_for_outside_change(ctx: Context) -> bool:
    """Record a new outside change, hold while one stands, resume on spec.retryToken.
    True when this reconcile must apply nothing."""
    st = ctx.st
    if ctx.phase in WATCHED and st.outside_change is None:
        pods = changed_outside(ctx.seen.pods, ctx.name, ctx.switches())
        if pods:
            message = (f"pods {', '.join(pods)} run switches set outside the operator that "
                       f"turn writes off, while it is in {st.phase}: writes since then may "
                       "be in one store only")
            st.outside_change = OutsideChange(time=ctx.now, pods=pods, message=message)
            ctx.event("Warning", "SwitchesChangedOutsideOperator", message)
    change = st.outside_change
    if change is None:
        return False
    if ctx.token_time() >= change.time and ctx.phase != Phase.PostgresPrimary:
        st.outside_change = None
        if st.read_percent:
            ctx.set_percent(0, "Rollback", "switches were changed outside the operator")
        ctx.enter(Phase.DualWrite, "spec.retryToken changed after switches were set outside "
                  "the operator: a new backfill and verify before reads move again")
        return False
    how = ("lower spec.targetPhase to roll back through the operator (memory is rebuilt "
           "from PostgreSQL)" if ctx.phase == Phase.PostgresPrimary else
           "change spec.retryToken to go on from DualWrite with a new backfill")
    ctx.degrade("SwitchesChangedOutsideOperator",
                f"{change.message}; nothing is applied until you {how}")
    ctx.hold_switches = True
    return True
