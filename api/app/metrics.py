"""Every Prometheus metric the service exports, in one registry, with fixed names.

The migration router, the chart's alert rules and the operator's gate queries are all
written against these exact names and labels, so they live here and nowhere else
(app.migration.telemetry records the migration's through them). Store calls are timed by
`InstrumentedStore`, a thin wrapper that pre-resolves its labelled children once so the
hot path costs two clock reads, one histogram observation and one counter increment.

A store call counts as outcome="error" only when the store failed (an exception that
is not a client-facing StoreError below 500): a 404 or 409 is the store answering
correctly, and alerting on it would page on user typos.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from time import perf_counter
from typing import Any, Generic, TypeVar, cast

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from app.errors import StoreError

disable_created_metrics()  # type: ignore[no-untyped-call]

REGISTRY = CollectorRegistry(auto_describe=True)

# Fine where this API's p95 lives (1-20 ms): a histogram's quantile is interpolated inside
# a bucket, so with 2.5 and 5 ms as neighbours a p95 was only known to within 2x, too
# coarse to set a client's p95 against it.
HTTP_BUCKETS = (
    0.0005, 0.001, 0.0015, 0.002, 0.0025, 0.003, 0.004, 0.005, 0.0065, 0.008, 0.01,
    0.015, 0.02, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip
STORE_BUCKETS = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip

GC_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
GC_PAUSES = Histogram(
    "storemigration_gc_pause_seconds",
    "Stop-the-world pauses of CPython's cyclic garbage collector, by generation (0-2).",
    ["generation"],
    buckets=GC_BUCKETS,
    registry=REGISTRY,
)
GC_FROZEN = Gauge(
    "storemigration_gc_frozen_objects",
    "Objects moved out of the collector's reach by app.gc_policy (gc.get_freeze_count()).",
    registry=REGISTRY,
)
GC_FREEZES = Counter(
    "storemigration_gc_freezes_total",
    "Times app.gc_policy froze survivors: once at start, then after each long full one.",
    registry=REGISTRY,
)

HTTP_REQUESTS = Counter(
    "storemigration_http_requests_total",
    "HTTP requests served, by route template and status code.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
HTTP_DURATION = Histogram(
    "storemigration_http_request_duration_seconds",
    "HTTP request latency, by route template.",
    ["method", "route"],
    buckets=HTTP_BUCKETS,
    registry=REGISTRY,
)
STORE_OPERATIONS = Counter(
    "storemigration_store_operations_total",
    "Store calls by store (graph|agent_task), backend (memory|postgres) and outcome (ok|error).",
    ["store", "backend", "operation", "outcome"],
    registry=REGISTRY,
)
STORE_DURATION = Histogram(
    "storemigration_store_operation_duration_seconds",
    "Store call latency.",
    ["store", "backend", "operation"],
    buckets=STORE_BUCKETS,
    registry=REGISTRY,
)
POOL_CONNECTIONS = Gauge(
    "storemigration_pool_connections",
    "PostgreSQL pool connections by state (size|max|active|idle|waiting).",
    ["state"],
    registry=REGISTRY,
)
POSTGRES_UP = Gauge(
    "storemigration_postgres_up",
    "1 when the last PostgreSQL check succeeded, else 0.",
    registry=REGISTRY,
)
DUAL_WRITE_FAILURES = Counter(
    "storemigration_dual_write_failures_total",
    "Second writes (to the non-trusted store) that failed or timed out.",
    ["store", "operation"],
    registry=REGISTRY,
)
COPY_RETRY_DEPTH = Gauge(
    "storemigration_copy_retry_queue_depth",
    "Records whose dual-write copy failed and that wait to be copied again.",
    ["store"],
    registry=REGISTRY,
)
COPY_RETRIES = Counter(
    "storemigration_copy_retries_total",
    "Copies made again from the retry queue, by result (landed|failed|refused).",
    ["store", "result"],
    registry=REGISTRY,
)
READS = Counter(
    "storemigration_reads_total",
    "Reads served, by the backend that answered.",
    ["store", "backend"],
    registry=REGISTRY,
)
READ_FALLBACKS = Counter(
    "storemigration_read_fallbacks_total",
    "Reads routed to PostgreSQL that memory answered instead.",
    ["store"],
    registry=REGISTRY,
)
READ_PERCENT_CONFIGURED = Gauge(
    "storemigration_read_percent_configured",
    "Configured percentage of reads sent to PostgreSQL.",
    ["store"],
    registry=REGISTRY,
)
READ_PERCENT_ACTUAL = Gauge(
    "storemigration_read_percent_actual",
    "Percentage of reads sent to PostgreSQL by the mode in effect (differs from the "
    "configured one while a live switch drains, or after one failed).",
    ["store"],
    registry=REGISTRY,
)
DUAL_WRITE_CONFIGURED = Gauge(
    "storemigration_dual_write_configured",
    "1 when the last switch set asked for dual-write, else 0.",
    ["store"],
    registry=REGISTRY,
)
DUAL_WRITE_ACTUAL = Gauge(
    "storemigration_dual_write_actual",
    "1 when the mode in effect has dual-write on, else 0.",
    ["store"],
    registry=REGISTRY,
)
MEMORY_WRITES_CONFIGURED = Gauge(
    "storemigration_memory_writes_configured",
    "1 when the last switch set asked for writes to memory, else 0.",
    ["store"],
    registry=REGISTRY,
)
MEMORY_WRITES_ACTUAL = Gauge(
    "storemigration_memory_writes_actual",
    "1 when the mode in effect writes to memory, else 0.",
    ["store"],
    registry=REGISTRY,
)
SWITCH_REVISION = Gauge(
    "storemigration_switch_revision",
    "Revision of the live switches in effect: 1 as started, +1 per change.",
    registry=REGISTRY,
)
SHADOW_READS = Counter(
    "storemigration_shadow_reads_total",
    "Background comparisons of a read against the other store (match|mismatch|error).",
    ["store", "result"],
    registry=REGISTRY,
)
CONSISTENCY_CHECKS = Counter(
    "storemigration_consistency_checks_total",
    "Consistency checks run, by result (pass|fail|error).",
    ["store", "result"],
    registry=REGISTRY,
)
CONSISTENCY_MISMATCH_RATIO = Gauge(
    "storemigration_consistency_mismatch_ratio",
    "Mismatching records / compared records in the last consistency check.",
    ["store"],
    registry=REGISTRY,
)
CONSISTENCY_LAST_RUN = Gauge(
    "storemigration_consistency_last_run_timestamp_seconds",
    "Unix time of the last consistency check.",
    ["store"],
    registry=REGISTRY,
)
BACKFILL_RECORDS = Gauge(
    "storemigration_backfill_records",
    "Records of the resumable backfill run, per kind: done (copied or already there) and "
    "total (those that existed when the run began), as of this pod's latest batch.",
    ["run", "kind", "count"],
    registry=REGISTRY,
)
BACKFILL_RATE = Gauge(
    "storemigration_backfill_rate_records_per_second",
    "Records per second of the backfill run since it began (its checkpoint's clock).",
    ["run"],
    registry=REGISTRY,
)
_backfill_runs: set[str] = set()


def record_backfill(run: str, progress: dict[str, Any]) -> None:
    """The run's progress as gauges, for Prometheus and so the operator's status; a new
    run replaces the series of the previous ones (one run at a time is live)."""
    if run not in _backfill_runs:
        BACKFILL_RECORDS.clear()
        BACKFILL_RATE.clear()
        _backfill_runs.clear()
        _backfill_runs.add(run)
    for kind, counts in (progress.get("kinds") or {}).items():
        BACKFILL_RECORDS.labels(run, kind, "done").set(counts.get("done", 0))
        BACKFILL_RECORDS.labels(run, kind, "total").set(counts.get("total", 0))
    BACKFILL_RATE.labels(run).set(progress.get("rate_per_second") or 0.0)


def render() -> tuple[bytes, str]:
    """The registry in Prometheus text format, and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def is_failure(error: BaseException) -> bool:
    return not (isinstance(error, StoreError) and error.status_code < 500)


