"""The typed status reads what came before it: a status the dict-based operator wrote,
and Job results of any shape, without failing a reconcile or losing what the planner uses."""

from __future__ import annotations

from datetime import UTC, datetime

from storemigration_operator.core.invalid import effective_spec
from storemigration_operator.core.status import JobResult, read_status

# What the operator wrote before status was typed (keys set by string), at 30% reads.
OLD = {
    "phase": "ReadSwitchover", "readPercent": 30, "observedGeneration": 4,
    "reason": "WaitingForInterval", "message": "reads at 30%",
    "phaseEnteredTime": "2026-01-01T00:00:00.000Z", "lastStepTime": "2026-01-03T00:00:00.000Z",
    "gateWindowStart": "2026-01-03T00:00:00.000Z", "gateSuccessesInWindow": 12,
    "lastGateSuccessTime": "2026-01-03T01:00:00.000Z", "nextGateTime": "2026-01-03T01:01:00Z",
    "nextStepTime": "2026-01-04T00:00:00.000Z", "retryToken": "", "rollbacks": 1, "retries": 1,
    "gateCounts": {"Successful": 12, "Failed": 0, "Inconclusive": 1, "Error": 0},
    "lastGate": {"time": "2026-01-03T01:00:00.000Z", "errorRate": 0.001, "p95Seconds": "+Inf",
                 "mismatchRatio": None, "requests": 500, "result": "Successful",
                 "reason": "ok", "thresholds": {"errorRate": 0.01, "p95Seconds": 0.5,
                                                "mismatchRatio": 0.01, "minRequests": 100}},
    "conditions": [{"type": "Ready", "status": "False", "reason": "NotYet", "message": "",
                    "lastTransitionTime": "2026-01-01T00:00:00.000Z"}],
    "history": [{"time": "2026-01-02T00:00:00.000Z", "type": "Rollback",
                 "phase": "ReadSwitchover", "readPercent": 0, "reason": "gate failed",
                 "from": 20, "to": 0},
                {"time": "2026-01-01T00:00:00.000Z", "type": "Phase", "phase": "DualWrite",
                 "readPercent": 0, "reason": "dual-write on", "from": "Preparation",
                 "to": "DualWrite"}],
    "jobs": {"verify": {"name": "sm-verify-3", "attempt": 3, "state": "Succeeded",
                        "createdAt": "2026-01-02T20:00:00.000Z",
                        "finishedAt": "2026-01-02T20:05:00.000Z", "outcome": "passed",
                        "passed": True, "message": "{...}",
                        "result": {"mismatch_ratio": "n/a", "checked": 10,
                                   "kinds": {"projects": {"checked": 4}}}}},
    "ownedEnv": ["DUAL_WRITE_MODE"], "lastValidSpec": {"deployment": "api", "readStep": {}},
    "rehydrate": None, "someKeyNobodyKnows": 1, "kopf": {"progress": {}},
}


def test_a_status_from_the_untyped_operator_is_read_with_everything_the_planner_uses():
    st = read_status(OLD)
    assert (st.phase, st.read_percent, st.rollbacks) == ("ReadSwitchover", 30, 1)
    assert st.gate_window_start == datetime(2026, 1, 3, tzinfo=UTC)
    assert st.last_gate is not None and st.last_gate.p95_seconds == "+Inf"
    assert [h.from_ for h in st.history] == [20, "Preparation"]
    verify = st.jobs["verify"]
    assert verify.result is not None and verify.result.unreadable == {"mismatch_ratio": "n/a"}
    assert verify.result.checked == 10
    assert verify.result.model_dump()["kinds"] == {"projects": {"checked": 4}}  # kept
    assert st.last_valid_spec is not None and st.last_valid_spec.deployment == "api"
    wire = st.wire()
    assert "someKeyNobodyKnows" not in wire and "kopf" not in wire
    assert wire["lastGate"]["p95Seconds"] == "+Inf" and wire["history"][0]["from"] == 20


def test_job_results_of_any_shape_are_kept():
    result = JobResult.from_doc({"ok": True, "records": "many", "refused": 2,
                                 "refused_ids": {"projects": ["pypi/a"]}})
    assert result.ok is True and result.unreadable == {"records": "many"}
    assert result.model_dump(exclude_none=True) == {
        "ok": True, "unreadable": {"records": "many"}, "refused": 2,
        "refused_ids": {"projects": ["pypi/a"]}}


def test_a_stored_last_valid_spec_this_version_cannot_read_does_not_block_a_valid_spec():
    spec, error = effective_spec({"deployment": "api"},
                                 {"lastValidSpec": {"deployment": "api", "retired": True}})
    assert spec is not None and error is None
    spec, error = effective_spec({"deployment": "api", "readStep": {"interval": "x"}},
                                 {"lastValidSpec": {"deployment": "api", "retired": True}})
    assert spec is None and error is not None and "readStep.interval" in error
