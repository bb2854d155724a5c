"""Which package `mlops rollback` goes back to, and what it refuses (moto's SageMaker registry)."""

import boto3
import pytest
from moto import mock_aws

from mlops.release import ReleaseError
from mlops.rollback import rollback_target

GROUP, ENDPOINT = "mlops-iris", "mlops-iris-staging"
ROLE = "arn:aws:iam::123456789012:role/sagemaker"


@pytest.fixture
def sm(aws_credentials):
    with mock_aws():
        client = boto3.client("sagemaker", region_name="us-east-1")
        client.create_model_package_group(ModelPackageGroupName=GROUP)
        yield client


def package(sm, status: str) -> str:
    return sm.create_model_package(
        ModelPackageGroupName=GROUP,
        ModelPackageDescription="release of commit 0123456789ab",
        ModelApprovalStatus=status,
        InferenceSpecification={
            "Containers": [{"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/mlops-iris:x"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
    )["ModelPackageArn"]


def serve(sm, package_arn: str, name: str) -> None:
    sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={"ModelPackageName": package_arn})
    sm.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": name,
                "InstanceType": "ml.m5.large",
                "InitialInstanceCount": 1,
            }
        ],
    )
    sm.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName=name)  # each test serves one package


def test_goes_back_to_the_newest_approved_package_older_than_the_one_serving(sm):
    first = package(sm, "Approved")
    package(sm, "Rejected")
    third = package(sm, "Approved")
    fourth = package(sm, "Approved")  # newer than what serves: never a rollback target
    serve(sm, third, "mlops-iris-staging-3")
    assert rollback_target(sm, GROUP, ENDPOINT)["ModelPackageArn"] == first
    assert fourth


def test_to_must_be_an_approved_version_of_the_group_not_the_one_serving(sm):
    approved, rejected = package(sm, "Approved"), package(sm, "Rejected")
    serve(sm, approved, "mlops-iris-staging-1")
    with pytest.raises(ReleaseError, match="is Rejected; only an Approved package"):
        rollback_target(sm, GROUP, ENDPOINT, to=rejected)
    with pytest.raises(ReleaseError, match="already serves"):
        rollback_target(sm, GROUP, ENDPOINT, to=approved)


def test_nothing_older_or_nothing_serving_is_said_plainly(sm):
    only = package(sm, "Approved")
    with pytest.raises(ReleaseError, match="serves no registered model package"):
        rollback_target(sm, GROUP, ENDPOINT)
    serve(sm, only, "mlops-iris-staging-1")
    with pytest.raises(ReleaseError, match="no Approved version of mlops-iris is older"):
        rollback_target(sm, GROUP, ENDPOINT)
