"""`python -m bench.run [--quick]`: every benchmark figure, printed as one JSON object on stdout.

Progress goes to stderr. The JSON is also written to `--out` (default bench/results.json, or
bench/results-quick.json with `--quick`), and a full run rewrites the table between the
`<!-- bench:start -->` and `<!-- bench:end -->` markers of docs/benchmarks.md unless `--no-readme`.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
BENCH_PAGE = "docs/benchmarks.md"  # the page whose bench markers hold the table


@dataclass(frozen=True)
class Sizes:
    multirecord_rows: int
    singlerecord_rows: int
    transform_runs: int
    serving_runs: int
    serving_max_requests: int
    serving_max_seconds: float
    in_process_seconds: float
    rehearsals: int
    image_rebuilds: int
    slow_client_seconds: float
    slow_client_runs: int
    gateway_clients: int
    gateway_seconds: float
    cold_start_runs: int


FULL = Sizes(1_000_000, 3_000, 3, 3, 10_000, 3.0, 1.0, 3, 3, 3.0, 3, 200, 20.0, 7)
QUICK = Sizes(50_000, 200, 2, 2, 1_000, 0.3, 0.1, 1, 1, 1.0, 1, 200, 2.0, 2)
LEVELS = (1, 16, 64)
SLOW_LEVELS = (2, 16)


_STARTED = time.perf_counter()


def log(message: str) -> None:
    print(f"[{time.perf_counter() - _STARTED:6.1f} s] {message}", file=sys.stderr, flush=True)


def _fake_aws() -> None:
    # moto's S3 in this process; no client may find real credentials.
    for key in [k for k in os.environ if k.startswith("AWS_")]:
        del os.environ[key]
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    )


def run(sizes: Sizes, mode: str, skip: set[str]) -> dict:
    from mlmodel.contract import available_cpus

    from mlops.local.stack import quiet_logs

    from . import (
        cold_start,
        data,
        gateway_load,
        image,
        rehearsal,
        report,
        servers,
        serving,
        slow_clients,
        transform,
    )

    started = time.perf_counter()
    results: dict = {
        "mode": mode,
        "machine": {
            "cpus": available_cpus(),
            "python": platform.python_version(),
            "date": datetime.date.today().isoformat(),
        },
        "settings": {
            "levels": list(LEVELS),
            **{k: v for k, v in sizes.__dict__.items()},
        },
    }
    quiet_logs()
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        base = Path(tmp)
        log("==> training the model with container/bin/train (iris, default hyperparameters)")
        model_dir = data.train_model(base / "ml")
        started_servers = servers.start_all(base / "ml", base, ("ours", "baseline", "previous"))
        compared = {kind: started_servers[kind] for kind in ("ours", "baseline")}
        try:
            log("==> batch transform (local SageMaker driver, moto S3)")
            with transform.S3() as s3:
                multi = transform.measure(
                    s3,
                    compared,
                    base / "transform",
                    strategy="MultiRecord",
                    rows=data.iris_like_rows(sizes.multirecord_rows),
                    runs=sizes.transform_runs,
                    log=log,
                )
                single = transform.measure(
                    s3,
                    compared,
                    base / "transform",
                    strategy="SingleRecord",
                    rows=data.iris_like_rows(sizes.singlerecord_rows),
                    runs=sizes.transform_runs,
                    log=log,
                )
            results["transform"] = {
                "MultiRecord": {**multi, "max_payload_mb": transform.MAX_PAYLOAD_MB},
                "SingleRecord": {
                    **single,
                    "note": f"measured on {sizes.singlerecord_rows:,} rows: one HTTP request per row is too "
                    "slow to run over a million rows; rows/s does not depend on the row count",
                },
                "outputs_identical": multi["ours"]["output_sha256"] == multi["baseline"]["output_sha256"]
                and single["ours"]["output_sha256"] == single["baseline"]["output_sha256"],
                "max_concurrent_transforms": "unset (the driver's default, as in the pipeline)",
            }
            log("==> serving: single-row POST /invocations over loopback")
            results["serving"] = serving.measure(
                compared,
                levels=LEVELS,
                runs=sizes.serving_runs,
                max_requests=sizes.serving_max_requests,
                max_seconds=sizes.serving_max_seconds,
                log=log,
            )
            log("==> serving with slow clients open: ours beside our previous setup (sync workers)")
            results["slow_clients"] = slow_clients.measure(
                {kind: started_servers[kind] for kind in ("ours", "previous")},
                slow_levels=SLOW_LEVELS,
                seconds=sizes.slow_client_seconds,
                runs=sizes.slow_client_runs,
                log=log,
            )
        finally:
            for server in started_servers.values():
                server.stop()
        results["serving"]["in_process"] = serving.in_process(
            model_dir, seconds=sizes.in_process_seconds, runs=sizes.serving_runs, log=log
        )
    log("==> inference function cold start: fresh process, import + first call, beside a boto3-only handler")
    results["cold_start"] = cold_start.measure(sizes.cold_start_runs, log)
    log(
        f"==> local API: {sizes.gateway_clients} clients for {sizes.gateway_seconds:g} s (mlops rehearse --serve)"
    )
    results["gateway_load"] = gateway_load.measure(sizes.gateway_clients, sizes.gateway_seconds, log)
    log("==> rehearsal: python -m mlops rehearse")
    results["rehearsal"] = rehearsal.measure(sizes.rehearsals, log)
    log("==> model image")
    if "image" in skip:
        results["image"] = {"skipped": "--skip image"}
    else:
        results["image"] = image.measure(sizes.image_rebuilds, mode == "quick", log)
    results["ratios"] = report.ratios(results)
    results["goals"] = report.goals(results)
    results["bench_seconds"] = round(time.perf_counter() - started, 1)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one rehearsal: under a minute")
    parser.add_argument(
        "--out",
        help="where the JSON goes (default bench/results.json; with --quick, bench/results-quick.json)",
    )
    parser.add_argument(
        "--no-readme",
        action="store_true",
        help="leave the table in docs/benchmarks.md alone (--quick always does)",
    )
    parser.add_argument("--skip", action="append", default=[], choices=["image"], help="leave a figure out")
    args = parser.parse_args(argv)
    # Before anything imports the model server, whose app factory logs to stdout when nothing is set up.
    logging.basicConfig(
        stream=sys.stderr, level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    _fake_aws()
    from . import report

    mode = "quick" if args.quick else "full"
    results = run(QUICK if args.quick else FULL, mode, set(args.skip))
    text = json.dumps(results, indent=2)
    # Quick figures never replace the full run's: its sizes are too small for the ratios to mean much.
    out = Path(args.out or REPO_ROOT / "bench" / ("results-quick.json" if args.quick else "results.json"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")
    if not (args.no_readme or args.quick):
        table = report.table(results)
        if report.rewrite_block(REPO_ROOT / BENCH_PAGE, table):
            log(f"==> table written to {BENCH_PAGE}")
    if args.quick:
        log("  goals are judged on the full run; --quick only shows that every figure is produced:")
    for goal in results["goals"]:
        verdict = ("pass" if goal["pass"] else "MISS") if not args.quick else "----"
        log(f"  {verdict}  {goal['goal']}: {goal['measured']} ({goal['target']})")
    print(json.dumps(results), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
