"""Least privilege, measured on the rehearsal: every Allow statement serves a rehearsed call (mlops iam-report,
docs/iam.md), and the defects a review of the first templates found fail the rehearsal as they would fail on AWS
when the statement that fixed each is taken out of a copy of the template."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlops.local.template import Template

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _without_statement(doc: dict, logical_id: str, sid: str) -> None:
    """Takes the statement `sid` out of a resource's policies (a role's, or a SAM function's)."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in [i for i in node if isinstance(i, dict) and i.get("Sid") == sid]:
                node.remove(item)
                found.append(item)
            for item in node:
                walk(item)

    resource = doc["Resources"][logical_id]
    walk(resource)
    assert found, f"{logical_id} has no statement {sid}"
    if resource["Type"] == "AWS::IAM::Policy" and not resource["Properties"]["PolicyDocument"]["Statement"]:
        del doc["Resources"][logical_id]  # a policy with no statement is malformed: the policy goes with it


def app_template_without(tmp_path: Path, logical_id: str, sid: str) -> Path:
    """A copy of infra/template.yaml beside links to functions/ and statemachine/ (its CodeUri paths)."""
    doc = Template().doc
    _without_statement(doc, logical_id, sid)
    for folder in ("functions", "statemachine"):
        (tmp_path / folder).symlink_to(REPO / folder)
    (tmp_path / "infra").mkdir()
    path = tmp_path / "infra" / "template.yaml"
    path.write_text(json.dumps(doc))  # JSON is YAML; the intrinsics are in their long form
    return path


def access_template_without(tmp_path: Path, logical_id: str, sid: str) -> Path:
    doc = Template(REPO / "infra" / "github-oidc.yaml").doc
    _without_statement(doc, logical_id, sid)
    path = tmp_path / "github-oidc.yaml"
    path.write_text(json.dumps(doc))
    return path


def run_mlops(*args: str, timeout: float) -> subprocess.CompletedProcess:
    """``python -m mlops ARGS`` as a user runs it, with no AWS settings of this environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return subprocess.run(
        [sys.executable, "-m", "mlops", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def rehearse(tmp_path: Path, *args: str) -> dict:
    done = run_mlops("rehearse", "--work-dir", str(tmp_path / "work"), "--timeout", "120", *args, timeout=300)
    lines = done.stdout.strip().splitlines()
    assert lines, done.stderr[-3000:]
    return json.loads(lines[-1])


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("iam-report")
    done = run_mlops(
        "iam-report", "--work-root", str(root / "runs"), "--output", str(root / "iam.md"), timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return {"stderr": done.stderr, "text": (root / "iam.md").read_text(), "root": root}


def test_every_allow_statement_of_both_templates_serves_a_rehearsed_call(report):
    assert "unused:" not in report["stderr"]
    assert ", 0 unused" in report["stderr"]
    for role in (
        "github-oidc.yaml ReleaseRole",
        "template.yaml ReleaseStateMachineRole",
        "template.yaml SageMakerExecutionRole",
    ):
        assert f"## {role}" in report["text"]


def test_docs_iam_md_is_the_report_of_the_rehearsed_paths(report):
    assert (REPO / "docs" / "iam.md").read_text() == report["text"], "run scripts/iam-report"


def test_the_report_names_the_calls_each_statement_serves(report):
    rows = {
        line.split(" | ")[1]: line
        for line in report["text"].splitlines()
        if line.startswith("| ") and " | " in line
    }
    assert "sagemaker:ListTags (reject, release, spot)" in rows["ReadJobTagsForSyncWaits"]
    assert "sts:AssumeRoleWithWebIdentity (reject, release, spot)" in rows["GitHubActionsOfOneRepository"]
    assert "s3:GetObject (release)" in rows["ReadStagingModelArtifacts"]  # prod's model comes from staging
    # the approver's download
    assert "s3:GetObject (reject, release, spot)" in rows["PresignPredictionDownloads"]
    # every training job syncs its checkpoints; only a restarted one reads them back
    assert "s3:GetObject (spot)" in rows["SyncTrainingCheckpoints"]
    assert "s3:PutObject (reject, release, spot)" in rows["SyncTrainingCheckpoints"]
    assert "not exercised" not in rows["SyncTrainingCheckpoints"]


def test_a_state_machine_role_without_list_tags_fails_the_sync_training_wait(tmp_path):
    template = app_template_without(tmp_path, "ReleaseStateMachine", "ReadJobTagsForSyncWaits")
    summary = rehearse(tmp_path, "--template", str(template))
    assert (summary["status"], summary["failed_state"]) == ("FAILED", "Train")
    assert "ReleaseStateMachineRole" in summary["reason"] and "sagemaker:ListTags" in summary["reason"]
    assert {d["action"] for d in summary["iam"]["denied"]} == {"sagemaker:ListTags"}  # the Retry tries again


def test_a_release_role_that_may_not_read_staging_cannot_promote(tmp_path):
    template = access_template_without(tmp_path, "PromotionChecksPolicy", "ReadAndAskTheStagingEndpoint")
    summary = rehearse(tmp_path, "--oidc-template", str(template), "--stages", "staging,prod")
    assert summary["stages"]["staging"]["model_package_arn"]  # released to staging: it does not need it
    promotion = summary["promotions"][0]
    assert promotion["status"] == "NOT_STARTED"
    step = next(s for s in promotion["workflow"]["steps"] if s["outcome"] == "failure")
    said = "\n".join(step["tail"])
    assert (
        "prod-github-ReleaseRole" in said and "not authorized to perform: sagemaker:DescribeEndpoint" in said
    )


def test_a_prod_sagemaker_role_that_may_not_read_stagings_model_cannot_serve_it(tmp_path):
    template = app_template_without(tmp_path, "ReadStagingModelArtifacts", "ReadStagingModelArtifacts")
    summary = rehearse(tmp_path, "--template", str(template), "--stages", "staging,prod")
    assert summary["stages"]["staging"]["model_package_arn"]  # released to staging: it does not need it
    promotion = summary["promotions"][0]
    assert promotion["status"] == "FAILED"
    denied = [d for d in summary["iam"]["denied"] if d["action"] == "s3:GetObject"]
    assert denied and "mlops-iris-prod-SageMakerExecutionRole" in denied[0]["principal"]
    assert "mlops-iris-staging" in denied[0]["message"]  # staging's bucket
