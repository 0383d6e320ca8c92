"""One number from a Prometheus query result, or a clear reason why the shape is wrong.

A gate compares one value with a ceiling. An instant vector with several series (a query
left without `sum`, or one series per pod) is aggregated with max, the worst series, which
is the safe side of every ceiling; a range vector (matrix) or a string has no single
current value and is an Error that names the gate, never silently its first sample.
"""

from __future__ import annotations

import math
from typing import Any


class ResultShapeError(ValueError):
    """The query answered something a gate cannot compare with a ceiling."""


def _number(raw: Any, gate: str) -> float:
    try:
        return float(raw)
    except (TypeError, ValueError):
        raise ResultShapeError(f"gate {gate}: sample value {raw!r} is not a number") from None


def sample_value(result: Any, gate: str) -> float | None:
    """The gate's value from `data.result`; None when there is no sample (no data)."""
    if result is None or result == []:
        return None
    if isinstance(result, list) and len(result) == 2 and not isinstance(result[0], dict):
        return _number(result[1], gate)  # a scalar: [timestamp, "value"]
    if not isinstance(result, list) or not all(isinstance(r, dict) for r in result):
        raise ResultShapeError(f"gate {gate}: unexpected result {str(result)[:80]!r}; the "
                               "query must return an instant vector or a scalar")
    if any("values" in r for r in result):
        raise ResultShapeError(f"gate {gate}: the query returned a range vector (matrix); "
                               "it must return an instant vector (wrap it in rate/increase)")
    values = []
    for series in result:
        pair = series.get("value")
        if not isinstance(pair, list) or len(pair) != 2:
            raise ResultShapeError(f"gate {gate}: a series without a [time, value] sample")
        values.append(_number(pair[1], gate))
    known = [v for v in values if not math.isnan(v)]
    return max(known) if known else math.nan
