"""Rollback in one command: rollback.yml's job runs `mlops rollback`, and the stage's endpoint serves the previous
Approved package again, through the state machine's promotion path (no training, no approval)."""

import pytest

pytestmark = pytest.mark.slow


def test_rolling_back_after_two_releases_serves_the_first_again(rehearse):
    code, summary, stderr = rehearse("--releases", "2", "--rollback", "--timeout", "120")
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


def test_rollback_needs_a_release_to_go_back_to(mlops_cli):
    done = mlops_cli("rehearse", "--rollback", timeout=60)
    code, stderr = done.returncode, done.stderr
    assert code == 2
    assert "--rollback needs --releases 2 or more" in stderr
