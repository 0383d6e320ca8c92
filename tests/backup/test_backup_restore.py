"""The backup CronJob's real commands against a real PostgreSQL and a real S3-compatible
server (moto's server mode): dump -> upload -> download -> pg_restore into a fresh
database -> every table and every record agrees; the retention command deletes what is
older than retentionDays and nothing else; a failed dump fails the step and leaves no
dump under its final name."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import time
import uuid
from decimal import Decimal
from pathlib import Path

import asyncpg
from app.migration.consistency import check_consistency
from app.models import (
    AgentTaskCreate,
    AgentTaskUpdate,
    AssetCreate,
    AssetType,
    ContributionCreate,
    ContributorCreate,
    ProjectUpsert,
    TaskStatus,
    TaskType,
)

from devcluster.postgres import PG_BIN, drop_database, with_database
from tests.backup.cronjob import backup_pod, container, run
from tests.harness.postgres import PgDatabase, fresh_database, postgres_stores
from tests.harness.s3 import S3Server

DAY = 86400
TABLES = """
SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
ORDER BY 1"""


async def seed(db: PgDatabase) -> int:
    """Write records of every kind through the app role's stores; returns how many."""
    graph, tasks, database = await postgres_stores(db.app_dsn, postgres_pool_size=2)
    try:
        for i in range(20):
            await graph.upsert_project("npm", f"pkg-{i}", ProjectUpsert(version=f"1.{i}",
                                                                        description=f"p {i}"))
        for i in range(1, 20):
            await graph.add_dependency("npm", f"pkg-{i}", "npm", f"pkg-{i - 1}")
        await graph.add_dependency("npm", "pkg-0", "pypi", "not-yet-there")
        people = [await graph.create_contributor(ContributorCreate(name=f"dev {i}"))
                  for i in range(5)]
        assets = [await graph.create_asset(AssetCreate(type=AssetType.CODE, name=f"a{i}",
                                                       metadata={"n": i}))
                  for i in range(3)]
        for i in range(10):
            await graph.create_contribution(ContributionCreate(
                contributor_id=people[i % 5].id, asset_id=assets[i % 3].id,
                cost_amount=Decimal(f"{i}.25"), metadata={"i": i}), coherence_score=0.5)
        made = [await tasks.create_task(AgentTaskCreate(direction=f"task {i} é",
                                                        task_type=TaskType.impl))
                for i in range(15)]
        for t in made[:5]:
            await tasks.update_task(t.id, AgentTaskUpdate(status=TaskStatus.running))
        return 20 + 20 + 5 + 3 + 10 + 15
    finally:
        await database.close()


async def table_rows(dsn: str) -> dict[str, list[str]]:
    """Every user table's rows, each as its JSON text, sorted."""
    conn = await asyncpg.connect(dsn)
    try:
        out = {}
        for (table,) in await conn.fetch(TABLES):
            rows = await conn.fetch(f"SELECT to_jsonb(t)::text FROM {table} t")  # noqa: S608
            out[table] = sorted(r[0] for r in rows)
        return out
    finally:
        await conn.close()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def test_backup_upload_download_restore_agrees(pg_server: str, pg_template: str,
                                                     s3_server: S3Server, tmp_path: Path) -> None:
    pod = backup_pod()
    dump_step, upload_step = container(pod, "pg-dump"), container(pod, "upload")
    assert pod["initContainers"] == [dump_step]
    bucket = upload_step["command"][-1].removeprefix("s3://").split("/")[0]
    s3 = s3_server.client()
    if bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
        s3.create_bucket(Bucket=bucket)
    backups = tmp_path / "backups"
    backups.mkdir()
    restored_name = f"sm_restored_{uuid.uuid4().hex[:10]}"
    async with fresh_database(pg_server, pg_template) as source:
        seeded = await seed(source)
        # The Secret's DATABASE_URL is the application role's: the dump runs with it.
        dumped = run(dump_step, backups, {"DATABASE_URL": source.app_dsn})
        assert dumped.returncode == 0, dumped.stderr
        (dump,) = backups.iterdir()
        assert dump.name.startswith("storemigration-") and dump.suffix == ".dump"

        secrets = {k: v for k, v in s3_server.env.items() if k.startswith("AWS_")}
        uploaded = run(upload_step, backups, secrets,
                       {"S3_ENDPOINT_URL": s3_server.endpoint})  # moto stands in for AWS
        assert uploaded.returncode == 0, uploaded.stderr
        summary = json.loads(uploaded.stdout)
        key = summary["dest"].removeprefix(f"s3://{bucket}/")
        assert key == f"prod/pg-dump/{dump.name}"
        obj = s3.get_object(Bucket=bucket, Key=key)
        body = obj["Body"].read()
        assert body == dump.read_bytes()
        assert obj["Metadata"]["sha256"] == sha256(body) == summary["sha256"]
        downloaded = tmp_path / "downloaded.dump"
        downloaded.write_bytes(body)

        admin = await asyncpg.connect(pg_server)
        try:
            await admin.execute(f'CREATE DATABASE "{restored_name}"')
        finally:
            await admin.close()
        try:
            restored_dsn = with_database(pg_server, restored_name)
            done = await asyncio.to_thread(
                subprocess.run,
                [str(PG_BIN / "pg_restore"), "--no-owner", "--exit-on-error",
                 f"--dbname={restored_dsn}", str(downloaded)],
                capture_output=True, text=True, timeout=300, check=False)
            assert done.returncode == 0, done.stderr

            before, after = await table_rows(source.owner_dsn), await table_rows(restored_dsn)
            assert sorted(after) == sorted(before)
            assert sum(len(before[t]) for t in ("public.projects", "public.project_dependencies",
                                                "public.contributors", "public.assets",
                                                "public.contributions", "public.agent_tasks")
                       ) == seeded
            assert after == before

            restored = PgDatabase(restored_name, restored_dsn,
                                  source.app_dsn.replace(source.name, restored_name),
                                  pg_server)
            await assert_consistent(source, restored, seeded)
        finally:
            await drop_database(pg_server, restored_name)


