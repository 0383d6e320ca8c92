"""Issue 16's safety net in the planner, over the simulated calendar: the final snapshot must
have a durable destination before PostgresPrimary, a migration held in DualWrite is verified
every verify.interval, and p50/p95/p99 are read, reported and (when set) gated."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from storemigration_operator.core.durations import parse_time
from storemigration_operator.core.gates import GateReadings, evaluate
from storemigration_operator.core.jobs import SNAPSHOT_THEN_ARCHIVE
from storemigration_operator.core.spec import InvalidSpec, parse_spec
from storemigration_operator.core.status import read_status
from storemigration_operator.core.verify import verify_due

from .sim import Sim

H = timedelta(hours=1)
FAST = {"deployment": "api", "targetPhase": "PostgresPrimary", "gates": {"window": "1h"},
        "readStep": {"interval": "1h"}, "verify": {"interval": "1h"}}
STALE_AFTER = timedelta(hours=2)  # StoreMigrationVerifyJobStale: 2 h past the verify due


def kinds_created(sim: Sim) -> list[str]:
    return [n.removeprefix("sm-").rsplit("-", 1)[0] for n in sim.created]


@pytest.mark.parametrize("extra,refused", [
    ({}, "set spec.snapshotVolume (a PersistentVolumeClaim) or an s3:// spec.cleanup.archive"),
    ({"cleanup": {"archive": "/archive/"}}, "cleanup.archive /archive/ is a path in the "
                                            "archive Job's own pod"),
    ({"snapshotVolume": {"claimName": "snaps"}}, None),
    ({"cleanup": {"archive": "s3://bucket/final/"}}, None),
])
def test_postgres_primary_needs_a_durable_destination_for_the_final_snapshot(extra, refused):
    sim = Sim({**FAST, **extra})
    sim.tick()
    sim.run_until(lambda: sim.percent == 100, H, limit=40)
    for _ in range(10):
        sim.tick(H)
    if refused is None:
        assert sim.phase == "PostgresPrimary" and "snapshot" in kinds_created(sim)
        assert sim.condition("Degraded")["status"] == "False"
        return
    assert sim.phase == "ReadSwitchover" and sim.percent == 100
    degraded = sim.condition("Degraded")
    assert degraded["status"] == "True" and degraded["reason"] == "SnapshotNotDurable"
    assert degraded["message"].startswith("PostgresPrimary refused: the final snapshot would "
                                          "be written inside the snapshot Job's pod")
    assert refused in degraded["message"]
    assert sim.status["reason"] == "SnapshotNotDurable"
    assert sim.events().count(("Warning", "SnapshotNotDurable")) == 1  # on the transition
    assert not {"snapshot", "verify-full"} & set(kinds_created(sim))
    assert sim.live["IN_MEMORY_WRITES"] == "true"  # memory writes never stopped
    sim.spec_doc["snapshotVolume"] = {"claimName": "snaps"}
    sim.run_until(lambda: sim.phase == "PostgresPrimary", H, limit=10)
    assert sim.condition("Degraded")["reason"] == "AsExpected"


def test_without_a_volume_the_snapshot_job_uploads_to_s3_and_cleanup_does_not_archive_again():
    archive_env = [{"name": "S3_ENDPOINT_URL", "value": "http://s3.local:9000"}]
    sim = Sim({**FAST, "targetPhase": "Cleanup", "primaryHold": "1h",
               "cleanup": {"approved": True, "archive": "s3://bucket/final/"},
               "jobs": {"archive": {"env": archive_env}}})
    sim.tick()
    sim.run_until(lambda: sim.phase == "Complete", H, limit=80)
    snapshot = next(j for p in sim.plans for j in p.jobs if j.kind == "snapshot")
    assert snapshot.command == ("sh", "-c", SNAPSHOT_THEN_ARCHIVE, "snapshot_memory")
    assert snapshot.args[-2:] == ("--output", "/data/snapshots/final.json")
    env = dict(snapshot.env)
    assert env["ARCHIVE_DEST"] == "s3://bucket/final/"
    assert env["SNAPSHOT_PATH"] == "/data/snapshots/final.json"
    assert env["S3_ENDPOINT_URL"] == "http://s3.local:9000"
    assert snapshot.snapshot_mount is None
    assert "archive" not in kinds_created(sim)  # uploaded once, by the pod that wrote it


def test_with_a_volume_the_snapshot_job_only_writes_and_cleanup_archives():
    sim = Sim({**FAST, "targetPhase": "Cleanup", "primaryHold": "1h",
               "snapshotVolume": {"claimName": "snaps"},
               "cleanup": {"approved": True, "archive": "s3://bucket/final/"}})
    sim.tick()
    sim.run_until(lambda: sim.phase == "Complete", H, limit=80)
    snapshot = next(j for p in sim.plans for j in p.jobs if j.kind == "snapshot")
    assert snapshot.command == ("python", "api/scripts/snapshot_memory.py")
    assert snapshot.snapshot_mount == ("snaps", "/data/snapshots")
    assert kinds_created(sim)[-1] == "archive"


@pytest.mark.parametrize("interval,expected", [("24h", 5), ("12h", 10)])
def test_days_held_in_dual_write_give_one_verify_job_per_interval(interval, expected):
    """Issue 16: 5 days held in DualWrite gave one verify Job; now one per verify.interval,
    and the stale-verify alert's condition (2 h past the due time) is never met."""
    sim = Sim({"deployment": "api", "targetPhase": "DualWrite",
               "verify": {"interval": interval}})
    sim.tick()
    entered = parse_time(sim.status["phaseEnteredTime"])
    assert sim.phase == "DualWrite" and entered is not None
    worst = timedelta(days=-1)
    while sim.now + H < entered + timedelta(days=5):
        sim.tick(H)
        st = read_status(sim.status)
        assert st.last_valid_spec is not None
        due = verify_due(st, st.last_valid_spec)
        if due is not None:
            worst = max(worst, sim.now - due)
    created = [(p.status["jobs"]["verify"]["createdAt"], j.name) for p in sim.plans
               for j in p.jobs if j.kind == "verify"]
    assert len(created) == expected, created
    gaps = {parse_time(b[0]) - parse_time(a[0])  # type: ignore[operator]
            for a, b in zip(created, created[1:], strict=False)}
    assert gaps == {parse_spec({"deployment": "api", "verify": {"interval": interval}})
                    .verify.interval + H}  # the first hourly reconcile after the due time
    assert kinds_created(sim)[0] == "backfill" and "verify-full" not in kinds_created(sim)
    assert timedelta(0) < worst <= H < STALE_AFTER  # never 2 h overdue, on any day
    assert sim.phase == "DualWrite" and sim.condition("Ready")["status"] == "True"
    assert sim.condition("Degraded")["status"] == "False"


