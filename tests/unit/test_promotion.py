import json

import boto3
import pytest
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
    assert all(n.startswith("mlops-iris-prod-") for n in execution_input["names"].values())
    json.dumps(execution_input)