@asynccontextmanager
async def observe(store: str, backend: str, operation: str) -> AsyncIterator[None]:
    """Time the enclosed store call and count it as ok or error."""
    start = perf_counter()
    outcome = "ok"
    try:
        yield
    except BaseException as e:
        if is_failure(e):
            outcome = "error"
        raise
    finally:
        STORE_DURATION.labels(store, backend, operation).observe(perf_counter() - start)
        STORE_OPERATIONS.labels(store, backend, operation, outcome).inc()


S = TypeVar("S")


def _timed(
    method: Callable[..., Awaitable[Any]], store: str, backend: str, operation: str
) -> Callable[..., Awaitable[Any]]:
    ok = STORE_OPERATIONS.labels(store, backend, operation, "ok")
    err = STORE_OPERATIONS.labels(store, backend, operation, "error")
    hist = STORE_DURATION.labels(store, backend, operation)

    async def call(*args: Any, **kwargs: Any) -> Any:
        start = perf_counter()
        try:
            result = await method(*args, **kwargs)
        except BaseException as e:
            hist.observe(perf_counter() - start)
            (err if is_failure(e) else ok).inc()
            raise
        hist.observe(perf_counter() - start)
        ok.inc()
        return result

    call.__name__ = operation
    return call


class InstrumentedStore(Generic[S]):
    """Wraps a store: each named coroutine method is timed and counted; every other
    attribute (replica methods, close, store_status) is the inner store's own."""

    def __init__(self, inner: S, store: str, backend: str, operations: tuple[str, ...]) -> None:
        self.inner = inner
        for name in operations:
            setattr(self, name, _timed(getattr(inner, name), store, backend, name))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


GRAPH_OPERATIONS = (
    "get_project", "upsert_project", "search", "count_projects", "add_dependency",
    "count_dependents", "create_contributor", "get_contributor", "list_contributors",
    "create_asset", "get_asset", "list_assets", "create_contribution", "get_contribution",
    "list_contributions", "get_asset_contributions", "get_contributor_contributions",
)  # fmt: skip
TASK_OPERATIONS = (
    "create_task", "get_task", "list_tasks", "update_task", "get_attention_tasks",
    "get_task_count", "get_review_summary", "get_usage_summary", "get_pipeline_status",
)  # fmt: skip


def instrument_graph(store: S, backend: str) -> S:
    """`store` with every GraphStore call timed (the result keeps the store's type)."""
    return cast(S, InstrumentedStore(store, "graph", backend, GRAPH_OPERATIONS))


def instrument_tasks(store: S, backend: str) -> S:
    return cast(S, InstrumentedStore(store, "agent_task", backend, TASK_OPERATIONS))
