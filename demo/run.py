"""The main job: one migration, start to finish, on this machine (devcluster.LocalCluster).

Steady mixed traffic runs the whole time and remembers every acknowledged write; the real
operator drives the API through every phase with seconds for days; with `faults`, the API's
PostgreSQL role loses its table privileges once reads are at >= 20%, and the run ends when
the operator has returned reads to 0%. Then every acknowledged write is read back.
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from storemigration_operator.core.durations import parse_time

from devcluster.cluster import MIGRATION, NAMESPACE, ROOT, LocalCluster, Timing, migration_spec
from devcluster.faults import restore_app_access, revoke_app_access, row_counts
from devcluster.traffic import TrafficProcess, verify_acknowledged

# Two API pods from PostgresPrimary on (spec.replicas): several processes on one PostgreSQL.
DEFAULT = Timing(replicas=2)
FAST = Timing(read_start=10, read_step=30, read_interval="5s", gate_interval="1s",
              window="15s", min_requests=50.0, verify_interval="20s", primary_hold="4s",
              replicas=2)
MAX_RETRIES = 3
FAULT_AT_PERCENT = 20
WARMUP_SECONDS = 4.0
SCRAPE_WAIT_SECONDS = 30.0


@dataclass
class Options:
    faults: bool = False
    fast: bool = False
    rate: float = 40.0
    limit: float = 420.0


@dataclass
class Outcome:
    goal: str
    reached: bool = False
    elapsed: float = 0.0
    status: dict[str, Any] = field(default_factory=dict)
    fault_at: float | None = None
    rollback_seen_at: float | None = None
    verify: dict[str, Any] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    jobs: list[dict[str, Any]] = field(default_factory=list)
    api_restarts: int = 0
    api_restarts_memory_trusted: int = 0
    peak_pods: int = 0  # API processes behind the Service at once, at most
    rollback_seconds: float | None = None  # failing evaluation -> 0% confirmed on every pod
    traffic: dict[str, Any] = field(default_factory=dict)
    p95_by_phase: dict[str, tuple[int, float]] = field(default_factory=dict)
    server_p95_by_phase: dict[str, float] = field(default_factory=dict)
    # the same requests' p95 as the API measured them (Prometheus, each phase's own span)
    server_http_p95_by_phase: dict[str, float] = field(default_factory=dict)
    # what the Service (devcluster.proxy) measured: request read to response relayed
    service_p95_by_phase: dict[str, float] = field(default_factory=dict)
    prometheus: str | None = None
    error: str | None = None
    phases: list[tuple[float, str]] = field(default_factory=list)
    fault_moment: float | None = None  # monotonic

    def phase_at(self, moment: float) -> str:
        """The phase the StoreMigration was in at monotonic time `moment`."""
        current = "Preparation"
        for at, phase in self.phases:
            if at > moment:
                break
            current = phase
        return current

    def tag_at(self, moment: float) -> str:
        """The phase at `moment`, marked once the fault was injected."""
        fault = self.fault_moment is not None and moment >= self.fault_moment
        return f"{self.phase_at(moment)} (fault)" if fault else self.phase_at(moment)

    def spans(self, end: float) -> dict[str, tuple[float, float]]:
        """Each tag's first and last moment (monotonic), the last one ending at `end`."""
        marks = sorted(at for at, _ in self.phases)
        if self.fault_moment is not None:
            marks = sorted([*marks, self.fault_moment])
        spans: dict[str, tuple[float, float]] = {}
        for at, until in zip(marks, [*marks[1:], end], strict=True):
            tag = self.tag_at(at)
            first, last = spans.get(tag, (at, until))
            spans[tag] = (min(first, at), max(last, until))
        return spans


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] if ordered else 0.0


def _rolled_back_after(status: dict[str, Any], since_iso: str) -> bool:
    return any(h.get("type") == "Rollback" and h.get("to") == 0 and h.get("time", "") >= since_iso
               for h in status.get("history") or [])


