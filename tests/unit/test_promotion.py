import json
from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from mlops.promotion import check_promotable, promotion_input
from mlops.release import ReleaseError

COMMIT = "0123456789abcdef0123456789abcdef01234567"
ROLE = "arn:aws:iam::123456789012:role/sagemaker"


@pytest.fixture
def registry(aws_credentials):
    with mock_aws():
        sm = boto3.client("sagemaker", region_name="us-east-1")
        sm.create_model_package_group(ModelPackageGroupName="mlops-iris")

        def package(status: str) -> str:
            return sm.create_model_package(
                ModelPackageGroupName="mlops-iris",
                ModelApprovalStatus=status,
                ModelPackageDescription=f"commit {COMMIT} ({COMMIT[:12]}-1)",
                InferenceSpecification={
                    "Containers": [{"Image": f"repo:{COMMIT}", "ModelDataUrl": "s3://b/m"}],
                    "SupportedContentTypes": ["text/csv"],
                    "SupportedResponseMIMETypes": ["text/csv"],
                },
            )["ModelPackageArn"]

        yield sm, package


@pytest.mark.parametrize("status", ["PendingManualApproval", "Rejected"])
def test_a_package_that_is_not_approved_is_refused(registry, status):
    sm, package = registry
    arn = package(status)
    with pytest.raises(ReleaseError, match=f"is {status}; only an Approved"):
        check_promotable(sm, None, arn, "mlops-iris-staging")


def test_an_approved_package_staging_does_not_serve_is_refused(registry):
    sm, package = registry
    served, other = package("Approved"), package("Approved")
    sm.create_model(
        ModelName="mlops-iris-staging-m", ExecutionRoleArn=ROLE, PrimaryContainer={"ModelPackageName": served}
    )
    sm.create_endpoint_config(
        EndpointConfigName="mlops-iris-staging-c",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "mlops-iris-staging-m",
                "InstanceType": "ml.t2.medium",
                "InitialInstanceCount": 1,
            }
        ],
    )
    sm.create_endpoint(EndpointName="mlops-iris-staging", EndpointConfigName="mlops-iris-staging-c")
    with pytest.raises(ReleaseError, match="does not serve"):
        check_promotable(sm, None, other, "mlops-iris-staging")


def test_missing_staging_endpoint_is_refused(registry):
    sm, package = registry
    with pytest.raises(ReleaseError, match="staging endpoint mlops-iris-staging does not exist"):
        check_promotable(sm, None, package("Approved"), "mlops-iris-staging")


def test_promotion_input_deploys_the_package_under_prod_names(registry):
    sm, package = registry
    described = sm.describe_model_package(ModelPackageName=package("Approved"))
    execution_input = promotion_input("mlops-iris", "prod", described, attempt=2)
    assert execution_input["promote"] == {"model_package_arn": described["ModelPackageArn"]}
    assert execution_input["release"]["commit"] == COMMIT
    assert execution_input["release"]["image_uri"] == f"repo:{COMMIT}"
    names = dict(execution_input["names"])
    assert names.pop("checkpoints").startswith("checkpoints/mlops-iris-prod-")
    assert all(n.startswith("mlops-iris-prod-") for n in names.values())
    json.dumps(execution_input)


PACKAGE_ARN = "arn:aws:sagemaker:us-east-1:123456789012:model-package/mlops-iris/3"


def _denied(stub: Stubber, operation: str, expected: dict | None) -> None:
    # What AWS answers a role without the permission; the message is AWS's, not the test's claim.
    stub.add_client_error(
        operation,
        service_error_code="AccessDeniedException",
        service_message="User: arn:aws:sts::123456789012:assumed-role/prod-release/promote-1 is not "
        "authorized to perform this action",
        http_status_code=400,
        expected_params=expected,
    )


def _approved_package() -> dict:
    return {
        "ModelPackageName": "mlops-iris",
        "ModelPackageArn": PACKAGE_ARN,
        "ModelPackageStatus": "Completed",
        "ModelPackageStatusDetails": {"ValidationStatuses": []},
        "ModelApprovalStatus": "Approved",
        "CreationTime": datetime(2026, 1, 1, tzinfo=UTC),
    }


def test_a_role_that_may_not_read_the_package_is_named_not_taken_for_a_missing_package(aws_credentials):
    sm = boto3.client("sagemaker")
    with Stubber(sm) as stub:
        _denied(stub, "describe_model_package", {"ModelPackageName": PACKAGE_ARN})
        with pytest.raises(ReleaseError) as raised:
            check_promotable(sm, None, PACKAGE_ARN, "mlops-iris-staging")
    message = str(raised.value)
    assert "sagemaker:DescribeModelPackage" in message and "access denied" in message
    assert "no model package" not in message


def test_a_role_that_may_not_read_the_staging_endpoint_is_named_not_taken_for_a_missing_endpoint(
    aws_credentials,
):
    sm = boto3.client("sagemaker")
    with Stubber(sm) as stub:
        stub.add_response("describe_model_package", _approved_package(), {"ModelPackageName": PACKAGE_ARN})
        _denied(stub, "describe_endpoint", {"EndpointName": "mlops-iris-staging"})
        with pytest.raises(ReleaseError) as raised:
            check_promotable(sm, None, PACKAGE_ARN, "mlops-iris-staging")
    assert "sagemaker:DescribeEndpoint" in str(raised.value)
    assert "does not exist" not in str(raised.value)


def test_a_role_that_may_not_invoke_the_staging_endpoint_is_named(aws_credentials):
    sm, runtime = boto3.client("sagemaker"), boto3.client("sagemaker-runtime")
    created = datetime(2026, 1, 1, tzinfo=UTC)
    with Stubber(sm) as stub, Stubber(runtime) as runtime_stub:
        stub.add_response("describe_model_package", _approved_package(), {"ModelPackageName": PACKAGE_ARN})
        stub.add_response(
            "describe_endpoint",
            {
                "EndpointName": "mlops-iris-staging",
                "EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/mlops-iris-staging",
                "EndpointConfigName": "mlops-iris-staging-c",
                "EndpointStatus": "InService",
                "CreationTime": created,
                "LastModifiedTime": created,
            },
        )
        stub.add_response(
            "describe_endpoint_config",
            {
                "EndpointConfigName": "mlops-iris-staging-c",
                "EndpointConfigArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/c",
                "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": "mlops-iris-staging-m"}],
                "CreationTime": created,
            },
        )
        stub.add_response(
            "describe_model",
            {
                "ModelName": "mlops-iris-staging-m",
                "ModelArn": "arn:aws:sagemaker:us-east-1:123456789012:model/mlops-iris-staging-m",
                "PrimaryContainer": {"ModelPackageName": PACKAGE_ARN},
                "CreationTime": created,
            },
        )
        _denied(runtime_stub, "invoke_endpoint", None)
        with pytest.raises(ReleaseError, match=r"access denied.*sagemaker:InvokeEndpoint"):
            check_promotable(sm, runtime, PACKAGE_ARN, "mlops-iris-staging")
