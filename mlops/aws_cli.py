"""``mlops`` subcommands that set up a real AWS account; scripts/bootstrap runs them in order.

    mlops aws-identity                        who and where the AWS credentials are (clear error if none)
    mlops check-quotas --config C --config-env E
                                              SageMaker instance quotas for the instance types the stack uses
    mlops check-on-main COMMIT [--main origin/main]
                                              refuse a commit that is not part of main's history (release.yml)
    mlops github-stack-parameters --stack S --project P
                                              account-wide choices for infra/github-oidc.yaml
    mlops upload-data --stack S               the iris train/test split into the app stack's bucket
    mlops github-settings --app-stack A --github-stack G
                                              the repository variables the release workflow reads

Also runnable as ``python -m mlops.aws_cli ...``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .release import ReleaseError

GITHUB_OIDC_URL = "token.actions.githubusercontent.com"


class AwsSetupError(ReleaseError):
    """The account or the stacks are not in the state the command needs; the message says what to do."""


def _session():
    import boto3
    from botocore.exceptions import ProfileNotFound

    try:
        # AWS_REGION wins over AWS_DEFAULT_REGION and the profile, as in the AWS CLI (botocore ignores it).
        return boto3.session.Session(region_name=os.environ.get("AWS_REGION") or None)
    except ProfileNotFound as exc:
        raise AwsSetupError(f"{exc}: check AWS_PROFILE against ~/.aws/config") from exc


def aws_identity(session) -> dict[str, str]:
    from botocore.exceptions import (
        ClientError,
        NoCredentialsError,
        SSOTokenLoadError,
        TokenRetrievalError,
        UnauthorizedSSOTokenError,
    )

    region = session.region_name
    if not region:
        raise AwsSetupError("no AWS region: set AWS_REGION (or a region in your AWS profile) and run again")
    try:
        identity = session.client("sts").get_caller_identity()
    except (NoCredentialsError, SSOTokenLoadError, TokenRetrievalError, UnauthorizedSSOTokenError) as exc:
        raise AwsSetupError(
            f"not logged in to AWS ({exc}): run `aws sso login --profile NAME` and export AWS_PROFILE=NAME, "
            "or `aws configure`, then run again"
        ) from exc
    except ClientError as exc:
        raise AwsSetupError(
            f"AWS refused the credentials ({exc.response['Error']['Code']}): log in again and run again"
        ) from exc
    return {"account": identity["Account"], "arn": identity["Arn"], "region": region}


def _stack(cloudformation, name: str) -> dict[str, Any] | None:
    from botocore.exceptions import ClientError

    try:
        return cloudformation.describe_stacks(StackName=name)["Stacks"][0]
    except ClientError as exc:
        if "does not exist" in exc.response["Error"].get("Message", ""):
            return None
        raise


def stack_outputs(cloudformation, name: str) -> dict[str, str]:
    stack = _stack(cloudformation, name)
    if stack is None:
        raise AwsSetupError(f"stack {name} does not exist: deploy it first (scripts/bootstrap)")
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def github_stack_parameters(session, stack_name: str, project: str) -> dict[str, str]:
    """What the github-oidc stack creates of the account-wide things: the GitHub OIDC provider, the image
    repository, API Gateway's logging role.

    An existing stack keeps its earlier choices (flipping one would delete what it created); a new stack
    creates only what the account lacks, so a second stage's stack shares the first one's.
    """
    from botocore.exceptions import ClientError

    keys = (
        "CreateOidcProvider",
        "ExistingOidcProviderArn",
        "CreateRepository",
        "CreateApiGatewayLoggingRole",
    )
    stack = _stack(session.client("cloudformation"), stack_name)
    if stack is not None:
        previous = {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])}
        return {key: previous[key] for key in keys if key in previous}
    providers = session.client("iam").list_open_id_connect_providers()["OpenIDConnectProviderList"]
    github = next((p["Arn"] for p in providers if p["Arn"].endswith(f"/{GITHUB_OIDC_URL}")), "")
    try:
        session.client("ecr").describe_repositories(repositoryNames=[project])
        repository_exists = True
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "RepositoryNotFoundException":
            raise
        repository_exists = False
    logging_role = session.client("apigateway").get_account().get("cloudwatchRoleArn", "")
    return {
        "CreateOidcProvider": "false" if github else "true",
        "ExistingOidcProviderArn": github,
        "CreateRepository": "false" if repository_exists else "true",
        "CreateApiGatewayLoggingRole": "false" if logging_role else "true",
    }


def upload_data(session, stack_name: str, prefix: str = "data") -> str:
    """Writes the split of the example the app stack trains (its Model parameter) and uploads train/ and
    test/ under the stack's bucket; returns the data URI."""
    from .data import EXAMPLES, write_split

    cloudformation = session.client("cloudformation")
    bucket = stack_outputs(cloudformation, stack_name).get("ArtifactBucketName")
    if not bucket:
        raise AwsSetupError(f"stack {stack_name} has no ArtifactBucketName output: is it the app stack?")
    stack = _stack(cloudformation, stack_name) or {}
    model = {p["ParameterKey"]: p.get("ParameterValue") for p in stack.get("Parameters", [])}.get(
        "Model"
    ) or "iris"
    if model not in EXAMPLES:
        raise AwsSetupError(
            f"stack {stack_name} trains Model={model}, which has no example data here: upload your train.csv "
            f"and test.csv (label first, no header) under s3://{bucket}/{prefix}/train/ and {prefix}/test/"
        )
    s3 = session.client("s3")
    with tempfile.TemporaryDirectory() as folder:
        train, test = write_split(model, Path(folder))
        for channel, path in (("train", train), ("test", test)):
            s3.upload_file(str(path), bucket, f"{prefix}/{channel}/{path.name}")
    return f"s3://{bucket}/{prefix}"


