"""The migration's counters, reached through app.metrics.

The router and the consistency check record what the operator's gates read
(dual-write failures, the copy-retry queue, reads per backend, fallbacks, shadow-read
results, consistency results, the live switches). app.metrics owns the metric objects;
this module names what the migration records, so the router and the checks never touch
a metric object themselves.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from app import metrics


@asynccontextmanager
async def postgres_copy(store: str, operation: str) -> AsyncIterator[None]:
    """Count and time a second write as a PostgreSQL store operation, so copy failures
    reach the error-rate gate (storemigration_store_operations_total) as well."""
    async with metrics.observe(store, "postgres", operation):
        yield


def dual_write_failure(store: str, operation: str) -> None:
    metrics.DUAL_WRITE_FAILURES.labels(store, operation).inc()


def copy_retry_depth(store: str, depth: int) -> None:
    metrics.COPY_RETRY_DEPTH.labels(store).set(float(depth))


def copy_retried(store: str, result: str) -> None:
    metrics.COPY_RETRIES.labels(store, result).inc()


def read_served(store: str, backend: str) -> None:
    metrics.READS.labels(store, backend).inc()


def read_fallback(store: str) -> None:
    metrics.READ_FALLBACKS.labels(store).inc()


def read_percent_configured(store: str, percent: float) -> None:
    metrics.READ_PERCENT_CONFIGURED.labels(store).set(percent)


def switches_configured(store: str, read_percent: int, dual_write: bool,
                        memory_writes: bool) -> None:
    read_percent_configured(store, float(read_percent))
    metrics.DUAL_WRITE_CONFIGURED.labels(store).set(float(dual_write))
    metrics.MEMORY_WRITES_CONFIGURED.labels(store).set(float(memory_writes))


def switches_actual(store: str, read_percent: int, dual_write: bool,
                    memory_writes: bool) -> None:
    metrics.READ_PERCENT_ACTUAL.labels(store).set(float(read_percent))
    metrics.DUAL_WRITE_ACTUAL.labels(store).set(float(dual_write))
    metrics.MEMORY_WRITES_ACTUAL.labels(store).set(float(memory_writes))


def switch_revision(revision: int) -> None:
    metrics.SWITCH_REVISION.set(float(revision))


def shadow_read(store: str, result: str) -> None:
    metrics.SHADOW_READS.labels(store, result).inc()


def consistency_result(store: str, result: str, mismatch_ratio: float | None, now: float) -> None:
    metrics.CONSISTENCY_CHECKS.labels(store, result).inc()
    if mismatch_ratio is not None:
        metrics.CONSISTENCY_MISMATCH_RATIO.labels(store).set(mismatch_ratio)
    metrics.CONSISTENCY_LAST_RUN.labels(store).set(now)
