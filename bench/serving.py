"""Single-row POST /invocations: req/s and latency at several client counts, and the in-process limits."""

from __future__ import annotations

import io
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from mlops.local.runners import ModelServer

from .data import SAMPLE_LABEL, SAMPLE_ROW
from .loadgen import run_load


def _spread(values: list[float], digits: int) -> dict[str, float] | None:
    values = [v for v in values if v == v]  # a run without an answer has no percentile (NaN)
    if not values:
        return None
    return {"min": round(min(values), digits), "median": round(statistics.median(values), digits)}


def measure(
    servers: dict[str, ModelServer],
    *,
    levels: tuple[int, ...],
    runs: int,
    max_requests: int,
    max_seconds: float,
    log: Callable[[str], None],
) -> dict[str, dict]:
    """Per server and client count: req/s, p50 and p99 (min/median over `runs`; servers take turns)."""
    raw: dict[str, dict[int, list]] = {kind: {level: [] for level in levels} for kind in servers}
    for level in levels:
        for _ in range(runs):
            for kind, server in servers.items():
                expect = SAMPLE_LABEL if kind == "ours" else SAMPLE_LABEL + b"\n"
                result = run_load(server.port, SAMPLE_ROW, level, max_requests, max_seconds, expect=expect)
                raw[kind][level].append(result)
                log(
                    f"  serving {kind:8} {level:>2} clients  {result.requests_per_second:7.0f} req/s  "
                    f"p50 {result.percentile_ms(50):6.2f} ms  p99 {result.percentile_ms(99):6.2f} ms"
                    f"  ({result.requests} requests, {result.errors} errors)"
                )
    return summarise(raw)


def summarise(raw: dict, errors_key: str = "errors") -> dict:
    """{kind: {level: [load results of each run]}} -> min/median figures per kind and level."""
    return {
        kind: {
            str(level): {
                "requests_per_second": _spread([r.requests_per_second for r in results], 0),
                "p50_ms": _spread([r.percentile_ms(50) for r in results], 2),
                "p99_ms": _spread([r.percentile_ms(99) for r in results], 2),
                "requests": sum(r.requests for r in results),
                errors_key: sum(r.errors for r in results),
                "runs": len(results),
            }
            for level, results in by_level.items()
        }
        for kind, by_level in raw.items()
    }


def _loop(call: Callable[[], object], seconds: float, runs: int) -> dict:
    """Calls per second and per-call latency of `call` in a tight loop, `runs` times for `seconds` each."""
    rates, p50s, p99s = [], [], []
    for _ in range(runs):
        samples: list[float] = []
        clock = time.perf_counter
        end = clock() + seconds
        while True:
            started = clock()
            call()
            finished = clock()
            samples.append(finished - started)
            if finished > end:
                break
        samples.sort()
        rates.append(len(samples) / sum(samples))
        p50s.append(samples[len(samples) // 2] * 1e6)
        p99s.append(samples[min(len(samples) - 1, int(len(samples) * 0.99))] * 1e6)
    return {
        "calls_per_second": _spread(rates, 0),
        "p50_us": _spread(p50s, 1),
        "p99_us": _spread(p99s, 1),
        "runs": runs,
    }


def in_process(model_dir: Path, *, seconds: float, runs: int, log: Callable[[str], None]) -> dict[str, dict]:
    """One core, no HTTP: scikit-learn's predict on one row (what the baseline calls), our single-row
    predict, and our whole /invocations handler (parse, predict, answer) called as WSGI."""
    import numpy as np
    from mlmodel.model import TreeModel
    from mlmodel.serve import create_app

    estimator = TreeModel.load_estimator(model_dir).estimator
    model = TreeModel.load(model_dir)
    row = [float(v) for v in SAMPLE_ROW.split(b",")]
    x = np.array([row])
    app = create_app(model_dir).wsgi_app

    def handler() -> None:
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/invocations",
            "CONTENT_TYPE": "text/csv",
            "CONTENT_LENGTH": str(len(SAMPLE_ROW)),
            "wsgi.input": io.BytesIO(SAMPLE_ROW),
        }
        body = b"".join(app(environ, lambda status, headers: None))
        if body != SAMPLE_LABEL:
            raise AssertionError(f"the handler answered {body!r}")

    limits = {
        "sklearn_predict": _loop(lambda: estimator.predict(x), seconds, runs),
        "ours_predict_one": _loop(lambda: model.predict_one(row), seconds, runs),
        "ours_wsgi_handler": _loop(handler, seconds, runs),
    }
    for name, figures in limits.items():
        log(
            f"  in-process {name:18} {figures['calls_per_second']['median']:>10.0f} calls/s  "
            f"p50 {figures['p50_us']['median']:7.1f} us  p99 {figures['p99_us']['median']:7.1f} us"
        )
    return limits
