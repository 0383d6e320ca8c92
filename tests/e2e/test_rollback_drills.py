"""Rollback drills from phases 1, 2 and 3, end to end (issue 16 item 7, issue 11 item 4).

One local cluster (devcluster.LocalCluster: real PostgreSQL, Prometheus scraping the API,
the real operator against the Kubernetes API emulator, the API as a real process) under
steady mixed traffic that remembers every acknowledged write, and one StoreMigration that
the operator walks forward. At DualWrite, at ReadSwitchover 50% and at PostgresPrimary
(where writes go to PostgreSQL only) the operator is stopped, as the script's runbook
says, and `api/scripts/rollback_postgres_migration.py` runs without --dry-run against the
Deployment: ConfigMap, PUT to every ready pod, read-back. Each drill checks what the pod
runs, that nothing restarted, and that every acknowledged write reads back (after phase 3:
from memory, rebuilt live from PostgreSQL). Then the operator is started again and moves
on: after phase 1 with a new retryToken, so backfill and verify run again for the writes
that dual-write missed.

Durations are printed (run with -s) and held against the spec's windows: phase 2 < 5 min
and phase 3 < 30 min, the script's wall time with its start-up; phase 1 "instant", taken
as every pod switched and confirmed within 1 s of the script's PUT (no restart, nothing
to move) and the whole script within a minute.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from devcluster.cluster import (
    DEPLOYMENT,
    NAMESPACE,
    LocalCluster,
    Timing,
    migration_spec,
)
from devcluster.traffic import Traffic, verify_acknowledged

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "api" / "scripts" / "rollback_postgres_migration.py"
WINDOWS = {1: 60.0, 2: 300.0, 3: 1800.0}  # seconds; phase 1 "instant": see below
TIMING = Timing(read_start=50, read_step=50, read_interval="4s", gate_interval="1s",
                window="6s", min_requests=20.0, verify_interval="20s", primary_hold="10m",
                target_phase="DualWrite", retry=False)
LIVE = {1: {"dual_write": False, "read_percent": 0},
        2: {"dual_write": True, "read_percent": 0, "memory_writes": True},
        3: {"dual_write": True, "read_percent": 0, "memory_writes": True}}


def confirmed(lc: LocalCluster, **want: str) -> Callable[[], bool]:
    def check() -> bool:
        sw = lc.status().get("switches") or {}
        return bool(sw.get("confirmed")) and all(
            (sw.get("desired") or {}).get(k) == v for k, v in want.items())
    return check


async def resume(lc: LocalCluster, spec: dict[str, Any]) -> None:
    """Start the operator again and move the StoreMigration on with `spec`."""
    lc._start_operator()
    await lc.patch_migration(spec)


async def rollback(lc: LocalCluster, phase: int) -> tuple[float, dict[str, Any]]:
    """Stop the operator, run the script for real; (wall seconds, its JSON summary)."""
    assert lc.kube is not None
    lc._stop_operator()
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "VIRTUAL_ENV")}
    env |= {"KUBECONFIG": str(lc.kube.kubeconfig), "ADMIN_TOKEN": lc.admin_token}
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(  # the emulator answers from this loop
        sys.executable, str(SCRIPT), "--from-phase", str(phase), "--deployment", DEPLOYMENT,
        "--namespace", NAMESPACE, "--operator-stopped", "--quiet", env=env, cwd=str(ROOT),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), WINDOWS[phase] + 60)
    took = time.monotonic() - started
    assert proc.returncode == 0, err.decode()[-3000:]
    summary: dict[str, Any] = json.loads(out.decode())
    return took, summary


async def drill(lc: LocalCluster, traffic: Traffic, phase: int) -> dict[str, float]:
    assert lc.controller is not None
    restarts = len(lc.controller.rollouts)
    acked_before = traffic.ledger.count()
    took, summary = await rollback(lc, phase)
    assert summary["ok"] and summary["live"], summary
    [pod] = summary["pods"]["pods"]
    assert pod["confirmed"], summary
    live = await lc.api_switches()
    assert live["desired_revision"] == summary["pods"]["revision"]
    for store in live["stores"].values():
        assert {k: store[k] for k in LIVE[phase]} == LIVE[phase], live
    config = lc.switches_config()
    assert config["READ_FROM_POSTGRES_PERCENT"] == "0"
    if phase == 3:
        assert config["IN_MEMORY_WRITES"] == "true" and config["REHYDRATE_ON_START"] == "true"
        assert {s["trusted"] for s in live["routing"].values()} == {"memory"}, live
    await asyncio.sleep(1.0)  # traffic keeps writing under the rolled-back switches
    assert len(lc.controller.rollouts) == restarts  # the rollback restarted nothing
    result = await verify_acknowledged(lc.api.url, traffic.ledger)
    assert result["checked"] > acked_before > 0 and result["lost"] == 0, result
    figures = {"wall": took, "script": summary["seconds"], "pods": summary["pods"]["seconds"],
               "checked": result["checked"]}
    print(f"\nphase {phase} rollback: {figures}")
    return figures


@pytest.mark.slow
async def test_rollback_drills_from_phases_1_2_and_3(tmp_path: Path) -> None:
    figures: dict[int, dict[str, float]] = {}
    began = time.monotonic()

    def mark(what: str) -> None:
        print(f"\n{time.monotonic() - began:6.1f}s {what}")

    async with LocalCluster(tmp_path / "cluster", require_prometheus=True) as lc:
        assert lc.prometheus is not None
        mark("cluster up")
        traffic = Traffic(lc.api.url, rate=20)
        runner = asyncio.get_running_loop().create_task(traffic.run())
        try:
            await lc.create_migration(migration_spec(TIMING, lc.api.url, lc.prometheus.url,
                                                     tmp_path))
            await lc.wait_for(lambda: lc.status().get("phase") == "DualWrite" and
                              ((lc.status().get("jobs") or {}).get("verify") or {})
                              .get("passed") is True, 120, "DualWrite, backfill and verify")
            await lc.wait_for(confirmed(lc, DUAL_WRITE_MODE="true"), 30, "dual-write live")
            mark("DualWrite, backfill and verify passed")
            figures[1] = await drill(lc, traffic, 1)
            mark("drill 1 done")

            # writes made while dual-write was off are in memory only: the documented
            # retry (a new retryToken) runs backfill and verify again once dual-write is
            # back on every pod, before reads move
            await resume(lc, {"retryToken": "after-drill-1", "targetPhase": "ReadSwitchover"})
            await lc.wait_for(lambda: lc.status().get("phase") == "ReadSwitchover" and
                              lc.live_at(50), 180, "reads at 50% on every pod")
            mark("ReadSwitchover at 50%")
            figures[2] = await drill(lc, traffic, 2)
            mark("drill 2 done")

            # dual-write stayed on: the operator puts reads back where it had them
            await resume(lc, {"targetPhase": "PostgresPrimary"})
            await lc.wait_for(lambda: lc.status().get("phase") == "PostgresPrimary", 240,
                              "PostgresPrimary")
            await lc.wait_for(confirmed(lc, IN_MEMORY_WRITES="false"), 60,
                              "memory writes off on every pod")
            mark("PostgresPrimary")
            await asyncio.sleep(2.0)  # writes that only PostgreSQL holds
            figures[3] = await drill(lc, traffic, 3)
            mark("drill 3 done")
        finally:
            traffic.stop()
            await runner
        assert traffic.stats.errors == 0, dict(traffic.stats.by_status)
        final = await verify_acknowledged(lc.api.url, traffic.ledger)
        assert final["lost"] == 0, final
        mark("final check")
    print("\nrollback drills (script without --dry-run, operator stopped first):")
    for phase, f in figures.items():
        print(f"  phase {phase}: every pod switched and confirmed {f['pods']:.2f}s after the "
              f"script applied it; script {f['script']:.2f}s, {f['wall']:.2f}s with its "
              f"start-up; window {WINDOWS[phase]:.0f}s; {f['checked']:.0f} acknowledged "
              "records, 0 lost, no restart")
    print(f"  traffic: {traffic.stats.ok} ok, {traffic.stats.errors} 5xx, "
          f"{traffic.stats.unknown} unknown outcomes, {final['checked']} records checked")
    assert figures[1]["pods"] < 1.0, figures[1]  # "instant": no restart, one PUT per pod
    for phase, f in figures.items():
        assert f["wall"] < WINDOWS[phase], (phase, f)