def test_a_daily_verify_that_fails_in_dual_write_is_degraded_and_holds_the_phase():
    outcomes = iter([("Succeeded", {"mismatch_ratio": 0.0, "checked": 10}),  # backfill
                     ("Succeeded", {"mismatch_ratio": 0.0, "checked": 10}),  # day 1
                     ("Failed", {"mismatch_ratio": 0.2, "checked": 10, "passed": False})])
    sim = Sim({"deployment": "api", "targetPhase": "DualWrite"},
              job_outcome=lambda kind: next(outcomes))
    sim.tick()
    sim.run_until(lambda: sim.condition("Degraded")["status"] == "True", H, limit=40)
    assert sim.condition("Degraded")["reason"] == "VerifyFailed"
    assert "mismatch ratio 0.2 > 0.01" in sim.condition("Degraded")["message"]
    sim.spec_doc["targetPhase"] = "ReadSwitchover"
    sim.tick(H)
    assert sim.phase == "DualWrite"  # a failed verify never lets reads move


def test_verify_due_is_absent_once_promotion_verifies_in_full_instead():
    sim = Sim({**FAST, "snapshotVolume": {"claimName": "snaps"}})
    sim.tick()
    sim.run_until(lambda: sim.percent == 50, H, limit=40)
    st = read_status(sim.status)
    assert st.last_valid_spec is not None and st.last_verify_success_time is not None
    assert verify_due(st, st.last_valid_spec) == st.last_verify_success_time + H
    sim.run_until(lambda: sim.percent == 100, H, limit=40)
    st = read_status(sim.status)
    assert st.last_valid_spec is not None and verify_due(st, st.last_valid_spec) is None


