"""``--github-output``: the mlops commands the workflows call write their step outputs themselves (no jq)."""

import json

import boto3
import pytest
from moto import mock_aws

from mlops.cli import main
from mlops.local.workflow import read_file_command

COMMIT = "0123456789abcdef0123456789abcdef01234567"
REGISTRY = "123456789012.dkr.ecr.us-east-1.amazonaws.com"


def _push(ecr) -> None:
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"digest": "sha256:" + "0" * 64},
        "layers": [],
    }
    ecr.put_image(repositoryName="mlops-iris", imageTag=COMMIT, imageManifest=json.dumps(manifest))


@pytest.fixture
def github_output(tmp_path, monkeypatch):
    path = tmp_path / "output"
    path.write_text("")
    monkeypatch.setenv("GITHUB_OUTPUT", str(path))
    return path


def test_image_exists_writes_exists_uri_and_digest_and_exits_0_either_way(
    aws_credentials, github_output, capsys
):
    with mock_aws():
        ecr = boto3.client("ecr", region_name="us-east-1")
        ecr.create_repository(repositoryName="mlops-iris")
        argv = ["image-exists", "mlops-iris", COMMIT, "--registry", REGISTRY, "--github-output"]
        assert main(argv) == 0
        absent = read_file_command(github_output, "GITHUB_OUTPUT")
        assert absent == {"exists": "false", "uri": f"{REGISTRY}/mlops-iris:{COMMIT}", "digest": ""}
        _push(ecr)
        github_output.write_text("")
        assert main(argv) == 0
        present = read_file_command(github_output, "GITHUB_OUTPUT")
        assert present["exists"] == "true" and present["digest"].startswith("sha256:")
        assert json.loads(capsys.readouterr().out.splitlines()[-1])["digest"] == present["digest"]
        github_output.write_text("")
        assert main(["image-exists", "no-such-repo", COMMIT, "--github-output"]) == 2
        assert github_output.read_text() == ""


def test_github_output_without_the_variable_says_so(aws_credentials, monkeypatch, capsys):
    monkeypatch.delenv("GITHUB_OUTPUT", raising=False)
    with mock_aws():
        boto3.client("ecr", region_name="us-east-1").create_repository(repositoryName="mlops-iris")
        assert main(["image-exists", "mlops-iris", COMMIT, "--github-output"]) == 2
    assert "GITHUB_OUTPUT is not set" in capsys.readouterr().err


def test_release_writes_what_the_summary_step_shows(aws_credentials, github_output, capsys):
    with mock_aws():
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        arn = sfn.create_state_machine(
            name="release",
            definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
            roleArn="arn:aws:iam::123456789012:role/states",
        )["stateMachineArn"]
        argv = ["release", "--state-machine-arn", arn, "--image-uri", f"{REGISTRY}/mlops-iris:{COMMIT}"]
        argv += ["--commit", COMMIT, "--data-uri", "s3://b/data", "--run-id", "7", "--github-output"]
        assert main(argv) == 0
    outputs = read_file_command(github_output, "GITHUB_OUTPUT")
    assert outputs["execution_name"] == f"{COMMIT[:12]}-7-1"
    assert outputs["execution_arn"].endswith(":" + outputs["execution_name"])
    assert outputs["console_url"].startswith("https://us-east-1.console.aws.amazon.com/states/")
    assert json.loads(capsys.readouterr().out) == outputs


def test_a_value_with_line_breaks_is_written_as_a_delimited_block(github_output):
    from mlops.github_output import write_github_output

    write_github_output({"notes": "one\ntwo", "flag": True, "empty": None})
    assert read_file_command(github_output, "GITHUB_OUTPUT") == {
        "notes": "one\ntwo",
        "flag": "true",
        "empty": "",
    }
