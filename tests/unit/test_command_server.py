"""The warm interpreter the workflow's mlops commands fork from: each command keeps its own argv, working
directory, environment, streams and exit code, with or without the server."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlops.local.command_server import client_script

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def mlops_script(tmp_path) -> Path:
    path = tmp_path / "bin" / "mlops"
    path.parent.mkdir()
    path.write_text(client_script("mlops", "mlops.cli:run"))
    path.chmod(0o755)
    return path


@pytest.fixture
def server(tmp_path):
    socket_path = tmp_path / "s"
    process = subprocess.Popen(
        [sys.executable, "-m", "mlops.local.command_server", str(socket_path)], cwd=REPO
    )
    deadline = time.monotonic() + 30
    while not socket_path.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    yield str(socket_path)
    process.terminate()
    process.wait(timeout=10)


def run(script: Path, *args: str, env: dict, cwd: Path, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(script), *args],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("warm", [True, False], ids=["forked", "new-interpreter"])
def test_a_command_keeps_its_env_cwd_output_and_exit_code(mlops_script, server, tmp_path, warm):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GITHUB_"))}
    if warm:
        env["MLOPS_COMMAND_SERVER"] = server
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    done = run(mlops_script, "check-on-main", "HEAD", "--main", "HEAD", env=env, cwd=REPO)
    assert (done.returncode, done.stderr) == (0, "")
    assert head in done.stdout
    refused = run(mlops_script, "check-on-main", "no-such-ref", env=env, cwd=REPO)
    assert refused.returncode == 2 and "no-such-ref is not a commit" in refused.stderr
    usage = run(mlops_script, "no-such-command", env=env, cwd=REPO)
    assert usage.returncode == 2 and "invalid choice" in usage.stderr
    elsewhere = run(mlops_script, "check-on-main", "HEAD", env=env, cwd=tmp_path)  # not a git checkout
    assert elsewhere.returncode == 2
    # The server was started with a region; the command's own environment has none, and that is what counts.
    regionless = run(mlops_script, "image-exists", "r", "t", env=env, cwd=REPO)
    assert regionless.returncode == 2 and "You must specify a region" in regionless.stderr


def test_a_server_that_is_gone_leaves_the_command_to_a_new_interpreter(mlops_script, tmp_path):
    env = {**os.environ, "MLOPS_COMMAND_SERVER": str(tmp_path / "no-such-socket")}
    done = run(mlops_script, "check-on-main", "HEAD", "--main", "HEAD", env=env, cwd=REPO)
    assert done.returncode == 0 and '"commit"' in done.stdout
