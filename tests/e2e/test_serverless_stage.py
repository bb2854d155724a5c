"""A stage whose endpoint is serverless (EndpointType=serverless): releases create and update it, the curl
answers, no instance autoscaling is registered, and invocations beyond ServerlessMaxConcurrency are throttled."""

import json
import threading
import time

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

pytestmark = pytest.mark.slow

SETOSA = "4.5,1.3,0.3,0.3"


def test_a_serverless_stage_is_created_then_updated_and_answers_the_curl(rehearse):
    code, summary, stderr = rehearse(
        "--parameter", "EndpointType=serverless", "--releases", "2", "--timeout", "120"
    )
    assert (code, summary["status"]) == (0, "SUCCEEDED"), stderr[-3000:]
    assert summary["prediction"] == {"result": "setosa"}
    states = summary["states"]
    assert "CreateServerlessEndpointConfig" in states and "CreateEndpointConfig" not in states
    assert "UpdateEndpoint" in states  # the second release updates the serverless endpoint in place
    assert "ScaleWithTraffic" not in states and summary["autoscaling"] is None
    assert summary["endpoint_capacity"] == {
        "endpoint_type": "serverless",
        "memory_size_in_mb": 2048,
        "max_concurrency": 5,
    }
    assert summary["task_errors"] == []
    assert summary["iam"]["denied"] == []
    assert summary["left_over"] == []
    assert not [
        key for key in summary["artifacts"] if key.startswith("capture/")
    ]  # serverless captures nothing


def test_invocations_beyond_the_stages_max_concurrency_are_throttled(served_rehearsal, tmp_path):
    process, stderr_path = served_rehearsal(
        "--parameter", "EndpointType=serverless", "ServerlessMaxConcurrency=1"
    )
    summary = next((json.loads(line) for line in process.stdout if line.startswith("{")), None)
    assert summary is not None, stderr_path.read_text()[-3000:]
    assert summary["status"] == "SUCCEEDED" and summary["prediction"] == {"result": "setosa"}
    assert summary["endpoint_capacity"]["max_concurrency"] == 1

    runtime = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing").client(
        "sagemaker-runtime",
        endpoint_url=summary["aws_endpoint_url"],
        region_name="us-east-1",
        config=Config(
            retries={"total_max_attempts": 1}
        ),  # the SDKs retry a throttled call; this one shows it
    )

    def invoke(body: str) -> list:
        answer = runtime.invoke_endpoint(
            EndpointName=summary["endpoint_name"],
            ContentType="text/csv",
            Accept="application/json",
            Body=body,
        )
        return json.loads(answer["Body"].read())

    stop, throttled, answered = threading.Event(), [], []

    def keep_a_long_one_running():
        while not stop.is_set():
            try:
                answered.append(len(invoke("\n".join([SETOSA] * 20000))))
            except ClientError as error:
                throttled.append(error.response["Error"]["Code"])

    runner = threading.Thread(target=keep_a_long_one_running, daemon=True)
    runner.start()
    deadline = time.monotonic() + 60
    try:
        while not throttled and time.monotonic() < deadline:
            try:
                answered.append(len(invoke(SETOSA)))
            except ClientError as error:
                throttled.append(error.response["Error"]["Code"])
    finally:
        stop.set()
        runner.join(timeout=60)
    assert throttled and set(throttled) == {"ThrottlingException"}, answered
    assert answered and set(answered) <= {1, 20000}
    assert invoke(SETOSA) == ["setosa"]
