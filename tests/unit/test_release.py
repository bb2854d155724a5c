import json

import boto3
import pytest
from moto import mock_aws

from mlops.release import Release, ReleaseError, image_tag_exists, parse_hyperparameters, start_release

COMMIT = "0123456789abcdef0123456789abcdef01234567"
PASSTHROUGH = {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}


@pytest.fixture
def sfn(aws_credentials):
    with mock_aws():
        client = boto3.client("stepfunctions", region_name="us-east-1")
        arn = client.create_state_machine(
            name="release",
            definition=json.dumps(PASSTHROUGH),
            roleArn="arn:aws:iam::123456789012:role/states",
        )["stateMachineArn"]
        yield client, arn


def _push(ecr) -> None:
    """What a docker push of the commit-tagged image leaves in ECR."""
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"digest": "sha256:" + "0" * 64},
        "layers": [],
    }
    ecr.put_image(repositoryName="mlops-iris", imageTag=COMMIT, imageManifest=json.dumps(manifest))


def _release(**overrides):
    values = {
        "project": "mlops-iris",
        "commit": COMMIT,
        "image_uri": f"repo:{COMMIT}",
        "data_uri": "s3://b/data",
    }
    return Release(**{**values, **overrides})


def test_execution_input_carries_the_image_commit_and_names(sfn):
    client, arn = sfn
    execution_arn = start_release(client, arn, _release(hyperparameters={"max_depth": 3}))
    sent = json.loads(client.describe_execution(executionArn=execution_arn)["input"])
    assert sent["release"]["commit"] == COMMIT
    assert sent["release"]["image_uri"] == f"repo:{COMMIT}"
    assert sent["hyperparameters"] == {"max_depth": "3"}
    assert sent["data"] == {"train_uri": "s3://b/data/train/", "test_uri": "s3://b/data/test/"}


def test_rerun_of_the_same_commit_starts_a_second_execution_without_collision(sfn):
    client, arn = sfn
    first = start_release(client, arn, _release(attempt=1))
    second = start_release(client, arn, _release(attempt=2))
    assert first != second
    inputs = [
        json.loads(client.describe_execution(executionArn=a)["input"])["names"] for a in (first, second)
    ]
    assert set(inputs[0].values()).isdisjoint(inputs[1].values())


def test_same_execution_name_twice_is_a_clear_error(sfn):
    client, arn = sfn
    start_release(client, arn, _release())
    with pytest.raises(ReleaseError, match="--attempt 2"):
        start_release(client, arn, _release())


def test_image_tag_exists_tells_whether_to_skip_the_push(aws_credentials):
    with mock_aws():
        ecr = boto3.client("ecr", region_name="us-east-1")
        ecr.create_repository(repositoryName="mlops-iris", imageTagMutability="IMMUTABLE")
        assert not image_tag_exists(ecr, "mlops-iris", COMMIT)
        _push(ecr)
        assert image_tag_exists(ecr, "mlops-iris", COMMIT)


def test_hyperparameter_pairs_are_parsed_and_bad_ones_named():
    assert parse_hyperparameters(["max_depth=3", "criterion = gini"]) == {
        "max_depth": "3",
        "criterion": "gini",
    }
    with pytest.raises(ReleaseError, match="'max_depth'"):
        parse_hyperparameters(["max_depth"])


def test_data_uri_must_be_s3():
    with pytest.raises(ReleaseError, match="s3://"):
        _release(data_uri="/tmp/data").execution_input()


def test_image_exists_cli_exits_0_1_or_2(aws_credentials, capsys):
    from mlops.cli import main

    with mock_aws():
        ecr = boto3.client("ecr", region_name="us-east-1")
        ecr.create_repository(repositoryName="mlops-iris")
        assert main(["image-exists", "mlops-iris", COMMIT]) == 1
        _push(ecr)
        assert main(["image-exists", "mlops-iris", COMMIT]) == 0
        assert json.loads(capsys.readouterr().out.splitlines()[-1])["exists"] is True
        assert main(["image-exists", "no-such-repo", COMMIT]) == 2
        assert "cannot tell whether no-such-repo" in capsys.readouterr().err
