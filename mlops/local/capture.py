"""SageMaker's data capture for the local endpoints: sampled requests and responses as JSON Lines in S3.

The records and keys are SageMaker's own ("Capture data" in the SageMaker developer guide), so tools that
read real captures read these: one JSON object per line with ``captureData.endpointInput`` /
``endpointOutput`` (``observedContentType``, ``mode``, ``data``, ``encoding``), ``eventMetadata``
(``eventId``, ``inferenceTime``) and ``eventVersion``, under
``<DestinationS3Uri>/<endpoint>/<variant>/yyyy/mm/dd/hh/<mm-ss-mmm>-<uuid>.jsonl``.

As on SageMaker, records are written off the request path: InvokeEndpoint only queues them, and a writer
thread puts each batch (one object per endpoint, variant and hour) as the endpoint's execution role.
"""

from __future__ import annotations

import base64
import json
import logging
import random
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .s3objects import s3_parts

log = logging.getLogger("mlops.local.capture")
FLUSH_SECONDS = 0.5  # SageMaker writes every few minutes; a local run reads its captures seconds later
DEFAULT_CSV = ("text/csv",)
DEFAULT_JSON = ("application/json",)


@dataclass(frozen=True)
class CaptureSettings:
    """An endpoint config's DataCaptureConfig, as the local endpoint applies it."""

    destination: str  # s3://bucket/prefix
    percentage: int
    capture_input: bool
    capture_output: bool
    csv_types: tuple[str, ...]
    json_types: tuple[str, ...]
    role_arn: str | None
    variant: str = "AllTraffic"

    @classmethod
    def from_config(
        cls, config: dict[str, Any] | None, role_arn: str | None, variant: str
    ) -> CaptureSettings | None:
        """None when capture is off (no config, or EnableCapture false)."""
        if not config or not config.get("EnableCapture", True) or not config.get("DestinationS3Uri"):
            return None
        modes = {option.get("CaptureMode") for option in config.get("CaptureOptions") or []}
        headers = config.get("CaptureContentTypeHeader") or {}
        return cls(
            destination=config["DestinationS3Uri"].rstrip("/"),
            percentage=int(config.get("InitialSamplingPercentage", 100)),
            capture_input="Input" in modes,
            capture_output="Output" in modes,
            csv_types=tuple(headers.get("CsvContentTypes") or DEFAULT_CSV),
            json_types=tuple(headers.get("JsonContentTypes") or DEFAULT_JSON),
            role_arn=role_arn,
            variant=variant,
        )

    def encoding_of(self, content_type: str) -> str:
        media = content_type.split(";", 1)[0].strip().lower()
        if media in (t.lower() for t in self.csv_types):
            return "CSV"
        if media in (t.lower() for t in self.json_types):
            return "JSON"
        return "BASE64"


def _part(settings: CaptureSettings, mode: str, content_type: str, data: bytes) -> dict[str, str]:
    encoding = settings.encoding_of(content_type)
    text = base64.b64encode(data).decode() if encoding == "BASE64" else data.decode("utf-8", "replace")
    return {"observedContentType": content_type, "mode": mode, "data": text, "encoding": encoding}


def capture_record(
    settings: CaptureSettings,
    request: tuple[str, bytes],
    response: tuple[str, bytes],
    when: datetime,
    event_id: str | None = None,
) -> dict[str, Any]:
    """One line of a capture file; ``request``/``response`` are (content type, body)."""
    data: dict[str, Any] = {}
    if settings.capture_input:
        data["endpointInput"] = _part(settings, "INPUT", *request)
    if settings.capture_output:
        data["endpointOutput"] = _part(settings, "OUTPUT", *response)
    return {
        "captureData": data,
        "eventMetadata": {
            "eventId": event_id or str(uuid.uuid4()),
            "inferenceTime": when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z",
        },
        "eventVersion": "0",
    }


def capture_key(settings: CaptureSettings, endpoint: str, when: datetime) -> tuple[str, str]:
    """(bucket, key) of a capture file written at `when`."""
    bucket, prefix = s3_parts(settings.destination)
    folder = "/".join(
        filter(None, (prefix.strip("/"), endpoint, settings.variant, when.strftime("%Y/%m/%d/%H")))
    )
    name = f"{when.strftime('%M-%S')}-{when.microsecond // 1000:03d}-{uuid.uuid4()}.jsonl"
    return bucket, f"{folder}/{name}"


class CaptureWriter:
    """Queues records per endpoint and writes them in batches from its own thread."""

    def __init__(self, s3: Callable[[], Any], acting_as: Callable[[str | None], Any]) -> None:
        self._s3, self._acting_as = s3, acting_as
        self._pending: dict[tuple[str, CaptureSettings], list[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self.written: list[str] = []  # s3:// URIs of the files written, in order
        self._thread: threading.Thread | None = None

    def offer(
        self,
        endpoint: str,
        settings: CaptureSettings,
        request: tuple[str, bytes],
        response: tuple[str, bytes],
    ) -> bool:
        """Queues the exchange if the sampling percentage picks it; returns whether it did."""
        if settings.percentage <= 0 or random.uniform(0, 100) >= settings.percentage:  # noqa: S311 - sampling
            return False
        record = capture_record(settings, request, response, datetime.now(UTC))
        with self._lock:
            self._pending.setdefault((endpoint, settings), []).append(record)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="data-capture", daemon=True)
                self._thread.start()
        return True

    def _run(self) -> None:
        while not self._stopped.wait(FLUSH_SECONDS):
            self.flush()

    def flush(self) -> list[str]:
        """Writes what is queued now; returns the URIs written. A refused write is logged (as SageMaker
        reports capture failures in CloudWatch, not to the caller) and its records are dropped."""
        with self._lock:
            pending, self._pending = self._pending, {}
        written = []
        for (endpoint, settings), records in pending.items():
            bucket, key = capture_key(settings, endpoint, datetime.now(UTC))
            body = "".join(json.dumps(record, separators=(",", ":")) + "\n" for record in records)
            try:
                with self._acting_as(settings.role_arn):
                    self._s3().put_object(Bucket=bucket, Key=key, Body=body.encode())
            except Exception as error:
                log.error(
                    "data capture for %s could not be written to s3://%s/%s: %s", endpoint, bucket, key, error
                )
                continue
            written.append(f"s3://{bucket}/{key}")
        with self._lock:
            self.written.extend(written)
        return written

    def stop(self) -> None:
        """Stops the writer; what is still queued is dropped (the local AWS is going away with it)."""
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
