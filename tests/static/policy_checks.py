"""Checks over the templates, workflows and buildspec. Each returns findings (strings); none means clean.

Templates are read with the local runtime's CloudFormation-aware loader, so ``!Sub``/``!GetAtt``/``!If``
arrive in long form. A value that CloudFormation would compute is rendered as the text it is built from
(``!GetAtt Role.Arn`` → ``${Role.Arn}``); ``!If`` yields every branch, so each possible value is checked.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mlops.local.engine import SDK_SERVICE_NAMES
from mlops.local.iam_actions import iam_prefix
from mlops.local.template import _CfnLoader

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
WORKFLOWS = REPO / ".github" / "workflows"

ARN = "arn:${AWS::Partition}"
REGION_ACCOUNT = "${AWS::Region}:${AWS::AccountId}"
ENDPOINT_ARN = f"{ARN}:sagemaker:{REGION_ACCOUNT}:endpoint/${{ProjectName}}-${{Stage}}"
SAGEMAKER_ARN = f"{ARN}:sagemaker:{REGION_ACCOUNT}"
# What `mlops promote` reads and asks in staging before it starts a prod release (mlops/promotion.py).
PROMOTION_CHECKS: dict[str, set[str]] = {
    "sagemaker:DescribeEndpoint": {f"{SAGEMAKER_ARN}:endpoint/${{ProjectName}}-staging"},
    "sagemaker:DescribeEndpointConfig": {f"{SAGEMAKER_ARN}:endpoint-config/${{ProjectName}}-staging-*"},
    "sagemaker:DescribeModel": {f"{SAGEMAKER_ARN}:model/${{ProjectName}}-staging-*"},
    "sagemaker:InvokeEndpoint": {f"{SAGEMAKER_ARN}:endpoint/${{ProjectName}}-staging"},
}
# What `mlops rollback` reads, for every stage: the group's versions and what the role's own stage serves.
ROLLBACK_CHECKS: dict[str, set[str]] = {
    "sagemaker:DescribeModelPackage": {f"{SAGEMAKER_ARN}:model-package/${{ProjectName}}/*"},
    "sagemaker:DescribeEndpoint": {f"{SAGEMAKER_ARN}:endpoint/${{ProjectName}}-${{Stage}}"},
    "sagemaker:DescribeEndpointConfig": {f"{SAGEMAKER_ARN}:endpoint-config/${{ProjectName}}-${{Stage}}-*"},
    "sagemaker:DescribeModel": {f"{SAGEMAKER_ARN}:model/${{ProjectName}}-${{Stage}}-*"},
}
REPOSITORY_ARN = f"{ARN}:ecr:{REGION_ACCOUNT}:repository/${{ProjectName}}"
STATE_MACHINE_ARN = f"{ARN}:states:{REGION_ACCOUNT}:stateMachine:${{ProjectName}}-${{Stage}}-release"
EXECUTIONS_ARN = f"{ARN}:states:{REGION_ACCOUNT}:execution:${{ProjectName}}-${{Stage}}-release:*"
SAGEMAKER_ROLE_ARN = "${SageMakerExecutionRole.Arn}"
GITHUB_AUDIENCE = "token.actions.githubusercontent.com:aud"
GITHUB_SUBJECT = "token.actions.githubusercontent.com:sub"

ECR_PUSH = {
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchGetImage",
    "ecr:CompleteLayerUpload",
    "ecr:DescribeImages",
    "ecr:GetDownloadUrlForLayer",
    "ecr:InitiateLayerUpload",
    "ecr:PutImage",
    "ecr:UploadLayerPart",
}
# Everything a release role (GitHub's or CodeBuild's) may do, and on what.
RELEASE_ROLE_ALLOWED: dict[str, set[str]] = {
    "ecr:GetAuthorizationToken": {"*"},
    **{action: {REPOSITORY_ARN} for action in ECR_PUSH},
    "states:StartExecution": {STATE_MACHINE_ARN},
    "states:DescribeExecution": {EXECUTIONS_ARN},
}

# Actions that have no resource-level permissions in IAM, so "*" is the only Resource they accept.
RESOURCE_STAR_ALLOWED = {
    "ecr:GetAuthorizationToken": "the registry login token is account-wide",
    **{
        f"sagemaker:{action}": "list actions take no resource"
        for action in ("ListEndpoints", "ListEndpointConfigs", "ListModels")
    },
    "cloudwatch:PutMetricData": "scoped by the cloudwatch:namespace condition instead",
    **{
        f"application-autoscaling:{action}": "a scalable target's ARN has an id assigned at registration; "
        "scoped by the service-namespace and scalable-dimension conditions instead"
        for action in ("RegisterScalableTarget", "PutScalingPolicy")
    },
    "sagemaker:ListTags": "Step Functions' own policies for the SageMaker .sync jobs grant it on '*'",
    **{
        f"logs:{action}": "Step Functions log delivery is configured account-wide"
        for action in (
            "CreateLogDelivery",
            "DeleteLogDelivery",
            "DescribeLogGroups",
            "DescribeResourcePolicies",
            "GetLogDelivery",
            "ListLogDeliveries",
            "PutResourcePolicy",
            "UpdateLogDelivery",
        )
    },
}


# --- reading -------------------------------------------------------------------------------------------


def load_template(path: Path) -> dict[str, Any]:
    return yaml.load(path.read_text(), Loader=_CfnLoader)  # noqa: S506 - a SafeLoader subclass


def load_workflow(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text())
    if True in doc:  # YAML 1.1 reads the key `on` as a boolean
        doc["on"] = doc.pop(True)
    return doc


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def renderings(value: Any) -> list[str]:
    """Every text an intrinsic can evaluate to, with what CloudFormation computes left as ${...}."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, bool | int | float):
        return [str(value).lower() if isinstance(value, bool) else str(value)]
    if isinstance(value, dict) and len(value) == 1:
        ((key, arg),) = value.items()
        if key == "Ref":
            return [] if arg == "AWS::NoValue" else [f"${{{arg}}}"]
        if key == "Fn::GetAtt":
            return ["${" + ".".join(arg if isinstance(arg, list) else arg.split(".", 1)) + "}"]
        if key == "Fn::Sub":
            if isinstance(arg, str):
                return [arg]
            text, variables = arg
            results = [text]
            for name, expr in variables.items():
                results = [r.replace(f"${{{name}}}", v) for r in results for v in renderings(expr) or [""]]
            return results
        if key == "Fn::If":
            _, when_true, when_false = arg
            return renderings(when_true) + renderings(when_false)
        if key.startswith("Fn::"):
            return [f"<{key}>"]
    return [repr(value)]


