"""The rehearsal starts its releases by running .github/workflows/release.yml's own steps."""

import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
RELEASE_YML = REPO / ".github" / "workflows" / "release.yml"

pytestmark = pytest.mark.slow


def release_steps(path: Path = RELEASE_YML) -> list[str]:
    """Each step's name as GitHub shows it (a nameless uses: step is "Run <uses>")."""
    steps = yaml.safe_load(path.read_text())["jobs"]["release"]["steps"]
    return [s.get("name") or f"Run {s['uses']}" for s in steps]


def outcomes(summary: dict) -> dict[str, str]:
    return {step["name"]: step["outcome"] for step in summary["workflow"]["steps"]}


def assert_release_workflow_started_it(
    summary: dict, event: str = "push", image_existed: bool = False
) -> None:
    workflow = summary["workflow"]
    assert (workflow["file"], workflow["job"], workflow["event"]) == (
        ".github/workflows/release.yml",
        "release",
        event,
    )
    assert [step["name"] for step in workflow["steps"]] == release_steps()
    # The image is built and pushed only when ECR lacks the commit's tag (both docker steps say so in if:).
    expected = {
        name: ("skipped" if image_existed and name.startswith("Run docker/") else "success")
        for name in release_steps()
    }
    assert outcomes(summary) == expected
    assert all(step["seconds"] >= 0 for step in workflow["steps"])
    assert workflow["outputs"]["execution_arn"] == summary["execution_arn"]
    assert summary["execution_arn"].endswith(":" + workflow["outputs"]["execution_name"])
    assert workflow["credentials"]["role_session_name"].startswith("release-1-")
    assert workflow["credentials"]["region"] == "us-east-1"
    # AWS_RELEASE_ROLE_ARN is the role the access stack (infra/github-oidc.yaml) created, not a guessed name.
    assert re.fullmatch(
        r"arn:aws:iam::123456789012:role/mlops-iris-staging-github-ReleaseRole-\w+",
        workflow["credentials"]["role_to_assume"],
    )


def _copy_with(tmp_path: Path, step: str, run: str) -> Path:
    workflow = yaml.safe_load(RELEASE_YML.read_text())
    target = next(s for s in workflow["jobs"]["release"]["steps"] if s.get("name") == step)
    target["run"] = run
    copy = tmp_path / "release-copy.yml"
    copy.write_text(yaml.safe_dump(workflow, sort_keys=False))
    return copy


def test_a_push_to_main_runs_every_step_of_release_yml_and_starts_the_release(rehearse):
    code, summary, stderr = rehearse()
    assert code == 0, stderr[-3000:]
    assert_release_workflow_started_it(summary)
    assert "Workflow .github/workflows/release.yml (push to main, attempt 1):" in stderr
    assert "  ✓ Refuse a commit that is not on main" in stderr


def test_a_step_that_fails_stops_the_workflow_and_no_release_starts(rehearse, tmp_path):
    copy = _copy_with(tmp_path, "Resolve the commit", 'echo "resolving fails here"\nexit 3\n')
    code, summary, stderr = rehearse("--workflow", str(copy))
    assert code == 2
    assert "Traceback" not in stderr
    assert summary["status"] == "NOT_STARTED"
    assert summary["failed_step"] == "Resolve the commit"
    assert summary["reason"] == "Process completed with exit code 3."
    assert summary["tail"] == ["resolving fails here"]
    steps = outcomes(summary)
    assert steps["Resolve the commit"] == "failure"
    assert steps["Start the release"] == steps["Summary"] == "skipped"
    assert "step 'Resolve the commit' failed, so nothing started" in stderr
    assert "resolving fails here" in stderr
    assert summary["live_endpoints"] == []


def test_an_expression_the_runner_cannot_evaluate_fails_its_step_by_name(rehearse, tmp_path):
    workflow = yaml.safe_load(RELEASE_YML.read_text())
    start = next(s for s in workflow["jobs"]["release"]["steps"] if s.get("name") == "Start the release")
    start["env"]["COMMIT"] = "${{ format('{0}', steps.commit.outputs.sha) }}"
    copy = tmp_path / "release-copy.yml"
    copy.write_text(yaml.safe_dump(workflow, sort_keys=False))
    code, summary, _ = rehearse("--workflow", str(copy))
    assert (code, summary["status"], summary["failed_step"]) == (2, "NOT_STARTED", "Start the release")
    assert "format('{0}', steps.commit.outputs.sha)" in summary["reason"]
    assert "does not evaluate format()" in summary["reason"]


def test_a_missing_workflow_file_is_a_clear_error(mlops_cli, tmp_path):
    done = mlops_cli("rehearse", "--workflow", str(tmp_path / "nope.yml"), timeout=60)
    assert done.returncode == 2
    assert "--workflow" in done.stderr and "nope.yml does not exist" in done.stderr
    assert "Traceback" not in done.stderr
