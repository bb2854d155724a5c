"""S3 URIs and prefixes as the local SageMaker reads them."""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import urlparse


def s3_parts(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    if parsed.scheme != "s3":
        raise ValueError(f"{uri!r} is not an s3:// URI")
    return parsed.netloc, parsed.path.lstrip("/")


def object_keys(s3, bucket: str, prefix: str) -> list[str]:
    """Every object under an S3 prefix (an S3Prefix data source), folders left out."""
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", []) if not o["Key"].endswith("/")]


def download_prefix(s3, bucket: str, prefix: str, dest: Path) -> list[Path]:
    """Every object under the prefix into `dest`, at its path below the prefix; the files written."""
    written = []
    for key in object_keys(s3, bucket, prefix):
        target = dest / (Path(key).relative_to(prefix) if prefix and key != prefix else Path(key).name)
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("wb") as out:  # one stream per object: no transfer-manager threads to start
            shutil.copyfileobj(s3.get_object(Bucket=bucket, Key=key)["Body"], out, 2**20)
        written.append(target)
    return written
