"""AWS SDK integrations fail with ``<Service>.<Exception>`` names in Step Functions (``SageMaker.`` plus the
modelled exception, or ``SageMaker.SageMakerException`` for an error the API does not model). The local
interpreter must raise the same names, so the definition's Retry and Catch are exercised as AWS runs them."""

import json
import time

import boto3
import pytest
from moto import mock_aws

from mlops.local import engine


@pytest.fixture
def sfn(aws_credentials):
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        engine.install(lambda arn, event: (True, {}))
        try:
            yield boto3.client("stepfunctions")
        finally:
            engine.uninstall()


def _error_of(sfn, resource: str, parameters: dict) -> str:
    definition = {
        "StartAt": "Call",
        "States": {
            "Call": {
                "Type": "Task",
                "Resource": resource,
                "Parameters": parameters,
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": "Caught"}],
                "End": True,
            },
            "Caught": {"Type": "Pass", "End": True},
        },
    }
    arn = sfn.create_state_machine(
        name="sdk-errors", definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/sfn"
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=arn, name="call-1", input="{}")["executionArn"]
    deadline = time.monotonic() + 20
    while (described := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return json.loads(described["output"])["failure"]["Error"]


def test_an_error_sagemaker_does_not_model_is_sagemaker_exception(sfn):
    # DescribeEndpoint of a missing endpoint answers ValidationException, which SageMaker's API leaves unmodelled.
    error = _error_of(
        sfn, "arn:aws:states:::aws-sdk:sagemaker:describeEndpoint", {"EndpointName": "mlops-iris-staging"}
    )
    assert error == "SageMaker.SageMakerException"


def test_a_modelled_sagemaker_error_keeps_its_name_with_the_exception_suffix(sfn):
    error = _error_of(
        sfn,
        "arn:aws:states:::aws-sdk:sagemaker:associateTrialComponent",
        {"TrialName": "missing", "TrialComponentName": "missing"},
    )
    assert error == "SageMaker.ResourceNotFoundException"
