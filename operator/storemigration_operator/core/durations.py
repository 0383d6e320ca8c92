"""Durations written the Kubernetes way ("90s", "5m", "24h", "1h30m", "2d"), and timestamps.

The CRD's schema holds the same pattern, so a bad value is rejected at admission and again
by the spec model; `format_duration` writes one back in the same style (status keeps the
last valid spec, and the gates put the window into PromQL).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

DURATION_PATTERN = r"^([0-9]+(ms|s|m|h|d))+$"
# Admission's version of the same: at least one part must be non-zero.
NONZERO_DURATION_PATTERN = r"^([0-9]+(ms|s|m|h|d))*0*[1-9][0-9]*(ms|s|m|h|d)([0-9]+(ms|s|m|h|d))*$"
_PART = re.compile(r"([0-9]+)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_UNITS_DOWN = (("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1))
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_duration(text: str) -> timedelta:
    """'1h30m' -> timedelta(hours=1, minutes=30); ValueError on anything else or on zero."""
    if not isinstance(text, str) or not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(f"not a duration (like 90s, 5m, 24h): {text!r}")
    seconds = sum(int(n) * _UNIT_SECONDS[u] for n, u in _PART.findall(text))
    if seconds <= 0:
        raise ValueError(f"duration must be positive: {text!r}")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """timedelta(minutes=90) -> '1h30m'; the inverse of parse_duration for positive values.
    Days are written as hours (48h), as the docs and most people write them."""
    left = round(value.total_seconds() * 1000)
    if left <= 0:
        return "0s"
    parts = []
    for unit, ms in _UNITS_DOWN:
        count, left = divmod(left, ms)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with a Z, as Kubernetes writes timestamps."""
    text = moment.astimezone(UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
