"""Rollback in one command: rollback.yml's job runs `mlops rollback`, and the stage's endpoint serves the previous
Approved package again, through the state machine's promotion path (no training, no approval)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def rehearse(tmp_path: Path, *args: str) -> tuple[int, dict, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    done = subprocess.run(
        [sys.executable, "-m", "mlops", "rehearse", "--work-dir", str(tmp_path / "work"), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = done.stdout.strip().splitlines()
    return done.returncode, json.loads(lines[-1]) if lines else {}, done.stderr


def test_rolling_back_after_two_releases_serves_the_first_again(tmp_path):
    code, summary, stderr = rehearse(tmp_path, "--releases", "2", "--rollback", "--timeout", "120")
    assert code == 0, stderr[-3000:]
    first, second = (release["model_package_arn"] for release in summary["releases"])
    assert first and second and first != second
    rollback = summary["rollback"]
    assert (rollback["status"], rollback["wanted"], rollback["model_package_arn"]) == (
        "SUCCEEDED",
        first,
        first,
    )
    assert "-rollback" in rollback["execution_arn"]
    assert [s["outcome"] for s in rollback["workflow"]["steps"]][-1] == "success"
    assert rollback["workflow"]["job"] == "rollback-staging"
    assert summary["iam"]["denied"] == []
    assert "Workflow .github/workflows/rollback.yml (workflow_dispatch, stage staging)" in stderr
    assert "→ Train\n" not in stderr.split("rollback.yml", 1)[1]  # no retraining: the promotion path


def test_rollback_needs_a_release_to_go_back_to(tmp_path):
    code, _, stderr = rehearse(tmp_path, "--rollback")
    assert code == 2
    assert "--rollback needs --releases 2 or more" in stderr
