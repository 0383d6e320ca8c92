"""The Deployment's shape around cutover (core.scaling), over the simulated calendar: one
Recreate replica while memory is written; from PostgresPrimary on (every pod confirmed
memory writes off) RollingUpdate with maxUnavailable 0 / maxSurge 1 at spec.replicas; and
back to one Recreate replica, with the others gone, before a rollback turns memory writes
on again."""

from __future__ import annotations

from datetime import timedelta

import pytest
from storemigration_operator.core.scaling import RECREATE, ROLLING
from storemigration_operator.core.spec import InvalidSpec, parse_spec

from .sim import Sim

H = timedelta(hours=1)
M = timedelta(minutes=1)
BASE = {"deployment": "api", "gates": {"window": "1h"}, "readStep": {"interval": "1h"},
        "verify": {"interval": "1h"}, "snapshotVolume": {"claimName": "snapshots"}}


def to_primary(sim: Sim) -> Sim:
    sim.tick()
    sim.run_until(lambda: sim.phase == "PostgresPrimary", H, limit=60)
    return sim


@pytest.mark.parametrize(("replicas", "want"), [(None, 1), (1, 1), (3, 3)])
def test_from_postgres_primary_on_the_deployment_rolls_and_scales_to_spec_replicas(
        replicas, want):
    spec = dict(BASE, targetPhase="Cleanup", cleanup={"approved": True})
    if replicas is not None:
        spec["replicas"] = replicas
    sim = Sim(spec)
    sim.tick()
    shapes = []
    for _ in range(60):
        if sim.phase == "PostgresPrimary":
            break
        sim.tick(H)
        shapes.append((sim.phase, sim.replicas, sim.strategy["type"]))
    # Phases 0-2 (memory written): one Recreate pod, never touched.
    assert all(r == 1 and s == "Recreate" for ph, r, s in shapes if ph != "PostgresPrimary")
    # Entering PostgresPrimary PUTs memory writes off; the pod has not confirmed yet.
    assert sim.strategy == RECREATE and not sim.plans[-1].shape_changed
    p = sim.tick(M)  # every pod confirmed PostgresPrimary: roll and scale out
    assert p.strategy == dict(ROLLING) and not p.env_changed
    assert p.replicas == (replicas if replicas not in (None, 1) else None)
    assert sim.replicas == want and sim.strategy == dict(ROLLING)
    sim.run_until(lambda: sim.phase == "Complete", H, limit=200)
    # Cleanup's env patch (STORE_BACKEND=postgres) is rolled out with RollingUpdate.
    assert [q.env_set for q in sim.plans if q.env_changed] == [{"STORE_BACKEND": "postgres"}]
    assert sim.replicas == want and sim.strategy == dict(ROLLING)
    assert sum(q.shape_changed for q in sim.plans) == 1  # set once, kept


def test_a_rollback_from_postgres_primary_scales_in_to_one_recreate_pod_first():
    sim = to_primary(Sim(dict(BASE, targetPhase="PostgresPrimary", replicas=3)))
    sim.tick(M)
    sim.tick(M)
    assert sim.replicas == 3 and sim.strategy == dict(ROLLING)
    sim.spec_doc["targetPhase"] = "ReadSwitchover"
    sim.pods_ready = False  # the controller is still stopping the two extra pods
    p = sim.tick(M)
    assert p.replicas == 1 and p.strategy == dict(RECREATE) and not p.env_changed
    for _ in range(3):  # memory writes stay off while more than one pod runs
        sim.tick(M)
        assert sim.phase == "PostgresPrimary" and sim.status["reason"] == "ScalingIn"
        assert sim.live["IN_MEMORY_WRITES"] == "false" and sim.config["IN_MEMORY_WRITES"] \
            == "false"
    sim.pods_ready = True  # one pod left
    sim.tick(M)
    assert sim.phase == "ReadSwitchover" and sim.live["IN_MEMORY_WRITES"] == "true"
    assert sim.replicas == 1 and sim.strategy == dict(RECREATE)
    sim.run_until(lambda: sim.percent == 0, M, limit=10)  # memory rebuilt, reads back
    assert sim.replicas == 1 and sim.strategy == dict(RECREATE)


def test_one_replica_rolls_back_in_the_same_reconcile_with_the_strategy_patched_first():
    sim = to_primary(Sim(dict(BASE, targetPhase="PostgresPrimary")))
    sim.tick(M)
    sim.tick(M)
    assert sim.strategy == dict(ROLLING)
    sim.spec_doc["targetPhase"] = "DualWrite"
    p = sim.tick(M)
    assert p.strategy == dict(RECREATE) and p.replicas is None
    assert sim.phase == "ReadSwitchover" and sim.config["IN_MEMORY_WRITES"] == "true"


@pytest.mark.parametrize("bad", [0, -1, 101, "two"])
def test_spec_replicas_is_a_typed_count(bad):
    with pytest.raises(InvalidSpec, match="replicas"):
        parse_spec({"deployment": "api", "replicas": bad})


def test_cleanup_waits_until_the_rolling_shape_runs_at_spec_replicas():
    sim = to_primary(Sim(dict(BASE, targetPhase="Cleanup", replicas=2, primaryHold="1m",
                              cleanup={"approved": True})))
    sim.tick(M)  # every pod confirmed PostgresPrimary: roll and scale out
    assert sim.replicas == 2 and sim.strategy == dict(ROLLING)
    for _ in range(5):  # something keeps putting the Deployment back to Recreate
        sim.strategy = dict(RECREATE)
        p = sim.tick(H)  # the hold and the gates are long past
        assert p.strategy == dict(ROLLING) and not p.env_changed  # asked again
        assert sim.phase == "PostgresPrimary" and sim.status["reason"] == "ScalingOut"
    sim.run_until(lambda: sim.phase == "Cleanup", M, limit=5)
    assert sim.live["STORE_BACKEND"] == "postgres" and sim.strategy == dict(ROLLING)