def readings(p50: float | None, p95: float | None, p99: float | None) -> GateReadings:
    return GateReadings(error_rate=0.001, p50_seconds=p50, p95_seconds=p95, p99_seconds=p99,
                        mismatch_ratio=0.0, requests=5000)


@pytest.mark.parametrize("ceilings,values,result,reason", [
    ({}, (0.3, 0.4, 9.0), "Successful", "p95 0.400s <= 0.5s"),  # p50/p99 read, not gated
    ({}, (0.3, 0.6, 0.7), "Failed", "p95 0.600s > 0.5s"),
    ({"p50CeilingSeconds": 0.25}, (0.2, 0.4, 0.7), "Successful",
     "p50 0.200s <= 0.25s, p95 0.400s <= 0.5s"),
    ({"p50CeilingSeconds": 0.1}, (0.2, 0.4, 0.7), "Failed", "p50 0.200s > 0.1s"),
    ({"p99CeilingSeconds": 1.0}, (0.2, 0.4, 0.9), "Successful",
     "p95 0.400s <= 0.5s, p99 0.900s <= 1.0s"),
    ({"p99CeilingSeconds": 1.0}, (0.2, 0.4, 2.0), "Failed", "p99 2.000s > 1.0s"),
    ({"p99CeilingSeconds": 1.0}, (0.2, 0.4, math.inf), "Failed",
     "p99 +Inf (above the top histogram bucket) > 1.0s"),
    ({"p99CeilingSeconds": 1.0}, (0.2, 0.4, None), "Inconclusive", "no data for p99"),
    ({"p50CeilingSeconds": 0.25, "p99CeilingSeconds": 1.0}, (0.3, 0.6, 2.0), "Failed",
     "p50 0.300s > 0.25s; p95 0.600s > 0.5s; p99 2.000s > 1.0s"),
])
def test_each_latency_ceiling_gates_and_rolls_reads_back(ceilings, values, result, reason):
    spec = {**FAST, "gates": {"window": "1h", **ceilings}}
    verdict = evaluate(readings(*values), parse_spec(spec).gates)
    assert verdict.result.value == result and reason in verdict.reason
    sim = Sim(spec)
    sim.tick()
    sim.run_until(lambda: sim.phase == "ReadSwitchover", H, limit=10)
    sim.readings = lambda now: readings(*values)
    sim.tick(timedelta(minutes=1))
    gate = sim.status["lastGate"]
    assert gate["result"] == result and reason in gate["reason"]
    shown = {"+Inf" if v == math.inf else v for v in values if v is not None}
    assert {gate.get(k) for k in ("p50Seconds", "p95Seconds", "p99Seconds")} - {None} == shown
    gated = {c["gate"] for c in gate["checks"]}
    assert gated == {"errorRate", "p95", "mismatchRatio", "requests",
                     *(g for g in ("p50", "p99") if f"{g}CeilingSeconds" in ceilings)}
    assert gate["thresholds"].get("p99Seconds") == ceilings.get("p99CeilingSeconds")
    assert sim.percent == (0 if result == "Failed" else 10)


def test_latency_ceilings_must_be_positive_and_queries_can_be_overridden():
    with pytest.raises(InvalidSpec, match="gates.p99CeilingSeconds"):
        parse_spec({"deployment": "api", "gates": {"p99CeilingSeconds": 0}})
    gates = parse_spec({"deployment": "api", "gates": {
        "window": "2m", "queries": {"p99": "max(my_p99[W])"}}}).gates
    assert gates.query("p99") == "max(my_p99[2m])"
    assert gates.query("p50").startswith("histogram_quantile(0.5, ")
