"""The live switches as the planner decides them (tests.operator.sim plays the ConfigMap and
the API pod): a step is done only when every pod confirmed it, a pod that cannot be reached
is named and retried, and an operator killed mid-step neither repeats nor skips it."""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest
from storemigration_operator.core.gates import GateReadings

from .sim import Sim

H = timedelta(hours=1)
BASE = {"deployment": "api", "targetPhase": "Cleanup", "gates": {"window": "1h"},
        "snapshotVolume": {"claimName": "snapshots"}}  # a durable final snapshot


def at_ten_percent() -> Sim:
    sim = Sim(dict(BASE))
    sim.tick()
    sim.run_until(lambda: sim.phase == "ReadSwitchover", H, limit=10)
    sim.tick(timedelta(minutes=1))  # the pod confirms 10%
    assert sim.status["switches"]["confirmed"] is True
    return sim


def steps_to(sim: Sim, percent: int) -> list[dict]:
    return [h for h in sim.status["history"] if h["type"] == "Step" and h["to"] == percent]


def test_every_step_is_a_config_map_write_and_a_put_never_an_env_patch():
    sim = Sim(dict(BASE, cleanup={"approved": True}))
    sim.run_until(lambda: sim.phase == "PostgresPrimary", H, limit=400)
    live = [p for p in sim.plans if p.switches is not None]
    assert live and not any(p.env_changed for p in sim.plans)
    assert sim.live["IN_MEMORY_WRITES"] == "false"  # what a restarting pod would boot with
    assert sim.puts[-1] == sim.status["switches"]["revision"]
    sim.run_until(lambda: sim.phase == "Complete", H, limit=400)
    assert [p.env_set for p in sim.plans if p.env_changed] == [{"STORE_BACKEND": "postgres"}]


def test_a_literal_env_deployment_is_adopted_once_in_preparation_before_data_moves():
    sim = Sim(dict(BASE), adopted=False, env={"DATABASE_URL": "postgres://x",
                                              "DUAL_WRITE_MODE": "false"})
    p = sim.tick()
    assert p.env_adopt == ["DUAL_WRITE_MODE", "IN_MEMORY_WRITES", "READ_FROM_POSTGRES_PERCENT",
                           "REHYDRATE_ON_START"]
    assert sim.phase == "Preparation" and sim.status["adoption"]["phase"] == "Preparation"
    assert sim.status["reason"] == "WaitingForAdoption"
    sim.run_until(lambda: sim.phase == "ReadSwitchover", H, limit=20)
    assert sum(p.env_changed for p in sim.plans) == 1
    backfill = [i for i, p in enumerate(sim.plans) if any(j.kind == "backfill" for j in p.jobs)]
    assert backfill and backfill[0] > 0  # data moved only after the adoption


def test_a_step_waits_for_every_pod_and_an_unreachable_pod_is_named_and_retried():
    sim = at_ten_percent()
    sim.pod_reachable = False  # it cannot confirm what it runs: nothing moves forward
    for _ in range(30):
        sim.tick(H)
    assert sim.percent == 10 and sim.status["reason"] == "WaitingForPods"
    assert "api-0" in sim.status["message"]
    assert sim.status["switches"]["pending"] == ["api-0"]
    [pod] = sim.status["pods"]
    assert pod["error"] == "ConnectError" and not pod["confirmed"]
    sim.pod_reachable = True
    sim.tick(timedelta(minutes=1))  # answered again: it still runs 10%, confirmed
    assert sim.status["switches"]["confirmed"] and sim.status["pods"][0]["confirmed"]
    sim.run_until(lambda: sim.percent == 20, H, limit=30)  # and the steps resume
    sim.pod_reachable = False
    sim.tick(timedelta(minutes=1))
    assert sim.status["switches"]["pending"] == ["api-0"]
    sim.pod_reachable = True
    sim.tick(timedelta(minutes=1))  # retried: the same PUT, now answered
    assert sim.pod_revision == sim.status["switches"]["revision"]
    assert sim.pod_switches["all.read_percent"] == "20"


def test_a_rollback_is_applied_in_the_reconcile_that_evaluated_the_gate():
    sim = at_ten_percent()
    sim.readings = lambda now: GateReadings(error_rate=0.3, p95_seconds=0.05, requests=5000)
    p = sim.tick(timedelta(minutes=1))
    assert sim.percent == 0 and not p.env_changed
    assert p.switches is not None and p.switches.body["all"]["read_percent"] == 0
    assert [t.name for t in p.pod_targets] == ["api-0"]  # PUT now, not at the next step


@pytest.mark.parametrize("crash", ["after_config_map", "after_put"])
def test_an_operator_killed_mid_step_neither_repeats_nor_skips_it(crash):
    sim = at_ten_percent()
    for _ in range(300):  # find the reconcile that takes the step, then replay it, killed
        saved = copy.deepcopy(sim)
        sim.tick(timedelta(minutes=10))
        if sim.config.get("READ_FROM_POSTGRES_PERCENT") == "20":
            break
    sim = saved
    before = copy.deepcopy(sim.status)
    p = sim.tick(timedelta(minutes=10), crash=crash)
    assert sim.config["READ_FROM_POSTGRES_PERCENT"] == "20"
    assert sim.status == before  # killed before its status write: status still at 10%
    assert sim.status["readPercent"] == 10
    assert p.switches is not None
    killed_revision = p.switches.revision
    puts = len(sim.puts)
    sim.tick(timedelta(seconds=5))  # the restarted operator
    sim.tick(timedelta(seconds=5))
    assert sim.percent == 20 and len(steps_to(sim, 20)) == 1 and not steps_to(sim, 30)
    assert sim.status["switches"]["revision"] == killed_revision  # the same step, not a new
    assert sim.config["READ_FROM_POSTGRES_PERCENT"] == "20"
    assert sim.pod_revision == killed_revision and sim.status["switches"]["confirmed"]
    assert sim.pod_switches["all.read_percent"] == "20"
    assert set(sim.puts[puts:]) <= {killed_revision}  # never undone on the pod meanwhile
