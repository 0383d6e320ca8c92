"""The backfill's progress while its Job runs, from the API's own metrics.

The backfill Job reports its progress only when it ends (its termination message). While
it runs, each API pod exports the checkpoint's counts as of its latest batch
(storemigration_backfill_records{run,kind,count}, storemigration_backfill_rate_records_per
_second{run}); the gate source reads them from Prometheus, the highest value over the pods
(the counts only grow), and this module turns the current run's samples into
status.backfill. Pure: `now` is an argument, so the ETA and the reading time are table tests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from .status import BackfillProgress, KindProgress

KIND_ORDER = ("projects", "contributors", "assets", "dependencies", "contributions", "tasks")


@dataclass(frozen=True)
class BackfillSample:
    """One run's gauges as Prometheus answered them."""

    run: str
    done: Mapping[str, float] = field(default_factory=dict)
    total: Mapping[str, float] = field(default_factory=dict)
    rate_per_second: float | None = None


RECORDS_QUERY = "max by (run, kind, count) (storemigration_backfill_records)"
RATE_QUERY = "max by (run) (storemigration_backfill_rate_records_per_second)"


def _value(series: Mapping[str, object]) -> float | None:
    pair = series.get("value")
    try:
        return float(pair[1]) if isinstance(pair, list) and len(pair) == 2 else None
    except (TypeError, ValueError):
        return None


def samples_from(records: object, rates: object) -> tuple[BackfillSample, ...]:
    """The runs' samples from the two queries' instant vectors (anything else: none)."""
    done: dict[str, dict[str, float]] = {}
    total: dict[str, dict[str, float]] = {}
    for series in records if isinstance(records, list) else ():
        labels = series.get("metric") if isinstance(series, dict) else None
        value = _value(series) if isinstance(series, dict) else None
        if not isinstance(labels, dict) or value is None:
            continue
        run, kind, count = labels.get("run"), labels.get("kind"), labels.get("count")
        if isinstance(run, str) and isinstance(kind, str) and count in ("done", "total"):
            (done if count == "done" else total).setdefault(run, {})[kind] = value
    rate: dict[str, float] = {}
    for series in rates if isinstance(rates, list) else ():
        if isinstance(series, dict) and isinstance(series.get("metric"), dict):
            run, value = series["metric"].get("run"), _value(series)
            if isinstance(run, str) and value is not None:
                rate[run] = value
    return tuple(BackfillSample(run=r, done=done.get(r, {}), total=total[r],
                                rate_per_second=rate.get(r)) for r in sorted(total))


def _order(kind: str) -> int:
    return KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER)


def live_progress(samples: Sequence[BackfillSample], run: str, now: datetime
                  ) -> BackfillProgress | None:
    """status.backfill for `run` from its samples; None when the API has not exported the
    run yet (the Job's first batch is still coming), so the previous status stays."""
    sample = next((s for s in samples if s.run == run), None)
    if sample is None or not sample.total:
        return None
    kinds = {k: KindProgress(done=int(sample.done.get(k, 0)), total=int(sample.total[k]))
             for k in sorted(sample.total, key=_order)}
    done = sum(k.done for k in kinds.values())
    total = sum(k.total for k in kinds.values())
    rate = sample.rate_per_second if sample.rate_per_second and sample.rate_per_second > 0 \
        else None
    finished = all(k.done >= k.total for k in kinds.values())
    eta = 0.0 if finished else round((total - done) / rate, 1) if rate else None
    return BackfillProgress(
        run=run, done=done, total=total,
        percent=round(100.0 * done / total, 2) if total else 100.0,
        rate_per_second=round(rate, 1) if rate else None, eta_seconds=eta,
        finished=finished, kinds=kinds, observed_at=now)