def values(value: Any) -> list[str]:
    """``renderings`` of a value that may be a list of values."""
    if isinstance(value, dict) and set(value) == {"Fn::If"}:
        _, when_true, when_false = value["Fn::If"]
        return values(when_true) + values(when_false)
    return [text for item in as_list(value) for text in renderings(item)]


@dataclass(frozen=True)
class Statement:
    where: str
    kind: str  # identity | trust | resource
    body: dict[str, Any]

    @property
    def allows(self) -> bool:
        return self.body.get("Effect") == "Allow"

    @property
    def actions(self) -> list[str]:
        return values(self.body.get("Action"))

    @property
    def resources(self) -> list[str]:
        return values(self.body.get("Resource"))


def _from_document(where: str, kind: str, document: Any) -> Iterator[Statement]:
    if not isinstance(document, dict):
        return
    for index, statement in enumerate(as_list(document.get("Statement"))):
        yield Statement(f"{where}/{statement.get('Sid', index)}", kind, statement)


def statements(template: dict[str, Any]) -> Iterator[Statement]:
    """Every IAM statement a template declares: role trust and inline policies, SAM policies, resource policies."""
    sam_globals = template.get("Globals", {}).get("Function", {}).get("Policies")
    for index, policy in enumerate(as_list(sam_globals)):
        yield from _from_document(f"Globals/Policies/{index}", "identity", policy)
    for logical_id, resource in template.get("Resources", {}).items():
        kind, props = resource.get("Type"), resource.get("Properties", {})
        if kind == "AWS::IAM::Role":
            yield from _from_document(logical_id, "trust", props.get("AssumeRolePolicyDocument"))
            for policy in as_list(props.get("Policies")):
                where = f"{logical_id}/{policy.get('PolicyName')}"
                yield from _from_document(where, "identity", policy.get("PolicyDocument"))
        elif kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            yield from _from_document(logical_id, "identity", props.get("PolicyDocument"))
        elif kind in ("AWS::Serverless::Function", "AWS::Serverless::StateMachine"):
            for index, policy in enumerate(as_list(props.get("Policies"))):
                yield from _from_document(f"{logical_id}/Policies/{index}", "identity", policy)
        elif kind in ("AWS::S3::BucketPolicy", "AWS::SNS::TopicPolicy", "AWS::SQS::QueuePolicy"):
            yield from _from_document(logical_id, "resource", props.get("PolicyDocument"))


