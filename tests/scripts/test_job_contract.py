"""The operator's Jobs and the API's scripts as one contract, run for real: each Job kind's
command, args and env come from the operator's own manifest builder, run against a real
API process on a real PostgreSQL; exit codes, the JSON summary printed last and the
termination message (the keys the operator reads) are checked."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from storemigration_operator.core.jobs import SCRIPTS
from storemigration_operator.core.spec import JOB_KINDS, parse_spec
from storemigration_operator.core.verify import verify_outcome

from tests.harness.s3 import S3Server
from tests.scripts.conftest import SECRET, TOKEN, RunningApi
from tests.scripts.jobrun import ROOT, manifest_for, run_job

TASKS = 200  # the verify Job samples 10%: ~20 tasks sampled, none is ~1e-9


def spec_doc(api: RunningApi | None, tmp: Path, **extra: Any) -> dict[str, Any]:
    return {"deployment": "api", "apiURL": api.url if api else "http://127.0.0.1:9",
            "adminTokenSecret": {"name": "sm-admin", "key": "token"},
            "snapshotPath": str(tmp / "snapshots" / "final.json"), **extra}


def operator_verdict(code: int, result: dict[str, Any] | None, doc: dict[str, Any]) -> str:
    """The operator's own reading of a finished verify Job (core.verify.verify_outcome)."""
    state = "Succeeded" if code == 0 else "Failed"
    return verify_outcome(state, result, parse_spec(doc).gates.mismatch_ratio_ceiling)[0]


def seed(url: str, tasks: int = 5) -> None:
    with httpx.Client(base_url=url, timeout=10) as c:
        for i in range(5):
            assert c.put(f"/api/projects/pypi/pkg-{i}", json={"version": "1.0"}).status_code == 200
        dev = c.post("/v1/contributors", json={"name": "dev"}).json()["id"]
        asset = c.post("/v1/assets", json={"type": "CODE", "description": "a"}).json()["id"]
        for _ in range(3):
            assert c.post("/v1/contributions", json={
                "contributor_id": dev, "asset_id": asset, "cost_amount": "10.00",
                "metadata": {}}).status_code == 201
        for i in range(tasks):
            assert c.post("/api/agent/tasks", json={"direction": f"task {i}",
                                                    "task_type": "impl"}).status_code == 201


