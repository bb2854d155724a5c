"""The project's own policies (infra/template.yaml, infra/github-oidc.yaml) through the IAM evaluator:
the calls the release makes are allowed, their near misses are refused as AWS would refuse them."""

from __future__ import annotations

import copy

import pytest
from iam_templates import (
    ACCOUNT,
    APP_TEMPLATE,
    BUCKET,
    OIDC_TEMPLATE,
    PROVIDER_ARN,
    REGION,
    SECRET_ARN,
    Resolved,
)

from mlops.local.iam import IMPLICIT_DENY, authorize_call, evaluate, oidc_context, trust_allows
from mlops.local.iam_actions import privilege
from mlops.names import execution_name_for, release_names_for

NAMES = release_names_for("mlops-iris", "staging", execution_name_for("0123abc", 1))
SAGEMAKER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/mlops-iris-staging-SageMakerExecutionRole"
STATE_MACHINE = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:mlops-iris-staging-release"
SM = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}"


def session(role: str) -> str:
    return f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/session"


@pytest.fixture(scope="module")
def app() -> Resolved:
    return Resolved(APP_TEMPLATE)


@pytest.fixture(scope="module")
def prod_app() -> Resolved:
    return Resolved(APP_TEMPLATE, Stage="prod")


@pytest.fixture(scope="module")
def oidc() -> Resolved:
    return Resolved(OIDC_TEMPLATE)


def call(policies, principal, service, operation, params, **kwargs):
    return authorize_call(policies, session(principal), service, operation, params, REGION, ACCOUNT, **kwargs)


def without_action(policies: dict, action: str) -> dict:
    """The same policies with every statement naming `action` removed."""
    trimmed = copy.deepcopy(policies)
    for document in trimmed.values():
        document["Statement"] = [
            s
            for s in document["Statement"]
            if action not in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
        ]
    return trimmed


def test_every_action_the_templates_allow_exists_in_the_iam_definitions(app, oidc):
    for owner, statement in app.allow_statements() + oidc.allow_statements():
        for action in statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]:
            assert "*" in action or privilege(action), f"{owner}: {action}"


# --- the state machine's role -----------------------------------------------------------------------------

TRAINING_JOB = {
    "TrainingJobName": NAMES.training_job,
    "RoleArn": SAGEMAKER_ROLE,
    "AlgorithmSpecification": {"TrainingImage": "x", "TrainingInputMode": "File"},
}


def test_state_machine_role_may_create_the_training_job_the_pipeline_names(app):
    decision = call(
        app.role_policies("ReleaseStateMachine"), "sfn", "sagemaker", "CreateTrainingJob", TRAINING_JOB
    )
    assert decision.allowed, decision.message
    assert [action for action, _, _ in decision.checks] == ["sagemaker:CreateTrainingJob", "iam:PassRole"]
    assert decision.checks[0][1] == (f"{SM}:training-job/{NAMES.training_job}",)


def test_state_machine_role_may_not_create_a_training_job_outside_the_project_prefix(app):
    params = {**TRAINING_JOB, "TrainingJobName": "another-project-train"}
    decision = call(app.role_policies("ReleaseStateMachine"), "sfn", "sagemaker", "CreateTrainingJob", params)
    assert (decision.allowed, decision.code) == (False, "AccessDeniedException")
    assert decision.message == (
        f"User: {session('sfn')} is not authorized to perform: sagemaker:CreateTrainingJob on resource: "
        f"{SM}:training-job/another-project-train because no identity-based policy allows the "
        "sagemaker:CreateTrainingJob action"
    )


def test_removing_the_statement_that_grants_create_training_job_refuses_it(app):
    trimmed = without_action(app.role_policies("ReleaseStateMachine"), "sagemaker:CreateTrainingJob")
    decision = call(trimmed, "sfn", "sagemaker", "CreateTrainingJob", TRAINING_JOB)
    assert not decision.allowed and decision.checks[-1][2].denied_by == IMPLICIT_DENY


def test_state_machine_role_passes_the_sagemaker_role_to_sagemaker_only(app):
    policies = app.role_policies("ReleaseStateMachine")
    to_sagemaker = evaluate(
        policies, "iam:PassRole", SAGEMAKER_ROLE, {"iam:PassedToService": "sagemaker.amazonaws.com"}
    )
    assert to_sagemaker.allowed
    assert not evaluate(
        policies, "iam:PassRole", SAGEMAKER_ROLE, {"iam:PassedToService": "lambda.amazonaws.com"}
    ).allowed
    other_role = f"arn:aws:iam::{ACCOUNT}:role/admin"
    assert not call(
        policies, "sfn", "sagemaker", "CreateTrainingJob", {**TRAINING_JOB, "RoleArn": other_role}
    ).allowed


