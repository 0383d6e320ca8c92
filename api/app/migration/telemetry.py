"""The migration's counters, reached through app.metrics.

The router and the consistency check record what the operator's gates read
(dual-write failures, the copy-retry queue, reads per backend, fallbacks, shadow-read
results, consistency results). app.metrics owns the metric objects; this module is the
one place that knows their attribute names, so a missing metrics module never breaks a
request.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

log = logging.getLogger("app.migration")


def _metric(name: str) -> Any | None:
    try:
        metrics = importlib.import_module("app.metrics")
    except ImportError:
        return None
    return getattr(metrics, name, None)


def _inc(name: str, amount: float = 1.0, **labels: str) -> None:
    metric = _metric(name)
    if metric is not None:
        metric.labels(**labels).inc(amount)


def _set(name: str, value: float, **labels: str) -> None:
    metric = _metric(name)
    if metric is not None:
        metric.labels(**labels).set(value)


@asynccontextmanager
async def postgres_copy(store: str, operation: str) -> AsyncIterator[None]:
    """Count and time a second write as a PostgreSQL store operation, so copy failures
    reach the error-rate gate (storemigration_store_operations_total) as well."""
    observe = _metric("observe")
    if observe is None:
        yield
        return
    async with observe(store, "postgres", operation):
        yield


def dual_write_failure(store: str, operation: str) -> None:
    _inc("DUAL_WRITE_FAILURES", store=store, operation=operation)


def copy_retry_depth(store: str, depth: int) -> None:
    _set("COPY_RETRY_DEPTH", float(depth), store=store)


def copy_retried(store: str, result: str) -> None:
    _inc("COPY_RETRIES", store=store, result=result)


def read_served(store: str, backend: str) -> None:
    _inc("READS", store=store, backend=backend)


def read_fallback(store: str) -> None:
    _inc("READ_FALLBACKS", store=store)


def read_percent_configured(store: str, percent: float) -> None:
    _set("READ_PERCENT_CONFIGURED", percent, store=store)


def switches_configured(store: str, read_percent: int, dual_write: bool,
                        memory_writes: bool) -> None:
    read_percent_configured(store, float(read_percent))
    _set("DUAL_WRITE_CONFIGURED", float(dual_write), store=store)
    _set("MEMORY_WRITES_CONFIGURED", float(memory_writes), store=store)


def switches_actual(store: str, read_percent: int, dual_write: bool,
                    memory_writes: bool) -> None:
    _set("READ_PERCENT_ACTUAL", float(read_percent), store=store)
    _set("DUAL_WRITE_ACTUAL", float(dual_write), store=store)
    _set("MEMORY_WRITES_ACTUAL", float(memory_writes), store=store)


def switch_revision(revision: int) -> None:
    metric = _metric("SWITCH_REVISION")
    if metric is not None:
        metric.set(float(revision))


def shadow_read(store: str, result: str) -> None:
    _inc("SHADOW_READS", store=store, result=result)


def consistency_result(store: str, result: str, mismatch_ratio: float | None, now: float) -> None:
    _inc("CONSISTENCY_CHECKS", store=store, result=result)
    if mismatch_ratio is not None:
        _set("CONSISTENCY_MISMATCH_RATIO", mismatch_ratio, store=store)
    _set("CONSISTENCY_LAST_RUN", now, store=store)