def stack_parameters(config: Path, config_env: str) -> dict[str, str]:
    """The app stack's parameters as `sam deploy` will pass them: the template's defaults, then the
    parameter_overrides of infra/samconfig.toml's environment."""
    from .local.template import Template

    try:
        settings = tomllib.loads(Path(config).read_text()).get(config_env)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise AwsSetupError(f"cannot read {config}: {exc}") from exc
    if settings is None:
        raise AwsSetupError(f"{config} has no [{config_env}] environment")
    overrides = settings.get("deploy", {}).get("parameters", {}).get("parameter_overrides", "")
    pairs = shlex.split(overrides) if isinstance(overrides, str) else list(overrides)
    return {**Template().parameter_defaults(), **dict(pair.split("=", 1) for pair in pairs)}


@dataclass(frozen=True)
class InstanceNeed:
    quota: str  # the Service Quotas name, e.g. "ml.m5.large for training job usage"
    count: int
    why: str


def instance_needs(parameters: dict[str, str]) -> list[InstanceNeed]:
    """The SageMaker instances a release on this stack runs at once, per quota (a serverless endpoint runs
    on none)."""
    endpoint = int(parameters["EndpointInstanceCount"])
    needs = [
        InstanceNeed(
            f"{parameters['TrainingInstanceType']} for training job usage",
            int(parameters["TrainingInstanceCount"]),
            "training (TrainingInstanceCount)",
        ),
        InstanceNeed(
            f"{parameters['TransformInstanceType']} for transform job usage",
            int(parameters["TransformInstanceCount"]),
            "the batch evaluation (TransformInstanceCount)",
        ),
        InstanceNeed(
            f"{parameters['EndpointInstanceType']} for endpoint usage",
            2 * endpoint,
            f"the endpoint ({endpoint} instance(s); a blue/green update runs the old and the new fleet side "
            "by side)",
        ),
    ]
    return needs[:2] if parameters.get("EndpointType") == "serverless" else needs


def _sagemaker_quotas(client, operation: str) -> dict[str, dict[str, Any]]:
    pages = client.get_paginator(operation).paginate(ServiceCode="sagemaker")
    return {quota["QuotaName"]: quota for page in pages for quota in page["Quotas"]}