async def assert_consistent(source: PgDatabase, restored: PgDatabase, seeded: int) -> None:
    """The project's consistency check, every record, in both directions (it samples from
    its first side, so one direction alone would not see extra records in the other)."""
    a = await postgres_stores(source.app_dsn, postgres_pool_size=2)
    b = await postgres_stores(restored.app_dsn, postgres_pool_size=2)
    try:
        for one, two in ((a, b), (b, a)):
            report = await check_consistency(one[0], two[0], one[1], two[1], sample=1.0,
                                             recheck_delay=0.0, record_metrics=False)
            assert report.checked == seeded
            assert report.mismatches == 0, report.as_dict()
    finally:
        await a[2].close()
        await b[2].close()


def age(path: Path, days: float) -> None:
    then = time.time() - days * DAY
    os.utime(path, (then, then))


async def test_retention_deletes_31_day_old_dumps_and_keeps_29(pg_database: PgDatabase,
                                                               tmp_path: Path) -> None:
    step = container(backup_pod(), "pg-dump")
    assert {e["name"]: e.get("value") for e in step["env"]}["RETENTION_DAYS"] == "30"
    backups = tmp_path / "backups"
    backups.mkdir()
    files = {name: backups / name for name in (
        "storemigration-20250101T033000Z.dump",  # 31 days: deleted
        "storemigration-20250103T033000Z.dump",  # 29 days: kept
        "storemigration-20250102T033000Z.dump",  # 30 days less an hour: kept
        ".storemigration-20250130T033000Z.dump.partial",  # an abandoned dump, 2 days: deleted
        ".storemigration-20250201T033000Z.dump.partial",  # 1 hour: kept (may be running)
        "restore-notes.txt",  # not a dump, 40 days: kept
    )}
    ages = [31, 29, 30 - 1 / 24, 2, 1 / 24, 40]
    for path, days in zip(files.values(), ages, strict=True):
        path.write_bytes(b"old dump")
        age(path, days)
    done = run(step, backups, {"DATABASE_URL": pg_database.app_dsn})
    assert done.returncode == 0, done.stderr
    left = sorted(p.name for p in backups.iterdir())
    new = [n for n in left if n not in files]
    assert len(new) == 1 and new[0].startswith("storemigration-"), left
    assert set(left) - set(new) == set(files) - {"storemigration-20250101T033000Z.dump",
                                                 ".storemigration-20250130T033000Z.dump.partial"}
    assert str(files["storemigration-20250101T033000Z.dump"]) in done.stdout  # -print


async def test_failed_dump_fails_and_leaves_no_dump(pg_database: PgDatabase,
                                                    tmp_path: Path) -> None:
    step = container(backup_pod(), "pg-dump")
    backups = tmp_path / "backups"
    backups.mkdir()
    kept = backups / "storemigration-20250103T033000Z.dump"
    kept.write_bytes(b"yesterday")
    wrong = pg_database.app_dsn.replace(":app-test-secret-pw@", ":wrong-password@")
    assert wrong != pg_database.app_dsn
    done = run(step, backups, {"DATABASE_URL": wrong})
    assert done.returncode != 0
    assert "password authentication failed" in done.stderr
    assert sorted(p.name for p in backups.glob("storemigration-*")) == [kept.name]
