"""The inference function's cold start: a fresh process imports the handler's module and serves one
prediction (Lambda's init phase plus the first invocation), beside a minimal boto3-only handler.

Both call the same stand-in for SageMaker Runtime on loopback (it answers every InvokeEndpoint with a label),
so the figure is the functions' own cost, not a model's. The two take turns, several runs each.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

REPO_ROOT = Path(__file__).resolve().parents[1]
HANDLERS = {
    "ours": REPO_ROOT / "functions" / "inference" / "app.py",
    "minimal": Path(__file__).resolve().with_name("minimal_handler.py"),
}
ENDPOINT = "mlops-iris-staging"
EVENT = {
    "resource": "/v1/invokeSagemakerAPI",
    "path": "/v1/invokeSagemakerAPI",
    "httpMethod": "POST",
    "headers": {"Content-Type": "application/json"},
    "multiValueHeaders": {"Content-Type": ["application/json"]},
    "queryStringParameters": None,
    "multiValueQueryStringParameters": None,
    "pathParameters": None,
    "stageVariables": None,
    "requestContext": {
        "resourcePath": "/v1/invokeSagemakerAPI",
        "httpMethod": "POST",
        "path": "/Prod/v1/invokeSagemakerAPI",
        "stage": "Prod",
        "requestId": "00000000-0000-0000-0000-000000000000",
        "identity": {"sourceIp": "203.0.113.7"},
    },
    "body": '{"data": "4.5,1.3,0.3,0.3"}',
    "isBase64Encoded": False,
}
# Runs in the fresh process: the clock starts once the interpreter is up, as Lambda's init phase does.
CHILD = """
import importlib.util, json, os, sys, time
started = time.perf_counter()
path = sys.argv[1]
sys.path.insert(0, os.path.dirname(path))
spec = importlib.util.spec_from_file_location("handler_module", path)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
imported = time.perf_counter()

class Context:
    function_name = "InferenceFunction"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:InferenceFunction"
    memory_limit_in_mb = 256
    aws_request_id = "00000000-0000-0000-0000-000000000001"
    log_group_name = log_stream_name = "local"
    def get_remaining_time_in_millis(self):
        return 30000

response = module.handler(json.loads(sys.argv[2]), Context())
done = time.perf_counter()
print(json.dumps({"import_s": imported - started, "first_call_s": done - imported, "response": response}))
"""


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args: object) -> None:
        pass


@Request.application
def _sagemaker_runtime(request: Request) -> Response:
    return Response(b"setosa\n", content_type="text/csv")


def _run_once(handler: Path, endpoint_url: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))}
    env.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": endpoint_url,
            "ENDPOINT_NAME": ENDPOINT,
            "POWERTOOLS_SERVICE_NAME": "mlops-iris",  # what the template sets for every function
            "POWERTOOLS_LOG_LEVEL": "WARNING",  # the figure is not about writing log lines
        }
    )
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(handler), json.dumps(EVENT)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{handler.name} failed: {done.stderr[-2000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    answer = json.loads(figures["response"]["body"])
    if (figures["response"]["statusCode"], answer) != (200, {"result": "setosa"}):
        raise RuntimeError(f"{handler.name} answered {figures['response']}")
    return {**figures, "process_s": wall}


def _spread(values: list[float]) -> dict[str, float]:
    return {"min": round(min(values), 3), "median": round(statistics.median(values), 3)}


def measure(runs: int, log: Callable[[str], None]) -> dict:
    """Per handler: seconds to import, to serve the first call, both (init), and the whole process."""
    server = make_server("127.0.0.1", 0, _sagemaker_runtime, threaded=True, request_handler=_Quiet)
    threading.Thread(target=server.serve_forever, name="sagemaker-runtime", daemon=True).start()
    endpoint_url = f"http://127.0.0.1:{server.server_address[1]}"
    raw: dict[str, list[dict]] = {kind: [] for kind in HANDLERS}
    try:
        for _ in range(runs):
            for kind, handler in HANDLERS.items():
                figures = _run_once(handler, endpoint_url)
                raw[kind].append(figures)
                log(
                    f"  cold start {kind:8} import {figures['import_s']:.3f} s  first call "
                    f"{figures['first_call_s']:.3f} s  process {figures['process_s']:.3f} s"
                )
    finally:
        server.shutdown()
        server.server_close()
    out: dict = {"runs": runs}
    for kind, results in raw.items():
        out[kind] = {
            "import_s": _spread([r["import_s"] for r in results]),
            "first_call_s": _spread([r["first_call_s"] for r in results]),
            "init_s": _spread([r["import_s"] + r["first_call_s"] for r in results]),
            "process_s": _spread([r["process_s"] for r in results]),
        }
    return out
