"""The freshness gate (spec.verify.maxAge) as planner table tests: no step into
ReadSwitchover, no read step and no move into PostgresPrimary on a clean verify older
than maxAge; a stale one is replaced by a new verify Job first. Status says when the
last clean verify ran, when it goes stale and when the next verify is due."""

from __future__ import annotations

from datetime import timedelta

import pytest
from storemigration_operator.core.durations import parse_time

from .sim import Sim

H = timedelta(hours=1)
D = timedelta(days=1)


def held_in_dual_write(max_age: str) -> Sim:
    sim = Sim({"deployment": "api", "targetPhase": "DualWrite", "gates": {"window": "1h"},
               "verify": {"maxAge": max_age, "interval": "30d"}})  # no periodic verify
    sim.tick()
    sim.run_until(lambda: "sm-verify-1" in sim.jobs, H, limit=10)
    sim.tick(H)
    return sim


@pytest.mark.parametrize(("held", "max_age", "steps_at_once"), [
    (2 * H, "24h", True),     # the verify after the backfill is fresh: step now
    (3 * D, "24h", False),    # held three days: verify again, then step
    (3 * D, "7d", True),      # a longer maxAge still trusts it
    (25 * H, "24h", False),   # just past the default
])
def test_a_step_out_of_dual_write_needs_a_clean_verify_newer_than_max_age(
    held: timedelta, max_age: str, steps_at_once: bool
) -> None:
    sim = held_in_dual_write(max_age)
    assert sim.phase == "DualWrite" and sim.status["lastCleanVerifyTime"]
    sim.tick(held)
    sim.spec_doc["targetPhase"] = "PostgresPrimary"
    sim.tick(timedelta(minutes=1))
    verifies = [n for n in sim.created if n.startswith("sm-verify-")]
    if steps_at_once:
        assert sim.phase == "ReadSwitchover" and verifies == ["sm-verify-1"]
        return
    assert sim.phase == "DualWrite", "stepped on a stale verify"
    assert verifies == ["sm-verify-1", "sm-verify-2"]
    sim.tick(timedelta(minutes=1))  # the new verify passed
    assert sim.phase == "ReadSwitchover"
    assert parse_time(sim.status["lastCleanVerifyTime"]) > sim.now - timedelta(minutes=5)


def test_a_read_step_waits_once_the_last_clean_verify_is_older_than_max_age() -> None:
    sim = Sim({"deployment": "api", "targetPhase": "ReadSwitchover", "gates": {"window": "1h"},
               "readStep": {"interval": "1h"}, "verify": {"interval": "24h", "maxAge": "3h"}})
    sim.tick()
    sim.run_until(lambda: sim.phase == "ReadSwitchover", H, limit=10)
    sim.job_outcome = lambda kind: ("Running", None) if kind == "verify" else (
        "Succeeded", {"mismatch_ratio": 0.0})  # later verifies never finish
    last_clean = parse_time(sim.status["lastCleanVerifyTime"])
    assert parse_time(sim.status["verifyStaleTime"]) == last_clean + 3 * H
    for _ in range(8):
        sim.tick(H)
    stuck = sim.percent
    assert stuck < 100 and sim.status["reason"] == "WaitingForVerify"
    assert "spec.verify.maxAge" in sim.status["message"]
    assert parse_time(sim.status["verifyStaleTime"]) <= sim.now
    assert sim.status.get("nextVerifyTime") is None  # the last one has not finished
    steps = [h for h in sim.status["history"] if h["type"] == "Step"]
    assert all(parse_time(h["time"]) < last_clean + 3 * H for h in steps)
    sim.job_outcome = lambda kind: ("Succeeded", {"mismatch_ratio": 0.0})
    sim.jobs = {n: j for n, j in sim.jobs.items() if j.state != "Running"}  # Job deleted
    sim.run_until(lambda: sim.percent > stuck, H, limit=10)


def test_promotion_runs_a_new_full_verify_when_the_last_passed_longer_ago_than_max_age(
) -> None:
    sim = Sim({"deployment": "api", "targetPhase": "PostgresPrimary",
               "gates": {"window": "1h"}, "readStep": {"interval": "1h"},
               "verify": {"interval": "1h", "maxAge": "2h"},
               "snapshotVolume": {"claimName": "snapshots"}})
    sim.tick()
    sim.run_until(lambda: sim.percent == 100, H, limit=40)
    sim.job_outcome = lambda kind: ("Running", None) if kind == "snapshot" else (
        "Succeeded", {"mismatch_ratio": 0.0})  # the snapshot hangs past maxAge
    for _ in range(3):
        sim.tick(H)
    assert sim.phase == "ReadSwitchover"
    fulls = [n for n in sim.created if "verify-full" in n]
    assert len(fulls) >= 2, "promotion kept a full verify older than maxAge"


@pytest.mark.parametrize(("auto_repair", "ratio", "repairs"), [
    (True, 0.004, 1),    # mismatches under the ceiling: repair them
    (True, 0.0, 0),      # a clean verify: nothing to repair
    (False, 0.004, 0),   # off by default
])
def test_auto_repair_runs_the_repair_job_once_for_a_verify_with_mismatches_under_the_ceiling(
    auto_repair: bool, ratio: float, repairs: int
) -> None:
    sim = Sim({"deployment": "api", "targetPhase": "DualWrite", "gates": {"window": "1h"},
               "verify": {"autoRepair": auto_repair}})
    sim.job_outcome = lambda kind: ("Succeeded", {"mismatch_ratio": ratio, "checked": 1000,
                                                  "passed": True})
    sim.tick()
    sim.run_until(lambda: "sm-verify-1" in sim.jobs, H, limit=10)
    for _ in range(3):
        sim.tick(H)
    made = [j for p in sim.plans for j in p.jobs if j.kind == "repair"]
    assert [j.name for j in made] == ["sm-repair-1"] * repairs
    if made:
        assert made[0].args[-5:] == ("--mode", "full", "--report",
                                     "/tmp/repair-report.jsonl", "--repair")
