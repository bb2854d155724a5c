"""Data capture of the local endpoints: SageMaker's documented record format, keys, sampling and batching."""

from __future__ import annotations

import base64
import contextlib
import json
import re
import uuid
from datetime import UTC, datetime

import boto3
import pytest

from mlops.local.capture import CaptureSettings, CaptureWriter, capture_key, capture_record

CONFIG = {
    "EnableCapture": True,
    "InitialSamplingPercentage": 100,
    "DestinationS3Uri": "s3://artifacts/capture",
    "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
    "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"], "JsonContentTypes": ["application/json"]},
}
ROLE = "arn:aws:iam::123456789012:role/sagemaker"
# "Capture data" in the SageMaker developer guide: <prefix>/<endpoint>/<variant>/yyyy/mm/dd/hh/<file>.jsonl
KEY = re.compile(r"^capture/ep/AllTraffic/\d{4}/\d{2}/\d{2}/\d{2}/\d{2}-\d{2}-\d{3}-[0-9a-f-]{36}\.jsonl$")
INFERENCE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def settings(**changes) -> CaptureSettings:
    return CaptureSettings.from_config({**CONFIG, **changes}, ROLE, "AllTraffic")


def assert_sagemaker_capture_line(record: dict) -> None:
    """The fields SageMaker documents for each line of a capture file."""
    assert set(record) >= {"captureData", "eventMetadata", "eventVersion"}
    assert record["eventVersion"] == "0"
    for part, mode in (("endpointInput", "INPUT"), ("endpointOutput", "OUTPUT")):
        assert set(record["captureData"][part]) == {"observedContentType", "mode", "data", "encoding"}
        assert record["captureData"][part]["mode"] == mode
        assert record["captureData"][part]["encoding"] in {"CSV", "JSON", "BASE64"}
    uuid.UUID(record["eventMetadata"]["eventId"])
    assert INFERENCE_TIME.match(record["eventMetadata"]["inferenceTime"])


def test_a_csv_exchange_is_recorded_as_sagemaker_documents_it():
    when = datetime(2026, 12, 1, 9, 5, 7, 123456, tzinfo=UTC)
    record = capture_record(
        settings(), ("text/csv", b"4.5,1.3,0.3,0.3"), ("text/csv; charset=utf-8", b"setosa"), when
    )
    assert_sagemaker_capture_line(record)
    assert record["captureData"]["endpointInput"]["data"] == "4.5,1.3,0.3,0.3"
    assert record["captureData"]["endpointInput"]["encoding"] == "CSV"
    assert record["captureData"]["endpointOutput"]["observedContentType"] == "text/csv; charset=utf-8"
    assert record["captureData"]["endpointOutput"]["encoding"] == "CSV"
    assert record["eventMetadata"]["inferenceTime"] == "2026-12-01T09:05:07.123Z"


def test_json_stays_text_and_other_types_are_base64():
    record = capture_record(
        settings(), ("application/json", b'{"a": 1}'), ("application/x-npy", b"\x93NUMPY"), datetime.now(UTC)
    )
    assert record["captureData"]["endpointInput"]["encoding"] == "JSON"
    assert record["captureData"]["endpointOutput"]["encoding"] == "BASE64"
    assert base64.b64decode(record["captureData"]["endpointOutput"]["data"]) == b"\x93NUMPY"


def test_only_the_asked_modes_are_captured():
    record = capture_record(
        settings(CaptureOptions=[{"CaptureMode": "Input"}]),
        ("text/csv", b"1"),
        ("text/csv", b"a"),
        datetime.now(UTC),
    )
    assert list(record["captureData"]) == ["endpointInput"]


def test_keys_follow_endpoint_variant_and_hour():
    bucket, key = capture_key(settings(), "ep", datetime(2026, 12, 1, 9, 5, 7, 123000, tzinfo=UTC))
    assert bucket == "artifacts"
    assert KEY.match(key) and key.startswith("capture/ep/AllTraffic/2026/12/01/09/05-07-123-")


def test_capture_off_or_without_destination_is_none():
    assert CaptureSettings.from_config(None, ROLE, "AllTraffic") is None
    assert CaptureSettings.from_config({**CONFIG, "EnableCapture": False}, ROLE, "AllTraffic") is None
    assert CaptureSettings.from_config({}, ROLE, "AllTraffic") is None  # moto's empty DataCaptureConfig


@pytest.fixture
def bucket(aws):
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="artifacts")
    return s3


def written_lines(s3) -> list[tuple[str, dict]]:
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="artifacts").get("Contents", [])]
    return [
        (key, json.loads(line))
        for key in keys
        for line in s3.get_object(Bucket="artifacts", Key=key)["Body"].read().decode().splitlines()
    ]


def test_queued_exchanges_are_written_as_one_jsonl_file_per_batch(bucket):
    acted_as = []

    @contextlib.contextmanager
    def acting_as(role):
        acted_as.append(role)
        yield

    writer = CaptureWriter(lambda: bucket, acting_as)
    for row in ("1,2,3,4", "5,6,7,8"):
        assert writer.offer("ep", settings(), ("text/csv", row.encode()), ("text/csv", b"setosa"))
    written = writer.flush()
    writer.stop()
    assert len(written) == 1 and written == writer.written
    lines = written_lines(bucket)
    assert [record["captureData"]["endpointInput"]["data"] for _, record in lines] == ["1,2,3,4", "5,6,7,8"]
    assert all(KEY.match(key) for key, _ in lines)
    for _, record in lines:
        assert_sagemaker_capture_line(record)
    assert acted_as == [ROLE]  # written as the endpoint's execution role


def test_sampling_zero_captures_nothing(bucket):
    writer = CaptureWriter(lambda: bucket, lambda role: contextlib.nullcontext())
    assert not writer.offer(
        "ep", settings(InitialSamplingPercentage=0), ("text/csv", b"1"), ("text/csv", b"a")
    )
    assert writer.flush() == []
