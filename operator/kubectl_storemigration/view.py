"""`kubectl storemigration get`: one readable view of a StoreMigration, and its JSON form.

Everything shown is read from the status the operator wrote (parsed with the operator's own
models) plus the spec's controls; `promote` is judged by the planner's own rule
(core.promotion.blocker), so the view says in advance what promote would answer.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from storemigration_operator.core.durations import format_time
from storemigration_operator.core.promotion import blocker, describe
from storemigration_operator.core.spec import InvalidSpec, MigrationSpec, parse_spec
from storemigration_operator.core.status import BackfillProgress, JobEntry, read_status

CONDITIONS = ("Ready", "Progressing", "Degraded", "Paused")
JOB_ORDER = ("backfill", "verify", "verify-full", "snapshot", "rehydrate", "archive")


def span(seconds: float) -> str:
    seconds = int(abs(seconds))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 172800:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


def when(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "-"
    delta = (moment - now).total_seconds()
    rel = f"in {span(delta)}" if delta > 0 else f"{span(delta)} ago"
    return f"{format_time(moment)} ({rel})"


def number(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def job_summary(entry: JobEntry) -> str:
    r = entry.result
    if entry.outcome is not None and r is not None and r.checked is not None:
        text = f"{entry.outcome}: {r.checked} checked, {number(r.mismatches)} mismatches " \
               f"(ratio {number(r.mismatch_ratio)})"
    elif r is not None and (r.records is not None or r.written_total is not None):
        examined = f"{r.records} records, " if r.records is not None else ""
        text = f"ok: {examined}{number(r.written_total)} written, " \
               f"{number(r.skipped_total)} already there"
        if r.rejected_total:
            text += f", {r.rejected_total} refused"
    elif r is not None:
        text = "ok" if r.ok else f"failed: {r.error}" if r.error else \
            ", ".join(f"{k}={v}" for k, v in r.model_dump(exclude_none=True).items()
                      if isinstance(v, str | int | float | bool))
    else:
        text = entry.message or ""
    if entry.why:
        text = f"{text}; {entry.why}" if text else entry.why
    if entry.failures:
        text += f" [failed {entry.failures} in a row]"
    return text


def backfill_line(b: BackfillProgress, now: datetime) -> str:
    """The backfill run's progress in one line: live while its Job runs, else final."""
    rate = f", {b.rate_per_second:g}/s" if b.rate_per_second else ""
    eta = f", ETA {span(b.eta_seconds)}" if b.eta_seconds and not b.finished else ""
    seen = f" (live, read {when(b.observed_at, now)})" if b.observed_at else ""
    kinds = ", ".join(f"{k} {p.done}/{p.total}" for k, p in b.kinds.items())
    return f"{'finished' if b.finished else 'running'} {b.percent:g}% ({b.done}/{b.total})" \
           f"{rate}{eta}{seen}; {kinds or '-'}; run {b.run or '-'}"


