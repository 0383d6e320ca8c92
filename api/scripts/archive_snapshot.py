#!/usr/bin/env python3
"""Archive the final snapshot at cleanup: copy --source to --dest, a local or volume path
or an s3:// URL (an S3-compatible store; S3_ENDPOINT_URL names a non-AWS endpoint).

A path --dest that is a directory, or ends with "/", receives the file under its own
name; otherwise --dest is the file. The copy is written beside its destination and
renamed into place after its SHA-256 matched the source's, so a half-copied archive
never exists under the final name. An S3 upload is read back (size and SHA-256
metadata) before it counts; see _s3.py. Credentials come from the usual AWS_* variables
(or the pod's web identity), never the command.

  archive_snapshot.py --source /data/snapshots/final.json --dest /archive/
  archive_snapshot.py --source /data/snapshots/final.json --dest s3://bucket/migration/
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import _common as c
import _s3
from _s3 import sha256


def build_parser() -> Any:
    p = c.parser(__doc__ or "")
    p.add_argument("--source", required=True, help="the snapshot file to archive")
    p.add_argument("--dest", required=True, help="a path, a directory/ or s3://bucket/key")
    p.add_argument("--api-url", help="accepted for a uniform Job contract; not used")
    c.add_stores(p)
    return p


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
            summary |= _s3.upload(source, args.dest, checksum)
        else:
            summary |= to_path(source, args.dest, checksum)
        progress(1, 1)
        return c.succeed(summary, args.termination_log)
    except c.ScriptError as e:
        return c.fail(summary, "archive", e, args.termination_log)


if __name__ == "__main__":
    sys.exit(main())
