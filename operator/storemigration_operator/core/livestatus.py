"""Configured against actual, per pod, in status: what the planner saw before it acted and
what the pods answered after the apply layer PUT the switches (read back with GET).

Pure: the handler calls `after_apply` with the read-backs before its one status write, so
status names every pod that has not confirmed (it is retried on the next reconcile).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from .status import PodSwitches, SwitchState, read_status
from .switchset import DesiredSwitches, PodObservation, confirmation


def pod_entries(pods: Sequence[PodObservation], desired: DesiredSwitches, now: datetime,
                previous: Sequence[PodSwitches] | None = None) -> list[PodSwitches]:
    """Each pod's entry; confirmedAt is kept from `previous` while the pod still confirms
    the same revision, so it says when the switch took effect there."""
    before = {e.name: e for e in previous or () if e.confirmed
              and e.desired_revision == desired.revision}
    entries = []
    for p in sorted(pods, key=lambda p: p.name):
        confirmed = p.ready and p.confirms(desired)
        since = before[p.name].confirmed_at if p.name in before else None
        entries.append(PodSwitches(
            name=p.name, switches=dict(p.switches), observed_at=now, address=p.address,
            desired_revision=p.desired_revision, fingerprint=p.fingerprint,
            confirmed=confirmed, confirmed_at=(since or now) if confirmed else None,
            error=p.error if p.ready else p.error or "not ready"))
    return entries


def switch_state(pods: Sequence[PodObservation], desired: DesiredSwitches) -> SwitchState:
    done, pending = confirmation(pods, desired)
    return SwitchState(config_map=desired.config_map, revision=desired.revision,
                       desired=dict(desired.data), confirmed=done, pending=pending)


def merge(seen: Sequence[PodObservation], answered: Sequence[PodObservation]
          ) -> list[PodObservation]:
    """The pods as observed, each replaced by its read-back when it was PUT to."""
    by_name = {p.name: p for p in seen}
    by_name.update({p.name: p for p in answered})
    return list(by_name.values())


def after_apply(status: Mapping[str, Any], pods: Sequence[PodObservation],
                desired: DesiredSwitches, now: datetime) -> dict[str, Any]:
    st = read_status(status)
    st.pods = pod_entries(pods, desired, now, st.pods)
    st.switches = switch_state(pods, desired)
    kopf_part = dict(status).get("kopf")
    wire = st.wire()
    if kopf_part is not None:
        wire["kopf"] = kopf_part
    return wire