def watch_commands(lc: LocalCluster) -> list[str]:
    """The commands a second terminal runs to watch this run, exactly (KUBECONFIG and the
    venv's bin, where kubectl finds the kubectl-storemigration plugin)."""
    assert lc.kube is not None
    config = f"KUBECONFIG={lc.kube.kubeconfig}"
    bin_dir = Path(sys.executable).parent
    return [f"{config} kubectl get storemigrations -n {NAMESPACE} -w",
            f"{config} PATH={bin_dir}:$PATH kubectl storemigration get {MIGRATION} "
            f"-n {NAMESPACE} --watch"]


def look_around(lc: LocalCluster) -> list[str]:
    """What a person can run against the kept cluster (--keep)."""
    assert lc.kube is not None and lc.pg is not None
    config = f"KUBECONFIG={lc.kube.kubeconfig}"
    lines = [*watch_commands(lc),
             f"{config} kubectl get storemigration {MIGRATION} -n {NAMESPACE} -o yaml",
             f"{config} kubectl get deployments,jobs,pods,events -n {NAMESPACE}",
             f"curl -s {lc.api.url}/api/agent/store-status",
             f"psql '{lc.owner_dsn}'"]
    if lc.prometheus is not None:
        lines.append(f"open {lc.prometheus.url}/graph (Prometheus)")
    lines.append(f"logs: {lc.logs} (cd {ROOT} to run the kubectl lines with this checkout)")
    return lines


async def run_demo(opts: Options, workdir: Path, show: Callable[[str], None],
                   progress: Callable[[float, dict[str, Any], TrafficProcess], None],
                   out: Callable[[str], None] = print,
                   done: Callable[[Outcome, LocalCluster], Awaitable[None]] | None = None
                   ) -> Outcome:
    """One run; `done` is awaited with the outcome while the cluster is still up (the
    summary, and with --keep the wait for Ctrl-C), then everything stops."""
    timing = FAST if opts.fast else DEFAULT
    if opts.faults:
        timing = Timing(**{**timing.__dict__, "retry": False})
    outcome = Outcome(goal="reads back at 0% after the fault" if opts.faults
                      else "migration Complete")
    started = time.monotonic()
    async with LocalCluster(workdir, require_prometheus=opts.faults, on_event=show) as lc:
        if lc.prometheus_missing:
            show("!" * 72)
            show(f"!! PROMETHEUS IS NOT INSTALLED ({lc.prometheus_missing})")
            show("!! The gates are OFF for this run: every reading passes. Install it")
            show("!! (bash scripts/bootstrap.sh) to see the real error-rate and p95 gates.")
            show("!" * 72)
        outcome.prometheus = lc.prometheus.url if lc.prometheus else None
        out("Watch it from a second terminal:")
        for line in watch_commands(lc):
            out(f"    {line}")
        if lc.prometheus is not None:
            await scraped_once(lc.prometheus.url)
        traffic = TrafficProcess(lc.api.url, rate=opts.rate)  # through the Service
        outcome.phases.append((time.monotonic(), "Preparation"))  # before the StoreMigration
        runner = asyncio.get_running_loop().create_task(traffic.run())
        try:
            show(f"traffic: {opts.rate:g} req/s mixed over both stores; warming up "
                 f"{WARMUP_SECONDS:g}s before the StoreMigration is applied")
            await asyncio.sleep(WARMUP_SECONDS)
            spec = migration_spec(timing, lc.api.url, outcome.prometheus, workdir)
            await lc.create_migration(spec)
            show("applied StoreMigration/store-migration "
                 f"(steps of {timing.read_step}% every {timing.read_interval}, gates every "
                 f"{timing.gate_interval} over {timing.window}, hold {timing.primary_hold})")
            await _watch(lc, opts, outcome, traffic, started, show, progress)
        finally:
            traffic.stop()
            await runner
        traffic_end = time.monotonic()
        outcome.status = lc.status()
        if outcome.fault_at is not None:
            await restore_app_access(lc.owner_dsn)
            show("grants restored to storemigration_app")
        show("reading back every acknowledged write ...")
        outcome.verify = await verify_acknowledged(lc.api.url, traffic.ledger)
        outcome.rows = await row_counts(lc.owner_dsn)
        outcome.traffic = {"ok": traffic.stats.ok, "errors_5xx": traffic.stats.errors,
                           "refused_retried": traffic.stats.refused,
                           "unknown_outcome": traffic.stats.unknown,
                           "by_status": dict(traffic.stats.by_status)}
        by_tag: dict[str, list[float]] = {}
        for sent, took, _ in traffic.stats.samples:
            by_tag.setdefault(outcome.tag_at(sent), []).append(took)
        (lc.logs / "traffic-samples.json").write_text(json.dumps(
            [(round(sent - started, 3), round(took, 4), what)
             for sent, took, what in traffic.stats.samples]))
        outcome.p95_by_phase = {tag: (len(v), _p95(v)) for tag, v in by_tag.items()}
        behind: dict[str, list[float]] = {}
        for sent, took in await lc.api.samples():
            if sent <= traffic_end:  # not the read-back below
                behind.setdefault(outcome.tag_at(sent), []).append(took)
        outcome.service_p95_by_phase = {tag: _p95(v) for tag, v in behind.items()}
        if lc.prometheus is not None:
            outcome.server_http_p95_by_phase = await server_http_p95(
                lc.prometheus.url, outcome.spans(traffic_end), lc.prometheus.scrape_seconds)
        assert lc.controller is not None
        rollouts = lc.controller.rollouts[1:]  # [0] is the first start
        outcome.api_restarts = sum(r.replaced for r in rollouts)
        outcome.api_restarts_memory_trusted = sum(r.replaced for r in rollouts
                                                  if r.memory_trusted)
        outcome.peak_pods = lc.controller.peak_pods
        for run in lc.controller.jobs.values():
            try:
                result = json.loads(run.message) if run.message else None
            except ValueError:
                result = None
            outcome.jobs.append({"name": run.name, "kind": run.kind, "exit": run.exit_code,
                                 "seconds": round(run.seconds, 2), "result": result,
                                 "phase": outcome.phase_at(run.started)})
        outcome.elapsed = time.monotonic() - started
        if done is not None:
            await done(outcome, lc)
    return outcome