def check_instance_quotas(client, needs: list[InstanceNeed], region: str) -> list[dict[str, Any]]:
    """Each need against the account's SageMaker quota; an AwsSetupError naming each quota to request.

    ListServiceQuotas answers only the quotas applied to the account; one never raised keeps AWS's default,
    which is 0 for many ml.* instance types in a new account.
    """
    quotas = _sagemaker_quotas(client, "list_service_quotas")
    if any(need.quota not in quotas for need in needs):
        defaults = _sagemaker_quotas(client, "list_aws_default_service_quotas")
        quotas = {**defaults, **quotas}
    checked, problems = [], []
    for need in needs:
        quota = quotas.get(need.quota)
        if quota is None:
            problems.append(
                f"there is no SageMaker quota named {need.quota!r} in {region}: is the instance type offered "
                "there? Choose another one in infra/samconfig.toml"
            )
            continue
        value = quota["Value"]
        checked.append(
            {"quota": need.quota, "code": quota["QuotaCode"], "value": value, "needed": need.count}
        )
        if value < need.count:
            problems.append(
                f"{need.quota} is {value:g} in {region}; {need.why} needs {need.count}. Request it with\n"
                f"    aws service-quotas request-service-quota-increase --service-code sagemaker "
                f"--quota-code {quota['QuotaCode']} --desired-value {need.count} --region {region}"
            )
    if problems:
        raise AwsSetupError(
            "the account's SageMaker quotas do not cover the instances the stack uses (new accounts start at 0 "
            "for many ml.* types; increases can take a day):\n  - "
            + "\n  - ".join(problems)
            + "\nOr choose instance types the account has quota for (TrainingInstanceType, "
            "TransformInstanceType, EndpointInstanceType in infra/samconfig.toml)."
        )
    return checked


def _git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], capture_output=True, text=True, check=False)


def _resolve_commit(ref: str) -> str | None:
    done = _git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    return done.stdout.strip() if done.returncode == 0 else None


def check_on_main(ref: str, main: str = "origin/main") -> str:
    """The commit `ref` names, if it is part of `main`'s history; else a ReleaseError saying why not.

    The release role trusts the main branch: a release started by hand with another ref must not ship a
    commit nobody merged there."""
    commit = _resolve_commit(ref)
    if commit is None:
        raise ReleaseError(f"{ref} is not a commit in this checkout")
    main_commit = _resolve_commit(main)
    if main_commit is None:
        raise ReleaseError(
            f"{main} is not in this checkout: fetch main's history first (actions/checkout with fetch-depth: 0)"
        )
    done = _git("merge-base", "--is-ancestor", commit, main_commit)
    if done.returncode == 1:
        raise ReleaseError(
            f"refused: commit {commit[:12]} is not on {main}. Only commits in main's history are released "
            "with the role trusted for main: merge it to main first (through a reviewed pull request), or "
            "pick a commit of main to roll back to"
        )
    if done.returncode != 0:
        raise ReleaseError(f"git merge-base --is-ancestor failed: {done.stderr.strip()}")
    return commit


def github_settings(session, app_stack: str, github_stack: str) -> dict[str, str]:
    cloudformation = session.client("cloudformation")
    app, access = stack_outputs(cloudformation, app_stack), stack_outputs(cloudformation, github_stack)
    return {
        "AWS_REGION": session.region_name,
        "AWS_RELEASE_ROLE_ARN": access["ReleaseRoleArn"],
        "ECR_REPOSITORY": access["ImageRepositoryName"],
        "STATE_MACHINE_ARN": app["StateMachineArn"],
        "DATA_URI": app["DataUri"],
        "PROJECT_NAME": app["ProjectName"],
    }


# --- command line --------------------------------------------------------------------------------------


def _print(value: Any) -> None:
    print(json.dumps(value, sort_keys=True))


def _identity_command(args: argparse.Namespace) -> int:
    _print(aws_identity(_session()))
    return 0


