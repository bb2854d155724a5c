"""Promotion: an approved model package that served correctly in staging is deployed to prod, unchanged.

``mlops promote`` and the rehearsal's ``--stages staging,prod`` share this path; the prod stack's state
machine refuses a package that is not Approved on its own as well.
"""

from __future__ import annotations

import json
import re

from botocore.exceptions import ClientError

from .names import execution_name_for, release_names_for
from .release import ReleaseError, already_started, rerun_advice

SMOKE_ROW = b"4.5,1.3,0.3,0.3\n"
ACCESS_DENIED = {"AccessDenied", "AccessDeniedException"}


def _call(action: str, call, **kwargs):
    """One AWS call of the promotion check; a refusal of the role is named with the action to grant, so it
    is never mistaken for a missing package or endpoint."""
    try:
        return call(**kwargs)
    except ClientError as error:
        if error.response["Error"]["Code"] not in ACCESS_DENIED:
            raise
        raise ReleaseError(
            f"access denied: this role may not {action} ({error.response['Error'].get('Message', '')}). "
            "The prod release role gets it from infra/github-oidc.yaml deployed with Stage=prod."
        ) from error


def package_commit(package: dict) -> str:
    commit = (package.get("CustomerMetadataProperties") or {}).get("commit")
    if not commit:
        found = re.search(r"commit ([0-9a-f]{7,40})", package.get("ModelPackageDescription", ""))
        commit = found.group(1) if found else ""
    if not commit:
        raise ReleaseError(f"{package['ModelPackageArn']} records no commit: was it registered by a release?")
    return commit


def check_promotable(sm, runtime, package_arn: str, staging_endpoint: str) -> dict:
    """The package, if it is Approved and the staging endpoint serves it and answers; else a clear error."""
    try:
        package = _call(
            "sagemaker:DescribeModelPackage", sm.describe_model_package, ModelPackageName=package_arn
        )
    except ClientError as error:
        raise ReleaseError(f"no model package {package_arn}: {error.response['Error']['Message']}") from error
    status = package["ModelApprovalStatus"]
    if status != "Approved":
        raise ReleaseError(
            f"refused: {package_arn} is {status}; only an Approved model package can be promoted"
        )
    try:
        endpoint = _call("sagemaker:DescribeEndpoint", sm.describe_endpoint, EndpointName=staging_endpoint)
    except ClientError as error:
        message = error.response["Error"].get("Message", "")
        if "Could not find" in message:
            raise ReleaseError(f"refused: staging endpoint {staging_endpoint} does not exist") from error
        raise ReleaseError(f"staging endpoint {staging_endpoint} could not be read: {message}") from error
    if endpoint["EndpointStatus"] != "InService":
        raise ReleaseError(f"refused: staging endpoint {staging_endpoint} is {endpoint['EndpointStatus']}")
    config = _call(
        "sagemaker:DescribeEndpointConfig",
        sm.describe_endpoint_config,
        EndpointConfigName=endpoint["EndpointConfigName"],
    )
    served = {
        _call("sagemaker:DescribeModel", sm.describe_model, ModelName=v["ModelName"])["PrimaryContainer"].get(
            "ModelPackageName"
        )
        for v in config["ProductionVariants"]
    }
    if package_arn not in served:
        raise ReleaseError(
            f"refused: staging endpoint {staging_endpoint} does not serve {package_arn} "
            f"(it serves {', '.join(sorted(filter(None, served))) or 'no registered package'})"
        )
    try:
        answer = (
            _call(
                "sagemaker:InvokeEndpoint",
                runtime.invoke_endpoint,
                EndpointName=staging_endpoint,
                ContentType="text/csv",
                Accept="text/csv",
                Body=SMOKE_ROW,
            )["Body"]
            .read()
            .decode()
            .strip()
        )
    except ClientError as error:
        raise ReleaseError(
            f"refused: the staging smoke test failed: {error.response['Error']['Message']}"
        ) from error
    if not answer:
        raise ReleaseError("refused: the staging endpoint answered the smoke test with nothing")
    return package


def promotion_input(
    project: str, stage: str, package: dict, attempt: int, run_id: str = "", kind: str = "promote"
) -> dict:
    """The state machine's input for deploying an Approved package as it is (a promotion, or a rollback)."""
    commit = package_commit(package)
    execution_name = execution_name_for(commit, attempt, f"{kind}{run_id}")
    container = package["InferenceSpecification"]["Containers"][0]
    return {
        "promote": {"model_package_arn": package["ModelPackageArn"]},
        "release": {
            "commit": commit,
            "image_uri": container["Image"],
            "attempt": attempt,
            "run_id": run_id,
            "execution_name": execution_name,
        },
        "names": release_names_for(project, stage, execution_name).as_dict(),
    }


def start_promotion(
    sfn,
    sm,
    runtime,
    state_machine_arn: str,
    package_arn: str,
    staging_endpoint: str,
    project: str,
    stage: str,
    attempt: int = 1,
    run_id: str = "",
) -> str:
    package = check_promotable(sm, runtime, package_arn, staging_endpoint)
    execution_input = promotion_input(project, stage, package, attempt, run_id)
    name = execution_input["release"]["execution_name"]
    if already_started(sfn, state_machine_arn, name):
        raise ReleaseError(rerun_advice(name, attempt))
    return sfn.start_execution(
        stateMachineArn=state_machine_arn, name=name, input=json.dumps(execution_input)
    )["executionArn"]