@pytest.mark.parametrize(
    ("service", "operation", "params"),
    [
        ("sagemaker", "DescribeTrainingJob", {"TrainingJobName": NAMES.training_job}),
        ("sagemaker", "ListTags", {"ResourceArn": f"{SM}:training-job/{NAMES.training_job}"}),
        (
            "sagemaker",
            "CreateTransformJob",
            {"TransformJobName": NAMES.transform_job, "ModelName": NAMES.evaluation_model},
        ),
        ("sagemaker", "CreateModel", {"ModelName": NAMES.model, "ExecutionRoleArn": SAGEMAKER_ROLE}),
        (
            "sagemaker",
            "CreateEndpointConfig",
            {"EndpointConfigName": NAMES.endpoint_config, "ProductionVariants": []},
        ),
        (
            "sagemaker",
            "UpdateEndpoint",
            {"EndpointName": "mlops-iris-staging", "EndpointConfigName": NAMES.endpoint_config},
        ),
        ("sagemaker", "ListEndpoints", {"NameContains": "mlops-iris-staging"}),
        ("sagemaker", "CreateModelPackage", {"ModelPackageGroupName": "mlops-iris"}),
        (
            "sagemaker",
            "UpdateModelPackage",
            {"ModelPackageArn": f"{SM}:model-package/mlops-iris/3", "ModelApprovalStatus": "Approved"},
        ),
        ("events", "PutRule", {"Name": "StepFunctionsGetEventsForSageMakerTrainingJobsRule"}),
        (
            "events",
            "PutTargets",
            {"Rule": "StepFunctionsGetEventsForSageMakerTransformJobsRule", "Targets": []},
        ),
        (
            "lambda",
            "Invoke",
            {"FunctionName": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:mlops-iris-staging-NotifyFunction"},
        ),
    ],
)
def test_state_machine_role_allows_the_release_tasks_calls(app, service, operation, params):
    decision = call(app.role_policies("ReleaseStateMachine"), "sfn", service, operation, params)
    assert decision.allowed, decision.message


@pytest.mark.parametrize(
    ("service", "operation", "params"),
    [
        (
            "sagemaker",
            "UpdateEndpoint",
            {"EndpointName": "mlops-iris-prod", "EndpointConfigName": NAMES.endpoint_config},
        ),
        ("events", "PutRule", {"Name": "SomeOtherRule"}),
        ("lambda", "Invoke", {"FunctionName": "someone-elses-function"}),
        ("sagemaker", "DeleteEndpoint", {"EndpointName": "mlops-iris-staging"}),
    ],
)
def test_state_machine_role_refuses_near_misses(app, service, operation, params):
    assert not call(app.role_policies("ReleaseStateMachine"), "sfn", service, operation, params).allowed


# --- the SageMaker execution role -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operation", "params", "allowed"),
    [
        ("ListObjectsV2", {"Bucket": BUCKET, "Prefix": "data/train/"}, True),
        ("ListObjectsV2", {"Bucket": BUCKET, "Prefix": "evaluation/"}, False),
        ("ListObjectsV2", {"Bucket": BUCKET}, False),
        ("GetObject", {"Bucket": BUCKET, "Key": "data/train/iris.csv"}, True),
        ("HeadObject", {"Bucket": BUCKET, "Key": f"training/{NAMES.training_job}/output/model.tar.gz"}, True),
        ("PutObject", {"Bucket": BUCKET, "Key": f"training/{NAMES.training_job}/output/model.tar.gz"}, True),
        ("PutObject", {"Bucket": BUCKET, "Key": "data/train/iris.csv"}, False),
        ("GetObject", {"Bucket": "another-bucket", "Key": "data/train/iris.csv"}, False),
    ],
)
def test_sagemaker_role_reads_and_writes_only_its_prefixes(app, operation, params, allowed):
    assert call(app.role_policies("SageMakerExecutionRole"), "sm", "s3", operation, params).allowed is allowed


OTHER_STAGE = release_names_for("mlops-iris", "prod", execution_name_for("0123abc", 1))


@pytest.mark.parametrize(
    ("operation", "params", "allowed"),
    [
        ("ListObjectsV2", {"Bucket": BUCKET, "Prefix": NAMES.checkpoints}, True),
        ("GetObject", {"Bucket": BUCKET, "Key": f"{NAMES.checkpoints}step-0001.ckpt"}, True),
        ("PutObject", {"Bucket": BUCKET, "Key": f"{NAMES.checkpoints}step-0001.ckpt"}, True),
        ("ListObjectsV2", {"Bucket": BUCKET, "Prefix": "checkpoints/"}, False),
        ("PutObject", {"Bucket": BUCKET, "Key": f"{OTHER_STAGE.checkpoints}step-0001.ckpt"}, False),
        ("DeleteObject", {"Bucket": BUCKET, "Key": f"{NAMES.checkpoints}step-0001.ckpt"}, False),
    ],
)
def test_sagemaker_role_syncs_only_its_stages_training_checkpoints(app, operation, params, allowed):
    assert call(app.role_policies("SageMakerExecutionRole"), "sm", "s3", operation, params).allowed is allowed


