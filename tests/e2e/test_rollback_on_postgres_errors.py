"""Issue 5's last proof: a real Prometheus scrapes the real API; real PostgreSQL errors (the
API's role loses its table privileges) drive the PostgreSQL error rate over 1%, and the real
operator (a subprocess against the Kubernetes API emulator) returns reads to 0% at its next
gate evaluation, records why, emits a Warning event, and puts reads at 0% live: the
ConfigMap and the API pod (read back from the pod itself), with no API restart.

No timed assertion: the rollback is awaited by polling with a generous limit; the seconds it
took are printed (run with -s to see them).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from devcluster.cluster import LocalCluster, Timing, migration_spec
from devcluster.faults import restore_app_access, revoke_app_access
from devcluster.traffic import Traffic, verify_acknowledged

TIMING = Timing(read_start=10, read_step=10, read_interval="10m", gate_interval="2s",
                window="15s", min_requests=50.0, verify_interval="10m", primary_hold="10m",
                target_phase="ReadSwitchover", retry=False)


def rollbacks(status: dict[str, Any]) -> list[dict[str, Any]]:
    return [h for h in status.get("history") or [] if h.get("type") == "Rollback"]


@pytest.mark.slow
async def test_postgres_errors_return_reads_to_zero(tmp_path: Path) -> None:
    async with LocalCluster(tmp_path / "cluster", require_prometheus=True) as lc:
        assert lc.prometheus is not None
        traffic = Traffic(lc.api.url, rate=40)
        runner = asyncio.get_running_loop().create_task(traffic.run())
        try:
            await lc.create_migration(migration_spec(TIMING, lc.api.url, lc.prometheus.url,
                                                     tmp_path))
            await lc.wait_for(lambda: lc.status().get("phase") == "ReadSwitchover"
                              and lc.status().get("readPercent") == 10
                              and lc.live_at(10), 120, "reads at 10% on every pod")
            await lc.wait_for(lambda: (lc.status().get("lastGate") or {}).get("result")
                              == "Successful", 60, "a successful gate at 10% (healthy)")
            assert not rollbacks(lc.status())

            assert lc.controller is not None
            restarts = len(lc.controller.rollouts)
            await revoke_app_access(lc.owner_dsn)
            injected = time.monotonic()
            await lc.wait_for(lambda: lc.status().get("readPercent") == 0, 60,
                              "the operator to return reads to 0%")
            took = time.monotonic() - injected
            await lc.wait_for(lambda: lc.live_at(0), 60, "reads at 0% on every pod")
            print(f"\nreads 10% -> 0% {took:.1f}s after the fault (gate interval "
                  f"{TIMING.gate_interval}, window {TIMING.window}, scrape 1s)")
        finally:
            traffic.stop()
            await runner

        status = lc.status()
        [rollback] = rollbacks(status)
        assert rollback["from"] == 10 and rollback["to"] == 0
        assert "gate failed: error rate" in rollback["reason"]
        assert rollback["readings"]["errorRate"] > 0.01
        assert rollback["readings"]["result"] == "Failed"
        assert status["lastGate"]["thresholds"]["errorRate"] == 0.01
        degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
        assert degraded["status"] == "True"
        warnings = [e for e in lc.events() if e.get("type") == "Warning"
                    and e.get("reason") == "RolledBack"]
        assert warnings and "10% -> 0%" in warnings[0]["message"]
        assert lc.switches_config()["READ_FROM_POSTGRES_PERCENT"] == "0"
        assert lc.switches_config()["DUAL_WRITE_MODE"] == "true"
        live = await lc.api_switches()
        assert live["desired_revision"] == status["switches"]["revision"]
        assert {s["read_percent"] for s in live["stores"].values()} == {0}
        assert {s["dual_write"] for s in live["stores"].values()} == {True}
        assert len(lc.controller.rollouts) == restarts  # the rollback restarted nothing

        # the router fell back to memory: no request failed, and nothing was lost
        assert traffic.stats.errors == 0, dict(traffic.stats.by_status)
        await restore_app_access(lc.owner_dsn)
        result = await verify_acknowledged(lc.api.url, traffic.ledger)
        assert result["checked"] > 0 and result["lost"] == 0, result
