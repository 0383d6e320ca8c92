"""What the demo prints: one progress line per change (or every few seconds), and the summary.

The summary is also returned as a dict (written with --json) so the end-to-end test asserts
on the same facts a person reads.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from demo.run import Outcome
from devcluster.traffic import Traffic, TrafficProcess

HEARTBEAT = 5.0


class Printer:
    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stdout
        self.started = time.monotonic()
        self._last_key: tuple[Any, ...] | None = None
        self._last_at = 0.0
        self._last_backfill: tuple[Any, ...] | None = None

    def out(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()

    def event(self, message: str) -> None:
        self.out(f"[{time.monotonic() - self.started:6.1f}s]   . {message}")

    def backfill(self, elapsed: float, st: dict[str, Any]) -> None:
        """status.backfill, once per change: live (observedAt) while the Job runs."""
        b = st.get("backfill") or {}
        key = (b.get("run"), b.get("done"), b.get("observedAt"))
        if not b or key == self._last_backfill:
            return
        self._last_backfill = key
        kinds = " ".join(f"{k} {v.get('done', 0)}/{v.get('total', 0)}"
                         for k, v in (b.get("kinds") or {}).items())
        eta = b.get("etaSeconds")
        self.out(f"[{elapsed:6.1f}s] backfill {'live' if b.get('observedAt') else 'final'} "
                 f"{b.get('percent', 0):5.1f}% ({b.get('done')}/{b.get('total')}) "
                 f"{b.get('ratePerSecond') or '-'}/s ETA "
                 f"{'-' if eta is None else f'{eta:g}s'} | {kinds}")

    def progress(self, elapsed: float, st: dict[str, Any],
                 traffic: Traffic | TrafficProcess) -> None:
        self.backfill(elapsed, st)
        gate = st.get("lastGate") or {}
        key = (st.get("phase"), st.get("readPercent"), st.get("reason"), gate.get("result"))
        now = time.monotonic()
        if key == self._last_key and now - self._last_at < HEARTBEAT:
            return
        self._last_key, self._last_at = key, now
        err = gate.get("errorRate")
        err_s = f"{err:.4f}" if isinstance(err, (int, float)) else "  -   "
        lat = "/".join(f"{v * 1000:.0f}" if isinstance(v, (int, float)) else str(v or "-")
                       for v in (gate.get(f"p{q}Seconds") for q in (50, 95, 99)))
        served = traffic.stats.ok + traffic.stats.errors
        message = str(st.get("message") or "")[:90]
        self.out(f"[{elapsed:6.1f}s] {st.get('phase') or 'Preparation':<15} "
                 f"{int(st.get('readPercent') or 0):>3}% | err {err_s} p50/95/99 {lat:>11}ms "
                 f"gate {gate.get('result') or '-':<12} | {served:>6} req | "
                 f"{st.get('reason') or '-'}: {message}")


def summarize(o: Outcome, logs: str) -> dict[str, Any]:
    st = o.status
    backfill = next((j["result"] for j in o.jobs if j["kind"] == "backfill" and j["result"]),
                    None)
    verifies = [j for j in o.jobs if j["kind"] == "verify"]
    history = st.get("history") or []
    return {
        "goal": o.goal, "reached": o.reached, "error": o.error,
        "elapsed_seconds": round(o.elapsed, 1),
        "final_phase": st.get("phase"), "final_read_percent": st.get("readPercent"),
        "final_reason": st.get("reason"), "final_message": st.get("message"),
        "prometheus": o.prometheus,
        "fault_injected_at": o.fault_at, "rollback_seen_at": o.rollback_seen_at,
        "backfill": backfill,
        "rows_in_postgres": o.rows,
        "verify_runs": [{"name": j["name"], "exit": j["exit"], "phase": j["phase"],
                         "passed": (j["result"] or {}).get("passed"),
                         "checked": (j["result"] or {}).get("checked"),
                         "mismatches": (j["result"] or {}).get("mismatches"),
                         "mismatch_ratio": (j["result"] or {}).get("mismatch_ratio")}
                        for j in verifies],
        "p95_ms_by_phase": {tag: {"requests": n, "p95_ms": round(p * 1000, 1)}
                            for tag, (n, p) in o.p95_by_phase.items()},
        "server_p95_ms_by_phase": {tag: round(v * 1000, 1)
                                   for tag, v in o.server_p95_by_phase.items()},
        "server_http_p95_ms_by_phase": {tag: round(v * 1000, 1)
                                        for tag, v in o.server_http_p95_by_phase.items()},
        "service_p95_ms_by_phase": {tag: round(v * 1000, 1)
                                    for tag, v in o.service_p95_by_phase.items()},
        "p95_ratio_by_phase": {tag: round(p / o.server_http_p95_by_phase[tag], 2)
                               for tag, (_, p) in o.p95_by_phase.items()
                               if o.server_http_p95_by_phase.get(tag)},
        "rollbacks": [h for h in history if h.get("type") == "Rollback"],
        "history": history,
        "api_restarts": o.api_restarts,
        "api_restarts_memory_trusted": o.api_restarts_memory_trusted,
        "peak_pods": o.peak_pods,
        "rollback_seconds": o.rollback_seconds,
        "jobs": [{k: j[k] for k in ("name", "exit", "seconds")} for j in o.jobs],
        "traffic": o.traffic,
        "acknowledged_writes_checked": o.verify.get("checked", 0),
        "lost": o.verify.get("lost"), "lost_examples": o.verify.get("lost_examples"),
        "logs": logs,
    }


def _ms(value: float | None) -> str:
    return f"{value:>7.1f} ms" if value is not None else "      -   "


def print_summary(p: Printer, s: dict[str, Any]) -> None:
    line = "=" * 78
    p.out(line)
    p.out(f"SUMMARY  goal: {s['goal']}  ->  {'REACHED' if s['reached'] else 'NOT REACHED'}"
          f"  in {s['elapsed_seconds']}s")
    if s["error"]:
        p.out(f"  error: {s['error']}")
    p.out(f"  final: phase {s['final_phase']}, reads {s['final_read_percent']}% on PostgreSQL "
          f"({s['final_reason']}: {s['final_message']})")
    b = s["backfill"] or {}
    if b:
        examined = b.get("records", b.get("done"))  # a batched run's summary counts done
        p.out(f"  records moved by the backfill: {examined} examined, "
              f"{b.get('written_total')} written {b.get('written')}, {b.get('skipped_total')} "
              "already in PostgreSQL through dual-write")
    p.out(f"  rows in PostgreSQL now: {s['rows_in_postgres']}")
    p.out("  consistency (verify Jobs):")
    for v in s["verify_runs"]:
        p.out(f"    {v['name']} (in {v['phase']}): exit {v['exit']}, passed {v['passed']}, "
              f"checked {v['checked']}, mismatches {v['mismatches']} "
              f"(ratio {v['mismatch_ratio']})")
        if v["phase"] in ("PostgresPrimary", "Cleanup", "Complete") and not v["passed"]:
            p.out("      ^ ran after memory writes were turned off, so memory is stale by "
                  "design; not a gate in this phase")
    p.out("  p95 per phase: client side (every request through the Service, including any "
          "retry), server side")
    p.out("                 (the API's HTTP histogram, same span) and their ratio; service: "
          "as the Service")
    p.out("                 measured it (request read to response relayed); gate: the "
          "operator's worst")
    p.out("                 reading of PostgreSQL store operations")
    for tag, v in s["p95_ms_by_phase"].items():
        http = s.get("server_http_p95_ms_by_phase", {}).get(tag)
        ratio = s.get("p95_ratio_by_phase", {}).get(tag)
        gate = s["server_p95_ms_by_phase"].get(tag)
        p.out(f"    {tag:<24} {v['requests']:>6} requests   client {v['p95_ms']:>7.1f} ms"
              f"   server {_ms(http)}   ratio {f'{ratio:.2f}x' if ratio else '  -'}"
              f"   service {_ms(s.get('service_p95_ms_by_phase', {}).get(tag))}"
              f"   gate {_ms(gate)}")
    p.out(f"  rollbacks: {len(s['rollbacks'])}")
    for h in s["rollbacks"]:
        readings = h.get("readings") or {}
        p.out(f"    {h.get('time')}: reads {h.get('from')}% -> {h.get('to')}%: {h.get('reason')}"
              + (f" [errorRate {readings.get('errorRate')}, p95 {readings.get('p95Seconds')}s,"
                 f" requests {readings.get('requests')}]" if readings else ""))
    if s.get("rollback_seconds") is not None:
        p.out(f"  rollback: reads at 0% on every pod {s['rollback_seconds']:.2f} s after the "
              "failing evaluation")
    t = s["traffic"]
    p.out(f"  traffic: {t.get('ok')} answered <500")
    p.out(f"  restarts of the API process: {s['api_restarts']} "
          f"({s['api_restarts_memory_trusted']} while memory was trusted)")
    p.out(f"  API processes behind the Service at once, at most: {s.get('peak_pods')}")
    p.out(f"  connection errors: {t.get('refused_retried')}")
    p.out(f"  unknown outcomes: {t.get('unknown_outcome')}")
    p.out(f"  5xx: {t.get('errors_5xx')}")
    lost = s["lost"]
    verdict = "ZERO RECORDS LOST" if lost == 0 and s["acknowledged_writes_checked"] else "LOSS"
    p.out(f"  zero-loss proof: {s['acknowledged_writes_checked']} acknowledged writes read "
          f"back, {lost} lost -> {verdict}")
    if lost:
        p.out(f"    e.g. {s['lost_examples']}")
    p.out(f"  logs: {s['logs']}")
    p.out(line)
