"""`promote`: take the next step now, when every gate evaluation of the current interval
passed.

A person (kubectl storemigration promote) changes spec.promoteToken; the planner answers
once per token in status.promotion, Accepted or Refused with the reason. The rule is one
pure function, so the plugin can refuse at once, naming the evaluation that did not pass,
with exactly the planner's judgement. Promote skips only the wait: in ReadSwitchover the
rest of readStep.interval (the step still needs holding gates and a fresh verify), in
PostgresPrimary the rest of primaryHold (cleanup still needs its approval).
"""

from __future__ import annotations

from datetime import datetime

from .context import Context
from .durations import format_time
from .gate_window import gates_holding
from .jobs import snapshot_not_durable
from .spec import MigrationSpec, Phase
from .status import GateEvaluation, MigrationStatus, Promotion
from .verify import verify_fresh, verify_within_max_age


def requested(spec: MigrationSpec, st: MigrationStatus) -> bool:
    """A spec.promoteToken that has not been answered yet."""
    answered = st.promotion.token if st.promotion else ""
    return bool(spec.promote_token) and spec.promote_token != answered


def describe(evaluation: GateEvaluation) -> str:
    """An evaluation that did not pass, naming the gates that failed."""
    failed = [f"{c.gate} {c.value} (must be {c.comparison} {c.threshold})"
              for c in evaluation.checks or [] if c.result == "Failed"]
    named = f" [{'; '.join(failed)}]" if failed else ""
    return (f"the gate evaluation at {format_time(evaluation.time)} was {evaluation.result}: "
            f"{evaluation.reason}{named}")


def blocker(spec: MigrationSpec, st: MigrationStatus, now: datetime,
            replicas: int | None = None, invalid: str | None = None) -> str | None:
    """Why the next step cannot be taken now, or None when promote may take it."""
    phase = Phase[st.phase]
    if invalid is not None:
        return f"the spec is invalid: {invalid}"
    if spec.abort:
        return "spec.abort is true: resume first (kubectl storemigration resume)"
    if spec.paused:
        return "spec.paused is true: resume first (kubectl storemigration resume)"
    if spec.gates.dry_run:
        return "spec.gates.dryRun is true: the gates decide nothing, so they cannot vouch for " \
               "a step"
    if phase == Phase.ReadSwitchover:
        if st.rehydrate is not None:
            return "memory is being rebuilt from PostgreSQL (rollback from PostgresPrimary)"
        if st.retries_exhausted:
            return f"rolled back {st.retries} times: change spec.retryToken first " \
                   "(kubectl storemigration retry)"
        if spec.target <= Phase.ReadSwitchover and st.read_percent >= 100:
            return "reads are at 100% and targetPhase is ReadSwitchover: raise targetPhase " \
                   "to promote into PostgresPrimary"
        if st.read_percent < 100 and not verify_fresh(st, spec.verify.interval, now):
            return "no verify Job passed within spec.verify.interval"
        if st.read_percent < 100 and not verify_within_max_age(st, spec.verify.max_age, now):
            return "no clean verify newer than spec.verify.maxAge"
        if replicas is not None and replicas > 1:
            return f"the Deployment has {replicas} replicas while memory is written"
        lost = snapshot_not_durable(spec) if st.read_percent >= 100 else None
        if lost is not None:
            return lost
    elif phase == Phase.PostgresPrimary:
        if spec.target < Phase.Cleanup or not spec.cleanup.approved:
            return "the next step is Cleanup, which needs targetPhase Cleanup and " \
                   "spec.cleanup.approved (kubectl storemigration approve-cleanup)"
    else:
        return f"nothing waits on time in {phase.name}: promote takes the next read step " \
               "(ReadSwitchover) or skips the rest of primaryHold (PostgresPrimary)"
    interval = st.gate_interval
    if interval is not None and interval.not_passed is not None:
        return describe(interval.not_passed)
    if interval is None or interval.passed == 0:
        since = f" (since {format_time(interval.since)})" if interval else ""
        return f"no gate evaluation has passed yet in this interval{since}: wait for one"
    if not gates_holding(spec, st, now):
        return "the latest successful gate evaluation is older than gates.window"
    return None


def answer(ctx: Context) -> None:
    """Answer a new spec.promoteToken: Refused with the reason, or Accepted (the phase logic
    then takes the step in this same reconcile)."""
    st, spec = ctx.st, ctx.spec
    dep = ctx.seen.deployment
    why = blocker(spec, st, ctx.now, dep.replicas if dep else None, ctx.invalid)
    if why is not None:
        st.promotion = Promotion(token=spec.promote_token, time=ctx.now, result="Refused",
                                 reason=why)
        ctx.event("Warning", "PromoteRefused", f"promote refused: {why}")
        return
    if ctx.phase == Phase.PostgresPrimary:
        done = "cleanup begins now, without the rest of primaryHold"
    elif st.read_percent >= 100:
        done = "promotion into PostgresPrimary begins now (full verify, then snapshot)"
    else:
        done = "the next read step is taken now"
    st.promotion = Promotion(token=spec.promote_token, time=ctx.now, result="Accepted",
                             reason=done)
    ctx.promote_now = True
    ctx.event("Normal", "Promoted", f"promote accepted: {done}")
