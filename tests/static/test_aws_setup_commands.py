"""The account-setup commands scripts/bootstrap runs, against moto's AWS."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from mlops import aws_cli
from mlops.aws_cli import (
    AwsSetupError,
    aws_identity,
    check_instance_quotas,
    github_settings,
    github_stack_parameters,
    instance_needs,
    stack_parameters,
    upload_data,
)

REGION = "eu-west-1"


def _stack(
    name: str, outputs: dict[str, str] | None = None, parameters: dict[str, str] | None = None
) -> None:
    template = {
        "Parameters": {key: {"Type": "String"} for key in parameters or {}},
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {key: {"Value": value} for key, value in (outputs or {}).items()},
    }
    boto3.client("cloudformation").create_stack(
        StackName=name,
        TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in (parameters or {}).items()],
    )


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        yield boto3.session.Session()


def test_identity_names_account_and_region(aws):
    assert aws_identity(aws) == {
        "account": "123456789012",
        "arn": "arn:aws:sts::123456789012:user/moto",
        "region": REGION,
    }


def test_no_credentials_says_how_to_log_in(monkeypatch, tmp_path):
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_PROFILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with pytest.raises(AwsSetupError, match=r"not logged in to AWS.*aws sso login"):
        aws_identity(boto3.session.Session())


def test_no_region_is_an_error_with_advice(monkeypatch, tmp_path):
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    with pytest.raises(AwsSetupError, match="set AWS_REGION"):
        aws_identity(boto3.session.Session())


def test_a_new_account_gets_the_provider_the_repository_and_the_logging_role(aws):
    assert github_stack_parameters(aws, "mlops-iris-github", "mlops-iris") == {
        "CreateOidcProvider": "true",
        "ExistingOidcProviderArn": "",
        "CreateRepository": "true",
        "CreateApiGatewayLoggingRole": "true",
    }


def test_a_second_stage_shares_the_repository(aws):
    boto3.client("ecr").create_repository(repositoryName="mlops-iris")
    assert github_stack_parameters(aws, "mlops-iris-prod-github", "mlops-iris")["CreateRepository"] == "false"


def test_an_existing_provider_is_reused(aws):
    arn = boto3.client("iam").create_open_id_connect_provider(
        Url="https://token.actions.githubusercontent.com",
        ClientIDList=["sts.amazonaws.com"],
        ThumbprintList=[],
    )["OpenIDConnectProviderArn"]
    parameters = github_stack_parameters(aws, "mlops-iris-github", "mlops-iris")
    assert parameters["CreateOidcProvider"] == "false"
    assert parameters["ExistingOidcProviderArn"] == arn


def test_an_existing_stack_keeps_its_choices_so_nothing_it_created_is_deleted(aws):
    boto3.client("iam").create_open_id_connect_provider(
        Url="https://token.actions.githubusercontent.com",
        ClientIDList=["sts.amazonaws.com"],
        ThumbprintList=[],
    )
    _stack(
        "mlops-iris-github",
        parameters={
            "CreateOidcProvider": "true",
            "ExistingOidcProviderArn": "",
            "CreateApiGatewayLoggingRole": "true",
        },
    )
    assert github_stack_parameters(aws, "mlops-iris-github", "mlops-iris")["CreateOidcProvider"] == "true"


def test_overrides_leave_out_empty_values(aws, capsys):
    assert (
        aws_cli.main(
            [
                "github-stack-parameters",
                "--stack",
                "mlops-iris-github",
                "--project",
                "mlops-iris",
                "--format",
                "overrides",
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.split() == [
        "CreateOidcProvider=true",
        "CreateRepository=true",
        "CreateApiGatewayLoggingRole=true",
    ]


def test_upload_data_puts_train_and_test_under_the_bucket(aws):
    boto3.client("s3").create_bucket(
        Bucket="artifacts", CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    _stack("mlops-iris-staging", outputs={"ArtifactBucketName": "artifacts"})
    assert upload_data(aws, "mlops-iris-staging") == "s3://artifacts/data"
    keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket="artifacts")["Contents"]]
    assert sorted(keys) == ["data/test/test.csv", "data/train/train.csv"]


def test_upload_data_writes_the_example_the_stack_trains(aws):
    boto3.client("s3").create_bucket(
        Bucket="artifacts", CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    _stack(
        "mlops-iris-staging", outputs={"ArtifactBucketName": "artifacts"}, parameters={"Model": "diabetes"}
    )
    upload_data(aws, "mlops-iris-staging")
    test = boto3.client("s3").get_object(Bucket="artifacts", Key="data/test/test.csv")["Body"].read().decode()
    assert len(test.splitlines()) == 88 and len(test.splitlines()[0].split(",")) == 11


def test_upload_data_for_a_model_without_example_data_says_where_to_put_yours(aws):
    _stack("mlops-iris-staging", outputs={"ArtifactBucketName": "artifacts"}, parameters={"Model": "churn"})
    with pytest.raises(
        AwsSetupError, match="trains Model=churn, which has no example data here: upload your"
    ):
        upload_data(aws, "mlops-iris-staging")


def test_upload_data_to_a_missing_stack_says_to_deploy_it(aws):
    with pytest.raises(AwsSetupError, match="does not exist: deploy it first"):
        upload_data(aws, "nope")


def test_github_settings_come_from_both_stacks(aws, capsys):
    _stack(
        "app",
        outputs={"StateMachineArn": "arn:sm", "DataUri": "s3://b/data", "ProjectName": "mlops-iris"},
    )
    _stack("access", outputs={"ReleaseRoleArn": "arn:role", "ImageRepositoryName": "mlops-iris"})
    assert github_settings(aws, "app", "access") == {
        "AWS_REGION": REGION,
        "AWS_RELEASE_ROLE_ARN": "arn:role",
        "ECR_REPOSITORY": "mlops-iris",
        "STATE_MACHINE_ARN": "arn:sm",
        "DATA_URI": "s3://b/data",
        "PROJECT_NAME": "mlops-iris",
    }
    assert (
        aws_cli.main(["github-settings", "--app-stack", "app", "--github-stack", "access", "--format", "gh"])
        == 0
    )
    assert "gh variable set STATE_MACHINE_ARN --body 'arn:sm'" in capsys.readouterr().out


def test_the_command_line_exits_2_with_the_advice(aws, capsys):
    assert aws_cli.main(["upload-data", "--stack", "nope"]) == 2
    assert "deploy it first" in capsys.readouterr().err


# --- SageMaker instance quotas (moto has no SageMaker quotas: AWS's answers are stubbed) -------------------

DEFAULTS = {
    "TrainingInstanceType": "ml.m5.large",
    "TrainingInstanceCount": "1",
    "TransformInstanceType": "ml.m5.large",
    "TransformInstanceCount": "1",
    "EndpointInstanceType": "ml.t2.medium",
    "EndpointInstanceCount": "1",
}


def _quota(name: str, code: str, value: float) -> dict:
    return {"ServiceCode": "sagemaker", "QuotaName": name, "QuotaCode": code, "Value": value}


def _quotas_client(applied: list[dict], defaults: list[dict] | None = None):
    client = boto3.client("service-quotas", region_name=REGION)
    stub = Stubber(client)
    stub.add_response("list_service_quotas", {"Quotas": applied}, {"ServiceCode": "sagemaker"})
    if defaults is not None:
        stub.add_response(
            "list_aws_default_service_quotas", {"Quotas": defaults}, {"ServiceCode": "sagemaker"}
        )
    stub.activate()
    return client, stub


def test_a_serverless_endpoint_needs_no_endpoint_instance_quota():
    serverless = aws_cli.instance_needs({**DEFAULTS, "EndpointType": "serverless"})
    assert [need.quota for need in serverless] == [
        "ml.m5.large for training job usage",
        "ml.m5.large for transform job usage",
    ]
    assert aws_cli.instance_needs({**DEFAULTS, "EndpointType": "instance"})[2].quota == (
        "ml.t2.medium for endpoint usage"
    )


def test_instances_within_their_quotas_pass(aws):
    client, stub = _quotas_client(
        [
            _quota("ml.m5.large for training job usage", "L-TRAIN", 2),
            _quota("ml.m5.large for transform job usage", "L-TRANSFORM", 1),
            _quota("ml.t2.medium for endpoint usage", "L-ENDPOINT", 2),
        ]
    )
    checked = check_instance_quotas(client, instance_needs(DEFAULTS), REGION)
    stub.assert_no_pending_responses()
    assert {(c["quota"], c["value"], c["needed"]) for c in checked} == {
        ("ml.m5.large for training job usage", 2, 1),
        ("ml.m5.large for transform job usage", 1, 1),
        ("ml.t2.medium for endpoint usage", 2, 2),
    }


def test_a_new_accounts_zero_quota_stops_naming_the_quota_and_the_request(aws):
    # Quotas never raised are not among the applied ones: their value is the default, 0 in new accounts.
    client, stub = _quotas_client(
        [_quota("ml.t2.medium for endpoint usage", "L-ENDPOINT", 2)],
        defaults=[
            _quota("ml.m5.large for training job usage", "L-TRAIN", 0),
            _quota("ml.m5.large for transform job usage", "L-TRANSFORM", 0),
            _quota("ml.m5.large for endpoint usage", "L-OTHER", 0),
        ],
    )
    with pytest.raises(AwsSetupError) as raised:
        check_instance_quotas(client, instance_needs(DEFAULTS), REGION)
    stub.assert_no_pending_responses()
    message = str(raised.value)
    assert "ml.m5.large for training job usage is 0" in message
    assert "ml.m5.large for transform job usage is 0" in message
    assert (
        "aws service-quotas request-service-quota-increase --service-code sagemaker --quota-code L-TRAIN "
        f"--desired-value 1 --region {REGION}"
    ) in message
    assert "endpoint usage" not in message


def test_the_endpoint_needs_room_for_the_old_and_the_new_fleet_of_an_update(aws):
    client, _ = _quotas_client(
        [
            _quota("ml.m5.large for training job usage", "L-TRAIN", 1),
            _quota("ml.m5.large for transform job usage", "L-TRANSFORM", 1),
            _quota("ml.t2.medium for endpoint usage", "L-ENDPOINT", 1),
        ]
    )
    with pytest.raises(AwsSetupError, match=r"ml.t2.medium for endpoint usage is 1.*needs 2"):
        check_instance_quotas(client, instance_needs(DEFAULTS), REGION)


def test_an_instance_type_the_region_does_not_offer_is_named(aws):
    client, _ = _quotas_client([], defaults=[])
    with pytest.raises(AwsSetupError, match=r"no SageMaker quota named 'ml.m5.large for training job usage'"):
        check_instance_quotas(client, instance_needs(DEFAULTS), REGION)


def test_the_instances_come_from_samconfig_over_the_templates_defaults(tmp_path):
    config = tmp_path / "samconfig.toml"
    config.write_text(
        "version = 0.1\n[default.deploy.parameters]\n"
        'parameter_overrides = "ProjectName=\\"mlops-iris\\" TrainingInstanceType=\\"ml.c5.xlarge\\" '
        'EndpointInstanceCount=\\"3\\""\n'
    )
    needs = {need.quota: need.count for need in instance_needs(stack_parameters(config, "default"))}
    assert needs == {
        "ml.c5.xlarge for training job usage": 1,
        "ml.m5.large for transform job usage": 1,
        "ml.t2.medium for endpoint usage": 6,
    }