def role_statements(template: dict[str, Any], role: str) -> list[Statement]:
    """The role's own policies and those of AWS::IAM::Policy resources attached to it."""
    resources = template.get("Resources", {})
    attached = {
        logical_id
        for logical_id, resource in resources.items()
        if resource.get("Type") == "AWS::IAM::Policy"
        and {"Ref": role} in as_list(resource.get("Properties", {}).get("Roles"))
    }
    return [
        s for s in statements(template) if s.kind == "identity" and s.where.split("/")[0] in {role} | attached
    ]


# --- IAM -----------------------------------------------------------------------------------------------


def opaque_policies(template: dict[str, Any]) -> list[str]:
    """SAM policy templates and managed policy names cannot be read here: every policy must be inline."""
    findings = []
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") in ("AWS::Serverless::Function", "AWS::Serverless::StateMachine"):
            for policy in as_list(resource.get("Properties", {}).get("Policies")):
                if not (isinstance(policy, dict) and "Statement" in policy):
                    findings.append(f"{logical_id}: policy {policy!r} is not an inline statement list")
    return findings


def wildcard_actions(template: dict[str, Any]) -> list[str]:
    """No statement that grants may name actions by wildcard (a Deny may: refusing broadly is its point)."""
    findings = []
    for statement in statements(template):
        if statement.kind == "resource" and not statement.allows:
            continue
        if "NotAction" in statement.body:
            findings.append(f"{statement.where}: NotAction grants everything not listed")
        findings += [f"{statement.where}: action {a!r} is a wildcard" for a in statement.actions if "*" in a]
    return findings


def unscoped_resources(template: dict[str, Any]) -> list[str]:
    findings = []
    for statement in statements(template):
        if statement.kind != "identity" or not statement.allows:
            continue
        if "NotResource" in statement.body:
            findings.append(f"{statement.where}: NotResource grants on everything not listed")
        if "*" in statement.resources:
            findings += [
                f"{statement.where}: {action} on Resource '*' (only actions without resource-level "
                "permissions may have it)"
                for action in statement.actions
                if action not in RESOURCE_STAR_ALLOWED
            ]
    return findings


def _string_equals(statement: Statement) -> dict[str, Any]:
    return (statement.body.get("Condition") or {}).get("StringEquals") or {}