def test_sagemaker_role_publishes_metrics_only_in_sagemakers_namespace(app):
    policies = app.role_policies("SageMakerExecutionRole")
    metrics = {"Namespace": "/aws/sagemaker/TrainingJobs", "MetricData": []}
    assert call(policies, "sm", "cloudwatch", "PutMetricData", metrics).allowed
    assert not call(policies, "sm", "cloudwatch", "PutMetricData", {**metrics, "Namespace": "Custom"}).allowed


def test_sagemaker_role_writes_its_job_logs(app):
    params = {"logGroupName": "/aws/sagemaker/TrainingJobs", "logStreamName": f"{NAMES.training_job}/algo-1"}
    assert call(app.role_policies("SageMakerExecutionRole"), "sm", "logs", "PutLogEvents", params).allowed


def test_prod_sagemaker_role_reads_staging_model_artifacts_of_its_own_account_only(prod_app):
    policies = prod_app.role_policies("SageMakerExecutionRole")
    params = {"Bucket": "staging-bucket", "Key": f"training/{NAMES.training_job}/output/model.tar.gz"}
    assert call(policies, "sm", "s3", "GetObject", params).allowed
    assert not call(
        policies, "sm", "s3", "GetObject", params, context={"s3:ResourceAccount": "999999999999"}
    ).allowed


def test_only_sagemaker_may_assume_the_sagemaker_role(app):
    trust = app.trust_policy("SageMakerExecutionRole")
    assert trust_allows(trust, "Service", "sagemaker.amazonaws.com").allowed
    assert not trust_allows(trust, "Service", "lambda.amazonaws.com").allowed


# --- the functions' roles ---------------------------------------------------------------------------------


def test_approval_request_function_records_reads_its_key_and_mails_from_the_sender(app):
    policies = app.role_policies("ApprovalRequestFunction")
    table = "mlops-iris-staging-ApprovalTable"
    assert call(policies, "fn", "dynamodb", "PutItem", {"TableName": table, "Item": {}}).allowed
    assert call(policies, "fn", "secretsmanager", "GetSecretValue", {"SecretId": SECRET_ARN}).allowed
    by_name = call(
        policies,
        "fn",
        "secretsmanager",
        "GetSecretValue",
        {"SecretId": "LinkSigningSecret"},
        lookup=lambda *_: SECRET_ARN,
    )
    assert by_name.allowed
    mail = {
        "Source": "Releases <releases@example.com>",
        "Destination": {"ToAddresses": ["approver@example.org"]},
    }
    assert call(policies, "fn", "ses", "SendEmail", mail).allowed
    refused = call(policies, "fn", "ses", "SendEmail", {**mail, "Source": "someone@elsewhere.net"})
    assert (refused.allowed, refused.code) == (False, "AccessDenied")
    assert not call(policies, "fn", "dynamodb", "DeleteItem", {"TableName": table, "Key": {}}).allowed


def test_approval_response_function_answers_only_its_release_state_machine(app):
    policies = app.role_policies("ApprovalResponseFunction")
    machines = {"ours": STATE_MACHINE, "theirs": STATE_MACHINE.replace("mlops-iris", "other")}

    def answer(token: str):
        params = {"taskToken": token, "output": "{}"}
        return call(
            policies,
            "fn",
            "stepfunctions",
            "SendTaskSuccess",
            params,
            lookup=lambda _p, _t, t: machines.get(t),
        )

    assert answer("ours").allowed
    assert answer("theirs").message.endswith(
        f"on resource: {machines['theirs']} because no identity-based policy allows the states:SendTaskSuccess action"
    )
    unknown = answer("no-such-token")
    assert not unknown.allowed and "taskToken" in unknown.unevaluated[0]


def test_notify_function_publishes_to_its_topic_only(app):
    policies = app.role_policies("NotifyFunction")
    topic = app.ref("NotificationTopic")
    assert call(policies, "fn", "sns", "Publish", {"TopicArn": topic, "Message": "m"}).allowed
    refused = call(policies, "fn", "sns", "Publish", {"TopicArn": f"{topic}-other", "Message": "m"})
    assert (refused.allowed, refused.code) == (False, "AuthorizationError")


def test_inference_function_invokes_its_stages_endpoint_only(app):
    policies = app.role_policies("InferenceFunction")
    body = {"Body": b"4.5,1.3,0.3,0.3", "ContentType": "text/csv"}
    assert call(
        policies, "fn", "sagemaker-runtime", "InvokeEndpoint", {"EndpointName": "mlops-iris-staging", **body}
    ).allowed
    assert not call(
        policies, "fn", "sagemaker-runtime", "InvokeEndpoint", {"EndpointName": "mlops-iris-prod", **body}
    ).allowed


