"""Helpers for the Lambda handler tests: load handler modules the way the local runtime loads them (by
file, under a unique name, with the function's folder on sys.path), Lambda contexts and API Gateway events.
A module of its own (not conftest) so every test directory can import it without name clashes."""

from __future__ import annotations

import base64
import importlib.util
import itertools
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
REGION = "us-east-1"
_loaded = itertools.count()


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
