"""Job bookkeeping: which attempt of each Job kind belongs to the current stage, and the
failure budget.

Status remembers each kind's latest attempt (name, attempt number, createdAt, outcome), so a
restarted operator recreates a Job that vanished instead of starting a second attempt, and a
stage that needs a result newer than some time asks for a fresh attempt only once. A Job
that fails (or a verify that could not run) is tried again after a backoff that doubles,
as kopf's TemporaryError retries a handler; after spec.jobs.backoffLimit failures in a row
the migration is Degraded, with the Job's own reason, until spec.retryToken changes.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from .backfill_live import live_progress
from .context import Context
from .durations import format_time
from .jobs import job_request
from .model import JobRequest
from .status import BackfillProgress, JobEntry, JobResult
from .verify import VERIFY_KINDS, verify_outcome

TERMINAL = ("Succeeded", "Failed")
BACKOFF_FIRST = timedelta(minutes=1)
BACKOFF_MAX = timedelta(minutes=10)


def backoff(failures: int) -> timedelta:
    """The wait after the n-th failure in a row: 1m, 2m, 4m, 8m, then 10m."""
    return min(BACKOFF_MAX, BACKOFF_FIRST * (1 << max(0, failures - 1)))


def failed_reason(kind: str) -> str:
    """The Degraded reason for a Job of this kind that failed: BackfillFailed, ..."""
    return "".join(part.capitalize() for part in kind.split("-")) + "Failed"


def failure_reason(kind: str) -> str:
    """The Degraded reason while the failure budget is spent: a verify that could not run
    says nothing about the data (VerifyError); other kinds failed (BackfillFailed, ...)."""
    return "VerifyError" if kind in VERIFY_KINDS else failed_reason(kind)


def counts_as_failure(kind: str, entry: JobEntry) -> bool:
    """A failure the budget counts: a Job that failed, or a verify that could not run. A
    verify that ran and found the stores apart is a verdict on the data, not a failure."""
    if entry.state not in TERMINAL:
        return False
    return entry.outcome == "error" or (kind not in VERIFY_KINDS and entry.state == "Failed")


def what_failed(entry: JobEntry) -> str:
    error = entry.result.error if entry.result is not None else None
    return entry.why or error or entry.message or "no result in the termination message"


def backfill_run(ctx: Context) -> str:
    """The backfill checkpoint's name: one per entry into DualWrite (and retry token), so
    the attempts of one stage resume one run and a later stage starts a new one."""
    since = max(ctx.st.phase_entered_time or ctx.now, ctx.token_time())
    return f"{ctx.name}-{int(since.timestamp())}"


def request(ctx: Context, kind: str, job_name: str) -> JobRequest:
    dep = ctx.seen.deployment
    run = backfill_run(ctx) if kind == "backfill" else None
    return job_request(kind, job_name, ctx.spec, dep.image if dep else None, run)


def job(ctx: Context, kind: str, fresh_after: datetime) -> JobEntry:
    """The current attempt of a Job kind; a new attempt if the last predates fresh_after, or
    failed and its backoff is over (never beyond the failure budget)."""
    entry = ctx.st.jobs.get(kind)
    failing = entry is not None and counts_as_failure(kind, entry) and \
        entry.created_at >= ctx.token_time()
    if entry is not None and failing:
        if entry.failures >= ctx.spec.jobs.backoff_limit:
            return entry
        if entry.next_attempt_at is not None and ctx.now < entry.next_attempt_at:
            return entry
    elif entry is not None and entry.created_at >= fresh_after:
        return entry
    attempt = (entry.attempt if entry else 0) + 1
    new = JobEntry(name=f"{ctx.name}-{kind}-{attempt}", attempt=attempt, state="Pending",
                   created_at=ctx.now, failures=entry.failures if entry and failing else 0,
                   retrying=what_failed(entry) if entry and failing else None)
    ctx.st.jobs[kind] = new
    ctx.plan.jobs.append(request(ctx, kind, new.name))
    ctx.event("Normal", "JobCreated", f"{kind} Job {new.name} created")
    return new


def report_failure(ctx: Context, kind: str, entry: JobEntry) -> None:
    """Degraded with the Job's own reason: backing off, retrying, or out of budget."""
    limit = ctx.spec.jobs.backoff_limit
    reason = failure_reason(kind)
    if entry.state not in TERMINAL:
        ctx.degrade(reason, f"{kind} Job {entry.name} retries after {entry.failures} "
                    f"failure(s) of {limit} allowed: {entry.retrying}")
        ctx.progress = (True, "RetryingJob", ctx.progress[2])
    elif entry.failures >= limit:
        ctx.degrade(reason, f"{kind} Job {entry.name} failed {entry.failures} times in a row "
                    f"(spec.jobs.backoffLimit {limit}): {what_failed(entry)}; fix the cause, "
                    "then change spec.retryToken (kubectl storemigration retry)")
    else:
        when = format_time(entry.next_attempt_at or ctx.now)
        ctx.degrade(reason, f"{kind} Job {entry.name} failed ({entry.failures} of {limit} "
                    f"allowed): {what_failed(entry)}; next attempt at {when}")
        ctx.progress = (True, "JobBackoff", ctx.progress[2])


