"""Default Job commands: `python api/scripts/<kind>.py ...` in the API's own image.

Templates in spec.jobs override image, command, args and add env; the operator always adds
API_URL, STORES and the paths so one script contract serves both the defaults and overrides.
"""

from __future__ import annotations

from .spec import JobTemplate, MigrationSpec


def default_args(kind: str, spec: MigrationSpec) -> tuple[str, ...]:
    stores = ",".join(spec.stores)
    base = ("--api-url", spec.api_url, "--stores", stores)
    if kind == "verify":
        return (*base, "--max-mismatch", str(spec.gates.mismatch_ratio_ceiling))
    if kind == "snapshot":
        return (*base, "--output", spec.snapshot_path)
    if kind == "archive":
        return ("--source", spec.snapshot_path, "--dest", spec.cleanup.archive or "")
    return base


def job_parts(kind: str, spec: MigrationSpec, image: str | None
              ) -> tuple[str | None, tuple[str, ...], tuple[str, ...], tuple[tuple[str, str], ...]]:
    template = spec.jobs.get(kind, JobTemplate())
    command = template.command or ("python", f"api/scripts/{kind}.py")
    args = template.args if template.command or template.args else default_args(kind, spec)
    env = (
        ("API_URL", spec.api_url),
        ("STORES", ",".join(spec.stores)),
        ("SNAPSHOT_PATH", spec.snapshot_path),
        *((("ARCHIVE_DEST", spec.cleanup.archive),) if spec.cleanup.archive else ()),
        *template.env,
    )
    return template.image or image, command, args, env
