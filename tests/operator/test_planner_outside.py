"""Switches set outside the operator (core.outside) as planner table tests: a rollback
script run while the operator was stopped turned dual-write off, so writes since reached
memory only; the restarted operator must not turn dual-write and PostgreSQL reads back on
with the old backfill. It holds, Degraded, until spec.retryToken changes, then starts
again from DualWrite with a new backfill and verify."""

from __future__ import annotations

from datetime import timedelta

from storemigration_operator.core.outside import changed_outside
from storemigration_operator.core.spec import Phase
from storemigration_operator.core.switchset import PodObservation, desired_switches

from .sim import Sim
from .test_planner import BASE, H, to_read_switchover

SCRIPT_PHASE_0 = {"all.dual_write": "false", "all.read_percent": "0",
                  "all.memory_writes": "true"}
SCRIPT_PHASE_1 = {"all.dual_write": "true", "all.read_percent": "0",
                  "all.memory_writes": "true"}


def script_rolls_back(sim: Sim, switches: dict[str, str], label: str | None) -> None:
    """What api/scripts/rollback_postgres_migration.py leaves on the pod (label None: a
    pod that restarted and booted from the ConfigMap the script wrote)."""
    sim.pod_revision, sim.pod_switches = label, dict(switches)


def test_writes_turned_off_outside_hold_everything_until_the_retry_token() -> None:
    sim = Sim(dict(BASE))
    to_read_switchover(sim)
    sim.run_until(lambda: sim.percent >= 20, H, limit=200)
    script_rolls_back(sim, SCRIPT_PHASE_0, "rollback-from-phase-2-abc123")
    jobs_before, puts_before = list(sim.created), len(sim.puts)
    for _ in range(30):
        sim.tick(H)
    degraded = sim.condition("Degraded")
    assert degraded["status"] == "True"
    assert degraded["reason"] == "SwitchesChangedOutsideOperator"
    assert "api-0" in degraded["message"] and "retryToken" in degraded["message"]
    assert sim.pod_switches == SCRIPT_PHASE_0, "the operator switched the pod back"
    assert len(sim.puts) == puts_before and sim.created == jobs_before
    assert sim.status["outsideChange"]["pods"] == ["api-0"]
    assert sum(1 for e in sim.events() if e[1] == "SwitchesChangedOutsideOperator") == 1

    sim.spec_doc["retryToken"] = "after-the-rollback"
    sim.tick(timedelta(minutes=1))
    assert sim.phase == "DualWrite" and sim.percent == 0
    assert sim.status.get("outsideChange") is None
    assert sim.pod_switches["all.dual_write"] == "true"
    assert sim.pod_switches["all.read_percent"] == "0"
    sim.run_until(lambda: sim.phase == "ReadSwitchover", H, limit=10)
    backfills = [n for n in sim.created if n.startswith("sm-backfill-")]
    assert backfills == ["sm-backfill-1", "sm-backfill-2"], "no new backfill after the gap"
    assert sim.created.index("sm-backfill-2") < len(sim.created) - 1  # then a verify


def test_a_pod_booted_from_a_config_map_written_outside_counts_too() -> None:
    sim = Sim(dict(BASE))
    sim.tick()
    sim.run_until(lambda: "sm-verify-1" in sim.jobs, H, limit=10)
    script_rolls_back(sim, SCRIPT_PHASE_0, None)
    sim.tick(H)
    assert sim.condition("Degraded")["reason"] == "SwitchesChangedOutsideOperator"


def test_a_rollback_that_kept_dual_write_on_lost_nothing_and_is_not_held() -> None:
    sim = Sim(dict(BASE))
    to_read_switchover(sim)
    script_rolls_back(sim, SCRIPT_PHASE_1, "rollback-from-phase-2-def456")
    sim.tick(H)
    assert sim.condition("Degraded").get("reason") != "SwitchesChangedOutsideOperator"
    assert sim.pod_revision is not None and sim.pod_revision.startswith("sm-")


def test_in_postgres_primary_the_retry_token_is_not_enough_but_a_lower_target_is() -> None:
    sim = Sim(dict(BASE))
    sim.tick()
    sim.run_until(lambda: sim.phase == "PostgresPrimary", H, limit=2000)
    script_rolls_back(sim, SCRIPT_PHASE_0, "rollback-from-phase-3-0a1b2c")
    sim.tick(H)
    sim.spec_doc["retryToken"] = "again"
    sim.tick(H)
    degraded = sim.condition("Degraded")
    assert sim.phase == "PostgresPrimary"
    assert degraded["reason"] == "SwitchesChangedOutsideOperator"
    assert "targetPhase" in degraded["message"]
    sim.spec_doc["targetPhase"] = "ReadSwitchover"
    sim.tick(H)
    assert sim.status.get("outsideChange") is None
    assert sim.condition("Degraded").get("reason") != "SwitchesChangedOutsideOperator"


def test_a_retry_token_changed_as_the_operator_starts_again_goes_on_at_once() -> None:
    sim = Sim(dict(BASE))
    to_read_switchover(sim)
    script_rolls_back(sim, SCRIPT_PHASE_0, "rollback-from-phase-2-abc123")
    sim.spec_doc["retryToken"] = "restarted-with-the-operator"
    sim.tick(H)
    assert sim.phase == "DualWrite" and sim.percent == 0
    assert sim.pod_switches["all.dual_write"] == "true"
    assert sim.status.get("outsideChange") is None


def test_a_store_outside_the_migration_with_dual_write_off_is_not_an_outside_change() -> None:
    desired = desired_switches("sm", Phase.DualWrite, 0, ("graph",))
    booted = PodObservation("api-0", "10.0.0.1:8000", True, None, None,
                            {"graph.dual_write": "true", "graph.memory_writes": "true",
                             "agent_task.dual_write": "false"})
    assert changed_outside([booted], "sm", desired) == []
    turned = PodObservation("api-1", "10.0.0.2:8000", True, None, None,
                            {"graph.dual_write": "false", "agent_task.dual_write": "false"})
    assert changed_outside([booted, turned], "sm", desired) == ["api-1"]
    everything = desired_switches("sm", Phase.DualWrite, 0, ("graph", "agent_task"))
    assert changed_outside([booted], "sm", everything) == ["api-0"]
