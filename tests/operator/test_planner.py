"""Table-driven planner tests over a simulated calendar: weeks of rollout in milliseconds."""

from __future__ import annotations

from datetime import timedelta

import pytest
from storemigration_operator.core.durations import parse_time
from storemigration_operator.core.gates import GateReadings
from storemigration_operator.core.invalid import invalid_spec_plan
from storemigration_operator.core.spec import InvalidSpec, parse_spec

from .sim import HEALTHY, T0, Sim

H = timedelta(hours=1)
# gates.window 1h: an hourly tick evaluates gates hourly, and each evaluation must cover the
# whole hour since the previous one (see test_gate_coverage_*).
BASE = {"deployment": "api", "targetPhase": "Cleanup", "gates": {"window": "1h"},
        "snapshotVolume": {"claimName": "snapshots"}}  # a durable final snapshot


def to_read_switchover(sim: Sim) -> None:
    sim.tick()
    sim.run_until(lambda: sim.phase == "ReadSwitchover", H, limit=10)


def steps(sim: Sim) -> list[dict]:
    return [h for h in sim.status["history"] if h["type"] == "Step"]


def test_default_schedule_reaches_100_in_ten_daily_steps_then_primary_hold_and_cleanup():
    sim = Sim(dict(BASE))
    sim.tick()
    assert sim.phase == "DualWrite" and sim.live["DUAL_WRITE_MODE"] == "true"
    assert sim.live["READ_FROM_POSTGRES_PERCENT"] == "0" and sim.live["IN_MEMORY_WRITES"] == "true"
    sim.run_until(lambda: sim.phase == "ReadSwitchover", H, limit=10)
    assert sim.created[:2] == ["sm-backfill-1", "sm-verify-1"]  # backfill after dual-write
    start = sim.now
    seen = [(sim.now, sim.percent)]
    while sim.percent < 100:
        sim.tick(H)
        if sim.percent != seen[-1][1]:
            seen.append((sim.now, sim.percent))
    assert [p for _, p in seen] == [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
    assert all(b[0] - a[0] == timedelta(hours=24) for a, b in zip(seen, seen[1:], strict=False))
    assert sim.now - start == timedelta(days=9)
    assert sim.live["READ_FROM_POSTGRES_PERCENT"] == "100"
    sim.run_until(lambda: sim.phase == "PostgresPrimary", H, limit=30)
    assert any(n.startswith("sm-snapshot-") for n in sim.created)
    assert sim.live["IN_MEMORY_WRITES"] == "false"
    entered = sim.now
    sim.run_until(lambda: sim.status["reason"] == "CleanupApprovalRequired", H, limit=60)
    assert sim.now - entered == timedelta(hours=48)
    for _ in range(5 * 24):
        sim.tick(H)
    assert sim.phase == "PostgresPrimary"  # never cleans up unapproved
    sim.spec_doc["cleanup"] = {"approved": True, "archive": "s3://bucket/final.json"}
    sim.run_until(lambda: sim.phase == "Complete", H, limit=5)
    assert sim.env == {"DATABASE_URL": "postgres://x", "STORE_BACKEND": "postgres"}
    assert any(n.startswith("sm-archive-") for n in sim.created)
    assert sim.condition("Ready")["status"] == "True"


@pytest.mark.parametrize("spike_at", [10, 40, 90, 100])
def test_error_spike_at_any_step_returns_reads_to_zero_on_next_reconcile(spike_at):
    sim = Sim(dict(BASE, targetPhase="ReadSwitchover"))
    to_read_switchover(sim)
    sim.run_until(lambda: sim.percent == spike_at, H, limit=300)
    sim.readings = lambda now: GateReadings(error_rate=0.05, p95_seconds=0.05, requests=5000)
    p = sim.tick(timedelta(minutes=1))
    assert sim.percent == 0 and not p.env_changed
    assert sim.config_set == {"READ_FROM_POSTGRES_PERCENT": "0"}
    rollback = sim.status["history"][-1]
    assert rollback["type"] == "Rollback" and rollback["from"] == spike_at
    assert "error rate 0.0500 > 0.01" in rollback["reason"]
    assert rollback["readings"]["errorRate"] == 0.05
    assert ("Warning", "RolledBack") in [(e.type, e.reason) for e in p.events]
    assert sim.condition("Degraded")["reason"] == "RolledBack"
    # retry after rollback: once healthy again, restart from readStep.start after the interval
    sim.readings = lambda now: HEALTHY
    sim.run_until(lambda: sim.percent == 10, H, limit=30)
    assert sim.condition("Degraded")["status"] == "False"


@pytest.mark.parametrize("readings,result", [
    (GateReadings(), "Inconclusive"),
    (GateReadings(error_rate=float("nan"), p95_seconds=float("nan"), requests=0), "Inconclusive"),
    (GateReadings(error_rate=0.5, p95_seconds=3.0, requests=3), "Inconclusive"),
    (GateReadings(error="connection refused"), "Error"),
])
def test_no_data_and_unreachable_prometheus_hold_without_advancing_or_rolling_back(
        readings, result):
    sim = Sim(dict(BASE))
    to_read_switchover(sim)
    sim.readings = lambda now: readings
    for _ in range(24 * 5):
        sim.tick(H)
    assert sim.percent == 10 and sim.status["rollbacks"] == 0
    assert sim.status["lastGate"]["result"] == result
    assert sim.status["reason"] == f"Gate{result}"
    sim.readings = lambda now: HEALTHY  # a full clean interval is needed after the last hold
    held_until = sim.now
    sim.run_until(lambda: sim.percent == 20, H, limit=30)
    assert sim.now - held_until == timedelta(hours=24)


def test_restart_mid_interval_keeps_the_schedule():
    sim = Sim(dict(BASE))
    to_read_switchover(sim)
    sim.run_until(lambda: sim.percent == 30, H, limit=100)
    stepped = sim.now
    for _ in range(13):
        sim.tick(H)
    restarted = Sim(dict(BASE), now=sim.now, env=dict(sim.env), status=dict(sim.status),
                    jobs=dict(sim.jobs))  # a new operator process reads the stored status
    restarted.tick(timedelta(minutes=30))
    assert restarted.percent == 30  # not repeated early
    assert parse_time(restarted.status["nextStepTime"]) == stepped + timedelta(hours=24)
    restarted.run_until(lambda: restarted.percent == 40, timedelta(minutes=30), limit=30)
    assert restarted.now - stepped == timedelta(hours=24)  # not skipped or delayed


def test_invalid_spec_yields_degraded_and_warning():
    with pytest.raises(InvalidSpec, match="readStep.interval"):
        parse_spec({"deployment": "api", "readStep": {"interval": "tomorrow"}})
    with pytest.raises(InvalidSpec, match="targetPhase"):
        parse_spec({"deployment": "api", "targetPhase": "Phase9"})
    with pytest.raises(InvalidSpec, match="stores"):
        parse_spec({"deployment": "api", "stores": ["graph", "cache"]})
    p = invalid_spec_plan({}, "readStep.interval: not a duration", T0, 3)
    cond = next(c for c in p.status["conditions"] if c["type"] == "Degraded")
    assert cond["status"] == "True" and cond["reason"] == "InvalidSpec"
    assert [(e.type, e.reason) for e in p.events] == [("Warning", "InvalidSpec")]
    assert p.status["observedGeneration"] == 3 and not p.env_changed and not p.jobs


def test_more_than_one_replica_blocks_advancing_while_memory_is_written():
    sim = Sim(dict(BASE), replicas=2)
    sim.tick()
    assert sim.phase == "Preparation"
    assert sim.condition("Degraded")["reason"] == "MultipleReplicas"
    assert ("Warning", "MultipleReplicas") in sim.events()
    sim.replicas = 1
    to_read_switchover(sim)
    sim.replicas = 3
    for _ in range(72):
        sim.tick(H)
    assert sim.percent == 10 and sim.condition("Degraded")["reason"] == "MultipleReplicas"


def test_pause_stops_forward_moves_only_and_resume_continues():
    sim = Sim(dict(BASE))
    to_read_switchover(sim)
    sim.spec_doc["paused"] = True
    for _ in range(72):
        p = sim.tick(H)
        assert not p.env_changed and not p.jobs
    assert sim.percent == 10 and sim.condition("Paused")["status"] == "True"
    assert sim.status["reason"] == "Paused" and sim.status["lastGate"]["result"] == "Successful"
    sim.spec_doc["paused"] = False
    sim.run_until(lambda: sim.percent == 20, H, limit=3)  # gates held all along; fresh verify
    assert sim.condition("Paused")["status"] == "False"


def test_a_failed_gate_still_rolls_back_while_paused():
    sim = Sim(dict(BASE))
    to_read_switchover(sim)
    sim.run_until(lambda: sim.percent == 30, H, limit=60)
    sim.spec_doc["paused"] = True
    sim.tick(H)
    sim.readings = lambda now: GateReadings(error_rate=0.3, p95_seconds=0.05, requests=5000)
    p = sim.tick(timedelta(minutes=1))
    assert sim.percent == 0 and not p.env_changed
    assert sim.config_set == {"READ_FROM_POSTGRES_PERCENT": "0"}
    assert sim.condition("Degraded")["reason"] == "RolledBack"


def test_an_invalid_spec_keeps_the_gates_running_with_the_last_valid_spec():
    sim = Sim(dict(BASE))
    to_read_switchover(sim)
    sim.run_until(lambda: sim.percent == 20, H, limit=60)
    sim.spec_doc["readStep"] = {"interval": "tomorrow"}  # admitted by a lax API server
    for _ in range(48):
        p = sim.tick(H)
        assert not p.jobs
    assert sim.percent == 20 and sim.condition("Degraded")["reason"] == "InvalidSpec"
    assert sim.events().count(("Warning", "InvalidSpec")) == 1
    sim.readings = lambda now: GateReadings(error_rate=0.3, p95_seconds=0.05, requests=5000)
    sim.tick(timedelta(minutes=1))
    assert sim.percent == 0 and sim.live["READ_FROM_POSTGRES_PERCENT"] == "0"
    sim.readings = lambda now: HEALTHY
    del sim.spec_doc["readStep"]
    sim.run_until(lambda: sim.percent == 10, H, limit=30)


def primary(sim: Sim) -> Sim:
    sim.tick()
    sim.run_until(lambda: sim.phase == "PostgresPrimary", H, limit=60)
    assert "false" in {sim.live.get("IN_MEMORY_WRITES"), sim.live.get(
        "GRAPH_STORE_IN_MEMORY_WRITES")}
    return sim


def test_lowering_target_from_postgres_primary_rehydrates_at_start_up_then_reads_memory():
    sim = primary(Sim(dict(BASE, targetPhase="PostgresPrimary",
                           readStep={"interval": "1h"}, verify={"interval": "1h"})))
    sim.spec_doc["targetPhase"] = "DualWrite"
    p = sim.tick(timedelta(minutes=1))
    assert not p.env_changed and not p.jobs  # applied live, no restart
    assert sim.config_set == {"IN_MEMORY_WRITES": "true", "REHYDRATE_ON_START": "true"}
    assert sim.live["READ_FROM_POSTGRES_PERCENT"] == "100"  # reads stay put
    sim.pods_ready = False  # the new pod is still rebuilding memory from PostgreSQL
    for _ in range(3):
        p = sim.tick(timedelta(minutes=1))
        assert not p.env_changed and sim.status["reason"] == "WaitingForRehydrate"
    sim.pods_ready = True
    p = sim.tick(timedelta(minutes=1))
    assert not p.env_changed and sim.config_set == {"READ_FROM_POSTGRES_PERCENT": "0"}
    assert sim.config_removed == ["REHYDRATE_ON_START"]
    assert sim.status["history"][-1]["type"] == "Rollback"
    sim.run_until(lambda: sim.phase == "DualWrite", H, limit=5)
    assert not [n for n in sim.created if "rehydrate" in n]
    assert "REHYDRATE_ON_START" not in sim.live and "REHYDRATE_ON_START" not in sim.config


def test_only_owned_env_per_store_names_and_reads_lowering_is_instant():
    sim = Sim(dict(BASE, stores=["graph"], targetPhase="ReadSwitchover"))
    sim.env["READ_FROM_POSTGRES_PERCENT"] = "7"  # the global name belongs to someone else
    to_read_switchover(sim)
    assert sim.live["GRAPH_STORE_READ_FROM_POSTGRES_PERCENT"] == "10"
    assert sim.live["READ_FROM_POSTGRES_PERCENT"] == "7" and "DUAL_WRITE_MODE" not in sim.live
    assert set(sim.status["ownedEnv"]) == {
        "GRAPH_STORE_DUAL_WRITE_MODE", "GRAPH_STORE_READ_FROM_POSTGRES_PERCENT",
        "GRAPH_STORE_IN_MEMORY_WRITES", "REHYDRATE_ON_START"}  # all from the ConfigMap
    sim.spec_doc["targetPhase"] = "Preparation"
    sim.tick(timedelta(minutes=1))
    assert sim.phase == "Preparation" and sim.live["GRAPH_STORE_DUAL_WRITE_MODE"] == "false"
    assert sim.live["GRAPH_STORE_READ_FROM_POSTGRES_PERCENT"] == "0"


def test_failed_verify_rolls_back_and_failed_backfill_waits_for_retry_token():
    sim = Sim(dict(BASE))
    sim.job_outcome = lambda kind: ("Failed", None) if kind == "backfill" else (
        "Succeeded", {"mismatch_ratio": 0.0})
    sim.tick()
    for _ in range(5):
        sim.tick(H)
    assert sim.phase == "DualWrite" and sim.condition("Degraded")["reason"] == "BackfillFailed"
    sim.job_outcome = lambda kind: ("Succeeded", {"mismatch_ratio": 0.0})
    sim.spec_doc["retryToken"] = "1"
    sim.run_until(lambda: sim.phase == "ReadSwitchover", H, limit=5)
    assert "sm-backfill-2" in sim.created
    sim.run_until(lambda: sim.percent == 20, H, limit=40)
    sim.job_outcome = lambda kind: ("Succeeded", {"mismatch_ratio": 0.2, "checked": 10})
    sim.run_until(lambda: sim.percent == 0, H, limit=40)
    assert "verify Job" in sim.status["history"][-1]["reason"]


def test_retries_exhausted_needs_a_new_retry_token():
    sim = Sim(dict(BASE, rollback={"maxRetries": 1}))
    to_read_switchover(sim)
    bad = GateReadings(error_rate=0.5, p95_seconds=0.1, requests=5000)
    for _ in range(2):
        sim.readings = lambda now: bad
        sim.tick(H)
        assert sim.percent == 0
        sim.readings = lambda now: HEALTHY
        sim.run_until(lambda: sim.percent == 10 or sim.status.get("retriesExhausted"), H, 40)
    assert sim.status.get("retriesExhausted") and sim.percent == 0
    sim.tick(timedelta(days=3))
    assert sim.percent == 0 and sim.condition("Degraded")["reason"] == "RetriesExhausted"
    sim.spec_doc["retryToken"] = "again"
    sim.run_until(lambda: sim.percent == 10, H, limit=30)
    assert parse_time(sim.status["retryTokenTime"]) is not None


def test_rolled_out_means_the_new_pods_are_available_not_only_observed():
    sim = Sim(dict(BASE))
    sim.tick()
    assert sim.phase == "DualWrite"
    sim.pods_ready = False  # the controller saw the new template; its pods never come up
    for _ in range(5):
        p = sim.tick(H)
        assert not p.jobs and sim.status["reason"] == "WaitingForRollout"
    sim.pods_ready = True
    sim.tick(H)
    assert sim.created == ["sm-backfill-1"]


def test_p95_infinite_counts_above_the_ceiling_and_rolls_back_only_nan_is_no_data():
    sim = Sim(dict(BASE))
    to_read_switchover(sim)
    sim.readings = lambda now: GateReadings(error_rate=0.0, p95_seconds=float("inf"),
                                            mismatch_ratio=0.0, requests=5000)
    sim.tick(timedelta(minutes=1))
    assert sim.percent == 0 and sim.status["lastGate"]["result"] == "Failed"
    assert sim.status["lastGate"]["p95Seconds"] == "+Inf"  # status stays valid JSON
    assert "p95 +Inf (above the top histogram bucket) > 0.5s" in sim.status["history"][-1]["reason"]


def test_every_failed_verify_rolls_back_even_after_an_earlier_attempt_acted():
    outcomes = iter(["pass", "fail", "pass", "fail"])

    def job_outcome(kind: str):
        if kind != "verify":
            return "Succeeded", {}
        ok = next(outcomes, "pass") == "pass"
        return "Succeeded", {"passed": ok, "mismatch_ratio": 0.0 if ok else 0.3}

    sim = Sim(dict(BASE, readStep={"interval": "1h"}, verify={"interval": "2h"},
                   rollback={"maxRetries": 10}), job_outcome=job_outcome)
    to_read_switchover(sim)
    for _ in range(60 * 12):
        sim.tick(timedelta(minutes=1))
    failed = [h for h in sim.status["history"] if h["type"] == "Rollback"]
    assert [h["reason"].split(" failed")[0] for h in failed] == [
        "verify Job sm-verify-2", "verify Job sm-verify-4"]
    assert sim.status["rollbacks"] == 2


def test_gate_coverage_a_success_after_an_outage_restarts_the_window():
    sim = Sim({"deployment": "api"})  # gates every minute over a 5m window
    to_read_switchover(sim)
    sim.tick(timedelta(minutes=1))
    sim.tick(timedelta(hours=24))  # the operator was down; Prometheus is healthy again
    sim.tick(timedelta(minutes=1))
    assert sim.percent == 10  # two evaluations cannot vouch for 24 hours
    back = sim.now - timedelta(minutes=1)
    assert parse_time(sim.status["gateWindowStart"]) == back - timedelta(minutes=5)
    sim.run_until(lambda: sim.percent == 20, timedelta(minutes=1), limit=2000)
    assert sim.now == back - timedelta(minutes=5) + timedelta(hours=24)


def test_gate_coverage_errors_and_no_data_neither_count_nor_restart_the_window():
    sim = Sim({"deployment": "api", "gates": {"interval": "5m", "window": "10m"}})
    to_read_switchover(sim)
    entered = sim.now
    blip = lambda now: (now - entered) % timedelta(hours=24) == timedelta(hours=23)  # noqa: E731
    sim.readings = lambda now: GateReadings(error="timeout") if blip(now) else (
        GateReadings() if (now - entered) % timedelta(hours=24) == timedelta(hours=22)
        else HEALTHY)
    results = []
    for _ in range(3 * 24 * 12):
        sim.tick(timedelta(minutes=5))
        results.append(sim.status["lastGate"]["result"])
    assert sim.percent == 40  # one step a day despite a daily Error and a no-data reading
    assert results.count("Error") == 3 and results.count("Inconclusive") == 3


def test_a_clock_that_went_back_does_not_stop_the_gates():
    sim = Sim({"deployment": "api"})
    to_read_switchover(sim)
    sim.tick(timedelta(minutes=1))
    sim.now -= timedelta(hours=1)  # restarted on a node whose clock is an hour behind
    sim.readings = lambda now: GateReadings(error_rate=0.2, p95_seconds=0.05, requests=5000)
    p = sim.tick(timedelta(minutes=1))
    assert sim.percent == 0 and ("Warning", "ClockWentBack") in [
        (e.type, e.reason) for e in p.events]
    assert parse_time(sim.status["lastStepTime"]) <= sim.now


def test_a_malformed_verify_result_is_a_failed_check_not_a_crash():
    sim = Sim(dict(BASE, verify={"interval": "1h"}))
    to_read_switchover(sim)
    sim.job_outcome = lambda kind: ("Succeeded", {"passed": True, "mismatch_ratio": "n/a"})
    sim.run_until(lambda: sim.percent == 0, timedelta(minutes=1), limit=120)
    assert "unreadable mismatch_ratio 'n/a'" in sim.status["history"][-1]["reason"]


@pytest.mark.parametrize("result", [None, {"passed": False, "error": "API unreachable"}])
def test_a_verify_job_that_could_not_run_holds_without_rolling_back(result):
    # a budget (spec.jobs.backoffLimit) that lasts the six hours: see test_failure_budget_*
    sim = Sim(dict(BASE, verify={"interval": "2h"}, readStep={"interval": "3h"},
                   jobs={"backoffLimit": 60}))
    to_read_switchover(sim)
    sim.job_outcome = lambda kind: ("Failed", result)  # exit 3, OOM-killed: no verdict
    for _ in range(6 * 6):
        sim.tick(timedelta(minutes=10))
    assert sim.percent == 10 and sim.status["rollbacks"] == 0
    assert sim.condition("Degraded")["reason"] == "VerifyError"
    assert sim.status["reason"] == "WaitingForVerify"
    assert len([n for n in sim.created if "verify" in n]) > 6  # retried every 10 minutes
    sim.job_outcome = lambda kind: ("Succeeded", {"passed": True, "mismatch_ratio": 0.0})
    sim.run_until(lambda: sim.percent == 20, timedelta(minutes=10), limit=10)
    assert sim.condition("Degraded")["status"] == "False"


def test_multiple_replicas_are_reported_at_once_mid_interval_not_when_the_step_is_due():
    sim = Sim(dict(BASE))
    to_read_switchover(sim)
    sim.tick(H)
    sim.replicas = 2
    p = sim.tick(H)
    assert sim.condition("Degraded")["reason"] == "MultipleReplicas"
    assert ("Warning", "MultipleReplicas") in [(e.type, e.reason) for e in p.events]
    sim.tick(H)
    assert sim.condition("Degraded")["reason"] == "MultipleReplicas"


def test_gate_failed_events_only_on_transitions():
    sim = Sim(dict(BASE, targetPhase="PostgresPrimary", readStep={"interval": "1h"},
                   verify={"interval": "2h"}))
    sim.tick()
    sim.run_until(lambda: sim.phase == "PostgresPrimary", H, limit=60)
    failing = GateReadings(error_rate=0.2, p95_seconds=0.05, requests=5000)
    reasons = []
    for readings in [failing] * 5 + [HEALTHY] * 2 + [failing] * 3:
        sim.readings = lambda now, r=readings: r
        reasons += [e.reason for e in sim.tick(timedelta(minutes=1)).events]
    assert reasons.count("GateFailed") == 2


@pytest.mark.parametrize("change", [{"stores": ["graph"]}, {"deployment": "api-v2"}])
def test_deployment_and_stores_are_immutable_after_creation(change):
    sim = Sim(dict(BASE))
    to_read_switchover(sim)
    env = dict(sim.env)
    sim.spec_doc.update(change)
    sim.tick(H)
    assert sim.condition("Degraded")["reason"] == "InvalidSpec"
    assert "immutable after creation" in sim.condition("Degraded")["message"]
    assert sim.env == env and sim.percent == 10  # the old names and Deployment, untouched


def test_owned_env_that_is_no_longer_wanted_is_removed():
    sim = Sim(dict(BASE, targetPhase="DualWrite"))
    sim.run_until(lambda: sim.phase == "DualWrite", H, limit=3)
    assert sim.live["IN_MEMORY_WRITES"] == "true"
    sim.spec_doc["targetPhase"] = "Preparation"
    sim.tick(H)
    assert "IN_MEMORY_WRITES" not in sim.live  # the API's default again, as before migration
    assert "IN_MEMORY_WRITES" not in sim.config and not sim.plans[-1].env_changed
    assert sim.status["ownedEnv"] == ["DUAL_WRITE_MODE", "IN_MEMORY_WRITES",
                                      "READ_FROM_POSTGRES_PERCENT", "REHYDRATE_ON_START"]


def fast(**extra) -> dict:
    return dict(BASE, targetPhase="PostgresPrimary", readStep={"interval": "1h"},
                verify={"interval": "1h"}, **extra)


def test_postgres_primary_needs_a_full_verify_with_nothing_missing_first():
    sim = Sim(fast())
    sim.tick()
    sim.run_until(lambda: sim.percent == 100, H, limit=40)
    sim.run_until(lambda: sim.phase == "PostgresPrimary", H, limit=5)
    full = [j for p in sim.plans for j in p.jobs if j.kind == "verify-full"]
    assert full and full[0].args[-6:] == ("--mode", "full", "--report",
                                          "/tmp/verify-full-report.jsonl", "--max-missing", "0")
    assert full[0].command == ("python", "api/scripts/verify_data_consistency.py")
    order = [n.rsplit("-", 1)[0] for n in sim.created]
    assert order.index("sm-verify-full") < order.index("sm-snapshot")


def test_a_failed_full_verify_rolls_reads_back_and_stays_off_postgres_primary():
    sim = Sim(fast())
    sim.tick()
    sim.run_until(lambda: sim.percent == 100, H, limit=40)
    sim.job_outcome = lambda kind: ("Failed", {"passed": False, "mismatch_ratio": 0.0,
                                               "missing_count": 3}) if kind == "verify-full" \
        else ("Succeeded", {"mismatch_ratio": 0.0})
    sim.run_until(lambda: sim.percent == 0, H, limit=5)
    assert sim.phase == "ReadSwitchover" and sim.live["IN_MEMORY_WRITES"] == "true"
    assert "full verify Job sm-verify-full-1 failed" in sim.status["history"][-1]["reason"]
    assert not any("snapshot" in n for n in sim.created)


def test_a_full_verify_that_could_not_run_holds_at_100_percent_and_retries():
    sim = Sim(fast())
    sim.tick()
    sim.run_until(lambda: sim.percent == 100, H, limit=40)
    sim.job_outcome = lambda kind: ("Failed", None) if kind == "verify-full" else (
        "Succeeded", {"mismatch_ratio": 0.0})
    for _ in range(6):
        sim.tick(timedelta(minutes=15))
    assert sim.percent == 100 and sim.phase == "ReadSwitchover"
    assert sim.condition("Degraded")["reason"] == "VerifyError"
    assert len([n for n in sim.created if "verify-full" in n]) >= 2
    sim.job_outcome = lambda kind: ("Succeeded", {"mismatch_ratio": 0.0})
    sim.run_until(lambda: sim.phase == "PostgresPrimary", timedelta(minutes=15), limit=5)


def test_a_one_store_rollback_from_primary_uses_the_global_rehydrate_switch():
    sim = primary(Sim(fast(stores=["graph"])))
    sim.spec_doc["targetPhase"] = "ReadSwitchover"
    p = sim.tick(timedelta(minutes=1))
    assert not p.env_changed
    assert sim.config_set == {"GRAPH_STORE_IN_MEMORY_WRITES": "true",
                              "REHYDRATE_ON_START": "true"}
    sim.tick(timedelta(minutes=1))
    assert "REHYDRATE_ON_START" not in sim.live
    assert sim.live["GRAPH_STORE_READ_FROM_POSTGRES_PERCENT"] == "0"


def test_a_gate_interval_longer_than_the_window_is_an_invalid_spec():
    with pytest.raises(InvalidSpec, match="must not exceed gates.window"):
        parse_spec({"deployment": "api", "gates": {"interval": "10m", "window": "5m"}})
    parse_spec({"deployment": "api", "gates": {"interval": "5m", "window": "5m"}})


def test_no_periodic_verify_starts_once_promotion_is_under_way():
    """At 100% with a target beyond ReadSwitchover the full verify is the gate; a periodic
    verify started now would run after memory writes stop and report stale memory."""
    sim = Sim(fast())
    sim.tick()
    sim.run_until(lambda: sim.percent == 100, H, limit=40)

    def periodic() -> list[str]:
        return [n for n in sim.created if n.startswith("sm-verify-") and "full" not in n]

    before = periodic()
    for _ in range(8):
        sim.tick(timedelta(hours=6))
    assert sim.phase == "PostgresPrimary"
    assert periodic() == before
