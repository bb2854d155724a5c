import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _user_env() -> dict[str, str]:
    """This environment without its AWS settings: the local AWS must be the only one a test can reach."""
    return {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}


def run_mlops(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m mlops ARGS`` as a user runs it."""
    try:
        return subprocess.run(
            [sys.executable, "-m", "mlops", *args],
            cwd=REPO,
            env=_user_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        said = (
            error.stderr.decode(errors="replace") if isinstance(error.stderr, bytes) else error.stderr or ""
        )
        pytest.fail(
            f"mlops {' '.join(args)} still running after {timeout:.0f} s; its stderr:\n{said[-3000:]}"
        )


def start_rehearsal(tmp_path: Path, *args: str) -> tuple[subprocess.Popen, Path]:
    """Starts ``mlops rehearse ARGS`` in tmp_path/work; returns the process (stdout piped) and its stderr file."""
    stderr_path = tmp_path / "stderr.txt"
    argv = [sys.executable, "-m", "mlops", "rehearse", "--work-dir", str(tmp_path / "work"), *args]
    with stderr_path.open("w") as stderr_file:
        process = subprocess.Popen(
            argv, cwd=REPO, env=_user_env(), stdout=subprocess.PIPE, stderr=stderr_file, text=True
        )
    return process, stderr_path


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


@pytest.fixture
def started_rehearsal(tmp_path):
    """Starts rehearsals; any still running when the test ends (say, it failed early) is stopped."""
    started: list[subprocess.Popen] = []

    def start(*args: str) -> tuple[subprocess.Popen, Path]:
        process, stderr_path = start_rehearsal(tmp_path, *args)
        started.append(process)
        return process, stderr_path

    yield start
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def served_rehearsal(started_rehearsal):
    return lambda *args: started_rehearsal("--serve", *args)
