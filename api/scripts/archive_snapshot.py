#!/usr/bin/env python3
"""Archive the final snapshot at cleanup: copy --source to --dest, a local or volume path
or an s3:// URL (an S3-compatible store; S3_ENDPOINT_URL names a non-AWS endpoint).

A path --dest that is a directory, or ends with "/", receives the file under its own
name; otherwise --dest is the file. The copy is written beside its destination and
renamed into place after its SHA-256 matched the source's, so a half-copied archive
never exists under the final name. S3 needs boto3, which the API image does not carry:
without it the script exits 2 saying so (archive to a volume instead, or build an
image with boto3). Credentials come from the usual AWS_* variables, never the command.

  archive_snapshot.py --source /data/snapshots/final.json --dest /archive/
  archive_snapshot.py --source /data/snapshots/final.json --dest s3://bucket/migration/
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import _common as c


def build_parser() -> Any:
    p = c.parser(__doc__ or "")
    p.add_argument("--source", required=True, help="the snapshot file to archive")
    p.add_argument("--dest", required=True, help="a path, a directory/ or s3://bucket/key")
    p.add_argument("--api-url", help="accepted for a uniform Job contract; not used")
    c.add_stores(p)
    return p


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def to_path(source: Path, dest: str, checksum: str) -> dict[str, Any]:
    target = Path(dest)
    if dest.endswith("/") or target.is_dir():
        target = target / source.name
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "wb") as out, source.open("rb") as src:
            shutil.copyfileobj(src, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())
        if sha256(Path(tmp)) != checksum:
            raise c.ScriptError(c.EXIT_FAILED, f"copy to {target} does not match the source")
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return {"dest": str(target), "mode": "path"}


def to_s3(source: Path, dest: str, checksum: str) -> dict[str, Any]:
    bucket, _, key = dest.removeprefix("s3://").partition("/")
    if not bucket:
        raise c.ScriptError(c.EXIT_USAGE, f"--dest {dest!r}: an s3://bucket/key URL")
    if not key or key.endswith("/"):
        key += source.name
    try:
        import boto3
    except ImportError:
        raise c.ScriptError(
            c.EXIT_USAGE, "s3:// archives need the boto3 package, which is not installed in "
            "this image: archive to a volume path (--dest /archive/) or use an image with boto3",
        ) from None
    try:
        client = boto3.client("s3", endpoint_url=os.environ.get("S3_ENDPOINT_URL") or None)
        client.upload_file(str(source), bucket, key, ExtraArgs={"Metadata": {"sha256": checksum}})
    except Exception as e:  # noqa: BLE001 - report the class only: messages may hold URLs
        raise c.ScriptError(c.EXIT_UNREACHABLE, f"S3 upload failed ({type(e).__name__})") from None
    return {"dest": f"s3://{bucket}/{key}", "mode": "s3"}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    summary: dict[str, Any] = {"script": "archive_snapshot", "source": args.source}
    try:
        source = Path(args.source)
        if not source.is_file():
            raise c.ScriptError(c.EXIT_USAGE, f"snapshot file not found: {source}")
        if not args.dest:
            raise c.ScriptError(c.EXIT_USAGE, "--dest is empty: set spec.cleanup.archive")
        progress = c.Progress("archive", not args.quiet)
        progress(0, 1)
        checksum = sha256(source)
        summary |= {"bytes": source.stat().st_size, "sha256": checksum}
        if args.dest.startswith("s3://"):
            summary |= to_s3(source, args.dest, checksum)
        else:
            summary |= to_path(source, args.dest, checksum)
        progress(1, 1)
        return c.succeed(summary, args.termination_log)
    except c.ScriptError as e:
        return c.fail(summary, "archive", e, args.termination_log)


if __name__ == "__main__":
    sys.exit(main())
