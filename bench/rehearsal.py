"""The rehearsal's wall time by stage: `python -m mlops rehearse` run as a user runs it, several times."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
RELEASE_TIMEOUT_SECONDS = 180  # a release takes about 15 s here; a hung one must not hang the benchmark


def _spread(values: list[float]) -> dict[str, float]:
    return {"min": round(min(values), 3), "median": round(statistics.median(values), 3)}


class RehearsalFailed(RuntimeError):
    pass


def run_once(work_dir: Path, timeout: float = RELEASE_TIMEOUT_SECONDS) -> tuple[dict, float]:
    """The rehearsal's final JSON line and the whole command's wall time (start-up and shutdown included)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    command = [
        sys.executable,
        "-m",
        "mlops",
        "rehearse",
        "--work-dir",
        str(work_dir),
        "--timeout",
        str(timeout),
    ]
    started = time.perf_counter()
    try:
        done = subprocess.run(
            command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout + 60, check=False
        )
    except subprocess.TimeoutExpired as expired:
        tail = (expired.stderr or b"")[-1500:]
        tail = tail.decode(errors="replace") if isinstance(tail, bytes) else tail
        raise RehearsalFailed(f"the rehearsal did not finish in {timeout + 60:.0f} s: {tail}") from None
    wall = time.perf_counter() - started
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise RehearsalFailed(f"the rehearsal exited with {done.returncode}: {done.stderr[-1500:]}")
    return json.loads(lines[-1]), wall


def measure(runs: int, log: Callable[[str], None]) -> dict:
    summaries, walls = [], []
    with tempfile.TemporaryDirectory(prefix="bench-rehearsal-") as tmp:
        for run in range(runs):
            try:
                summary, wall = run_once(Path(tmp) / str(run))
            except RehearsalFailed as error:
                log(f"  rehearsal {run + 1}/{runs} failed: {error}")
                return {"runs": run, "failed": str(error)}
            summaries.append(summary)
            walls.append(wall)
            log(
                f"  rehearsal {run + 1}/{runs}: {summary['status']}, {summary['seconds']:.2f} s "
                f"(command {wall:.2f} s)"
            )
    stages = [name for name in summaries[0]["durations"]]
    return {
        "runs": runs,
        "seconds": _spread([s["seconds"] for s in summaries]),
        "command_seconds": _spread(walls),
        "stages": {name: _spread([s["durations"].get(name, 0.0) for s in summaries]) for name in stages},
    }
