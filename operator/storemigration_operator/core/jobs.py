"""The Job contract: which script each Job kind runs, with which arguments and environment.

Default Jobs run `python api/scripts/<script> ...` in the API's own image (WORKDIR /app).
Each script accepts the arguments built here, reads ADMIN_TOKEN from its environment,
prints a JSON summary last, exits 0 ok / 1 check failed / 2 usage or configuration /
3 unreachable, and writes the summary as the pod's termination message, which the
operator reads back (for verify: `passed` and `mismatch_ratio`). tests/scripts runs the
scripts with exactly these argument lists, so the two sides cannot drift apart.

Templates in spec.jobs override image, command, args and add env; the operator always adds
API_URL, STORES, the paths and ADMIN_TOKEN (from spec.adminTokenSecret) so one contract
serves both the defaults and overrides. The secret travels as a plain (env name, Secret
name, key) triple in the JobRequest: this module stays free of Kubernetes types, and the
manifest is built from the same spec the planner used. The snapshot and archive
Jobs run in their own pods, so with spec.snapshotVolume they mount that claim at the
snapshot's directory: the file the one writes is the file the other archives. Without that
volume the snapshot would die with its pod, so promotion needs the volume or an s3://
cleanup.archive; with only the latter, the snapshot Job uploads the file itself, in the pod
that wrote it, before memory writes stop (archived_by_snapshot).
"""

from __future__ import annotations

import posixpath
from typing import Any

from .model import JobRequest
from .spec import JobTemplate, MigrationSpec

SCRIPTS: dict[str, str] = {
    "backfill": "backfill_postgres.py",
    "verify": "verify_data_consistency.py",
    "verify-full": "verify_data_consistency.py",
    "snapshot": "snapshot_memory.py",
    "rehydrate": "rehydrate_memory.py",
    "archive": "archive_snapshot.py",
    "repair": "verify_data_consistency.py",
}
ADMIN_TOKEN_ENV = "ADMIN_TOKEN"
# Before PostgreSQL becomes the only store: every record compared, none may be missing;
# by key ranges (the full mode), so the API never holds more than a chunk of PostgreSQL.
FULL_VERIFY_REPORT = "/tmp/verify-full-report.jsonl"  # noqa: S108 - the Job pod's scratch
FULL_VERIFY_FLAGS = ("--mode", "full", "--report", FULL_VERIFY_REPORT, "--max-missing", "0")
COMPARING = ("verify-full", "repair")
REPAIR_REPORT = "/tmp/repair-report.jsonl"  # noqa: S108 - the Job pod's own scratch space
# The snapshot, then its upload, in one pod; the paths come from the Job's own env, the
# snapshot's arguments from "$@" (nothing is spliced into the script).
SNAPSHOT_THEN_ARCHIVE = ('python api/scripts/snapshot_memory.py "$@" && exec python '
                         'api/scripts/archive_snapshot.py --source "$SNAPSHOT_PATH" '
                         '--dest "$ARCHIVE_DEST"')


def archived_by_snapshot(spec: MigrationSpec) -> bool:
    """No shared volume but an s3:// archive: the archive Job at Cleanup could not see the
    snapshot's file, so the snapshot Job uploads it."""
    return spec.snapshot_volume is None and (spec.cleanup.archive or "").startswith("s3://")


def snapshot_not_durable(spec: MigrationSpec) -> str | None:
    """Why the final snapshot would not outlive its Job's pod, or None when it would."""
    if spec.snapshot_volume is not None or archived_by_snapshot(spec):
        return None
    path = (f"; cleanup.archive {spec.cleanup.archive} is a path in the archive Job's own "
            "pod, not durable either") if spec.cleanup.archive else ""
    return ("the final snapshot would be written inside the snapshot Job's pod and lost with "
            "it: set spec.snapshotVolume (a PersistentVolumeClaim) or an s3:// "
            f"spec.cleanup.archive; reads stay at 100%, memory writes stay on{path}")


def here(spec: MigrationSpec) -> tuple[str, ...]:
    """The full verify compares in its Job when the Job has the database's URL."""
    return ("--compare-here",) if spec.verify.database_secret else ()


def full_flags(spec: MigrationSpec) -> tuple[str, ...]:
    return (*FULL_VERIFY_FLAGS, *here(spec))


def default_command(kind: str) -> tuple[str, ...]:
    return ("python", f"api/scripts/{SCRIPTS[kind]}")


