"""Fixtures for the Lambda handlers: fake credentials, moto, and handler modules loaded the way the
local runtime loads them (by file, under a unique name, with the function's folder on sys.path)."""

from __future__ import annotations

import base64
import gc
import importlib.util
import itertools
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from moto import mock_aws

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
REGION = "us-east-1"
_loaded = itertools.count()
# Every test sets the same fake credentials, so one boto3 session can serve them all: re-reading the
# service models for each test costs more than the tests themselves.
KEEP_BOTO3_SESSION: dict = {"core": {"reset_boto3_session": False}}
_heap_frozen = False


def pytest_runtest_logfinish(nodeid: str, location: tuple) -> None:
    """After the first test has imported boto3, botocore's models and moto, take those long-lived objects
    out of the cyclic collector's sight: full collections over them dominated the suite's run time."""
    global _heap_frozen
    if not _heap_frozen:
        gc.collect()
        gc.freeze()
        _heap_frozen = True


def load_function(relpath: str) -> ModuleType:
    """Imports functions/<relpath> fresh, as the Lambda runtime would in a new container."""
    path = FUNCTIONS / relpath
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    name = f"lambda_{path.parent.name}_{path.stem}_{next(_loaded)}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _forget_loaded_functions():
    """Each test gets fresh handler modules; old ones (and the clients they hold) are released."""
    yield
    for name in [name for name in sys.modules if name.startswith("lambda_")]:
        del sys.modules[name]


@dataclass
class FakeLambdaContext:
    function_name: str = "test-function"
    function_version: str = "$LATEST"
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:test-function"
    memory_limit_in_mb: int = 256
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"
    log_group_name: str = "/aws/lambda/test-function"
    log_stream_name: str = "stream"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and region before any client exists, so nothing can reach a real account."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SECURITY_TOKEN", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "mlops-iris")
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "INFO")


@pytest.fixture
def aws(aws_credentials: None):
    with mock_aws(config=KEEP_BOTO3_SESSION):
        yield


@pytest.fixture
def aws_with_sfn_engine(aws_credentials: None):
    """moto with its Step Functions interpreter on, so task tokens belong to real waiting executions."""
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}, **KEEP_BOTO3_SESSION}):
        yield


def rest_event(
    method: str,
    path: str,
    *,
    query: dict[str, str] | None = None,
    body: str | bytes | None = None,
    headers: dict[str, str] | None = None,
    base64_body: bool = False,
    source_ip: str = "203.0.113.7",
) -> dict[str, Any]:
    """An API Gateway REST (v1 proxy) event, as the Lambda integration sends it."""
    if isinstance(body, bytes):
        body, base64_body = base64.b64encode(body).decode("ascii"), True
    headers = headers or {}
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {key: [value] for key, value in headers.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {key: [value] for key, value in query.items()} if query else None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": path,
            "httpMethod": method,
            "path": f"/Prod{path}",
            "stage": "Prod",
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "accountId": "123456789012",
            "apiId": "abc123",
            "identity": {"sourceIp": source_ip, "userAgent": "pytest"},
        },
        "body": body,
        "isBase64Encoded": base64_body,
    }
