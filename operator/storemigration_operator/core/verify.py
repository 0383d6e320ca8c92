"""What a finished verify Job says about the data: passed, failed, or nothing (error).

The distinction decides between a rollback (the stores were compared and differ) and a hold
(the comparison never ran), so a verify that was OOM-killed or could not reach the API never
sends reads back to memory, and a summary that cannot be read never crashes the planner.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from .durations import EPOCH
from .spec import MigrationSpec, Phase
from .status import JobEntry, MigrationStatus

VERIFY_KINDS = ("verify", "verify-full")


def verify_outcome(state: str, result: Mapping[str, Any] | None, ceiling: float
                   ) -> tuple[str, str]:
    """("passed" | "failed" | "error", why) from a finished verify Job.

    failed: the check ran and found the stores apart (rolls reads back). error: the check did
    not run -- exit 2/3 (API or PostgreSQL unreachable), OOM, a pod killed before it wrote a
    summary: nothing is known about the data, so it holds and is retried, never rolls back.
    A summary that cannot be read as a check result counts as failed, never as a crash."""
    ran = isinstance(result, Mapping) and "mismatch_ratio" in result and "error" not in result
    if state != "Succeeded" and not ran:
        error = result.get("error") if isinstance(result, Mapping) else None
        return "error", f"the check did not run ({error or 'no result in the termination message'})"
    if result is None:
        return "passed", ""
    if not isinstance(result, Mapping):
        return "failed", f"unreadable result {str(result)[:100]!r}"
    raw = result.get("mismatch_ratio")
    try:
        ratio = None if raw is None else float(raw)
    except (TypeError, ValueError):
        return "failed", f"unreadable mismatch_ratio {str(raw)[:50]!r}"
    if ratio is not None and not ratio <= ceiling:  # NaN fails too
        return "failed", f"mismatch ratio {ratio} > {ceiling}"
    if result.get("passed") is False or state != "Succeeded":
        return "failed", f"the check reported a failure: {str(dict(result))[:200]}"
    return "passed", ""


def verify_fresh(st: MigrationStatus, interval: timedelta, now: datetime) -> bool:
    """A periodic verify passed within `interval`, and none has failed since."""
    last_ok = st.last_verify_success_time or EPOCH
    entry = st.jobs.get("verify")
    failed_since = entry is not None and entry.outcome == "failed" and \
        (entry.finished_at or EPOCH) > last_ok
    return not failed_since and last_ok >= now - interval


def verify_due(st: MigrationStatus, spec: MigrationSpec) -> datetime | None:
    """When the next periodic verify must have passed (the last pass plus verify.interval),
    while the planner runs them: DualWrite, and ReadSwitchover below 100% or held there.
    None otherwise (promotion verifies in full instead), or before the first pass. The
    stale-verify alert counts from this moment, not from the phase start."""
    phase = Phase[st.phase]
    periodic = phase == Phase.DualWrite or (phase == Phase.ReadSwitchover and (
        st.read_percent < 100 or spec.target <= Phase.ReadSwitchover))
    if not periodic or st.last_verify_success_time is None:
        return None
    return st.last_verify_success_time + spec.verify.interval


def last_clean_verify(st: MigrationStatus) -> datetime | None:
    """When a verify (periodic or full) last passed."""
    times = [st.last_verify_success_time]
    full = st.jobs.get("verify-full")
    if full is not None and full.outcome == "passed":
        times.append(full.finished_at)
    known = [x for x in times if x is not None]
    return max(known) if known else None


def verify_within_max_age(st: MigrationStatus, max_age: timedelta, now: datetime) -> bool:
    """The freshness gate: a clean verify newer than spec.verify.maxAge, and no periodic
    verify failed since."""
    last_ok = last_clean_verify(st) or EPOCH
    entry = st.jobs.get("verify")
    failed_since = entry is not None and entry.outcome == "failed" and \
        (entry.finished_at or EPOCH) > last_ok
    return not failed_since and last_ok > now - max_age


def stale_pass(entry: JobEntry, max_age: timedelta, now: datetime) -> bool:
    """A verify attempt that passed longer ago than spec.verify.maxAge."""
    return entry.outcome == "passed" and (entry.finished_at or EPOCH) <= now - max_age


def note_freshness(st: MigrationStatus, max_age: timedelta, next_due: datetime | None) -> None:
    """Status: when the last clean verify ran, when it goes stale, when the next is due."""
    last = last_clean_verify(st)
    st.last_clean_verify_time = last
    st.verify_stale_time = last + max_age if last is not None else None
    st.next_verify_time = next_due