async def drop_postgres_tasks(admin_dsn: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute("DELETE FROM agent_tasks")
    finally:
        await conn.close()


def test_every_kind_maps_to_a_script_with_help() -> None:
    assert set(SCRIPTS) == set(JOB_KINDS)
    for kind in JOB_KINDS:
        container = manifest_for(kind, {"deployment": "api"})["spec"]["template"]["spec"][
            "containers"][0]
        assert container["command"] == ["python", f"api/scripts/{SCRIPTS[kind]}"]
        shown = subprocess.run([sys.executable, container["command"][1], "--help"], cwd=ROOT,
                               capture_output=True, text=True, timeout=60)
        assert shown.returncode == 0 and "exit codes" in shown.stdout
        for flag in container["args"][::2]:
            assert flag in shown.stdout, (kind, flag)


def test_admin_token_reaches_jobs_from_the_secret(tmp_path: Path) -> None:
    for kind in JOB_KINDS:
        env = manifest_for(kind, spec_doc(None, tmp_path))["spec"]["template"]["spec"][
            "containers"][0]["env"]
        token = [e for e in env if e["name"] == "ADMIN_TOKEN"]
        assert token == [{"name": "ADMIN_TOKEN", "valueFrom": {"secretKeyRef": {
            "name": "sm-admin", "key": "token"}}}]
        assert not any("value" in e and TOKEN in e["value"] for e in env)
    plain = manifest_for("verify", {"deployment": "api"})["spec"]["template"]["spec"]
    assert all(e["name"] != "ADMIN_TOKEN" for e in plain["containers"][0]["env"])


def test_snapshot_volume_is_mounted_by_snapshot_and_archive_jobs(tmp_path: Path) -> None:
    doc = spec_doc(None, tmp_path, snapshotVolume={"claimName": "snaps"},
                   cleanup={"archive": "/archive/"})
    for kind in JOB_KINDS:
        pod = manifest_for(kind, doc)["spec"]["template"]["spec"]
        if kind in ("snapshot", "archive"):
            assert pod["volumes"] == [{"name": "snapshots",
                                       "persistentVolumeClaim": {"claimName": "snaps"}}]
            assert pod["containers"][0]["volumeMounts"] == [
                {"name": "snapshots", "mountPath": str(tmp_path / "snapshots")}]
        else:
            assert "volumes" not in pod


def test_verify_backfill_verify(running_api: RunningApi, tmp_path: Path) -> None:
    import asyncio

    seed(running_api.url, TASKS)
    doc = spec_doc(running_api, tmp_path)
    clean = run_job("verify", doc, tmp_path, SECRET)
    assert clean.code == 0, clean.stderr
    assert clean.summary["passed"] is True
    assert operator_verdict(clean.code, clean.termination, doc) == "passed"

    asyncio.run(drop_postgres_tasks(running_api.admin_dsn))
    failed = run_job("verify", doc, tmp_path, SECRET)
    assert failed.code == 1, failed.stderr
    assert failed.summary["passed"] is False and failed.summary["exit_code"] == 1
    assert failed.summary["mismatch_ratio"] > 0.01 and failed.summary["missing_count"] > 0
    assert operator_verdict(failed.code, failed.termination, doc) == "failed"
    assert failed.termination["mismatch_ratio"] == failed.summary["mismatch_ratio"]

    graph_only = run_job("verify", {**doc, "stores": ["graph"]}, tmp_path, SECRET)
    assert graph_only.code == 0 and graph_only.summary["stores"] == ["graph"]
    assert set(graph_only.summary["kinds"]) == {"projects", "dependencies", "contributors",
                                                "assets", "contributions"}

    filled = run_job("backfill", doc, tmp_path, SECRET)
    assert filled.code == 0, filled.stderr
    assert filled.summary["ok"] is True and filled.summary["written_total"] >= TASKS
    assert filled.termination == {k: v for k, v in filled.summary.items()}

    healed = run_job("verify", doc, tmp_path, SECRET)
    assert healed.code == 0 and healed.summary["mismatch_ratio"] == 0
    assert operator_verdict(healed.code, healed.termination, doc) == "passed"


def test_snapshot_then_archive(running_api: RunningApi, tmp_path: Path) -> None:
    seed(running_api.url)
    archive = tmp_path / "archive"
    doc = spec_doc(running_api, tmp_path, cleanup={"archive": str(archive) + "/"})
    taken = run_job("snapshot", doc, tmp_path, SECRET)
    assert taken.code == 0, taken.stderr
    final = tmp_path / "snapshots" / "final.json"
    snap = json.loads(final.read_text())
    assert snap["format"] == "storemigration-snapshot"
    assert taken.summary["records"]["agent_task"] == len(snap["agent_tasks"]) >= 5
    assert sorted(p.name for p in final.parent.iterdir()) == ["final.json"]  # no temp left

    archived = run_job("archive", doc, tmp_path, SECRET)
    assert archived.code == 0, archived.stderr
    assert (archive / "final.json").read_bytes() == final.read_bytes()
    assert archived.summary["sha256"] == taken.summary["sha256"]
    assert archived.termination is not None and archived.termination["dest"] == str(
        archive / "final.json")


def test_archive_errors_are_clear(tmp_path: Path) -> None:
    missing = run_job("archive", spec_doc(None, tmp_path, cleanup={"archive": "/nowhere/"}),
                      tmp_path)
    assert missing.code == 2 and "not found" in missing.summary["error"]
    final = tmp_path / "snapshots" / "final.json"
    final.parent.mkdir(parents=True)
    final.write_text("{}")
    s3 = run_job("archive", spec_doc(None, tmp_path, cleanup={"archive": "s3://bucket/m/"}),
                 tmp_path)
    assert s3.code == 3, s3.stderr  # boto3 is in the image; no credentials or endpoint here
    assert s3.summary["error"] == "S3 upload failed (NoCredentialsError)"
    assert s3.termination is not None and s3.termination["exit_code"] == 3


def test_archive_to_s3_end_to_end(s3_server: S3Server, tmp_path: Path) -> None:
    """The archive Job as the operator builds it, against moto's S3 server: the object
    downloaded back is byte for byte the snapshot, and its SHA-256 is the Job's."""
    final = tmp_path / "snapshots" / "final.json"
    final.parent.mkdir(parents=True)
    final.write_bytes(json.dumps({"format": "storemigration-snapshot",
                                  "blob": os.urandom(3 << 20).hex()}).encode())
    bucket = s3_server.new_bucket()
    doc = spec_doc(None, tmp_path, cleanup={"approved": True, "archive": f"s3://{bucket}/m/"},
                   jobs={"archive": {"env": [{"name": "S3_ENDPOINT_URL",
                                              "value": s3_server.endpoint}]}})
    creds = {k: v for k, v in s3_server.env.items() if k.startswith("AWS_")}
    done = run_job("archive", doc, tmp_path, extra_env=creds)
    assert done.code == 0, done.stderr
    assert done.summary["dest"] == f"s3://{bucket}/m/final.json"
    assert done.termination is not None and done.termination["mode"] == "s3"
    obj = s3_server.client().get_object(Bucket=bucket, Key="m/final.json")
    body = obj["Body"].read()
    assert body == final.read_bytes()
    assert hashlib.sha256(body).hexdigest() == done.summary["sha256"] == \
        obj["Metadata"]["sha256"]


def test_rehydrate(running_api: RunningApi, tmp_path: Path) -> None:
    seed(running_api.url)
    done = run_job("rehydrate", spec_doc(running_api, tmp_path), tmp_path, SECRET)
    assert done.code == 0, done.stderr
    assert done.summary["ok"] is True and done.termination is not None
    assert done.termination["ok"] is True
    with httpx.Client(base_url=running_api.url) as c:
        assert c.get("/api/agent/tasks/count").status_code == 200


def test_exit_codes_without_token_wrong_token_and_unreachable(
        running_api: RunningApi, tmp_path: Path) -> None:
    doc = spec_doc(running_api, tmp_path)
    for kind in ("backfill", "verify", "snapshot", "rehydrate"):
        no_secret = run_job(kind, doc, tmp_path, {})
        assert no_secret.code == 2 and "ADMIN_TOKEN" in no_secret.summary["error"], kind
        assert no_secret.termination is not None and no_secret.termination["exit_code"] == 2
        wrong = run_job(kind, doc, tmp_path, {"sm-admin": {"token": "wrong"}})
        assert wrong.code == 2, kind
        assert TOKEN not in wrong.termination_text + wrong.stderr  # type: ignore[operator]
        gone = run_job(kind, spec_doc(None, tmp_path), tmp_path, SECRET)
        assert gone.code == 3 and "unreachable" in gone.summary["error"], kind


def test_no_termination_file_is_created_without_a_kubelet(
        running_api: RunningApi, tmp_path: Path) -> None:
    existed = Path("/dev/termination-log").exists()
    run = run_job("rehydrate", spec_doc(running_api, tmp_path), tmp_path, SECRET,
                  extra_env={"TERMINATION_LOG": ""})
    assert run.code == 0 and run.termination is None
    assert Path("/dev/termination-log").exists() == existed


def test_termination_message_stays_valid_json_within_4_kib() -> None:
    sys.path.insert(0, str(ROOT / "api" / "scripts"))
    try:
        import _common
    finally:
        sys.path.remove(str(ROOT / "api" / "scripts"))
    big = {"passed": False, "mismatch_ratio": 0.5, "missing_count": 5000,
           "kinds": {"tasks": {"missing": [f"id-{i}" for i in range(5000)], "checked": 9}}}
    text = _common._compact(big)
    assert len(text.encode()) <= 4096
    doc = json.loads(text)
    assert doc["passed"] is False and doc["mismatch_ratio"] == 0.5
    assert doc["kinds"]["tasks"]["checked"] == 9
    huge = {"passed": False, "mismatch_ratio": 0.5, "error": "x" * 10_000,
            "kinds": {f"k{i}": {"checked": i} for i in range(2000)}}
    doc = json.loads(_common._compact(huge))
    assert doc["passed"] is False and doc["truncated"] is True and len(doc["error"]) == 200


def test_snapshot_job_without_a_volume_uploads_the_snapshot_to_s3_itself(
        running_api: RunningApi, s3_server: S3Server, tmp_path: Path) -> None:
    """No snapshotVolume, an s3:// cleanup.archive (issue 16): the snapshot Job as the
    operator builds it takes the snapshot and uploads it in the same pod, so the final
    snapshot is in S3 before memory writes stop, not lost with the pod."""
    seed(running_api.url)
    bucket = s3_server.new_bucket()
    doc = spec_doc(running_api, tmp_path, cleanup={"archive": f"s3://{bucket}/m/"},
                   jobs={"archive": {"env": [{"name": "S3_ENDPOINT_URL",
                                              "value": s3_server.endpoint}]}})
    creds = {k: v for k, v in s3_server.env.items() if k.startswith("AWS_")}
    image_python = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = run_job("snapshot", doc, tmp_path, SECRET, extra_env=creds | image_python)
    assert done.code == 0, done.stderr
    assert done.manifest["spec"]["template"]["spec"]["containers"][0]["command"][:2] == \
        ["sh", "-c"]
    final = tmp_path / "snapshots" / "final.json"
    assert json.loads(final.read_text())["format"] == "storemigration-snapshot"
    body = s3_server.client().get_object(Bucket=bucket, Key="m/final.json")["Body"].read()
    assert body == final.read_bytes()
    assert done.termination is not None and done.termination["mode"] == "s3"
    assert done.termination["sha256"] == hashlib.sha256(body).hexdigest()


def test_compare_here_refuses_memory_records_that_do_not_read_back(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """--compare-here judges records rebuilt from the API's JSON: one that does not read
    back stops the run with a clear error that quotes no record, never a wrong verdict."""
    sys.path.insert(0, str(ROOT / "api" / "scripts"))
    try:
        import _common
        import _compare_here
    finally:
        sys.path.remove(str(ROOT / "api" / "scripts"))
    here = _compare_here.CompareHere.__new__(_compare_here.CompareHere)
    here.api_url, here.run, here._rest, here.window = "http://api", "r", {}, 0.0
    secret = "s3cret-direction"
    monkeypatch.setattr(_common, "call_admin", lambda *a, **k: {
        "window": 0.5, "records": [{"id": "task_1", "direction": secret}]})
    with pytest.raises(_common.ScriptError) as caught:
        here._memory("tasks", None, 10)
    assert caught.value.code == _common.EXIT_FAILED
    assert "memory's tasks records do not read back" in caught.value.message
    assert secret not in caught.value.message
