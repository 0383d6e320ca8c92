"""Where gate readings come from: Prometheus (production) or a JSON file (tests, drills).

OPERATOR_GATE_READINGS_FILE names a file of readings that stands in for Prometheus; otherwise
spec.gates.prometheusURL (or PROMETHEUS_URL) is queried with prometheus-api-client. With
neither, every evaluation is an Error, which holds: no data never advances a step.

A Prometheus that accepts connections and never answers must not freeze the operator: every
HTTP request has a timeout (OPERATOR_PROMETHEUS_TIMEOUT, 10 s), the queries run on a small
executor of their own, so the default executor the Kubernetes calls use cannot fill up with
stuck threads, and a URL whose previous evaluation is still running answers Error at once
instead of queueing another thread behind it.
"""

from __future__ import annotations

import asyncio
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .core.backfill_live import RATE_QUERY, RECORDS_QUERY, BackfillSample, samples_from
from .core.gates import GateReadings, GateSource
from .core.promresult import ResultShapeError, sample_value
from .core.spec import Gates
from .settings import OperatorSettings

FIELDS = {"errorRate": "error_rate", "p50": "p50_seconds", "p95": "p95_seconds",
          "p99": "p99_seconds", "mismatchRatio": "mismatch_ratio", "requests": "requests"}
QUERY_TIMEOUT = OperatorSettings().prometheus_timeout
_EXECUTOR = ThreadPoolExecutor(max_workers=2, thread_name_prefix="gate-query")
_busy: set[str] = set()
_busy_lock = threading.Lock()


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
    def __init__(self, url: str, timeout: float = QUERY_TIMEOUT) -> None:
        self.url, self.timeout = url, timeout

    def _query_all(self, gates: Gates) -> GateReadings:
        from prometheus_api_client import PrometheusConnect
        from urllib3.util.retry import Retry

        # No HTTP retries: the next evaluation is the retry, and one query must end within
        # its timeout (urllib3's default retries would multiply it).
        prom = PrometheusConnect(url=self.url, disable_ssl=True, timeout=self.timeout,
                                 retry=Retry(total=0, raise_on_status=False))
        values: dict[str, float | None] = {}
        try:
            for name, field in FIELDS.items():
                values[field] = sample_value(prom.custom_query(query=gates.query(name)), name)
        finally:
            prom.close()
        return GateReadings(error_rate=values["error_rate"], p50_seconds=values["p50_seconds"],
                            p95_seconds=values["p95_seconds"], p99_seconds=values["p99_seconds"],
                            mismatch_ratio=values["mismatch_ratio"], requests=values["requests"])

    def _guarded(self, gates: Gates) -> GateReadings:
        try:
            return self._query_all(gates)
        except ResultShapeError as e:
            return GateReadings(error=str(e))
        finally:
            with _busy_lock:
                _busy.discard(self.url)

    async def read(self, gates: Gates) -> GateReadings:
        with _busy_lock:
            if self.url in _busy:
                return GateReadings(error="the previous Prometheus query is still running")
            _busy.add(self.url)
        try:
            future = asyncio.get_running_loop().run_in_executor(_EXECUTOR, self._guarded, gates)
        except RuntimeError:
            with _busy_lock:
                _busy.discard(self.url)
            raise
        try:
            return await asyncio.wait_for(future, self.timeout * (len(FIELDS) + 1))
        except Exception as e:  # noqa: BLE001 - any failure to read is an Error verdict
            return GateReadings(error=f"{type(e).__name__}: {str(e)[:200]}")


class NoGateSource:
    async def read(self, gates: Gates) -> GateReadings:
        return GateReadings(error="no Prometheus configured (spec.gates.prometheusURL)")


def _query_backfill(url: str, timeout: float) -> tuple[BackfillSample, ...]:
    from prometheus_api_client import PrometheusConnect
    from urllib3.util.retry import Retry

    prom = PrometheusConnect(url=url, disable_ssl=True, timeout=timeout,
                             retry=Retry(total=0, raise_on_status=False))
    try:
        return samples_from(prom.custom_query(query=RECORDS_QUERY),
                            prom.custom_query(query=RATE_QUERY))
    finally:
        prom.close()


async def read_backfill(gates: Gates, settings: OperatorSettings) -> tuple[BackfillSample, ...]:
    """The API's backfill gauges from Prometheus, for status.backfill while the Job runs.
    Informative only (no step waits on them): any failure to read is no samples."""
    url = gates.prometheus_url or settings.prometheus_url
    if settings.gate_readings_file is not None or not url:
        return ()
    timeout = settings.prometheus_timeout
    try:
        future = asyncio.get_running_loop().run_in_executor(_EXECUTOR, _query_backfill, url,
                                                            timeout)
        return await asyncio.wait_for(future, timeout * 3)
    except Exception:  # noqa: BLE001 - progress is shown when it can be read
        return ()


def gate_source_for(gates: Gates, settings: OperatorSettings) -> GateSource:
    if settings.gate_readings_file is not None:
        return FileGateSource(settings.gate_readings_file)
    url = gates.prometheus_url or settings.prometheus_url
    return PrometheusGateSource(url, settings.prometheus_timeout) if url else NoGateSource()