async def _watch(lc: LocalCluster, opts: Options, outcome: Outcome, traffic: TrafficProcess,
                 started: float, show: Callable[[str], None],
                 progress: Callable[[float, dict[str, Any], TrafficProcess], None]) -> None:
    deadline = started + opts.limit
    fault_iso = ""
    retried = 0
    while time.monotonic() < deadline:
        if not lc.operator_alive():
            outcome.error = f"the operator exited; see {lc.logs / 'operator.log'}"
            return
        st = lc.status()
        phase = st.get("phase") or "Preparation"
        if not outcome.phases or outcome.phases[-1][1] != phase:
            outcome.phases.append((time.monotonic(), phase))
        _note_server_p95(outcome, outcome.tag_at(time.monotonic()), st)
        progress(time.monotonic() - started, st, traffic)
        if not opts.faults and phase == "Complete":
            outcome.reached = True
            return
        if opts.faults and outcome.fault_at is None and st.get("retriesExhausted") \
                and retried < MAX_RETRIES:
            retried += 1
            show(f"the operator rolled back on its own before the fault ({st.get('message')}); "
                 f"retrying as a user would: spec.retryToken=retry-{retried}")
            await lc.patch_migration({"retryToken": f"retry-{retried}"})
        if opts.faults and outcome.fault_at is None and phase == "ReadSwitchover" \
                and int(st.get("readPercent") or 0) >= FAULT_AT_PERCENT:
            await revoke_app_access(lc.owner_dsn)
            outcome.fault_moment = time.monotonic()
            outcome.fault_at = outcome.fault_moment - started
            fault_iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
            show(f"FAULT: REVOKE SELECT, INSERT, UPDATE, DELETE ON <all data tables> FROM "
                 f"storemigration_app (reads at {st.get('readPercent')}%)")
        if outcome.fault_at is not None and int(st.get("readPercent") or 0) == 0 \
                and _rolled_back_after(st, fault_iso):
            if outcome.rollback_seen_at is None:
                outcome.rollback_seen_at = time.monotonic() - started
            if lc.live_at(0):
                outcome.rollback_seconds = rollback_seconds(st)
                outcome.reached = True
                progress(time.monotonic() - started, lc.status(), traffic)
                return
        await asyncio.sleep(0.5)
    outcome.error = f"the goal ({outcome.goal}) was not reached within {opts.limit:.0f}s"