def pass_role_findings(template: dict[str, Any]) -> list[str]:
    """iam:PassRole only on the SageMaker execution role, and only to SageMaker."""
    findings = []
    for statement in statements(template):
        if not statement.allows or "iam:passrole" not in {a.lower() for a in statement.actions}:
            continue
        if statement.resources != [SAGEMAKER_ROLE_ARN]:
            findings.append(
                f"{statement.where}: iam:PassRole on {statement.resources}, not the SageMaker role"
            )
        if values(_string_equals(statement).get("iam:PassedToService")) != ["sagemaker.amazonaws.com"]:
            findings.append(
                f"{statement.where}: iam:PassRole without iam:PassedToService = sagemaker.amazonaws.com"
            )
    return findings


def invoke_endpoint_findings(template: dict[str, Any]) -> list[str]:
    """InvokeEndpoint only on the stack's own endpoint, or on staging's for the promotion smoke test."""
    allowed = {ENDPOINT_ARN} | PROMOTION_CHECKS["sagemaker:InvokeEndpoint"]
    findings = []
    for statement in statements(template):
        if statement.allows and "sagemaker:InvokeEndpoint" in statement.actions:
            findings += [
                f"{statement.where}: sagemaker:InvokeEndpoint on {resource}, not this stack's endpoint"
                for resource in statement.resources
                if resource not in allowed
            ]
    return findings


def _parameters_in(text: str) -> list[str]:
    return [name for name in re.findall(r"\$\{([^}!.]+)\}", text) if not name.startswith("AWS::")]


def oidc_trust_findings(template: dict[str, Any]) -> list[str]:
    """Federated trust: exact audience and subject with StringEquals; no pattern can widen the subject."""
    findings = []
    parameters = template.get("Parameters", {})
    for statement in statements(template):
        if statement.kind != "trust" or "Federated" not in (statement.body.get("Principal") or {}):
            continue
        if statement.actions != ["sts:AssumeRoleWithWebIdentity"]:
            findings.append(f"{statement.where}: trust allows {statement.actions}")
        operators = set(statement.body.get("Condition") or {})
        findings += [
            f"{statement.where}: condition operator {op} (only StringEquals)"
            for op in operators - {"StringEquals"}
        ]
        equals = _string_equals(statement)
        if values(equals.get(GITHUB_AUDIENCE)) != ["sts.amazonaws.com"]:
            findings.append(f"{statement.where}: {GITHUB_AUDIENCE} is not exactly sts.amazonaws.com")
        subjects = values(equals.get(GITHUB_SUBJECT))
        if not subjects or isinstance(equals.get(GITHUB_SUBJECT), list):
            findings.append(f"{statement.where}: {GITHUB_SUBJECT} must be one exact subject")
        for subject in subjects:
            if not subject.startswith("repo:") or re.search(r"[*?]", subject):
                findings.append(
                    f"{statement.where}: subject {subject!r} is not an exact repo:OWNER/REPO:... claim"
                )
            for name in _parameters_in(subject):
                pattern = parameters.get(name, {}).get("AllowedPattern")
                if pattern is None or any(re.fullmatch(pattern, probe) for probe in ("*", "main*", "a?")):
                    findings.append(
                        f"{statement.where}: parameter {name} in the subject has no AllowedPattern "
                        "that refuses wildcards"
                    )
    return findings


def release_role_findings(
    template: dict[str, Any], role: str, extra: dict[str, set[str]] | None = None
) -> list[str]:
    """The role may push to the one repository and start/follow the one state machine, and nothing else."""
    allowed = {**RELEASE_ROLE_ALLOWED, **(extra or {})}
    findings = []
    role_policies = role_statements(template, role)
    if not role_policies:
        return [f"{role}: no policy statements found"]
    for statement in role_policies:
        if not statement.allows:
            continue
        for action in statement.actions:
            if action not in allowed:
                findings.append(f"{statement.where}: {role} may not {action}")
                continue
            findings += [
                f"{statement.where}: {action} on {resource}, expected {sorted(allowed[action])}"
                for resource in statement.resources
                if resource not in allowed[action]
            ]
    return findings


# --- what the state machine's integrations need -----------------------------------------------------------

