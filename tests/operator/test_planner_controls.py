"""Table tests of what a person drives through the spec: dry-run gates, promote, abort, and
the failure budget of Jobs that keep failing (simulated calendar, as test_planner)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from storemigration_operator.core.durations import parse_time
from storemigration_operator.core.gates import GateReadings
from storemigration_operator.core.promotion import blocker
from storemigration_operator.core.spec import parse_spec
from storemigration_operator.core.status import read_status

from .sim import HEALTHY, Sim

H = timedelta(hours=1)
M = timedelta(minutes=1)
BASE = {"deployment": "api", "targetPhase": "Cleanup", "gates": {"window": "1h"},
        "snapshotVolume": {"claimName": "snapshots"}}  # a durable final snapshot
FAILING = GateReadings(error_rate=0.2, p95_seconds=0.05, requests=5000)
QUIET = GateReadings(error_rate=0.0, p95_seconds=0.05, requests=3)


def to_read_switchover(sim: Sim) -> None:
    sim.tick()
    sim.run_until(lambda: sim.phase == "ReadSwitchover", H, limit=10)


def steps(sim: Sim) -> list[int]:
    return [h["to"] for h in sim.status["history"] if h["type"] == "Step"]


# ---- dry-run gates ----
@pytest.mark.parametrize("readings,result", [(FAILING, "Failed"), (QUIET, "Inconclusive"),
                                             (HEALTHY, "Successful")])
def test_dry_run_reports_every_gate_and_nothing_moves(readings, result):
    sim = Sim(dict(BASE, gates={"window": "1h", "dryRun": True}))
    to_read_switchover(sim)
    sim.readings = lambda now: readings
    for _ in range(72):
        p = sim.tick(H)
        assert not p.env_changed and not p.jobs
    assert sim.percent == 10 and steps(sim) == [10]
    assert sim.status["rollbacks"] == 0
    gate = sim.status["lastGate"]
    assert gate["result"] == result and gate["dryRun"] is True
    assert [c["gate"] for c in gate["checks"]] == ["errorRate", "p95", "mismatchRatio",
                                                   "requests"]
    error_rate = gate["checks"][0]
    assert error_rate["threshold"] == 0.01 and "[1h]" in error_rate["query"]
    assert error_rate["result"] == ("Failed" if readings is FAILING else "Passed")
    assert sim.status["reason"] == "GatesDryRun" and result in sim.status["message"]
    assert sim.condition("Paused")["reason"] == "GatesDryRun"
    assert sim.condition("Degraded")["status"] == "False"


def test_a_failed_gate_in_dry_run_is_an_event_per_transition_and_counts():
    sim = Sim(dict(BASE, gates={"window": "1h", "dryRun": True}))
    to_read_switchover(sim)
    sim.readings = lambda now: FAILING
    reasons = [e.reason for _ in range(5) for e in sim.tick(H).events]
    assert reasons.count("DryRunGateFailed") == 1 and "RolledBack" not in reasons
    assert sim.status["gateCounts"]["Failed"] == 5


def test_turning_dry_run_off_lets_the_gates_act_again():
    sim = Sim(dict(BASE, gates={"window": "1h", "dryRun": True}))
    to_read_switchover(sim)
    sim.tick(H)
    sim.spec_doc["gates"] = {"window": "1h"}
    sim.readings = lambda now: FAILING
    sim.tick(M)
    assert sim.percent == 0 and sim.condition("Degraded")["reason"] == "RolledBack"


# ---- failure budget ----
def test_a_failing_backfill_backs_off_doubling_then_degrades_with_its_reason():
    sim = Sim(dict(BASE, jobs={"backoffLimit": 4}))
    sim.job_outcome = lambda kind: ("Failed", {"ok": False, "error": "PostgreSQL refused"}) \
        if kind == "backfill" else ("Succeeded", {"mismatch_ratio": 0.0})
    sim.tick()
    created_at = {}
    for _ in range(60):
        sim.tick(M)
        for name in sim.created:
            created_at.setdefault(name, sim.now)
    attempts = [n for n in sim.created if "backfill" in n]
    assert attempts == [f"sm-backfill-{i}" for i in range(1, 5)]  # the budget, no more
    gaps = [created_at[b] - created_at[a] for a, b in zip(attempts, attempts[1:], strict=False)]
    assert gaps == [M, 2 * M, 4 * M]  # backoff from each failure: 1m, 2m, 4m
    degraded = sim.condition("Degraded")
    assert degraded["reason"] == "BackfillFailed"
    assert "failed 4 times in a row (spec.jobs.backoffLimit 4)" in degraded["message"]
    assert "PostgreSQL refused" in degraded["message"] and "retryToken" in degraded["message"]
    assert sim.status["jobs"]["backfill"]["failures"] == 4
    assert sim.phase == "DualWrite"
    sim.job_outcome = lambda kind: ("Succeeded", {"ok": True, "mismatch_ratio": 0.0})
    sim.spec_doc["retryToken"] = "fixed"
    sim.run_until(lambda: sim.phase == "ReadSwitchover", M, limit=10)
    assert sim.status["jobs"]["backfill"]["failures"] == 0


def test_while_backing_off_the_migration_is_degraded_and_progressing_with_the_next_attempt():
    sim = Sim(dict(BASE))
    sim.job_outcome = lambda kind: ("Failed", None) if kind == "backfill" else (
        "Succeeded", {"mismatch_ratio": 0.0})
    sim.tick()
    sim.tick(M)  # backfill-1 created
    sim.tick(timedelta(seconds=10))  # seen failed: next attempt in 1m
    entry = sim.status["jobs"]["backfill"]
    assert entry["failures"] == 1
    assert parse_time(entry["nextAttemptAt"]) == parse_time(entry["finishedAt"]) + M
    assert sim.condition("Degraded")["reason"] == "BackfillFailed"
    assert sim.condition("Progressing") | {"lastTransitionTime": None} == {
        "type": "Progressing", "status": "True", "reason": "JobBackoff",
        "message": sim.condition("Degraded")["message"], "lastTransitionTime": None}
    assert "(1 of 6 allowed)" in sim.condition("Degraded")["message"]


def test_a_verify_that_cannot_run_spends_the_same_budget():
    sim = Sim(dict(BASE, verify={"interval": "2h"}, jobs={"backoffLimit": 3}))
    to_read_switchover(sim)
    sim.job_outcome = lambda kind: ("Failed", {"passed": False, "error": "API unreachable"})
    for _ in range(12 * 6):
        sim.tick(timedelta(minutes=10))
    assert sim.status["jobs"]["verify"]["failures"] == 3 and sim.status["rollbacks"] == 0
    assert "failed 3 times in a row" in sim.condition("Degraded")["message"]
    assert sim.condition("Degraded")["reason"] == "VerifyError"
    before = len(sim.created)
    sim.tick(H)
    assert len(sim.created) == before  # no attempt beyond the budget


# ---- promote ----
def promote(sim: Sim, token: str) -> dict:
    sim.spec_doc["promoteToken"] = token
    sim.tick(M)
    return sim.status["promotion"]


def test_promote_takes_the_next_read_step_now_when_every_evaluation_passed():
    sim = Sim(dict(BASE, gates={"window": "1h", "interval": "1m"}))
    to_read_switchover(sim)
    for _ in range(5):
        sim.tick(M)
    answer = promote(sim, "1")
    assert answer["result"] == "Accepted" and answer["token"] == "1"
    assert sim.percent == 20 and steps(sim) == [10, 20]
    assert sim.status["history"][-1]["reason"] == "promoted (spec.promoteToken)"
    assert sim.live["READ_FROM_POSTGRES_PERCENT"] == "20"
    sim.tick(M)
    assert sim.percent == 20  # one step per token
    assert sim.status["promotion"]["token"] == "1"


def test_promote_is_refused_naming_the_evaluation_that_did_not_pass():
    sim = Sim(dict(BASE, gates={"window": "1h", "interval": "1m"}))
    to_read_switchover(sim)
    sim.readings = lambda now: QUIET
    sim.tick(M)
    sim.readings = lambda now: HEALTHY
    for _ in range(3):
        sim.tick(M)
    answer = promote(sim, "a")
    assert answer["result"] == "Refused" and sim.percent == 10
    assert "was Inconclusive: traffic 3 below minimum 100" in answer["reason"]
    assert answer["reason"].startswith("the gate evaluation at ")
    assert "PromoteRefused" in [e.reason for e in sim.plans[-1].events]


def test_promote_names_the_failed_gate_in_postgres_primary_and_skips_the_hold_once_clean():
    sim = Sim(dict(BASE, readStep={"interval": "1h"}, verify={"interval": "1h"},
                   gates={"window": "1h", "interval": "1m"},
                   cleanup={"approved": True}))
    sim.tick()
    sim.run_until(lambda: sim.phase == "PostgresPrimary", H, limit=60)
    sim.readings = lambda now: FAILING
    sim.tick(M)
    sim.readings = lambda now: HEALTHY
    sim.tick(M)
    answer = promote(sim, "p1")
    assert answer["result"] == "Refused" and sim.phase == "PostgresPrimary"
    assert "errorRate 0.2 (must be <= 0.01)" in answer["reason"]
    for _ in range(5):
        sim.tick(M)
    again = promote(sim, "p1-again")  # the hold restarted at the failure: same interval
    assert again["result"] == "Refused" and "was Failed" in again["reason"]
    assert sim.phase == "PostgresPrimary"

    sim2 = Sim(dict(BASE, readStep={"interval": "1h"}, verify={"interval": "1h"},
                    gates={"window": "1h", "interval": "1m"}, cleanup={"approved": True}))
    sim2.tick()
    sim2.run_until(lambda: sim2.phase == "PostgresPrimary", H, limit=60)
    sim2.tick(M)
    answer = promote(sim2, "p2")
    assert answer["result"] == "Accepted" and "without the rest of primaryHold" in \
        answer["reason"]
    assert sim2.phase == "Cleanup"


@pytest.mark.parametrize("change,why", [
    ({"paused": True}, "spec.paused is true"),
    ({"gates": {"window": "1h", "dryRun": True}}, "spec.gates.dryRun is true"),
    ({"abort": True}, "spec.abort is true"),
])
def test_promote_is_refused_while_held(change, why):
    sim = Sim(dict(BASE))
    to_read_switchover(sim)
    sim.tick(H)
    sim.spec_doc.update(change)
    answer = promote(sim, "x")
    assert answer["result"] == "Refused" and why in answer["reason"]
    assert sim.percent in (0, 10)


def test_promote_before_any_evaluation_passed_and_outside_the_gated_phases_is_refused():
    sim = Sim(dict(BASE, targetPhase="DualWrite"))
    sim.tick()
    answer = promote(sim, "early")
    assert answer["result"] == "Refused" and "nothing waits on time in DualWrite" in \
        answer["reason"]
    spec = parse_spec(dict(BASE))
    status = read_status({"phase": "ReadSwitchover", "readPercent": 10,
                          "lastVerifySuccessTime": "2026-01-01T00:00:00Z",
                          "gateInterval": {"since": "2026-01-01T00:00:00Z"}})
    why = blocker(spec, status, datetime(2026, 1, 1, 0, 5, tzinfo=UTC))
    assert why is not None and why.startswith("no gate evaluation has passed yet")


# ---- abort ----
def test_abort_sends_reads_to_zero_and_holds_until_resumed():
    sim = Sim(dict(BASE, readStep={"interval": "1h"}, verify={"interval": "1h"}))
    to_read_switchover(sim)
    sim.run_until(lambda: sim.percent == 30, H, limit=60)
    sim.spec_doc["abort"] = True
    p = sim.tick(M)
    assert sim.percent == 0 and not p.env_changed
    assert sim.config_set == {"READ_FROM_POSTGRES_PERCENT": "0"}
    assert sim.status["history"][-1] | {"time": None} == {
        "time": None, "type": "Abort", "phase": "ReadSwitchover", "readPercent": 0,
        "reason": "spec.abort: reads back on memory", "from": 30, "to": 0}
    assert ("Warning", "Aborted") in [(e.type, e.reason) for e in p.events]
    for _ in range(48):
        p = sim.tick(H)
        assert not p.env_changed
    assert sim.percent == 0 and sim.status["reason"] == "Aborted"
    assert sim.condition("Paused")["reason"] == "Aborted"
    assert sim.condition("Degraded")["status"] == "False" and sim.status["rollbacks"] == 0
    sim.spec_doc["abort"] = False
    sim.run_until(lambda: sim.percent == 10, H, limit=5)


def test_abort_from_postgres_primary_rebuilds_memory_first_then_reads_zero():
    sim = Sim(dict(BASE, targetPhase="PostgresPrimary", readStep={"interval": "1h"},
                   verify={"interval": "1h"}))
    sim.tick()
    sim.run_until(lambda: sim.phase == "PostgresPrimary", H, limit=60)
    sim.spec_doc["abort"] = True
    p = sim.tick(M)
    assert not p.env_changed
    assert sim.config_set == {"IN_MEMORY_WRITES": "true", "REHYDRATE_ON_START": "true"}
    assert sim.phase == "ReadSwitchover" and sim.percent == 100
    sim.tick(M)
    assert sim.percent == 0 and "REHYDRATE_ON_START" not in sim.live
    for _ in range(10):
        sim.tick(H)
    assert sim.phase == "ReadSwitchover" and sim.percent == 0
    assert sim.condition("Degraded")["status"] == "False"


def test_abort_after_cleanup_began_is_refused_as_irreversible():
    sim = Sim(dict(BASE, readStep={"interval": "1h"}, verify={"interval": "1h"},
                   primaryHold="1h", cleanup={"approved": True}))
    sim.tick()
    sim.run_until(lambda: sim.phase == "Complete", H, limit=80)
    sim.spec_doc["abort"] = True
    sim.tick(H)
    assert sim.phase == "Complete"
    assert sim.condition("Degraded")["reason"] == "CleanupIrreversible"


def test_promote_at_100_percent_starts_the_promotion_and_it_finishes_without_the_interval():
    sim = Sim(dict(BASE, targetPhase="PostgresPrimary", readStep={"interval": "6h"},
                   verify={"interval": "6h"}, gates={"window": "1h", "interval": "1m"}))
    sim.tick()
    sim.run_until(lambda: sim.percent == 100, H, limit=80)
    sim.tick(M)
    answer = promote(sim, "go")
    assert answer["result"] == "Accepted" and "full verify, then snapshot" in answer["reason"]
    sim.run_until(lambda: sim.phase == "PostgresPrimary", M, limit=5)  # not in 6 hours
    order = [n.rsplit("-", 1)[0] for n in sim.created]
    assert order[-2:] == ["sm-verify-full", "sm-snapshot"]
