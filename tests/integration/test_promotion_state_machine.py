"""The state machine itself refuses to promote a package that is not Approved (not only the CLI)."""

import json
import time

import pytest

from mlops.local.stack import LocalStack
from mlops.promotion import promotion_input

pytestmark = pytest.mark.slow


@pytest.fixture
def stack(tmp_path):
    # As on AWS, the prod stack uses the model registry group the staging stack owns.
    staging = LocalStack(work_dir=tmp_path / "work").start()
    try:
        prod = LocalStack(work_dir=tmp_path / "work" / "prod", parameters={"Stage": "prod"}, shared=staging)
        staging.companions.append(prod.start())
        yield prod
    finally:
        staging.stop()


def test_promotion_of_a_rejected_package_fails_with_model_package_not_approved(stack):
    sm, sfn = stack.client("sagemaker"), stack.client("stepfunctions")
    arn = sm.create_model_package(
        ModelPackageGroupName=stack.model_package_group,
        ModelApprovalStatus="Rejected",
        ModelPackageDescription="commit 0123456789ab (0123456789ab-1)",
        InferenceSpecification={
            "Containers": [{"Image": "repo:0123456789ab", "ModelDataUrl": "s3://b/m"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
    )["ModelPackageArn"]
    execution_input = promotion_input(
        stack.project, stack.stage, sm.describe_model_package(ModelPackageName=arn), 1
    )
    execution_arn = sfn.start_execution(
        stateMachineArn=stack.state_machine_arn, name="refused-1", input=json.dumps(execution_input)
    )["executionArn"]
    deadline = time.monotonic() + 60
    while (execution := sfn.describe_execution(executionArn=execution_arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert execution["status"] == "FAILED"
    assert execution["error"] == "ModelPackageNotApproved"
    assert "is Rejected" in execution["cause"]
    assert sm.list_endpoints()["Endpoints"] == []
