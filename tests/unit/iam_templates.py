"""The project's IAM policies read from its templates, with example values for the intrinsics they use.

Only for tests of the policy evaluator: a small stand-in for what CloudFormation resolves on deploy
(Ref, GetAtt .Arn, Sub in both forms, If over the template's Conditions, Select/Split).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mlops.local.template import REPO_ROOT, Template

REGION = "us-east-1"
ACCOUNT = "123456789012"
APP_TEMPLATE = REPO_ROOT / "infra" / "template.yaml"
OIDC_TEMPLATE = REPO_ROOT / "infra" / "github-oidc.yaml"
BUCKET = "mlops-iris-staging-artifactbucket-1a2b3c"
SECRET_ARN = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:LinkSigningSecret-AbCdEf"
PROVIDER_ARN = f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"

PARAMETERS = {
    "ProjectName": "mlops-iris",
    "Stage": "staging",
    "SenderEmail": "releases@example.com",
    "ApproverEmail": "approver@example.org",
    "GitHubOwner": "octo-org",
    "GitHubRepo": "sagemaker-sfn-mlops",
    "Branch": "main",
    "Environment": "",
    "CreateOidcProvider": "true",
    "ExistingOidcProviderArn": "",
    "CreateRepository": "true",
    "CreateApiGatewayLoggingRole": "false",
    "InferenceAuth": "API_KEY",
}


class Resolved:
    """One template with example parameter values; `role_policies` gives a role's documents resolved."""

    def __init__(self, path: Path, **overrides: str):
        self.doc = Template(path).doc
        self.parameters = {
            name: str(spec.get("Default", "")) for name, spec in self.doc.get("Parameters", {}).items()
        }
        self.parameters.update({k: v for k, v in PARAMETERS.items() if k in self.parameters})
        self.parameters.update(overrides)
        self.resources: dict[str, Any] = self.doc["Resources"]
        self.pseudo = {
            "AWS::Partition": "aws",
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": "mlops-iris-staging",
        }

    # --- intrinsics
    def ref(self, name: str) -> str:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        kind = self.resources[name]["Type"]
        return {
            "AWS::S3::Bucket": BUCKET,
            "AWS::SecretsManager::Secret": SECRET_ARN,
            "AWS::SNS::Topic": f"arn:aws:sns:{REGION}:{ACCOUNT}:mlops-iris-staging-{name}",
            "AWS::IAM::OIDCProvider": PROVIDER_ARN,
        }.get(kind, f"mlops-iris-staging-{name}")

    def arn(self, name: str) -> str:
        kind = self.resources[name]["Type"]
        if kind == "AWS::S3::Bucket":
            return f"arn:aws:s3:::{BUCKET}"
        if kind == "AWS::DynamoDB::Table":
            return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/mlops-iris-staging-{name}"
        if kind == "AWS::IAM::Role":
            return f"arn:aws:iam::{ACCOUNT}:role/mlops-iris-staging-{name}"
        if kind == "AWS::Serverless::Function":
            return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:mlops-iris-staging-{name}"
        if kind == "AWS::Logs::LogGroup":
            group = self.resolve(self.resources[name]["Properties"]["LogGroupName"])
            return f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{group}:*"
        raise KeyError(f"no example ARN for {name} ({kind})")

    def sub(self, text: str, variables: dict[str, Any]) -> str:
        def fill(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(self.resolve(variables[name]))
            if name.endswith(".Arn"):
                return self.arn(name[: -len(".Arn")])
            return self.ref(name)

        return re.sub(r"\$\{([^}!]+)\}", fill, text)

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.doc["Conditions"][name]))

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                logical, attribute = arg
                assert attribute == "Arn", attribute
                return self.arn(logical)
            if key == "Fn::Sub":
                text, variables = (arg, {}) if isinstance(arg, str) else arg
                return self.sub(text, variables)
            if key == "Fn::If":
                name, if_true, if_false = arg
                return self.resolve(if_true if self.condition(name) else if_false)
            if key == "Fn::Equals":
                left, right = (self.resolve(a) for a in arg)
                return str(left) == str(right)
            if key == "Fn::Not":
                return not self.resolve(arg[0])
            if key == "Fn::Select":
                index, items = arg
                return self.resolve(items)[int(index)]
            if key == "Fn::Split":
                separator, text = arg
                return self.resolve(text).split(separator)
            if key == "Condition":
                return self.condition(arg)
        return {k: self.resolve(v) for k, v in value.items()}

    # --- policies
    def role_policies(self, logical_id: str) -> dict[str, dict[str, Any]]:
        """{policy name: document} of a role, a SAM function or a SAM state machine, resolved."""
        properties = self.resources[logical_id]["Properties"]
        found: dict[str, dict[str, Any]] = {}
        for index, policy in enumerate(properties.get("Policies", [])):
            if "PolicyDocument" in policy:
                found[policy["PolicyName"]] = self.resolve(policy["PolicyDocument"])
            elif isinstance(policy, dict) and "Statement" in policy:
                found[f"{logical_id}Policy{index}"] = self.resolve(policy)
        for resource in self.resources.values():
            if (
                resource["Type"] != "AWS::IAM::Policy"
                or {"Ref": logical_id} not in resource["Properties"]["Roles"]
            ):
                continue
            if "Condition" in resource and not self.condition(resource["Condition"]):
                continue
            found[resource["Properties"]["PolicyName"]] = self.resolve(
                resource["Properties"]["PolicyDocument"]
            )
        return found

    def trust_policy(self, logical_id: str) -> dict[str, Any]:
        return self.resolve(self.resources[logical_id]["Properties"]["AssumeRolePolicyDocument"])

    def allow_statements(self) -> list[tuple[str, dict[str, Any]]]:
        """(owner, statement) for every Allow statement of every policy in the template."""
        found = []
        for logical_id, resource in self.resources.items():
            if "Policies" in resource.get("Properties", {}) or resource["Type"] == "AWS::IAM::Policy":
                documents = (
                    [resource["Properties"]["PolicyDocument"]]
                    if resource["Type"] == "AWS::IAM::Policy"
                    else [p.get("PolicyDocument", p) for p in resource["Properties"]["Policies"]]
                )
                for document in documents:
                    if isinstance(document, dict):
                        found += [(logical_id, s) for s in document["Statement"] if s["Effect"] == "Allow"]
        return found
