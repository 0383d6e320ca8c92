"""The live half of applying a switch set: PUT /api/admin/switches to each API pod's own
address, then GET it back. What each pod answered becomes a PodObservation, so the planner
(next reconcile) and status (this one, through core.livestatus) compare it with what was
desired. A pod that cannot be reached is an observation with an error, never an exception:
it is named in status and retried.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from .core.switchset import DesiredSwitches, PodObservation

PATH = "/api/admin/switches"


def _observed(pod: PodObservation, doc: Mapping[str, Any]) -> PodObservation:
    switches = {f"{store}.{k}": json.dumps(v) for store, values in
                sorted((doc.get("stores") or {}).items()) for k, v in sorted(values.items())}
    return PodObservation(pod.name, pod.address, pod.ready, doc.get("desired_revision"),
                          doc.get("fingerprint"), switches, doc.get("last_error") or None)


def _failed(pod: PodObservation, what: str) -> PodObservation:
    return PodObservation(pod.name, pod.address, pod.ready, pod.desired_revision,
                          pod.fingerprint, pod.switches, what[:300])


def _headers(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


async def read_pod(client: httpx.AsyncClient, pod: PodObservation, token: str | None
                   ) -> PodObservation:
    if not pod.ready or pod.address is None:
        return pod
    try:
        resp = await client.get(f"http://{pod.address}{PATH}", headers=_headers(token))
    except httpx.HTTPError as e:
        return _failed(pod, f"GET {PATH}: {type(e).__name__}")
    if resp.status_code != 200:
        return _failed(pod, f"GET {PATH}: HTTP {resp.status_code}")
    return _observed(pod, resp.json())


async def apply_pod(client: httpx.AsyncClient, pod: PodObservation, desired: DesiredSwitches,
                    token: str | None) -> PodObservation:
    """PUT the set, then GET it back (the confirmation is the read-back, not the PUT)."""
    assert pod.address is not None
    try:
        resp = await client.put(f"http://{pod.address}{PATH}", headers=_headers(token),
                                json=dict(desired.body))
    except httpx.HTTPError as e:
        return _failed(pod, f"PUT {PATH}: {type(e).__name__}")
    if resp.status_code != 200:
        detail = resp.text[:200]
        return _failed(pod, f"PUT {PATH}: HTTP {resp.status_code}: {detail}")
    return await read_pod(client, pod, token)


async def observe(pods: Sequence[PodObservation], token: str | None, seconds: float
                  ) -> tuple[PodObservation, ...]:
    async with httpx.AsyncClient(timeout=seconds) as client:
        return tuple(await asyncio.gather(*(read_pod(client, p, token) for p in pods)))


async def apply(pods: Sequence[PodObservation], desired: DesiredSwitches, token: str | None,
                seconds: float) -> tuple[PodObservation, ...]:
    async with httpx.AsyncClient(timeout=seconds) as client:
        return tuple(await asyncio.gather(*(apply_pod(client, p, desired, token)
                                            for p in pods)))
