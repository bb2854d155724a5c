"""The local batch transform's driver: S3 objects in, payloads to a running model server, ``.out`` objects out
(SplitType Line, BatchStrategy, MaxPayloadInMB, InputFilter/JoinSource/OutputFilter as SageMaker applies them).
"""

from __future__ import annotations

import http.client
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import batch
from .runners import ModelServer
from .s3objects import object_keys, s3_parts

DEFAULT_CONCURRENCY = 2  # neither the job nor the container says (SageMaker would send one at a time)
INVOCATION_TIMEOUT_SECONDS = 60.0


def advertised_concurrency(server: ModelServer) -> int | None:
    """MaxConcurrentTransforms from the container's GET /execution-parameters, as SageMaker asks it when the
    job leaves the setting out; None when the container does not answer it."""
    try:
        status, _, body = server.request("GET", "/execution-parameters", timeout=5.0)
        value = int(json.loads(body)["MaxConcurrentTransforms"]) if status == 200 else 0
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return value if value > 0 else None


class _ThreadConnections:
    """One kept-alive HTTP connection to the model server per driver thread, as SageMaker keeps its
    connections to the container: no connect and close around every payload. A server that closes after
    each answer gets a new connection for the next (http.client reopens it)."""

    def __init__(self, port: int):
        self.port = port
        self.local = threading.local()
        self.opened: list[http.client.HTTPConnection] = []
        self.lock = threading.Lock()

    def __enter__(self) -> _ThreadConnections:
        return self

    def __exit__(self, *exc) -> None:
        with self.lock:
            for conn in self.opened:
                conn.close()

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=INVOCATION_TIMEOUT_SECONDS)
            self.local.conn = conn
            with self.lock:
                self.opened.append(conn)
        return conn

    def post(self, path: str, body: bytes | memoryview, headers: dict[str, str]) -> tuple[int, bytes]:
        conn = self._connection()
        reused = conn.sock is not None
        try:
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            return response.status, response.read()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            conn.close()
            if not reused:
                raise
        # The server dropped a kept-alive connection between payloads: send again on a new one (scoring is
        # idempotent).
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()


def run_transform(job, server: ModelServer, s3) -> None:
    """Scores every object under the job's input prefix with ``server`` and writes the ``.out`` objects;
    raises TransformInputError as the job would fail."""
    source = job.transform_input["DataSource"]["S3DataSource"]
    if source.get("S3DataType", "S3Prefix") != "S3Prefix":
        raise batch.TransformInputError("only S3DataType S3Prefix is supported locally")
    content_type = job.transform_input.get("ContentType", "text/csv")
    accept = job.transform_output.get("Accept", "text/csv")
    processing = job.data_processing or {}
    input_filter = batch.CsvFilter.parse(processing.get("InputFilter"))
    output_filter = batch.CsvFilter.parse(processing.get("OutputFilter"))
    join_source = processing.get("JoinSource")
    strategy = job.batch_strategy or "MultiRecord"
    max_payload = int(job.max_payload_in_mb or 6) * 1024 * 1024
    workers = int(job.max_concurrent_transforms or 0) or advertised_concurrency(server) or DEFAULT_CONCURRENCY
    in_bucket, in_prefix = s3_parts(source["S3Uri"])
    out_bucket, out_prefix = s3_parts(job.transform_output["S3OutputPath"])
    keys = object_keys(s3, in_bucket, in_prefix)
    if not keys:
        raise batch.TransformInputError(f"no input objects under {source['S3Uri']}")
    headers = {"Content-Type": content_type, "Accept": accept}
    connections = _ThreadConnections(server.port)

    def post(key: str, first: int, count: int, body: bytes | memoryview) -> bytes:
        status, payload = connections.post("/invocations", body, headers)
        if status != 200:
            detail = payload.decode(errors="replace").strip()
            raise batch.TransformInputError(
                f"object s3://{in_bucket}/{key}, lines {first + 1}-{first + count}: "
                f"the model server answered {status}: {detail[:500]}"
            )
        return payload

    def score(key: str, first: int, records: list[bytes]) -> bytes:
        body = b"\n".join(input_filter.apply(r) for r in records) + b"\n"
        outputs = batch.split_lines(post(key, first, len(records), body))
        if len(outputs) != len(records):
            raise batch.TransformInputError(
                f"object s3://{in_bucket}/{key}: {len(records)} records in, {len(outputs)} out"
            )
        return b"\n".join(batch.join_outputs(records, outputs, join_source, output_filter))

    def score_chunk(key: str, first: int, count: int, chunk: memoryview | bytes) -> bytes:
        # Whole lines passed through untouched: no per-record work in this process.
        payload = post(key, first, count, chunk).rstrip(b"\n")
        answered = batch.count_lines(payload) + 1 if payload else 0
        if answered != count:
            raise batch.TransformInputError(
                f"object s3://{in_bucket}/{key}: {count} records in, {answered} out"
            )
        return payload

    passthrough = input_filter.selects_all and output_filter.selects_all and join_source != "Input"
    with connections, ThreadPoolExecutor(max_workers=workers) as pool:
        for key in keys:
            data = s3.get_object(Bucket=in_bucket, Key=key)["Body"].read()
            chunks = None
            if passthrough and strategy == "MultiRecord":
                target = batch.payload_bytes(len(data), max_payload, workers)
                chunks = batch.plain_line_chunks(data, max_payload, target)
            if chunks is not None:
                futures = [pool.submit(score_chunk, key, *chunk) for chunk in chunks]
            else:
                futures = [
                    pool.submit(score, key, first, chunk)
                    for first, chunk in batch.batches(batch.split_lines(data), strategy, max_payload)
                ]
            name = key[len(in_prefix) :].lstrip("/") if in_prefix and key != in_prefix else Path(key).name
            out_key = f"{out_prefix.rstrip('/')}/{name}.out".lstrip("/")
            outputs = []
            for future in futures:
                outputs += (future.result(), b"\n")
            s3.put_object(Bucket=out_bucket, Key=out_key, Body=b"".join(outputs))