def _note_server_p95(outcome: Outcome, tag: str, status: dict[str, Any]) -> None:
    """The worst p95 the operator's gate read from Prometheus (server side, PostgreSQL
    path) while in this phase."""
    p95 = (status.get("lastGate") or {}).get("p95Seconds")
    if isinstance(p95, int | float):
        outcome.server_p95_by_phase[tag] = max(outcome.server_p95_by_phase.get(tag, 0.0), p95)


HTTP_P95 = ('histogram_quantile(0.95, sum by (le) (increase('
            'storemigration_http_request_duration_seconds_bucket'
            '{route!~"/metrics|/api/admin/.*"}[%ds])))')


async def scraped_once(prometheus_url: str) -> None:
    """Until Prometheus holds a sample of every API pod: its first scrape comes a few
    seconds after it starts, and traffic sent before it would be missing from the
    server-side figures of the first phase."""
    deadline = time.monotonic() + SCRAPE_WAIT_SECONDS
    async with httpx.AsyncClient(base_url=prometheus_url, timeout=5) as client:
        while time.monotonic() < deadline:
            resp = await client.get("/api/v1/query", params={"query": 'up{job="api"}'})
            found = resp.json().get("data", {}).get("result") or []
            if found and all(float(r["value"][1]) == 1 for r in found):
                return
            await asyncio.sleep(0.25)
    raise RuntimeError(f"Prometheus has not scraped the API in {SCRAPE_WAIT_SECONDS:g}s")


async def server_http_p95(prometheus_url: str, spans: dict[str, tuple[float, float]],
                          scrape_seconds: float) -> dict[str, float]:
    """Per tag, the p95 of the requests the API served in that span (its own HTTP
    histogram, every pod; Prometheus scrapes and the operator's admin calls left out):
    the server side of the traffic's client-side p95. Each span is read one scrape
    later than it ends, over a window one scrape longer: the scrape after the span's
    end is what holds its last requests, and a span in which the pods were replaced
    (Cleanup's restart into the PostgreSQL-only service) has few samples per pod."""
    result: dict[str, float] = {}
    offset = time.time() - time.monotonic()
    async with httpx.AsyncClient(base_url=prometheus_url, timeout=10) as client:
        for tag, (first, last) in spans.items():
            seconds = max(2, round(last - first)) + math.ceil(scrape_seconds)
            resp = await client.get("/api/v1/query", params={
                "query": HTTP_P95 % seconds,
                "time": f"{last + scrape_seconds + offset:.3f}"})
            found = resp.json().get("data", {}).get("result") or []
            value = float(found[0]["value"][1]) if found else math.nan
            if math.isfinite(value):
                result[tag] = value
    return result


def rollback_seconds(status: dict[str, Any]) -> float | None:
    """From the failing gate evaluation (the reconcile that rolled back, its history entry)
    to the last pod's confirmation of reads at 0% (status.pods[].confirmedAt: the operator's
    read-back of each pod's GET /api/admin/switches)."""
    rollback = next((h for h in reversed(status.get("history") or [])
                     if h.get("type") == "Rollback"), None)
    pods = status.get("pods") or []
    confirmed = [parse_time(p.get("confirmedAt")) for p in pods if p.get("confirmed")]
    at = parse_time(rollback.get("time")) if rollback else None
    if at is None or not pods or len(confirmed) != len(pods) or None in confirmed:
        return None
    return max(c for c in confirmed if c is not None).timestamp() - at.timestamp()