def _check_quotas_command(args: argparse.Namespace) -> int:
    session = _session()
    if not session.region_name:
        raise AwsSetupError("no AWS region: set AWS_REGION (or a region in your AWS profile) and run again")
    needs = instance_needs(stack_parameters(Path(args.config), args.config_env))
    _print(check_instance_quotas(session.client("service-quotas"), needs, session.region_name))
    return 0


def _check_on_main_command(args: argparse.Namespace) -> int:
    _print({"commit": check_on_main(args.commit, args.main), "on": args.main})
    return 0


def _github_stack_parameters_command(args: argparse.Namespace) -> int:
    parameters = github_stack_parameters(_session(), args.stack, args.project)
    if args.format == "overrides":
        # The SAM CLI's --parameter-overrides cannot pass an empty value; the template's default is "".
        print(" ".join(f"{key}={value}" for key, value in parameters.items() if value))
    else:
        _print(parameters)
    return 0


def _upload_data_command(args: argparse.Namespace) -> int:
    _print({"data_uri": upload_data(_session(), args.stack, args.prefix)})
    return 0


def _github_settings_command(args: argparse.Namespace) -> int:
    settings = github_settings(_session(), args.app_stack, args.github_stack)
    if args.format == "gh":
        for name, value in settings.items():
            print(f"gh variable set {name} --body '{value}'")
    else:
        _print(settings)
    return 0


def add_commands(subparsers) -> None:
    identity = subparsers.add_parser(
        "aws-identity", help="print the AWS account, caller and region; exit 2 with advice when not logged in"
    )
    identity.set_defaults(func=_identity_command)

    quotas = subparsers.add_parser(
        "check-quotas",
        help="check the account's SageMaker quotas for the training, transform and endpoint instances the "
        "app stack's parameters name; exit 2 naming each quota to request",
    )
    quotas.add_argument("--config", default="infra/samconfig.toml", help="the SAM CLI config file")
    quotas.add_argument("--config-env", default="default", help="its environment")
    quotas.set_defaults(func=_check_quotas_command)

    on_main = subparsers.add_parser(
        "check-on-main",
        help="exit 0 if COMMIT is part of main's history, else exit 2 saying why (the release workflow runs "
        "it before it assumes the role trusted for main)",
    )
    on_main.add_argument("commit", help="a commit, tag or branch of this checkout")
    on_main.add_argument("--main", default="origin/main", help="main's ref in this checkout")
    on_main.set_defaults(func=_check_on_main_command)

    parameters = subparsers.add_parser(
        "github-stack-parameters",
        help="decide which account-wide resources infra/github-oidc.yaml creates (OIDC provider, "
        "image repository, API Gateway logging role)",
    )
    parameters.add_argument("--stack", required=True, help="the github-oidc stack's name")
    parameters.add_argument("--project", required=True, help="ProjectName, also the image repository's name")
    parameters.add_argument(
        "--format",
        choices=["json", "overrides"],
        default="json",
        help="a JSON object, or `sam deploy --parameter-overrides` syntax",
    )
    parameters.set_defaults(func=_github_stack_parameters_command)

    data = subparsers.add_parser(
        "upload-data", help="upload the iris train/test split to the app stack's bucket; prints the data URI"
    )
    data.add_argument("--stack", required=True, help="the app stack's name")
    data.add_argument("--prefix", default="data", help="key prefix under the bucket")
    data.set_defaults(func=_upload_data_command)

    settings = subparsers.add_parser(
        "github-settings", help="the repository variables .github/workflows/release.yml reads"
    )
    settings.add_argument("--app-stack", required=True, help="the app stack's name (infra/template.yaml)")
    settings.add_argument(
        "--github-stack", required=True, help="the github-oidc stack's name (infra/github-oidc.yaml)"
    )
    settings.add_argument(
        "--format", choices=["json", "gh"], default="json", help="a JSON object, or `gh variable set` lines"
    )
    settings.set_defaults(func=_github_settings_command)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mlops", description=__doc__.splitlines()[0])
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ReleaseError as error:
        print(f"mlops: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