def default_args(kind: str, spec: MigrationSpec) -> tuple[str, ...]:
    stores = ",".join(spec.stores)
    base = ("--api-url", spec.api_url, "--stores", stores)
    if kind == "verify":
        return (*base, "--max-mismatch", str(spec.gates.mismatch_ratio_ceiling))
    if kind == "verify-full":
        return (*default_args("verify", spec), *full_flags(spec))
    if kind == "backfill":
        throttle = spec.backfill
        ceiling = throttle.p95_ceiling_seconds
        return (*base, "--batch-size", str(throttle.batch_size),
                "--delay", str(throttle.delay.total_seconds()),
                *(("--p95-ceiling", str(ceiling)) if ceiling is not None else ()))
    if kind == "repair":
        return (*base, "--mode", "full", "--report", REPAIR_REPORT, "--repair",
                *here(spec))
    if kind == "snapshot":
        return (*base, "--output", spec.snapshot_path)
    if kind == "archive":
        return ("--source", spec.snapshot_path, "--dest", spec.cleanup.archive or "")
    return base


def job_parts(kind: str, spec: MigrationSpec, image: str | None
              ) -> tuple[str | None, tuple[str, ...], tuple[str, ...], tuple[tuple[str, str], ...]]:
    """(image, command, args, plain env) of a Job kind; secrets come from secret_env."""
    template = spec.jobs.template(kind)
    inherited = template is None and kind == "verify-full" and spec.jobs.verify is not None
    if template is None:  # verify-full runs the verify template, with the full-check flags
        template = (spec.jobs.verify if inherited else None) or JobTemplate()
    command = template.command or default_command(kind)
    args = template.args if template.command or template.args else default_args(kind, spec)
    if inherited and (template.command or template.args):
        args = (*args, *full_flags(spec))
    extra = template.env
    if kind == "snapshot" and not template.command and archived_by_snapshot(spec):
        command = ["sh", "-c", SNAPSHOT_THEN_ARCHIVE, "snapshot_memory"]
        extra = [*(spec.jobs.archive.env if spec.jobs.archive else []), *extra]
    env = (
        ("API_URL", spec.api_url),
        ("STORES", ",".join(spec.stores)),
        ("SNAPSHOT_PATH", spec.snapshot_path),
        *((("ARCHIVE_DEST", spec.cleanup.archive),) if spec.cleanup.archive else ()),
        *((e.name, e.value) for e in extra),
    )
    return template.image or image, tuple(command), tuple(args), env


def secret_env(spec: MigrationSpec, kind: str) -> tuple[tuple[str, str, str], ...]:
    """(env name, Secret name, key): ADMIN_TOKEN for every Job when adminTokenSecret is
    set; DATABASE_URL for the Jobs that compare in their own process, and only them."""
    ref, db = spec.admin_token_secret, spec.verify.database_secret
    return (*(((ADMIN_TOKEN_ENV, ref.name, ref.key),) if ref else ()),
            *((("DATABASE_URL", db.name, db.key),) if db and kind in COMPARING else ()))


def container_env(env: tuple[tuple[str, str], ...], secrets: tuple[tuple[str, str, str], ...]
                  ) -> list[dict[str, Any]]:
    """A container's `env` list: plain values, then secretKeyRef values (a plain value of the
    same name is dropped, so a template cannot shadow the secret with a literal)."""
    secret_names = {name for name, _, _ in secrets}
    out: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in env
                                 if k not in secret_names]
    out += [{"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}
            for name, secret, key in secrets]
    return out


def snapshot_mount(kind: str, spec: MigrationSpec) -> tuple[str, str] | None:
    """(claim name, mount path) for the Jobs that write or read the snapshot file."""
    if kind not in ("snapshot", "archive") or spec.snapshot_volume is None:
        return None
    return spec.snapshot_volume.claim_name, posixpath.dirname(spec.snapshot_path) or "/"


def job_request(kind: str, name: str, spec: MigrationSpec, image: str | None,
                run: str | None = None) -> JobRequest:
    """Everything a Job needs, from the spec the planner decided with: the handlers build
    the manifest from this alone and never read the spec again. A backfill gets
    BACKFILL_RUN, its checkpoint's name (`run`, else the Job's): every attempt of one
    stage shares it, so a retried or restarted backfill resumes after the last batch."""
    image_, command, args, env = job_parts(kind, spec, image)
    if kind == "backfill":
        env = (*env, ("BACKFILL_RUN", run or name))
    return JobRequest(name, kind, image_, command, args, env, secret_env(spec, kind),
                      snapshot_mount(kind, spec))
