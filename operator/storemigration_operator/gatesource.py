"""Where gate readings come from: Prometheus (production) or a JSON file (tests, drills).

OPERATOR_GATE_READINGS_FILE names a file of readings that stands in for Prometheus; otherwise
spec.gates.prometheusURL (or PROMETHEUS_URL) is queried with prometheus-api-client in a thread.
With neither, every evaluation is an Error, which holds: no data never advances a step.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

from .core.gates import GateReadings, GateSource
from .core.spec import Gates

FIELDS = {"errorRate": "error_rate", "p95": "p95_seconds", "mismatchRatio": "mismatch_ratio",
          "requests": "requests"}


class FileGateSource:
    def __init__(self, path: Path) -> None:
        self.path = path

    async def read(self, gates: Gates) -> GateReadings:
        try:
            doc: dict[str, Any] = json.loads(self.path.read_text())
        except (OSError, ValueError) as e:
            return GateReadings(error=f"readings file unreadable: {e}")
        return GateReadings(**{k: doc.get(k) for k in (*FIELDS.values(), "error")})


class PrometheusGateSource:
    def __init__(self, url: str) -> None:
        self.url = url

    def _query_all(self, gates: Gates) -> GateReadings:
        from prometheus_api_client import PrometheusConnect

        prom = PrometheusConnect(url=self.url, disable_ssl=True)
        values: dict[str, float | None] = {}
        for name, field in FIELDS.items():
            result = prom.custom_query(query=gates.query(name))
            values[field] = float(result[0]["value"][1]) if result else None
        return GateReadings(error_rate=values["error_rate"], p95_seconds=values["p95_seconds"],
                            mismatch_ratio=values["mismatch_ratio"], requests=values["requests"])

    async def read(self, gates: Gates) -> GateReadings:
        try:
            return await asyncio.wait_for(asyncio.to_thread(self._query_all, gates), 20)
        except Exception as e:  # noqa: BLE001 - any failure to read is an Error verdict
            return GateReadings(error=f"{type(e).__name__}: {str(e)[:200]}")


class NoGateSource:
    async def read(self, gates: Gates) -> GateReadings:
        return GateReadings(error="no Prometheus configured (spec.gates.prometheusURL)")


def gate_source_for(gates: Gates) -> GateSource:
    path = os.environ.get("OPERATOR_GATE_READINGS_FILE")
    if path:
        return FileGateSource(Path(path))
    url = gates.prometheus_url or os.environ.get("PROMETHEUS_URL")
    return PrometheusGateSource(url) if url else NoGateSource()
