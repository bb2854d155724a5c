"""The local equivalents of the workflow's actions, and the venv/pip stand-in."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlops.local import pyshim
from mlops.local.actions import checkout, setup_python
from mlops.local.workflow import ActionCall, ActionFailed

REPO = Path(__file__).resolve().parents[2]


def git(cwd: Path, *args: str, env: dict | None = None) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True, env=env
    ).stdout.strip()


@pytest.fixture
def repository(tmp_path) -> Path:
    folder = tmp_path / "repo"
    folder.mkdir()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    for args in (
        ("init", "-q", "-b", "main"),
        ("config", "user.email", "t@example.com"),
        ("config", "user.name", "t"),
    ):
        subprocess.run(["git", *args], cwd=folder, check=True, env=clean)
    for number in (1, 2):
        (folder / "file.txt").write_text(f"{number}\n")
        subprocess.run(["git", "add", "file.txt"], cwd=folder, check=True, env=clean)
        subprocess.run(["git", "commit", "-q", "-m", f"c{number}"], cwd=folder, check=True, env=clean)
    return folder


def call_for(workspace: Path, tmp_path: Path, **inputs: str) -> ActionCall:
    env: dict[str, str] = {}
    return ActionCall(
        step="step",
        inputs=dict(inputs),
        env=env,
        workspace=workspace,
        runner_temp=tmp_path / "temp",
        set_env=env.__setitem__,
        add_path=lambda folder: env.setdefault("PATH_ADDED", folder),
        record={},
        log=lambda line: None,
    )


def test_checkout_gives_later_steps_origin_main_at_the_commit_without_touching_the_repository(
    repository, tmp_path
):
    head = git(repository, "rev-parse", "HEAD")
    call = call_for(repository, tmp_path, ref=head, **{"fetch-depth": "0"})
    (tmp_path / "temp").mkdir()
    assert checkout(call) == {"ref": head, "commit": head}
    steps_env = {**os.environ, "GIT_DIR": call.env["GIT_DIR"], "GIT_WORK_TREE": call.env["GIT_WORK_TREE"]}
    assert git(repository, "rev-parse", "origin/main", env=steps_env) == head
    assert git(repository, "rev-list", "--count", "HEAD", env=steps_env) == "2"
    assert git(repository, "status", "--porcelain", env=steps_env) == ""  # the index matches the commit
    on_main = subprocess.run(
        [sys.executable, "-m", "mlops.aws_cli", "check-on-main", head],
        cwd=repository,
        env={**steps_env, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert on_main.returncode == 0, on_main.stderr
    assert git(repository, "branch", "-r") == ""  # the repository's own refs are untouched


def test_checkout_cuts_the_history_unless_fetch_depth_is_0(repository, tmp_path):
    (tmp_path / "temp").mkdir()
    call = call_for(repository, tmp_path)
    checkout(call)
    assert (
        git(repository, "rev-list", "--count", "HEAD", env={**os.environ, "GIT_DIR": call.env["GIT_DIR"]})
        == "1"
    )


def test_checkout_of_another_commit_than_the_working_tree_is_refused(repository, tmp_path):
    (tmp_path / "temp").mkdir()
    older = git(repository, "rev-parse", "HEAD~1")
    with pytest.raises(ActionFailed, match=r"ref HEAD~1 is .*check out HEAD~1 first"):
        checkout(call_for(repository, tmp_path, ref="HEAD~1"))
    with pytest.raises(ActionFailed, match="not a commit here"):
        checkout(call_for(repository, tmp_path, ref="no-such-branch"))
    assert older


def test_checkout_outside_git_says_so(tmp_path):
    (tmp_path / "temp").mkdir()
    (tmp_path / "plain").mkdir()
    with pytest.raises(ActionFailed, match="is not a git checkout"):
        checkout(call_for(tmp_path / "plain", tmp_path))


def test_setup_python_venv_and_pip_install_serve_this_interpreter_without_installing(tmp_path):
    (tmp_path / "temp").mkdir()
    call = call_for(REPO, tmp_path, **{"python-version": "3.11"})
    setup_python(call)
    python = Path(call.env["PATH_ADDED"]) / "python"
    venv = tmp_path / "venv"
    subprocess.run([str(python), "-m", "venv", str(venv)], cwd=REPO, check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, ".[aws]"], cwd=REPO, check=True)
    done = subprocess.run(
        [str(venv / "bin" / "mlops"), "image-exists", "--help"], capture_output=True, text=True
    )
    assert done.returncode == 0 and "--github-output" in done.stdout
    refused = subprocess.run([*pip, "requests"], cwd=REPO, capture_output=True, text=True)
    assert refused.returncode == 1 and "installs nothing" in refused.stderr
    plain = subprocess.run(
        [str(python), "-c", "import sys; print(sys.executable)"], capture_output=True, text=True
    )
    assert plain.stdout.strip() == sys.executable


def test_pip_install_names_what_this_interpreter_lacks():
    project = {
        "name": "demo",
        "dependencies": [],
        "optional-dependencies": {
            "aws": ["pytest==0.0.1", "no-such-package-zz>=1"],
            "all": ["demo[aws]", "pyyaml"],
        },
    }
    problems = pyshim.missing_requirements(project, {"all"})
    assert problems == [
        "no-such-package-zz>=1 is not installed",
        f"pytest==0.0.1 is wanted, {__import__('importlib.metadata').metadata.version('pytest')} is installed",
    ]
    assert pyshim.missing_requirements(project, set()) == []


def test_checkout_in_a_shallow_clone_keeps_its_history_boundary(repository, tmp_path):
    clone = tmp_path / "shallow"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{repository}", str(clone)], check=True)
    (tmp_path / "temp").mkdir()
    call = call_for(clone, tmp_path, **{"fetch-depth": "0"})
    checkout(call)
    steps_env = {**os.environ, "GIT_DIR": call.env["GIT_DIR"], "GIT_WORK_TREE": str(clone)}
    assert git(clone, "rev-list", "--count", "HEAD", env=steps_env) == "1"
    head = git(clone, "rev-parse", "HEAD")
    on_main = subprocess.run(
        [sys.executable, "-m", "mlops.aws_cli", "check-on-main", head],
        cwd=clone,
        env={**steps_env, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert on_main.returncode == 0, on_main.stderr


def test_the_steps_start_without_credentials_this_venv_or_an_outer_runners_files(monkeypatch):
    from mlops.local.release_workflow import runner_environment

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "outer")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("GITHUB_OUTPUT", "/outer/output")
    monkeypatch.setenv("PATH", os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin"]))
    env = runner_environment()
    assert "AWS_ACCESS_KEY_ID" not in env and "GITHUB_OUTPUT" not in env
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:1"  # the local AWS is this machine's network
    assert env["PATH"] == "/usr/bin"