def job_gate(ctx: Context, kind: str, entry: JobEntry) -> bool:
    """True when the Job succeeded; otherwise records why we wait or are degraded."""
    if entry.state == "Succeeded" and entry.passed is not False:
        return True
    if counts_as_failure(kind, entry) or (entry.retrying and entry.state not in TERMINAL):
        report_failure(ctx, kind, entry)
    elif entry.state in TERMINAL:
        ctx.degrade(failed_reason(kind),
                    f"{kind} Job {entry.name} {entry.state.lower()}: {what_failed(entry)}; "
                    "fix the cause and change spec.retryToken to retry")
    else:
        ctx.wait("WaitingForJob", f"waiting for {kind} Job {entry.name}")
    return False


def sync_jobs(ctx: Context) -> None:
    """Job states from the cluster into status; a vanished Job is asked for again."""
    for kind, entry in ctx.st.jobs.items():
        if entry.state in TERMINAL:
            continue
        obs = ctx.seen.jobs.get(entry.name)
        if obs is None:
            ctx.plan.jobs.append(request(ctx, kind, entry.name))
            continue
        entry.state = obs.state
        if obs.state not in TERMINAL:
            if kind == "backfill":
                ctx.st.backfill = live_progress(ctx.seen.backfill, backfill_run(ctx),
                                                ctx.now) or ctx.st.backfill
            continue
        entry.finished_at = obs.finished_at or ctx.now
        if obs.result is not None:
            entry.result = JobResult.from_doc(dict(obs.result))
            if kind == "backfill":
                ctx.st.backfill = BackfillProgress.from_result(dict(obs.result)) or \
                    ctx.st.backfill
        elif obs.message:
            entry.message = obs.message[:300]
        if kind in VERIFY_KINDS:
            outcome, why = verify_outcome(obs.state, obs.result,
                                          ctx.spec.gates.mismatch_ratio_ceiling)
            entry.outcome, entry.passed = outcome, outcome == "passed"  # type: ignore[assignment]
            entry.why = why or None
            if entry.passed and kind == "verify":
                ctx.st.last_verify_success_time = entry.finished_at
        if counts_as_failure(kind, entry):
            entry.failures += 1
            entry.next_attempt_at = entry.finished_at + backoff(entry.failures)
        else:
            entry.failures = 0
        ok = obs.state == "Succeeded" and entry.passed is not False
        detail = entry.why or (entry.result.model_dump(exclude_none=True) if entry.result
                               else None) or entry.message
        ctx.event("Normal" if ok else "Warning", "JobSucceeded" if ok else "JobFailed",
                  f"{kind} Job {entry.name} {'passed' if ok else 'failed'}"
                  + (f": {detail}" if not ok else ""))
