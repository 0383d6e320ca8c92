#!/usr/bin/env python3
"""Send the newest pg_dump off the cluster: the backup CronJob's second step, after its
pg_dump step wrote /backups/storemigration-<UTC stamp>.dump to the dump volume.

The newest complete dump in --dir (names sort by their UTC stamp; the `.partial` files of
a dump in progress never match) is uploaded under the --dest prefix with its own name
and read back (size and SHA-256) before the Job succeeds, so a failed upload fails the
Job and the backup alerts see it. Retention on the bucket is the bucket's lifecycle
rule; the volume keeps its own retentionDays. Credentials: AWS_* variables or the pod's
web identity (see _s3.py); S3_ENDPOINT_URL names a non-AWS endpoint.

  backup_to_s3.py --dir /backups --dest s3://bucket/store-migration/pg-dump/
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import _common as c
import _s3

DUMP_GLOB = "storemigration-*.dump"


def build_parser() -> Any:
    p = c.parser(__doc__ or "")
    p.add_argument("--dir", required=True, help="the dump volume (the CronJob's /backups)")
    p.add_argument("--dest", required=True, help="s3://bucket/prefix/ the dump goes under")
    return p


def newest_dump(directory: Path) -> Path:
    dumps = sorted(p for p in directory.glob(DUMP_GLOB) if p.is_file())
    if not dumps:
        raise c.ScriptError(c.EXIT_FAILED, f"no {DUMP_GLOB} in {directory}")
    return dumps[-1]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    summary: dict[str, Any] = {"script": "backup_to_s3", "dir": args.dir}
    try:
        if not args.dest.endswith("/"):
            raise c.ScriptError(c.EXIT_USAGE, "--dest must be an s3://bucket/prefix/ ending in /")
        dump = newest_dump(Path(args.dir))
        checksum = _s3.sha256(dump)
        summary |= {"source": str(dump), "bytes": dump.stat().st_size, "sha256": checksum}
        summary |= _s3.upload(dump, args.dest, checksum)
        return c.succeed(summary, args.termination_log)
    except c.ScriptError as e:
        return c.fail(summary, "backup upload", e, args.termination_log)


if __name__ == "__main__":
    sys.exit(main())