# The policies Step Functions generates for its optimised SageMaker integrations (developer guide, "IAM
# policies for Amazon SageMaker AI"); a .sync job is also stopped and watched through an EventBridge rule.
SYNC_JOB_ACTIONS = {"createTrainingJob": "TrainingJob", "createTransformJob": "TransformJob"}


def integration_actions(resource: str, parameters: dict[str, Any]) -> set[str]:
    """The IAM actions one Task state's Resource needs, as Step Functions' generated policies list them."""
    match = re.fullmatch(
        r"arn:aws:states:::(aws-sdk:)?([a-z-]+):([A-Za-z]+)(\.sync|\.waitForTaskToken)?", resource
    )
    if not match:
        return set()
    sdk, service, action, pattern = match.groups()
    if service == "lambda":
        return {"lambda:InvokeFunction"}
    if sdk:  # the SDK integrations name a service by its SDK id; its IAM prefix comes from botocore
        service = iam_prefix(SDK_SERVICE_NAMES.get(service, service))
    needed = {f"{service}:{action[0].upper()}{action[1:]}"}
    if service == "sagemaker":
        if "Tags" in parameters:
            needed.add("sagemaker:AddTags")
        if not sdk and action in SYNC_JOB_ACTIONS:
            noun = SYNC_JOB_ACTIONS[action]
            needed |= {"sagemaker:ListTags", "iam:PassRole"}
            if pattern == ".sync":
                needed |= {f"sagemaker:Describe{noun}", f"sagemaker:Stop{noun}"}
                needed |= {"events:PutTargets", "events:PutRule", "events:DescribeRule"}
    return needed


