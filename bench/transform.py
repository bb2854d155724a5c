"""Batch transform rows/s through the local SageMaker's transform driver, our server vs the baseline.

The input is one S3 object in moto's S3 (served in this process, as in the rehearsal); the driver splits it
into lines, batches them (SingleRecord: one line a request; MultiRecord: up to MaxPayloadInMB), posts the
batches to the model server MaxConcurrentTransforms at a time and writes the `.out` object. The timer runs
from the first S3 read to the last S3 write; the server is already up.
"""

from __future__ import annotations

import hashlib
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import boto3
from moto.server import ThreadedMotoServer

from mlops.local.runners import ModelServer
from mlops.local.transform_bench import local_sagemaker, run_transform, transform_job

BUCKET = "bench-transform"
REGION = "us-east-1"
MAX_PAYLOAD_MB = 6


class S3:
    """moto's S3 on a loopback port, in this process."""

    def __enter__(self) -> S3:
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        self.endpoint_url = f"http://127.0.0.1:{self.server.get_host_and_port()[1]}"
        self.client = boto3.client("s3", endpoint_url=self.endpoint_url, region_name=REGION)
        self.client.create_bucket(Bucket=BUCKET)
        return self

    def __exit__(self, *exc) -> None:
        self.server.stop()

    def put(self, key: str, body: bytes) -> str:
        self.client.put_object(Bucket=BUCKET, Key=key, Body=body)
        return f"s3://{BUCKET}/{key}"

    def read_prefix(self, prefix: str) -> bytes:
        listing = self.client.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
        return b"".join(
            self.client.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read()
            for o in sorted(listing, key=lambda o: o["Key"])
        )


def summary(values: list[float]) -> dict[str, float]:
    return {"min": round(min(values), 1), "median": round(statistics.median(values), 1), "runs": len(values)}


def measure(
    s3: S3,
    servers: dict[str, ModelServer],
    work_dir: Path,
    *,
    strategy: str,
    rows: bytes,
    runs: int,
    log: Callable[[str], None],
) -> dict[str, dict]:
    """rows/s per server (min/median over `runs`, the servers taking turns), and each output's digest."""
    count = rows.count(b"\n")
    source = s3.put(f"input/{strategy}/{count}/rows.csv", rows)
    local = local_sagemaker(s3.endpoint_url, work_dir)
    rates: dict[str, list[float]] = {kind: [] for kind in servers}
    digests: dict[str, str] = {}
    for run in range(runs):
        for kind, server in servers.items():
            prefix = f"output/{strategy}/{count}/{kind}/{run}"
            job = transform_job(
                source, f"s3://{BUCKET}/{prefix}", strategy=strategy, max_payload_mb=MAX_PAYLOAD_MB
            )
            started = time.perf_counter()
            run_transform(local, server, job)
            seconds = time.perf_counter() - started
            output = s3.read_prefix(prefix)
            answered = output.count(b"\n")
            if answered != count:
                raise RuntimeError(f"{kind} {strategy}: {count} rows in, {answered} out")
            digests.setdefault(kind, hashlib.sha256(output).hexdigest())
            rates[kind].append(count / seconds)
            log(
                f"  transform {strategy:12} {kind:8} {count:>9} rows  {seconds:7.2f} s  "
                f"{count / seconds:>10.0f} rows/s"
            )
    return {
        kind: {"rows": count, **summary(values), "output_sha256": digests[kind]}
        for kind, values in rates.items()
    }
