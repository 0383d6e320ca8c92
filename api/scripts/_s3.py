"""Uploads to S3 (or any S3-compatible store) for the scripts that send a file off the
cluster: the final snapshot's archive and the nightly pg_dump. boto3 ships in the image
(api/requirements.txt). S3_ENDPOINT_URL names a non-AWS endpoint; credentials come from
the usual AWS_* variables or the pod's web identity, never from the command line.

An upload carries the file's SHA-256 as object metadata and is read back (size and
checksum metadata) before it counts, so a truncated or foreign object is never reported
as archived. Errors are reported by class only: their messages can hold URLs.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import _common as c
import boto3


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def split_url(dest: str, name: str) -> tuple[str, str]:
    """(bucket, key) of s3://bucket/key; a key that is empty or ends with "/" gets `name`."""
    bucket, _, key = dest.removeprefix("s3://").partition("/")
    if not dest.startswith("s3://") or not bucket:
        raise c.ScriptError(c.EXIT_USAGE, f"{dest!r}: an s3://bucket/key URL")
    if not key or key.endswith("/"):
        key += name
    return bucket, key


def client() -> Any:
    return boto3.client("s3", endpoint_url=os.environ.get("S3_ENDPOINT_URL") or None)


def upload(source: Path, dest: str, checksum: str) -> dict[str, Any]:
    """Upload `source` to the s3:// URL `dest` and confirm the stored object."""
    bucket, key = split_url(dest, source.name)
    try:
        s3 = client()
        s3.upload_file(str(source), bucket, key, ExtraArgs={"Metadata": {"sha256": checksum}})
        head = s3.head_object(Bucket=bucket, Key=key)
    except Exception as e:  # noqa: BLE001 - report the class only: messages may hold URLs
        raise c.ScriptError(c.EXIT_UNREACHABLE, f"S3 upload failed ({type(e).__name__})") from None
    if head.get("ContentLength") != source.stat().st_size or \
            head.get("Metadata", {}).get("sha256") != checksum:
        raise c.ScriptError(c.EXIT_FAILED, f"s3://{bucket}/{key} does not match the source")
    return {"dest": f"s3://{bucket}/{key}", "mode": "s3"}