def definition_tasks(definition: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every Task state, also inside Parallel branches and Map iterators."""
    for name, state in definition.get("States", {}).items():
        if state.get("Type") == "Task":
            yield name, state
        for branch in state.get("Branches", []):
            yield from definition_tasks(branch)
        for key in ("Iterator", "ItemProcessor"):
            if key in state:
                yield from definition_tasks(state[key])


def missing_integration_actions(template: dict[str, Any], role: str, definition: dict[str, Any]) -> list[str]:
    granted = {
        action
        for statement in role_statements(template, role)
        if statement.allows
        for action in statement.actions
    }
    return [
        f"{name} ({state['Resource']}) needs {action}"
        for name, state in definition_tasks(definition)
        for action in sorted(integration_actions(state["Resource"], state.get("Parameters") or {}))
        if action not in granted
    ]


# --- buckets -------------------------------------------------------------------------------------------


def bucket_findings(template: dict[str, Any]) -> list[str]:
    """Every bucket: encrypted, public access blocked, and a policy that refuses plain HTTP."""
    findings = []
    resources = template.get("Resources", {})
    for logical_id, resource in resources.items():
        if resource.get("Type") != "AWS::S3::Bucket":
            continue
        props = resource.get("Properties", {})
        rules = (props.get("BucketEncryption") or {}).get("ServerSideEncryptionConfiguration") or []
        algorithms = {(r.get("ServerSideEncryptionByDefault") or {}).get("SSEAlgorithm") for r in rules}
        if not algorithms & {"AES256", "aws:kms", "aws:kms:dsse"}:
            findings.append(f"{logical_id}: no default encryption")
        block = props.get("PublicAccessBlockConfiguration") or {}
        for flag in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"):
            if block.get(flag) is not True:
                findings.append(f"{logical_id}: PublicAccessBlockConfiguration.{flag} is not true")
        if not any(_denies_plain_http(policy, logical_id) for policy in resources.values()):
            findings.append(f"{logical_id}: no bucket policy denies requests without TLS")
    return findings


def _denies_plain_http(resource: dict[str, Any], bucket: str) -> bool:
    props = resource.get("Properties", {})
    if resource.get("Type") != "AWS::S3::BucketPolicy" or props.get("Bucket") != {"Ref": bucket}:
        return False
    for statement in _from_document(bucket, "resource", props.get("PolicyDocument")):
        condition = (statement.body.get("Condition") or {}).get("Bool") or {}
        if (
            statement.body.get("Effect") == "Deny"
            and statement.body.get("Principal") in ("*", {"AWS": "*"})
            and "s3:*" in statement.actions
            and str(condition.get("aws:SecureTransport")).lower() == "false"
            and {f"${{{bucket}.Arn}}", f"${{{bucket}.Arn}}/*"} <= set(statement.resources)
        ):
            return True
    return False


# --- workflows and buildspec ---------------------------------------------------------------------------

PINNED = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+@[0-9a-f]{40}$")
ASSUMES_ROLE = "aws-actions/configure-aws-credentials@"


def _steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return job.get("steps") or []


def workflow_findings(workflow: dict[str, Any], name: str) -> list[str]:
    findings = []
    if workflow.get("permissions", "missing") != {}:
        findings.append(
            f"{name}: top-level permissions must be {{}}, not {workflow.get('permissions', 'missing')}"
        )
    jobs = workflow.get("jobs") or {}
    deploys = False
    for job_id, job in jobs.items():
        where = f"{name}/{job_id}"
        assumes_role = any(str(step.get("uses", "")).startswith(ASSUMES_ROLE) for step in _steps(job))
        deploys |= assumes_role
        id_token = (
            (job.get("permissions") or {}).get("id-token")
            if isinstance(job.get("permissions"), dict)
            else None
        )
        if id_token == "write" and not assumes_role:
            findings.append(f"{where}: id-token: write on a job that assumes no role")
        if assumes_role and id_token != "write":
            findings.append(f"{where}: assumes a role without id-token: write on the job")
        if isinstance(job.get("permissions"), str):
            findings.append(f"{where}: permissions {job['permissions']!r} instead of a per-scope list")
        uses = [job["uses"]] if "uses" in job else []
        uses += [step["uses"] for step in _steps(job) if "uses" in step]
        findings += [
            f"{where}: {use} is not pinned by a 40-hex commit SHA"
            for use in uses
            if not use.startswith("./") and not PINNED.match(use)
        ]
        for step in _steps(job):
            is_checkout = str(step.get("uses", "")).startswith("actions/checkout@")
            if is_checkout and str((step.get("with") or {}).get("persist-credentials")).lower() != "false":
                findings.append(f"{where}: actions/checkout without persist-credentials: false")
            if "${{" in str(step.get("run", "")):
                findings.append(
                    f"{where}/{step.get('name', step.get('run', '')[:30])}: ${{{{ }}}} inside run: "
                    "(pass it through env:)"
                )
    concurrency = workflow.get("concurrency")
    if not isinstance(concurrency, dict) or "github.ref" not in str(concurrency.get("group", "")):
        findings.append(f"{name}: no concurrency group per ref")
    elif deploys and concurrency.get("cancel-in-progress") is not False:
        findings.append(f"{name}: a release workflow must not cancel a release in progress")
    return findings


ENVIRONMENT_DUMP = re.compile(r"(^|[;&|(]|\n|\$\()\s*(printenv|env|set|export(\s+-p)?)\s*($|[;&|)>\n])")


def buildspec_commands(buildspec: dict[str, Any]) -> list[str]:
    commands = []
    for phase in (buildspec.get("phases") or {}).values():
        commands += [str(c) for c in as_list((phase or {}).get("commands"))]
        commands += [str(c) for c in as_list((phase or {}).get("finally"))]
    return commands


def buildspec_findings(buildspec: dict[str, Any]) -> list[str]:
    findings = []
    for command in buildspec_commands(buildspec):
        if "printenv" in command or ENVIRONMENT_DUMP.search(command):
            findings.append(f"buildspec command dumps the environment: {command.strip()[:80]!r}")
    return findings
