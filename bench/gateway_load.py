"""The local API under load: many clients for a while against `mlops rehearse --serve`, through the whole
path a user's curl takes (the local API gateway, the inference function, the local SageMaker Runtime and the
model server). Each client sends its next prediction as soon as its previous one is answered; a request
counts as unanswered when no 200 `{"result": "setosa"}` came back within `ANSWER_WITHIN_SECONDS`.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from .loadgen import run_load

REPO_ROOT = Path(__file__).resolve().parents[1]
ANSWER_WITHIN_SECONDS = 15.0
START_TIMEOUT_SECONDS = 240
BODY = b'{"data": "4.5,1.3,0.3,0.3"}'


def _serve(work_dir: Path) -> tuple[subprocess.Popen, dict]:
    """`mlops rehearse --serve` running, and its summary (read from its JSON line)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    command = [sys.executable, "-m", "mlops", "rehearse", "--serve", "--work-dir", str(work_dir)]
    log = (work_dir.parent / "rehearse-serve.log").open("w")
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    for line in process.stdout:
        if line.startswith("{"):
            summary = json.loads(line)
            if summary["status"] != "SUCCEEDED":
                _stop(process)
                raise RuntimeError(f"the rehearsal ended {summary['status']}: {summary.get('reason')}")
            return process, summary
        if time.monotonic() > deadline:
            break
    _stop(process)
    raise RuntimeError(f"`mlops rehearse --serve` printed no summary; see {log.name}")


def _stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _request(url: str, api_key: str) -> bytes:
    parts = urlsplit(url)
    head = (
        f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
        f"x-api-key: {api_key}\r\nContent-Length: {len(BODY)}\r\n\r\n"
    )
    return head.encode() + BODY


def measure(clients: int, seconds: float, log: Callable[[str], None]) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-gateway-") as tmp:
        work_dir = Path(tmp) / "work"
        process, summary = _serve(work_dir)
        try:
            url = summary["api_url"] + "/v1/invokeSagemakerAPI"
            api_key = (work_dir / "api-key").read_text()
            # loopback, the server this function started
            headers = {"Content-Type": "application/json", "x-api-key": api_key}
            probe = urllib.request.Request(url, BODY, headers)  # noqa: S310
            with urllib.request.urlopen(probe, timeout=30) as answer:  # noqa: S310
                expect = answer.read()
            if json.loads(expect) != {"result": "setosa"}:
                raise RuntimeError(f"the local API answered {expect[:200]!r}")
            result = run_load(
                urlsplit(url).port,
                BODY,
                clients,
                10**7,
                seconds,
                expect=expect,
                grace=ANSWER_WITHIN_SECONDS,
                request=_request(url, api_key),
            )
        finally:
            _stop(process)
    late = sum(1 for latency in result.latencies if latency > ANSWER_WITHIN_SECONDS)
    figures = {
        "clients": clients,
        "seconds": seconds,
        "answer_within_seconds": ANSWER_WITHIN_SECONDS,
        "requests": result.requests,
        "requests_per_second": round(result.requests_per_second, 1),
        "p50_ms": round(result.percentile_ms(50), 1),
        "p99_ms": round(result.percentile_ms(99), 1),
        "max_ms": round(max(result.latencies, default=float("nan")) * 1000, 1),
        "median_ms": round(statistics.median(result.latencies) * 1000, 1) if result.latencies else None,
        "failed_or_unanswered": result.errors,
        "answered_late": late,
        "unanswered": result.errors + late,
    }
    log(
        f"  local API, {clients} clients for {seconds:g} s: {figures['requests']} answered "
        f"({figures['requests_per_second']:.0f}/s), p50 {figures['p50_ms']:.0f} ms, p99 {figures['p99_ms']:.0f} ms, "
        f"max {figures['max_ms']:.0f} ms, {figures['unanswered']} unanswered within {ANSWER_WITHIN_SECONDS:g} s"
    )
    return figures
