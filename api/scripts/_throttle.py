"""The throttle the backfill and the full verify share: a delay between batches, and a
pause while the API's own p95 latency is above a ceiling.

The p95 is read from the API's /metrics (storemigration_http_request_duration_seconds):
the histogram's buckets from two scrapes are subtracted, so the figure covers the
requests served since the previous batch, not since the process started. The admin
routes (the batches themselves) and /metrics are left out. Too few requests in an
interval give no figure, and no pause.
"""

from __future__ import annotations

import math
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

METRIC = "storemigration_http_request_duration_seconds_bucket"
_LINE = re.compile(r'^' + METRIC + r'\{(?P<labels>[^}]*)\}\s+(?P<value>\S+)')
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
MIN_REQUESTS = 20
SKIPPED = ("/api/admin", "/metrics")


def buckets(text: str) -> dict[float, float]:
    """Cumulative count per `le` over every served route but the skipped ones."""
    out: dict[float, float] = {}
    for line in text.splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        labels = dict(_LABEL.findall(m.group("labels")))
        if labels.get("route", "").startswith(SKIPPED):
            continue
        le = math.inf if labels.get("le") == "+Inf" else float(labels.get("le", "nan"))
        out[le] = out.get(le, 0.0) + float(m.group("value"))
    return out


def p95(before: dict[float, float], after: dict[float, float],
        minimum: int = MIN_REQUESTS) -> float | None:
    """The 95th percentile of the requests between two scrapes (a bucket's upper
    bound, linearly placed within it), or None when fewer than `minimum` were served."""
    delta = sorted((le, after.get(le, 0.0) - before.get(le, 0.0)) for le in after)
    total = delta[-1][1] if delta else 0.0
    if total < minimum:
        return None
    rank = 0.95 * total
    lower, below = 0.0, 0.0
    for le, count in delta:
        if count >= rank:
            if math.isinf(le):
                return lower
            span = count - below
            return lower + (le - lower) * ((rank - below) / span if span else 1.0)
        lower, below = le, count
    return lower


@dataclass
class Throttle:
    """Sleep `delay` between batches; while the API's p95 is above `ceiling` seconds,
    wait `pause` seconds and look again. `scrape` returns /metrics' text."""

    delay: float = 0.0
    ceiling: float | None = None
    pause: float = 5.0
    scrape: Callable[[], str] | None = None
    sleep: Callable[[float], None] = time.sleep
    paused_seconds: float = 0.0
    pauses: int = 0
    last_p95: float | None = None
    _before: dict[float, float] = field(default_factory=dict)

    def _read(self) -> dict[float, float] | None:
        if self.scrape is None:
            return None
        try:
            return buckets(self.scrape())
        except Exception as e:  # noqa: BLE001 - no figure: go on, say so once
            sys.stderr.write(f"could not read the API's metrics ({type(e).__name__})\n")
            return None

    def start(self) -> None:
        self._before = self._read() or {}

    def wait(self) -> None:
        """Between two batches."""
        if self.delay > 0:
            self.sleep(self.delay)
        if self.ceiling is None:
            return
        while True:
            now = self._read()
            if now is None:
                return
            self.last_p95 = p95(self._before, now)
            self._before = now
            if self.last_p95 is None or self.last_p95 <= self.ceiling:
                return
            self.pauses += 1
            self.paused_seconds += self.pause
            sys.stderr.write(f"\nAPI p95 {self.last_p95:.3f}s above {self.ceiling}s: "
                             f"pausing {self.pause}s\n")
            self.sleep(self.pause)

    def as_dict(self) -> dict[str, object]:
        return {"delay_seconds": self.delay, "p95_ceiling_seconds": self.ceiling,
                "pauses": self.pauses, "paused_seconds": self.paused_seconds}
