"""Job manifests come from the spec the planner decided with: a Job re-requested while the
current spec is invalid still gets the Secret env and the snapshot volume of the last valid
spec (the manifest used to re-parse the owner's spec and silently drop them)."""

from __future__ import annotations

from datetime import UTC, datetime

from storemigration_operator import cluster
from storemigration_operator.core.invalid import effective_spec
from storemigration_operator.core.jobs import job_request
from storemigration_operator.core.model import DeploymentObservation
from storemigration_operator.core.planner import plan

NOW = datetime(2026, 1, 1, tzinfo=UTC)
VALID = {"deployment": "api", "adminTokenSecret": {"name": "api-secrets", "key": "token"},
         "snapshotVolume": {"claimName": "snapshots"}, "snapshotPath": "/snap/final.json"}


def owner(spec: dict) -> dict:
    return {"apiVersion": "migrations.storemigration.dev/v1alpha1", "kind": "StoreMigration",
            "metadata": {"name": "sm", "namespace": "default", "uid": "u-1"}, "spec": spec}


def test_a_job_requested_while_the_spec_is_invalid_keeps_its_secret_and_volume() -> None:
    status = {"phase": "ReadSwitchover", "readPercent": 100,
              "promoteRequestedAt": "2026-01-01T00:00:00Z", "lastValidSpec": VALID,
              "jobs": {"snapshot": {"name": "sm-snapshot-1", "attempt": 1, "state": "Pending",
                                    "createdAt": "2026-01-01T00:00:00Z"}}}
    invalid = {**VALID, "readStep": {"interval": "tomorrow"}}
    spec, error = effective_spec(invalid, status)
    assert spec is not None and error is not None and "readStep.interval" in error
    dep = DeploymentObservation(name="api", image="api:1", generation=1, observed_generation=1,
                                status_replicas=1, updated_replicas=1, available_replicas=1)
    p = plan(spec, status, None, {}, dep, NOW, name="sm", generation=2, invalid=error)
    [req] = p.jobs  # the vanished snapshot Job, asked for again
    manifest = cluster.job_manifest(req, "default", owner(invalid))
    pod = manifest["spec"]["template"]["spec"]
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert env["ADMIN_TOKEN"]["valueFrom"] == {"secretKeyRef": {"name": "api-secrets",
                                                                "key": "token"}}
    assert pod["volumes"] == [{"name": "snapshots",
                               "persistentVolumeClaim": {"claimName": "snapshots"}}]
    assert pod["containers"][0]["volumeMounts"] == [{"name": "snapshots", "mountPath": "/snap"}]
    assert manifest["metadata"]["ownerReferences"][0]["uid"] == "u-1"


def test_a_template_cannot_shadow_the_secret_with_a_plain_value() -> None:
    spec, _ = effective_spec({**VALID, "jobs": {"verify": {"env": [
        {"name": "ADMIN_TOKEN", "value": "literal"}, {"name": "EXTRA", "value": "1"}]}}}, {})
    assert spec is not None
    req = job_request("verify", "sm-verify-1", spec, "api:1")
    env = cluster.job_manifest(req, "default", owner(VALID))["spec"]["template"]["spec"][
        "containers"][0]["env"]
    assert [e for e in env if e["name"] == "ADMIN_TOKEN"] == [
        {"name": "ADMIN_TOKEN", "valueFrom": {"secretKeyRef": {"name": "api-secrets",
                                                               "key": "token"}}}]
    assert {"name": "EXTRA", "value": "1"} in env


def test_verify_database_secret_makes_the_full_verify_and_repair_compare_in_their_job(
) -> None:
    spec, _ = effective_spec({**VALID, "verify": {"databaseSecret": {"name": "db"}}}, {})
    assert spec is not None
    for kind in ("verify-full", "repair", "verify", "backfill"):
        req = job_request(kind, f"sm-{kind}-1", spec, "api:1")
        container = cluster.job_manifest(req, "default", owner(VALID))["spec"]["template"][
            "spec"]["containers"][0]
        env = {e["name"]: e for e in container["env"]}
        comparing = kind in ("verify-full", "repair")
        assert ("--compare-here" in container["args"]) is comparing, kind
        # the URL only where it is used, and only from the Secret, never as a value
        assert ("DATABASE_URL" in env) is comparing, kind
        if comparing:
            assert env["DATABASE_URL"] == {"name": "DATABASE_URL", "valueFrom": {
                "secretKeyRef": {"name": "db", "key": "DATABASE_URL"}}}
    plain, _ = effective_spec(VALID, {})
    assert plain is not None
    req = job_request("verify-full", "sm-verify-full-1", plain, "api:1")
    assert "--compare-here" not in req.args
    assert all(name != "DATABASE_URL" for name, _, _ in req.secret_env)