def view(obj: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The machine-readable view (what `get -o json` prints and `get` renders)."""
    meta, raw_spec = obj.get("metadata") or {}, obj.get("spec") or {}
    st = read_status(obj.get("status"))
    spec: MigrationSpec | None
    try:
        spec, invalid = parse_spec(raw_spec), None
    except InvalidSpec as e:
        spec, invalid = st.last_valid_spec, str(e)
    promote = blocker(spec, st, now, invalid=invalid) if spec else f"the spec is invalid: " \
        f"{invalid}"
    gate = st.last_gate
    return {
        "name": meta.get("name"), "namespace": meta.get("namespace"),
        "generation": meta.get("generation"), "observedGeneration": st.observed_generation,
        "phase": st.phase, "readPercent": st.read_percent,
        "targetPhase": raw_spec.get("targetPhase", spec.target_phase if spec else None),
        "reason": st.reason, "message": st.message,
        "nextStepTime": format_time(st.next_step_time) if st.next_step_time else None,
        "controls": None if spec is None else {
            "paused": spec.paused, "abort": spec.abort, "dryRun": spec.gates.dry_run,
            "cleanupApproved": spec.cleanup.approved, "retryToken": spec.retry_token,
            "promoteToken": spec.promote_token},
        "invalidSpec": invalid,
        "conditions": [c.model_dump(mode="json", by_alias=True) for c in st.conditions],
        "pods": [p.model_dump(mode="json", by_alias=True) for p in st.pods or []],
        "gates": None if gate is None else gate.model_dump(mode="json", by_alias=True,
                                                           exclude_none=True),
        "gateInterval": None if st.gate_interval is None else st.gate_interval.model_dump(
            mode="json", by_alias=True, exclude_none=True),
        "promote": {"allowed": promote is None, "reason": promote},
        "jobs": {kind: entry.model_dump(mode="json", by_alias=True, exclude_none=True) |
                 {"summary": job_summary(entry)} for kind, entry in st.jobs.items()},
        "backfill": None if st.backfill is None else st.backfill.model_dump(
            mode="json", by_alias=True, exclude_none=True),
        "history": [h.model_dump(mode="json", by_alias=True, exclude_none=True)
                    for h in st.history],
        "rollbacks": st.rollbacks,
        "promotion": None if st.promotion is None else st.promotion.model_dump(
            mode="json", by_alias=True),
    }


def _table(rows: list[list[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return [indent + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " +
            r[-1] for r in rows]


def render(obj: dict[str, Any], now: datetime) -> str:
    """The view as text, for a person."""
    v, st = view(obj, now), read_status(obj.get("status"))
    out = [f"StoreMigration {v['namespace']}/{v['name']}  (generation {v['generation']}, "
           f"status for {v['observedGeneration']})"]
    out.append(f"Phase:       {v['phase']}, reads {v['readPercent']}% on PostgreSQL "
               f"(targetPhase {v['targetPhase']})")
    out.append(f"Now:         {v['reason'] or '-'}: {v['message'] or '-'}")
    out.append(f"Next step:   {when(st.next_step_time, now)}")
    shown = [f"{k} {str(val).lower() if isinstance(val, bool) else repr(val)}"
             for k, val in (v["controls"] or {}).items() if val != ""]
    out.append("Controls:    " + (", ".join(shown) or "-"))
    if v["invalidSpec"]:
        out.append(f"Spec:        INVALID: {v['invalidSpec']}")
    conds = {c.type: c for c in st.conditions}
    out.append("Conditions:  " + "  ".join(
        f"{t}={conds[t].status} ({conds[t].reason})" for t in CONDITIONS if t in conds))
    for t in ("Degraded", "Paused"):
        if t in conds and conds[t].status == "True" and conds[t].message:
            out.append(f"  {t}: {conds[t].message}")
    out.append("")
    out.append("Pods (applied switches):")
    if st.pods:
        for pod in st.pods:
            switches = " ".join(f"{k}={val}" for k, val in sorted(pod.switches.items()))
            out.append(f"  {pod.name}  {switches or '-'}  (seen {when(pod.observed_at, now)})")
    else:
        out.append("  (the pods do not report applied switches; the Deployment's env is what "
                   "the operator set: " + ", ".join(st.owned_env or ["nothing yet"]) + ")")
    out.append("")
    gate = st.last_gate
    if gate is None:
        out.append("Gates: not evaluated yet (they run in ReadSwitchover and PostgresPrimary)")
    else:
        dry = "  [dry run: reported only]" if gate.dry_run else ""
        out.append(f"Gates: last evaluation {when(gate.time, now)}: {gate.result}{dry}")
        out.append(f"  {gate.reason}")
        rows = [["GATE", "VALUE", "THRESHOLD", "RESULT"]]
        for c in gate.checks or []:
            rows.append([c.gate, number(c.value), f"{c.comparison} {number(c.threshold)}",
                         c.result])
        table = _table(rows)
        out.append(table[0])
        for line, c in zip(table[1:], gate.checks or [], strict=False):
            out.append(line)
            out.append(f"      PromQL: {c.query}")
    interval = st.gate_interval
    if interval is not None:
        line = f"  This interval (since {format_time(interval.since)}): " \
               f"{interval.evaluations} evaluations, {interval.passed} passed"
        out.append(line)
        if interval.not_passed is not None:
            out.append(f"    not passed: {describe(interval.not_passed)}")
    promote = v["promote"]
    out.append(f"  Promote now: {'allowed' if promote['allowed'] else 'refused'}"
               + ("" if promote["allowed"] else f": {promote['reason']}"))
    if st.promotion is not None:
        out.append(f"  Last promote: {st.promotion.result} {when(st.promotion.time, now)}: "
                   f"{st.promotion.reason}")
    out.append("")
    out.append("Jobs:")
    if st.jobs:
        rows = [["KIND", "JOB", "STATE", "FINISHED", "RESULT"]]
        for kind in sorted(st.jobs, key=lambda k: JOB_ORDER.index(k) if k in JOB_ORDER else 99):
            entry = st.jobs[kind]
            finished = span((now - entry.finished_at).total_seconds()) + " ago" \
                if entry.finished_at else "-"
            rows.append([kind, entry.name, entry.state, finished, job_summary(entry)])
        out += _table(rows)
    else:
        out.append("  none yet")
    if st.backfill is not None:
        out.append(f"Backfill:    {backfill_line(st.backfill, now)}")
    out.append("")
    out.append(f"History ({st.rollbacks} rollbacks; latest last):")
    rows = [["TIME", "TYPE", "CHANGE", "REASON"]]
    for h in st.history:
        change = f"{h.from_}% -> {h.to}%" if isinstance(h.to, int) else f"{h.from_} -> {h.to}" \
            if h.to is not None else ""
        rows.append([format_time(h.time), h.type, change, h.reason])
    out += _table(rows) if len(rows) > 1 else ["  nothing yet"]
    return "\n".join(out)
