#!/usr/bin/env python3
"""Take the final JSON snapshot (the spec's phase-3 snapshot): GET /api/admin/snapshot
from the running API and write it atomically to --output.

The body is streamed to a temporary file next to --output, fsynced, parsed back as a
snapshot (so a truncated download never looks like a good one) and only then renamed
over --output. The snapshot format is app.stores.snapshot's, so the file can seed an
offline backfill or verify.

  snapshot_memory.py --api-url http://api:8000 --output /data/snapshots/final.json
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import _common as c


def build_parser() -> Any:
    p = c.parser(__doc__ or "")
    p.add_argument("--api-url", required=True, help="the running API (ADMIN_TOKEN in env)")
    p.add_argument("--output", required=True, help="where the snapshot file is written")
    p.add_argument("--source", choices=("memory", "postgres"), default="memory",
                   help="which store pair to export (default memory, the trusted source)")
    c.add_stores(p)
    return p


def download(api_url: str, source: str, output: Path, progress: c.Progress) -> dict[str, Any]:
    import httpx

    output.parent.mkdir(parents=True, exist_ok=True)
    headers = {"Authorization": f"Bearer {c.admin_token()}"}
    url = api_url.rstrip("/") + "/api/admin/snapshot"
    fd, tmp = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.")
    digest, size = hashlib.sha256(), 0
    try:
        with os.fdopen(fd, "wb") as f:
            try:
                with httpx.stream("GET", url, params={"source": source}, headers=headers,
                                  timeout=3600.0) as response:
                    if response.status_code >= 400:
                        response.read()
                        c.raise_for_answer(response)
                    total = int(response.headers.get("content-length") or 0)
                    for chunk in response.iter_bytes():
                        f.write(chunk)
                        digest.update(chunk)
                        size += len(chunk)
                        progress(size, max(total, size))
            except httpx.HTTPError as e:
                raise c.ScriptError(c.EXIT_UNREACHABLE,
                                    f"API unreachable ({type(e).__name__})") from None
            f.flush()
            os.fsync(f.fileno())
        graph, tasks = c.load_snapshot(tmp)
        os.replace(tmp, output)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return {"output": str(output), "bytes": size, "sha256": digest.hexdigest(),
            "records": {"graph": graph.count(), "agent_task": len(tasks)}}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    summary: dict[str, Any] = {"script": "snapshot_memory", "source": args.source,
                               "stores": list(args.stores)}
    try:
        summary |= download(args.api_url, args.source, Path(args.output),
                            c.Progress("snapshot", not args.quiet))
        return c.succeed(summary, args.termination_log)
    except c.ScriptError as e:
        return c.fail(summary, "snapshot", e, args.termination_log)


if __name__ == "__main__":
    sys.exit(main())
