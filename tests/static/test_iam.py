"""Least privilege and supply-chain rules over infra/*.yaml, the workflows and the buildspec.

Each rule is a function in policy_checks that returns findings; the tests below assert the real files have
none, and that a copy with the mistake the rule exists for is reported.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
import yaml
from policy_checks import (
    ASSUMES_ROLE,
    ENDPOINT_ARN,
    EXECUTIONS_ARN,
    INFRA,
    PROMOTION_CHECKS,
    REPOSITORY_ARN,
    ROLLBACK_CHECKS,
    SAGEMAKER_ROLE_ARN,
    STATE_MACHINE_ARN,
    WORKFLOWS,
    bucket_findings,
    buildspec_commands,
    buildspec_findings,
    invoke_endpoint_findings,
    load_template,
    load_workflow,
    missing_integration_actions,
    oidc_trust_findings,
    opaque_policies,
    pass_role_findings,
    release_role_findings,
    renderings,
    role_statements,
    statements,
    unscoped_resources,
    values,
    wildcard_actions,
    workflow_findings,
)

TEMPLATES = sorted(INFRA.glob("*.yaml"))
APP = INFRA / "template.yaml"
OIDC = INFRA / "github-oidc.yaml"
PIPELINE = INFRA / "codepipeline.yaml"
BUILDSPEC = INFRA / "buildspec.yml"
WORKFLOW_FILES = sorted(WORKFLOWS.glob("*.yml"))
CODEBUILD_EXTRA = {
    "logs:CreateLogStream": {"${ReleaseBuildLogGroup.Arn}"},
    "logs:PutLogEvents": {"${ReleaseBuildLogGroup.Arn}"},
    "s3:GetObject": {"${PipelineArtifactBucket.Arn}/*"},
    "s3:GetObjectVersion": {"${PipelineArtifactBucket.Arn}/*"},
}


@pytest.fixture(scope="module")
def app() -> dict:
    return load_template(APP)


@pytest.fixture(scope="module")
def oidc() -> dict:
    return load_template(OIDC)


@pytest.fixture(scope="module")
def pipeline() -> dict:
    return load_template(PIPELINE)


def test_the_three_templates_and_two_workflows_are_checked():
    assert {p.name for p in TEMPLATES} >= {"template.yaml", "github-oidc.yaml", "codepipeline.yaml"}
    assert {p.name for p in WORKFLOW_FILES} >= {"ci.yml", "release.yml"}


# --- every template --------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_no_statement_grants_a_wildcard_action(path: Path):
    assert wildcard_actions(load_template(path)) == []


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_resource_star_only_for_actions_without_resource_level_permissions(path: Path):
    assert unscoped_resources(load_template(path)) == []


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_every_policy_is_an_inline_statement_list_so_it_can_be_checked(path: Path):
    assert opaque_policies(load_template(path)) == []


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_pass_role_only_hands_the_sagemaker_role_to_sagemaker(path: Path):
    assert pass_role_findings(load_template(path)) == []


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_invoke_endpoint_only_on_this_stacks_endpoint(path: Path):
    assert invoke_endpoint_findings(load_template(path)) == []


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_every_bucket_is_encrypted_private_and_tls_only(path: Path):
    assert bucket_findings(load_template(path)) == []


def test_wildcard_actions_are_reported(app):
    broken = copy.deepcopy(app)
    policy = broken["Resources"]["InferenceFunction"]["Properties"]["Policies"][0]
    policy["Statement"][0]["Action"] = ["sagemaker:*"]
    broken["Resources"]["NotifyFunction"]["Properties"]["Policies"][0]["Statement"][0]["Action"] = "*"
    assert len(wildcard_actions(broken)) == 2


def test_a_deny_may_name_every_s3_action_but_an_allow_may_not(app):
    assert any(s.body.get("Action") == "s3:*" for s in statements(app) if s.kind == "resource")
    broken = copy.deepcopy(app)
    broken["Resources"]["ArtifactBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]["Effect"] = (
        "Allow"
    )
    assert wildcard_actions(broken)


def test_resource_star_on_a_scoped_action_is_reported(app):
    broken = copy.deepcopy(app)
    broken["Resources"]["NotifyFunction"]["Properties"]["Policies"][0]["Statement"][0]["Resource"] = "*"
    assert unscoped_resources(broken) == [
        "NotifyFunction/Policies/0/PublishReleaseNotifications: sns:Publish on Resource '*' "
        "(only actions without resource-level permissions may have it)"
    ]


def test_a_sam_policy_template_is_reported_as_uncheckable(app):
    broken = copy.deepcopy(app)
    broken["Resources"]["EvaluateFunction"]["Properties"]["Policies"].append(
        {"S3CrudPolicy": {"BucketName": "x"}}
    )
    assert opaque_policies(broken)


def test_pass_role_on_any_role_or_to_any_service_is_reported(app):
    broken = copy.deepcopy(app)
    statement = next(
        s
        for s in broken["Resources"]["ReleaseStateMachine"]["Properties"]["Policies"][0]["Statement"]
        if s["Action"] == "iam:PassRole"
    )
    statement["Resource"] = "*"
    del statement["Condition"]
    assert len(pass_role_findings(broken)) == 2


def test_invoke_endpoint_on_every_endpoint_is_reported(app):
    broken = copy.deepcopy(app)
    statement = broken["Resources"]["InferenceFunction"]["Properties"]["Policies"][0]["Statement"][0]
    statement["Resource"] = {
        "Fn::Sub": "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:endpoint/*"
    }
    assert invoke_endpoint_findings(broken)


def test_an_unencrypted_public_bucket_without_tls_policy_is_reported(app):
    broken = copy.deepcopy(app)
    bucket = broken["Resources"]["ArtifactBucket"]["Properties"]
    del bucket["BucketEncryption"]
    bucket["PublicAccessBlockConfiguration"]["BlockPublicPolicy"] = False
    del broken["Resources"]["ArtifactBucketPolicy"]
    assert len(bucket_findings(broken)) == 3


# --- the app template ----------------------------------------------------------------------------------


def test_the_inference_function_can_invoke_only_the_stages_endpoint(app):
    granted = {action: s.resources for s in role_statements(app, "InferenceFunction") for action in s.actions}
    assert granted == {"sagemaker:InvokeEndpoint": [ENDPOINT_ARN]}


def test_function_policies_are_least_privilege(app):
    def grants(function: str) -> dict[str, list[str]]:
        result: dict[str, list[str]] = {}
        for statement in role_statements(app, function):
            for action in statement.actions:
                result.setdefault(action, []).extend(statement.resources)
        return result

    assert grants("NotifyFunction") == {"sns:Publish": ["${NotificationTopic}"]}
    assert set(grants("ApprovalRequestFunction")) == {
        "dynamodb:PutItem",
        "secretsmanager:GetSecretValue",
        "ses:SendEmail",
        "ses:SendRawEmail",
    }
    response = grants("ApprovalResponseFunction")
    assert set(response) == {
        "dynamodb:GetItem",
        "dynamodb:UpdateItem",
        "s3:GetObject",
        "secretsmanager:GetSecretValue",
        "states:SendTaskSuccess",
        "states:SendTaskFailure",
    }
    assert response["states:SendTaskSuccess"] == [STATE_MACHINE_ARN]
    assert response["s3:GetObject"] == ["${ArtifactBucket.Arn}/transform/*"]  # presigned predictions
    evaluate = grants("EvaluateFunction")
    assert evaluate["s3:PutObject"] == ["${ArtifactBucket.Arn}/evaluation/*"]
    assert evaluate["sagemaker:InvokeEndpoint"] == [ENDPOINT_ARN]


def test_the_state_machine_reaches_only_project_prefixed_sagemaker_resources(app):
    for statement in role_statements(app, "ReleaseStateMachine"):
        if any(a.startswith("sagemaker:") for a in statement.actions) and statement.resources != ["*"]:
            for resource in statement.resources:
                assert (
                    re.search(
                        r":(training-job|transform-job|model|endpoint-config)/\$\{ProjectName\}-\*$", resource
                    )
                    or re.search(r":model-package/\$\{ProjectName\}/\*$", resource)
                    or re.search(r":model-package-group/\$\{ProjectName\}$", resource)
                    or resource == ENDPOINT_ARN
                ), resource


def test_the_state_machine_can_wait_on_sagemaker_jobs_and_invoke_only_its_functions(app):
    granted: dict[str, list[str]] = {}
    for statement in role_statements(app, "ReleaseStateMachine"):
        for action in statement.actions:
            granted.setdefault(action, []).extend(statement.resources)
    assert sorted(granted["events:PutRule"]) == [
        f"arn:${{AWS::Partition}}:events:${{AWS::Region}}:${{AWS::AccountId}}:rule/StepFunctionsGetEventsForSageMaker{kind}JobsRule"
        for kind in ("Training", "Transform")
    ]
    substitutions = app["Resources"]["ReleaseStateMachine"]["Properties"]["DefinitionSubstitutions"]
    functions = {
        text for value in substitutions.values() for text in renderings(value) if "Function.Arn" in text
    }
    assert len(functions) >= 3
    assert {r.removesuffix(":*") for r in granted["lambda:InvokeFunction"]} == functions
    assert granted["iam:PassRole"] == [SAGEMAKER_ROLE_ARN]


DEFINITION = json.loads((INFRA.parent / "statemachine" / "mlops.asl.json").read_text())


def test_the_state_machine_role_grants_what_each_integration_in_the_definition_needs(app):
    assert missing_integration_actions(app, "ReleaseStateMachine", DEFINITION) == []


def test_a_sync_job_without_list_tags_is_reported(app):
    broken = copy.deepcopy(app)
    for statement in broken["Resources"]["ReleaseStateMachine"]["Properties"]["Policies"][0]["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        statement["Action"] = [a for a in actions if a != "sagemaker:ListTags"] or ["sagemaker:DescribeModel"]
    findings = missing_integration_actions(broken, "ReleaseStateMachine", DEFINITION)
    assert "Train (arn:aws:states:::sagemaker:createTrainingJob.sync) needs sagemaker:ListTags" in findings


def test_state_machine_logs_without_execution_data_and_traces(app):
    props = app["Resources"]["ReleaseStateMachine"]["Properties"]
    assert props["Logging"]["IncludeExecutionData"] is False
    assert props["Tracing"] == {"Enabled": True}


def test_names_built_from_the_state_machine_name_match_it(app, oidc):
    name = renderings(app["Resources"]["ReleaseStateMachine"]["Properties"]["Name"])
    assert name == ["${ProjectName}-${Stage}-release"]
    assert STATE_MACHINE_ARN.endswith(":stateMachine:" + name[0])
    outputs = oidc["Outputs"]["ReleaseStateMachineArn"]["Value"]
    assert renderings(outputs) == [STATE_MACHINE_ARN]


def test_the_rollback_alarm_substitutions_name_the_alarms_the_execution_role_may_read(app):
    substitutions = app["Resources"]["ReleaseStateMachine"]["Properties"]["DefinitionSubstitutions"]
    alarms = {
        "EndpointErrorsAlarmName": ("EndpointErrorsAlarm", "Invocation5XXErrors"),
        "EndpointLatencyAlarmName": ("EndpointLatencyAlarm", "ModelLatency"),
        "ModelErrorsAlarmName": ("ModelErrorsAlarm", "InvocationModelErrors"),
    }
    definition = json.loads((INFRA.parent / "statemachine" / "mlops.asl.json").read_text())
    rollback = definition["States"]["UpdateEndpoint"]["Parameters"]["DeploymentConfig"][
        "AutoRollbackConfiguration"
    ]
    assert [a["AlarmName"] for a in rollback["Alarms"]] == [f"${{{name}}}" for name in alarms]
    readable = [
        r
        for s in role_statements(app, "SageMakerExecutionRole")
        if "cloudwatch:DescribeAlarms" in s.actions
        for resource in values(s.body.get("Resource"))
        for r in renderings(resource)
    ]
    for substitution, (resource, metric) in alarms.items():
        alarm = app["Resources"][resource]["Properties"]
        assert renderings(substitutions[substitution]) == renderings(alarm["AlarmName"])
        assert alarm["MetricName"] == metric and alarm["Namespace"] == "AWS/SageMaker"
        (name,) = renderings(alarm["AlarmName"])
        assert (
            readable.count(
                f"arn:${{AWS::Partition}}:cloudwatch:${{AWS::Region}}:${{AWS::AccountId}}:alarm:{name}"
            )
            == 1
        )


def test_inference_auth_is_a_parameter_and_approval_routes_stay_open(app):
    assert app["Parameters"]["InferenceAuth"]["AllowedValues"] == ["API_KEY", "IAM", "NONE"]
    assert app["Parameters"]["InferenceAuth"]["Default"] == "API_KEY"
    paths = app["Resources"]["InferenceApi"]["Properties"]["DefinitionBody"]["paths"]
    assert paths["/v1/invokeSagemakerAPI"]["post"]["security"] == {
        "Fn::If": [
            "InferenceUsesApiKey",
            [{"api_key": []}],
            {"Fn::If": ["InferenceUsesIam", [{"sigv4": []}], {"Ref": "AWS::NoValue"}]},
        ]
    }
    assert app["Conditions"]["InferenceUsesApiKey"] == {"Fn::Equals": [{"Ref": "InferenceAuth"}, "API_KEY"]}
    assert app["Resources"]["InferenceUsagePlanKey"]["Condition"] == "InferenceUsesApiKey"
    assert set(paths) == {"/v1/invokeSagemakerAPI"}, "the approval routes must carry no security"
    stage = app["Resources"]["InferenceApi"]["Properties"]
    assert stage["MethodSettings"][0]["ThrottlingRateLimit"] == {"Ref": "ApiThrottlingRateLimit"}
    assert "DestinationArn" in stage["AccessLogSetting"]


# The local runtime resolves substitutions and environment variables itself: only these names.
LOCAL_RUNTIME_NAMES = {
    "ArtifactBucket",
    "NotificationTopic",
    "ApprovalTable",
    "LinkSigningSecret",
    "InferenceApi",
    "InferenceApiKey",
    "SageMakerExecutionRole.Arn",
}


def test_substitutions_and_environment_reference_only_what_the_local_runtime_resolves(app):
    allowed = (
        set(app["Parameters"])
        | LOCAL_RUNTIME_NAMES
        | {
            f"{logical}.Arn"
            for logical, r in app["Resources"].items()
            if r["Type"] == "AWS::Serverless::Function"
        }
    )
    props = app["Resources"]["ReleaseStateMachine"]["Properties"]
    referenced = list(props["DefinitionSubstitutions"].values())
    referenced += list(app["Globals"]["Function"]["Environment"]["Variables"].values())
    for resource in app["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            referenced += list(resource["Properties"].get("Environment", {}).get("Variables", {}).values())
    for value in referenced:
        for text in renderings(value):
            for name in re.findall(r"\$\{([^}]+)\}", text):
                assert name.startswith("AWS::") or name in allowed, f"{name} in {value}"


# --- GitHub OIDC and the release roles -----------------------------------------------------------------


def test_oidc_trust_is_exact_audience_and_subject(oidc):
    assert oidc_trust_findings(oidc) == []
    equals = next(s for s in statements(oidc) if s.kind == "trust")
    subjects = values(equals.body["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"])
    assert subjects == [
        "repo:${GitHubOwner}/${GitHubRepo}:environment:${Environment}",
        "repo:${GitHubOwner}/${GitHubRepo}:ref:refs/heads/${Branch}",
    ]


def _trust_condition(template: dict) -> dict:
    return template["Resources"]["ReleaseRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0][
        "Condition"
    ]


def test_a_wildcard_subject_is_reported(oidc):
    broken = copy.deepcopy(oidc)
    _trust_condition(broken)["StringEquals"]["token.actions.githubusercontent.com:sub"] = {
        "Fn::Sub": "repo:${GitHubOwner}/${GitHubRepo}:*"
    }
    assert oidc_trust_findings(broken)


def test_string_like_is_reported(oidc):
    broken = copy.deepcopy(oidc)
    condition = _trust_condition(broken)
    condition["StringLike"] = {"token.actions.githubusercontent.com:sub": "repo:o/r:*"}
    assert any("StringLike" in f for f in oidc_trust_findings(broken))


def test_a_wrong_audience_is_reported(oidc):
    broken = copy.deepcopy(oidc)
    _trust_condition(broken)["StringEquals"]["token.actions.githubusercontent.com:aud"] = "*"
    assert oidc_trust_findings(broken)


def test_a_branch_parameter_that_accepts_a_wildcard_is_reported(oidc):
    broken = copy.deepcopy(oidc)
    broken["Parameters"]["Branch"]["AllowedPattern"] = ".*"
    assert any("Branch" in f for f in oidc_trust_findings(broken))


def _both(*grants: dict[str, set[str]]) -> dict[str, set[str]]:
    merged: dict[str, set[str]] = {}
    for grant in grants:
        for action, resources in grant.items():
            merged.setdefault(action, set()).update(resources)
    return merged


def test_the_github_release_role_pushes_one_repository_and_starts_one_state_machine(oidc):
    # Besides what promote and rollback read (next test).
    assert release_role_findings(oidc, "ReleaseRole", _both(PROMOTION_CHECKS, ROLLBACK_CHECKS)) == []
    granted = {a for s in role_statements(oidc, "ReleaseRole") for a in s.actions}
    assert {"ecr:PutImage", "states:StartExecution", "states:DescribeExecution"} <= granted


def test_the_release_role_reads_its_own_stage_and_only_prod_reads_what_staging_serves(oidc):
    # `mlops rollback` reads the group's versions and its own stage's endpoint, config and models (every stage);
    # `mlops promote` reads staging's and asks it once (the prod role only).
    prod_only: dict[str, set[str]] = {}
    every_stage: dict[str, set[str]] = {}
    for statement in role_statements(oidc, "ReleaseRole"):
        for action in statement.actions:
            if action.startswith("sagemaker:"):
                policy = oidc["Resources"][statement.where.split("/")[0]]
                condition = oidc["Conditions"].get(policy.get("Condition", ""))
                if condition is None:
                    every_stage.setdefault(action, set()).update(statement.resources)
                else:
                    assert condition == {"Fn::Equals": [{"Ref": "Stage"}, "prod"]}
                    prod_only.setdefault(action, set()).update(statement.resources)
    assert prod_only == PROMOTION_CHECKS
    assert every_stage == ROLLBACK_CHECKS


def test_the_codebuild_release_role_has_the_same_reach(pipeline):
    assert release_role_findings(pipeline, "ReleaseBuildRole", CODEBUILD_EXTRA) == []


def test_a_release_role_pushing_anywhere_or_doing_more_is_reported(oidc):
    broken = copy.deepcopy(oidc)
    policy = broken["Resources"]["ReleaseRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    push = next(s for s in policy if "ecr:PutImage" in s["Action"])
    push["Resource"] = {"Fn::Sub": "arn:${AWS::Partition}:ecr:${AWS::Region}:${AWS::AccountId}:repository/*"}
    policy.append({"Effect": "Allow", "Action": "states:StopExecution", "Resource": EXECUTIONS_ARN})
    findings = release_role_findings(broken, "ReleaseRole")
    assert any("ecr:PutImage" in f for f in findings)
    assert any("may not states:StopExecution" in f for f in findings)


def test_the_image_repository_is_immutable_and_scanned(oidc):
    repository = oidc["Resources"]["ImageRepository"]["Properties"]
    assert repository["ImageTagMutability"] == "IMMUTABLE"
    assert repository["ImageScanningConfiguration"] == {"ScanOnPush": True}
    assert "LifecyclePolicyText" in repository["LifecyclePolicy"]
    assert renderings(oidc["Outputs"]["ImageRepositoryName"]["Value"]) == ["${ProjectName}"]
    assert REPOSITORY_ARN.endswith("repository/${ProjectName}")


# --- workflows and buildspec ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_workflow_follows_the_hardening_rules(path: Path):
    assert workflow_findings(load_workflow(path), path.name) == []


@pytest.fixture
def release_workflow() -> dict:
    return load_workflow(WORKFLOWS / "release.yml")


def test_unpinned_action_is_reported(release_workflow):
    broken = copy.deepcopy(release_workflow)
    broken["jobs"]["release"]["steps"][0]["uses"] = "actions/checkout@v7"
    assert workflow_findings(broken, "release.yml") == [
        "release.yml/release: actions/checkout@v7 is not pinned by a 40-hex commit SHA"
    ]


def test_expression_inside_run_is_reported(release_workflow):
    broken = copy.deepcopy(release_workflow)
    broken["jobs"]["release"]["steps"].append({"name": "x", "run": "echo ${{ inputs.ref }}"})
    assert len(workflow_findings(broken, "release.yml")) == 1


def test_missing_top_permissions_or_stray_id_token_is_reported(release_workflow):
    broken = copy.deepcopy(release_workflow)
    del broken["permissions"]
    broken["jobs"]["lint"] = {"runs-on": "ubuntu-24.04", "permissions": {"id-token": "write"}, "steps": []}
    assert len(workflow_findings(broken, "release.yml")) == 2


def test_checkout_that_keeps_credentials_is_reported(release_workflow):
    broken = copy.deepcopy(release_workflow)
    del broken["jobs"]["release"]["steps"][0]["with"]["persist-credentials"]
    assert workflow_findings(broken, "release.yml")


def test_a_release_that_cancels_releases_in_progress_is_reported(release_workflow):
    broken = copy.deepcopy(release_workflow)
    broken["concurrency"]["cancel-in-progress"] = True
    assert workflow_findings(broken, "release.yml")


def _run_blocks(workflow: dict) -> str:
    return "\n".join(
        step.get("run", "") for job in workflow["jobs"].values() for step in job.get("steps", [])
    )


def _step_using(workflow: dict, action: str) -> dict:
    return next(
        step
        for job in workflow["jobs"].values()
        for step in job["steps"]
        if step.get("uses", "").startswith(action)
    )


def test_release_workflow_calls_the_mlops_commands_with_the_run_attempt(release_workflow):
    runs = _run_blocks(release_workflow)
    assert "mlops image-exists" in runs
    assert re.search(r'mlops release\b[\s\S]*--attempt "\$ATTEMPT"', runs)
    start = next(
        s for s in release_workflow["jobs"]["release"]["steps"] if "mlops release" in s.get("run", "")
    )
    assert start["env"]["ATTEMPT"] == "${{ github.run_attempt }}"
    assert set(release_workflow["on"]) == {"push", "workflow_dispatch"}
    assert release_workflow["on"]["push"]["branches"] == ["main"]


def test_release_workflow_builds_without_provenance_and_names_sessions_after_the_run(release_workflow):
    build = _step_using(release_workflow, "docker/build-push-action@")
    assert build["with"]["provenance"] is False
    assert "steps.image.outputs.exists == 'false'" in build["if"]
    credentials = _step_using(release_workflow, "aws-actions/configure-aws-credentials@")
    assert "github.run_id" in credentials["with"]["role-session-name"]


def test_ci_runs_the_readme_test_command_and_the_rehearsal():
    runs = _run_blocks(load_workflow(WORKFLOWS / "ci.yml"))
    assert "scripts/test" in runs
    assert "scripts/rehearse" in runs


def test_buildspec_runs_the_same_mlops_commands_and_never_dumps_the_environment():
    buildspec = yaml.safe_load(BUILDSPEC.read_text())
    assert buildspec_findings(buildspec) == []
    commands = "\n".join(buildspec_commands(buildspec))
    assert "mlops image-exists" in commands
    assert "mlops release" in commands
    assert 'COMMIT="$CODEBUILD_RESOLVED_SOURCE_VERSION"' in commands


@pytest.mark.parametrize("dump", ["printenv", "env", "env | sort", "echo start; set", "export -p > vars.txt"])
def test_an_environment_dump_in_the_buildspec_is_reported(dump: str):
    buildspec = yaml.safe_load(BUILDSPEC.read_text())
    buildspec["phases"]["build"]["commands"].insert(0, dump)
    assert buildspec_findings(buildspec)


@pytest.mark.parametrize("harmless", ["set -euo pipefail", 'echo "$ENVIRONMENT"', "aws ecr describe-images"])
def test_commands_that_only_look_like_a_dump_are_not_reported(harmless: str):
    assert buildspec_findings({"phases": {"build": {"commands": [harmless]}}}) == []


def test_release_workflow_refuses_a_commit_that_is_not_on_main_before_it_assumes_the_role(release_workflow):
    steps = release_workflow["jobs"]["release"]["steps"]
    # Ancestry needs main's history, not a one-commit checkout.
    assert steps[0]["uses"].startswith("actions/checkout@") and steps[0]["with"]["fetch-depth"] == 0
    check = next(i for i, s in enumerate(steps) if "mlops check-on-main" in s.get("run", ""))
    credentials = next(i for i, s in enumerate(steps) if s.get("uses", "").startswith(ASSUMES_ROLE))
    assert check < credentials
    assert "if" not in steps[check]  # a push to main is checked too: it costs nothing and cannot be skipped
    assert steps[check]["env"]["COMMIT"] == "${{ steps.commit.outputs.sha }}"
