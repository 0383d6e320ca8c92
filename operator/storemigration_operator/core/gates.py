"""Gate readings and their verdicts.

A reading is four numbers from Prometheus (or none, or an error). The verdict is one of the
four results docs/ARCHITECTURE.md names: Failed rolls back, Inconclusive and Error only hold.
Keeping "no data" apart from "bad data" is the point: an idle service must never be rolled
back, and an unreachable Prometheus must never wave a step through.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Protocol

from .spec import Gates
from .status import GateCheck


class GateResult(enum.StrEnum):
    Successful = "Successful"
    Failed = "Failed"
    Inconclusive = "Inconclusive"
    Error = "Error"


@dataclass(frozen=True)
class GateReadings:
    """Values read for one evaluation; None means the query returned no data (or NaN)."""

    error_rate: float | None = None
    p95_seconds: float | None = None
    mismatch_ratio: float | None = None
    requests: float | None = None
    error: str | None = None


@dataclass(frozen=True)
class GateVerdict:
    result: GateResult
    reason: str


class GateSource(Protocol):
    """Where readings come from: Prometheus in production, a file in tests."""

    async def read(self, gates: Gates) -> GateReadings: ...


def clean(value: float | None) -> float | None:
    """NaN (0/0 rates on an idle service) counts as no data. +Inf is data: histogram_quantile
    answers +Inf when the quantile falls in the top bucket, i.e. requests slower than the
    largest bucket bound, which is above any ceiling."""
    if value is None or math.isnan(value):
        return None
    return value


def _check(gate: str, value: float | None, threshold: float, at_least: bool, gates: Gates
           ) -> GateCheck:
    if value is None:
        result = "NoData"
    else:
        passed = value >= threshold if at_least else value <= threshold
        result = "Passed" if passed else "Failed"
    return GateCheck(gate=gate, value=value, threshold=threshold,
                     comparison=">=" if at_least else "<=", result=result,
                     query=gates.query(gate))


def checks(readings: GateReadings, gates: Gates) -> list[GateCheck]:
    """Each gate's value beside its threshold and the PromQL that produced it."""
    return [
        _check("errorRate", clean(readings.error_rate), gates.error_rate_ceiling, False, gates),
        _check("p95", clean(readings.p95_seconds), gates.p95_ceiling_seconds, False, gates),
        _check("mismatchRatio", clean(readings.mismatch_ratio), gates.mismatch_ratio_ceiling,
               False, gates),
        _check("requests", clean(readings.requests), gates.min_requests, True, gates),
    ]


def evaluate(readings: GateReadings, gates: Gates) -> GateVerdict:
    if readings.error is not None:
        return GateVerdict(GateResult.Error, f"metrics unreachable: {readings.error}")
    error_rate, p95 = clean(readings.error_rate), clean(readings.p95_seconds)
    mismatch, requests = clean(readings.mismatch_ratio), clean(readings.requests)
    failures = []
    if error_rate is not None and error_rate > gates.error_rate_ceiling:
        failures.append(f"error rate {error_rate:.4f} > {gates.error_rate_ceiling}")
    if p95 is not None and p95 > gates.p95_ceiling_seconds:
        shown = "+Inf (above the top histogram bucket)" if math.isinf(p95) else f"{p95:.3f}s"
        failures.append(f"p95 {shown} > {gates.p95_ceiling_seconds}s")
    if mismatch is not None and mismatch > gates.mismatch_ratio_ceiling:
        failures.append(f"shadow mismatch ratio {mismatch:.4f} > {gates.mismatch_ratio_ceiling}")
    if requests is None or requests < gates.min_requests:
        seen = "no data" if requests is None else f"{requests:g}"
        if failures:
            return GateVerdict(GateResult.Inconclusive,
                               f"traffic {seen} below minimum {gates.min_requests:g} "
                               f"(would have failed: {'; '.join(failures)})")
        return GateVerdict(GateResult.Inconclusive,
                           f"traffic {seen} below minimum {gates.min_requests:g}")
    if failures:
        return GateVerdict(GateResult.Failed, "; ".join(failures))
    if error_rate is None or p95 is None:
        return GateVerdict(GateResult.Inconclusive, "no data for error rate or p95")
    return GateVerdict(GateResult.Successful,
                       f"error rate {error_rate:.4f} <= {gates.error_rate_ceiling}, "
                       f"p95 {p95:.3f}s <= {gates.p95_ceiling_seconds}s")
