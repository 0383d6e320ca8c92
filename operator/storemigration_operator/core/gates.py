"""Gate readings and their verdicts.

A reading is six numbers from Prometheus (error rate, p50/p95/p99 latency, shadow mismatch
ratio, traffic) (or none, or an error). The verdict is one of the
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
    p50_seconds: float | None = None
    p99_seconds: float | None = None
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


def latencies(readings: GateReadings, gates: Gates
              ) -> list[tuple[str, float | None, float | None]]:
    """(gate, value, ceiling or None) for p50, p95 and p99; p50 and p99 gate only when
    their ceiling is set."""
    return [("p50", clean(readings.p50_seconds), gates.p50_ceiling_seconds),
            ("p95", clean(readings.p95_seconds), gates.p95_ceiling_seconds),
            ("p99", clean(readings.p99_seconds), gates.p99_ceiling_seconds)]


def checks(readings: GateReadings, gates: Gates) -> list[GateCheck]:
    """Each gate's value beside its threshold and the PromQL that produced it."""
    return [
        _check("errorRate", clean(readings.error_rate), gates.error_rate_ceiling, False, gates),
        *(_check(gate, value, ceiling, False, gates)
          for gate, value, ceiling in latencies(readings, gates) if ceiling is not None),
        _check("mismatchRatio", clean(readings.mismatch_ratio), gates.mismatch_ratio_ceiling,
               False, gates),
        _check("requests", clean(readings.requests), gates.min_requests, True, gates),
    ]


def _seconds(value: float) -> str:
    return "+Inf (above the top histogram bucket)" if math.isinf(value) else f"{value:.3f}s"


def evaluate(readings: GateReadings, gates: Gates) -> GateVerdict:
    if readings.error is not None:
        return GateVerdict(GateResult.Error, f"metrics unreachable: {readings.error}")
    error_rate = clean(readings.error_rate)
    mismatch, requests = clean(readings.mismatch_ratio), clean(readings.requests)
    gated: list[tuple[str, float | None, float]] = [
        (g, v, c) for g, v, c in latencies(readings, gates) if c is not None]
    failures = []
    if error_rate is not None and error_rate > gates.error_rate_ceiling:
        failures.append(f"error rate {error_rate:.4f} > {gates.error_rate_ceiling}")
    failures += [f"{gate} {_seconds(value)} > {ceiling}s" for gate, value, ceiling in gated
                 if value is not None and value > ceiling]
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
    missing = ["error rate"] if error_rate is None else []
    missing += [gate for gate, value, _ in gated if value is None]
    if error_rate is None or missing:
        return GateVerdict(GateResult.Inconclusive, f"no data for {' or '.join(missing)}")
    held = ", ".join(f"{gate} {value:.3f}s <= {ceiling}s" for gate, value, ceiling in gated
                     if value is not None)
    return GateVerdict(GateResult.Successful,
                       f"error rate {error_rate:.4f} <= {gates.error_rate_ceiling}, {held}")
