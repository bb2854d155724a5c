"""Rollback in one command: the stage's endpoint goes back to an earlier Approved model package.

``mlops rollback`` (and rollback.yml) picks the newest Approved version of the group older than the one the
stage serves (or the one named with ``--to``), and starts the stage's state machine in promotion mode with
it: no retraining, no new approval, the same blue/green update and checks as a promotion.
"""

from __future__ import annotations

import json

from botocore.exceptions import ClientError

from .names import endpoint_name_for
from .promotion import ACCESS_DENIED, promotion_input
from .release import ReleaseError, already_started, rerun_advice


def _denied(action: str, error: ClientError) -> ReleaseError:
    return ReleaseError(
        f"access denied: this role may not {action} ({error.response['Error'].get('Message', '')}). "
        "The stage's release role gets it from infra/github-oidc.yaml."
    )


def _call(action: str, call, **kwargs):
    """One AWS call; a refusal of the role names the action to grant."""
    try:
        return call(**kwargs)
    except ClientError as error:
        if error.response["Error"]["Code"] in ACCESS_DENIED:
            raise _denied(action, error) from error
        raise


def served_packages(sm, endpoint_name: str) -> set[str]:
    """The model packages the endpoint's variants serve now (empty if it serves none or does not exist)."""
    try:
        endpoint = _call("sagemaker:DescribeEndpoint", sm.describe_endpoint, EndpointName=endpoint_name)
    except ClientError as error:
        if "Could not find" in error.response["Error"].get("Message", ""):
            return set()
        raise
    config = _call(
        "sagemaker:DescribeEndpointConfig",
        sm.describe_endpoint_config,
        EndpointConfigName=endpoint["EndpointConfigName"],
    )
    return {
        package
        for variant in config["ProductionVariants"]
        if (
            package := _call("sagemaker:DescribeModel", sm.describe_model, ModelName=variant["ModelName"])[
                "PrimaryContainer"
            ].get("ModelPackageName")
        )
    }


def rollback_target(sm, group: str, endpoint_name: str, to: str | None = None) -> dict:
    """The package to go back to: `to` if it is an Approved package of the group, else the newest Approved
    package created before the one the endpoint serves. A clear error when there is none."""
    served = served_packages(sm, endpoint_name)
    if to:
        try:
            package = _call("sagemaker:DescribeModelPackage", sm.describe_model_package, ModelPackageName=to)
        except ClientError as error:
            raise ReleaseError(f"--to {to}: {error.response['Error']['Message']}") from error
        if package.get("ModelPackageGroupName") != group:
            raise ReleaseError(f"refused: {to} is not a version of the model package group {group}")
        if package["ModelApprovalStatus"] != "Approved":
            raise ReleaseError(f"refused: {to} is {package['ModelApprovalStatus']}; only an Approved package")
        if to in served:
            raise ReleaseError(f"refused: {endpoint_name} already serves {to}")
        return package
    if not served:
        raise ReleaseError(f"nothing to roll back: {endpoint_name} serves no registered model package")
    # A group's versions are numbered 1, 2, 3...: walking down from what serves finds the newest older Approved
    # one with DescribeModelPackage alone (ListModelPackages cannot be scoped to one group).
    newest = max(int(arn.rsplit("/", 1)[-1]) for arn in served)
    prefix = min(served).rsplit("/", 1)[0]
    for version in range(newest - 1, 0, -1):
        try:
            package = _call(
                "sagemaker:DescribeModelPackage",
                sm.describe_model_package,
                ModelPackageName=f"{prefix}/{version}",
            )
        except ClientError as error:
            if error.response["Error"]["Code"] in {"ValidationException", "ResourceNotFound"}:
                continue  # a version deleted from the registry
            raise
        if package["ModelApprovalStatus"] == "Approved" and package["ModelPackageArn"] not in served:
            return package
    raise ReleaseError(
        f"nothing to roll back to: no Approved version of {group} is older than what {endpoint_name} serves "
        f"({', '.join(sorted(served))})"
    )


def start_rollback(
    sfn,
    sm,
    state_machine_arn: str,
    project: str,
    stage: str,
    to: str | None = None,
    attempt: int = 1,
    run_id: str = "",
) -> dict:
    """Starts the stage's state machine with the package to go back to; returns what started."""
    endpoint = endpoint_name_for(project, stage)
    package = rollback_target(sm, project, endpoint, to)
    execution_input = promotion_input(project, stage, package, attempt, run_id, kind="rollback")
    name = execution_input["release"]["execution_name"]
    if already_started(sfn, state_machine_arn, name):
        raise ReleaseError(rerun_advice(name, attempt))
    arn = sfn.start_execution(
        stateMachineArn=state_machine_arn, name=name, input=json.dumps(execution_input)
    )["executionArn"]
    return {"execution_arn": arn, "model_package_arn": package["ModelPackageArn"], "stage": stage}
