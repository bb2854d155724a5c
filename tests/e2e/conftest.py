import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def run_mlops(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m mlops ARGS`` as a user runs it, with no AWS settings of this machine."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return subprocess.run(
        [sys.executable, "-m", "mlops", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_rehearsal(tmp_path: Path, *args: str, timeout: float = 300) -> tuple[int, dict, str]:
    """Runs ``mlops rehearse``; returns exit code, final JSON line, stderr."""
    done = run_mlops("rehearse", "--work-dir", str(tmp_path / "work"), *args, timeout=timeout)
    lines = done.stdout.strip().splitlines()
    assert lines, f"no output; stderr:\n{done.stderr[-3000:]}"
    return done.returncode, json.loads(lines[-1]), done.stderr


@pytest.fixture
def rehearse(tmp_path):
    return lambda *args, **kw: run_rehearsal(tmp_path, *args, **kw)


@pytest.fixture
def mlops_cli():
    return run_mlops