# --- the GitHub release role ------------------------------------------------------------------------------


def test_release_role_pushes_the_image_and_starts_and_follows_its_release(oidc):
    policies = oidc.role_policies("ReleaseRole")
    assert call(policies, "release", "ecr", "GetAuthorizationToken", {}).allowed
    assert call(
        policies, "release", "ecr", "PutImage", {"repositoryName": "mlops-iris", "imageManifest": "{}"}
    ).allowed
    assert call(
        policies, "release", "stepfunctions", "StartExecution", {"stateMachineArn": STATE_MACHINE}
    ).allowed
    execution = STATE_MACHINE.replace(":stateMachine:", ":execution:") + ":0123abc-1"
    assert call(
        policies, "release", "stepfunctions", "DescribeExecution", {"executionArn": execution}
    ).allowed


def test_release_role_refuses_another_repository_or_stage(oidc):
    policies = oidc.role_policies("ReleaseRole")
    assert not call(
        policies, "release", "ecr", "PutImage", {"repositoryName": "other", "imageManifest": "{}"}
    ).allowed
    prod = STATE_MACHINE.replace("staging", "prod")
    refused = call(policies, "release", "stepfunctions", "StartExecution", {"stateMachineArn": prod})
    assert (refused.allowed, refused.code) == (False, "AccessDeniedException")


def test_each_release_role_reads_its_own_stages_endpoint_and_only_prod_reads_stagings(oidc):
    staging, prod = {"EndpointName": "mlops-iris-staging"}, {"EndpointName": "mlops-iris-prod"}
    staging_role = oidc.role_policies("ReleaseRole")
    assert call(staging_role, "rollback", "sagemaker", "DescribeEndpoint", staging).allowed
    assert not call(staging_role, "rollback", "sagemaker", "DescribeEndpoint", prod).allowed
    prod_role = Resolved(OIDC_TEMPLATE, Stage="prod").role_policies("ReleaseRole")
    assert call(prod_role, "promote", "sagemaker", "DescribeEndpoint", staging).allowed
    assert call(prod_role, "rollback", "sagemaker", "DescribeEndpoint", prod).allowed
    assert not call(
        prod_role, "promote", "sagemaker", "DescribeEndpoint", {"EndpointName": "other-prod"}
    ).allowed


GITHUB = "token.actions.githubusercontent.com"
MAIN = "repo:octo-org/sagemaker-sfn-mlops:ref:refs/heads/main"


def assume(trust: dict, sub: str, aud: str = "sts.amazonaws.com", provider: str = PROVIDER_ARN):
    context = oidc_context(f"https://{GITHUB}", {"sub": sub, "aud": aud})
    return trust_allows(trust, "Federated", provider, "sts:AssumeRoleWithWebIdentity", context)


def test_release_role_trusts_the_main_branch_of_its_repository(oidc):
    assert assume(oidc.trust_policy("ReleaseRole"), MAIN).allowed


@pytest.mark.parametrize(
    ("sub", "aud", "provider"),
    [
        ("repo:octo-org/another-repo:ref:refs/heads/main", "sts.amazonaws.com", PROVIDER_ARN),
        ("repo:someone/sagemaker-sfn-mlops:ref:refs/heads/main", "sts.amazonaws.com", PROVIDER_ARN),
        ("repo:octo-org/sagemaker-sfn-mlops:ref:refs/heads/feature", "sts.amazonaws.com", PROVIDER_ARN),
        ("repo:octo-org/sagemaker-sfn-mlops:pull_request", "sts.amazonaws.com", PROVIDER_ARN),
        ("repo:octo-org/sagemaker-sfn-mlops:environment:production", "sts.amazonaws.com", PROVIDER_ARN),
        (MAIN, "https://github.com/octo-org", PROVIDER_ARN),
        (MAIN, "sts.amazonaws.com", f"arn:aws:iam::{ACCOUNT}:oidc-provider/gitlab.com"),
    ],
)
def test_release_role_refuses_another_repository_branch_environment_audience_or_provider(
    oidc, sub, aud, provider
):
    decision = assume(oidc.trust_policy("ReleaseRole"), sub, aud, provider)
    assert not decision.allowed and not decision.unevaluated


def test_with_an_environment_the_release_role_trusts_that_environment_and_not_the_branch():
    trust = Resolved(OIDC_TEMPLATE, Environment="production").trust_policy("ReleaseRole")
    assert assume(trust, "repo:octo-org/sagemaker-sfn-mlops:environment:production").allowed
    assert not assume(trust, "repo:octo-org/sagemaker-sfn-mlops:environment:staging").allowed
    assert not assume(trust, MAIN).allowed
