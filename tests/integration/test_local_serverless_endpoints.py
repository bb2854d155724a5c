"""Serverless endpoints through the local SageMaker API: the configs AWS refuses are refused, the endpoint
serves with the same container, DescribeEndpoint shows its serverless variant, invocations beyond
MaxConcurrency are throttled, and updates go only where AWS lets them."""

import json
import threading
import time

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

pytestmark = pytest.mark.slow

# A client that sends what botocore would refuse itself, so the local SageMaker's own answer is what is seen,
# and that does not retry a throttled call (the SDKs do, with backoff).
AS_SENT = Config(parameter_validation=False, retries={"total_max_attempts": 1})
SETOSA = "4.5,1.3,0.3,0.3"


@pytest.fixture(scope="module")
def stack(stack_with_a_model):
    stack_with_a_model.as_sent = {}
    return stack_with_a_model


def _raw(stack, service):
    if service not in stack.as_sent:
        stack.as_sent[service] = boto3.client(
            service, endpoint_url=stack.endpoint_url, region_name="us-east-1", config=AS_SENT
        )
    return stack.as_sent[service]


def model(stack, name):
    _raw(stack, "sagemaker").create_model(
        ModelName=name,
        ExecutionRoleArn=stack.role_arn,
        PrimaryContainer={
            "Image": "local",
            "ModelDataUrl": f"s3://{stack.bucket}/training/model/output/model.tar.gz",
        },
    )
    return name


def serverless_config(stack, name, memory=1024, concurrency=2, **fields):
    _raw(stack, "sagemaker").create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": model(stack, name),
                "ServerlessConfig": {"MemorySizeInMB": memory, "MaxConcurrency": concurrency},
                **fields.pop("variant", {}),
            }
        ],
        **fields,
    )
    return name


def instance_config(stack, name):
    _raw(stack, "sagemaker").create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": model(stack, name),
                "InstanceType": "ml.t2.medium",
                "InitialInstanceCount": 1,
            }
        ],
    )
    return name


def invoke(stack, endpoint, body=SETOSA):
    answer = _raw(stack, "sagemaker-runtime").invoke_endpoint(
        EndpointName=endpoint, ContentType="text/csv", Accept="application/json", Body=body
    )
    return json.loads(answer["Body"].read())


def refusal(call) -> tuple[str, str]:
    with pytest.raises(ClientError) as raised:
        call()
    return raised.value.response["Error"]["Code"], raised.value.response["Error"]["Message"]


@pytest.mark.parametrize(
    ("name", "kwargs", "says"),
    [
        ("bad-memory", {"memory": 1500}, "memorySizeInMB"),
        ("small-memory", {"memory": 512}, "memorySizeInMB"),
        ("no-concurrency", {"concurrency": 0}, "maxConcurrency"),
        ("too-concurrent", {"concurrency": 201}, "maxConcurrency"),
        ("both", {"variant": {"InstanceType": "ml.t2.medium", "InitialInstanceCount": 1}}, "InstanceType"),
        (
            "capturing",
            {
                "DataCaptureConfig": {
                    "InitialSamplingPercentage": 100,
                    "DestinationS3Uri": "s3://b/capture",
                    "CaptureOptions": [{"CaptureMode": "Input"}],
                }
            },
            "DataCaptureConfig",
        ),
    ],
)
def test_a_serverless_config_aws_refuses_is_a_validation_exception_and_is_not_kept(stack, name, kwargs, says):
    code, message = refusal(lambda: serverless_config(stack, name, **kwargs))
    assert code == "ValidationException" and says in message
    assert refusal(lambda: _raw(stack, "sagemaker").describe_endpoint_config(EndpointConfigName=name))[0] == (
        "ValidationException"
    )


def test_a_serverless_endpoint_serves_the_container_and_describes_its_serverless_variant(stack):
    sm = _raw(stack, "sagemaker")
    sm.create_endpoint(EndpointName="sl", EndpointConfigName=serverless_config(stack, "sl-1", 2048, 3))
    sm.get_waiter("endpoint_in_service").wait(EndpointName="sl", WaiterConfig={"Delay": 1})
    described = sm.describe_endpoint(EndpointName="sl")
    assert described["EndpointStatus"] == "InService"
    (variant,) = described["ProductionVariants"]
    assert variant["CurrentServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 3}
    assert variant["DesiredServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 3}
    assert "CurrentInstanceCount" not in variant
    assert "DataCaptureConfig" not in described
    assert invoke(stack, "sl") == ["setosa"]


def test_invocations_beyond_max_concurrency_are_throttled_and_the_others_answer(stack):
    sm = _raw(stack, "sagemaker")
    sm.create_endpoint(
        EndpointName="one-at-a-time", EndpointConfigName=serverless_config(stack, "once", concurrency=1)
    )
    sm.get_waiter("endpoint_in_service").wait(EndpointName="one-at-a-time", WaiterConfig={"Delay": 1})
    batch = "\n".join([SETOSA] * 20000)  # long enough to be in flight while the next call arrives
    stop = threading.Event()
    batches: list[int] = []

    def keep_one_running():
        while not stop.is_set():
            try:
                batches.append(len(invoke(stack, "one-at-a-time", batch)))
            except ClientError as error:  # the small calls below hold the one place at times too
                assert error.response["Error"]["Code"] == "ThrottlingException"

    runner = threading.Thread(target=keep_one_running, daemon=True)
    runner.start()
    throttled, answered = [], 0
    deadline = time.monotonic() + 30
    try:
        while not throttled and time.monotonic() < deadline:
            try:
                invoke(stack, "one-at-a-time")
                answered += 1
            except ClientError as error:
                throttled.append(error.response)
    finally:
        stop.set()
        runner.join(timeout=60)
    assert throttled, f"no call was throttled beside a running one ({answered} answered)"
    assert throttled[0]["Error"]["Code"] == "ThrottlingException"
    assert throttled[0]["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "MaxConcurrency" in throttled[0]["Error"]["Message"]
    assert batches and set(batches) == {20000}  # the admitted invocation was not disturbed
    assert invoke(stack, "one-at-a-time") == ["setosa"]  # its place is free again once it ends


def test_an_instance_endpoint_cannot_be_updated_to_serverless_and_keeps_serving(stack):
    sm = _raw(stack, "sagemaker")
    sm.create_endpoint(EndpointName="fleet", EndpointConfigName=instance_config(stack, "fleet-1"))
    sm.get_waiter("endpoint_in_service").wait(EndpointName="fleet", WaiterConfig={"Delay": 1})
    code, message = refusal(
        lambda: sm.update_endpoint(
            EndpointName="fleet", EndpointConfigName=serverless_config(stack, "fleet-2")
        )
    )
    assert code == "ValidationException" and "serverless" in message
    described = sm.describe_endpoint(EndpointName="fleet")
    assert (described["EndpointStatus"], described["EndpointConfigName"]) == ("InService", "fleet-1")
    assert invoke(stack, "fleet") == ["setosa"]


def test_a_serverless_endpoint_updates_to_new_serverless_settings_and_then_to_instances(stack):
    sm = _raw(stack, "sagemaker")
    sm.create_endpoint(EndpointName="grows", EndpointConfigName=serverless_config(stack, "grows-1", 1024, 1))
    sm.get_waiter("endpoint_in_service").wait(EndpointName="grows", WaiterConfig={"Delay": 1})
    rolling = {
        "RollingUpdatePolicy": {
            "MaximumBatchSize": {"Type": "CAPACITY_PERCENT", "Value": 50},
            "WaitIntervalInSeconds": 0,
        }
    }
    code, _ = refusal(
        lambda: sm.update_endpoint(
            EndpointName="grows",
            EndpointConfigName=serverless_config(stack, "grows-2", 4096, 8),
            DeploymentConfig=rolling,
        )
    )
    assert code == "ValidationException"
    sm.update_endpoint(EndpointName="grows", EndpointConfigName="grows-2")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="grows", WaiterConfig={"Delay": 1})
    described = sm.describe_endpoint(EndpointName="grows")
    assert (described["EndpointStatus"], described["EndpointConfigName"]) == ("InService", "grows-2")
    assert described["ProductionVariants"][0]["CurrentServerlessConfig"] == {
        "MemorySizeInMB": 4096,
        "MaxConcurrency": 8,
    }
    assert invoke(stack, "grows") == ["setosa"]

    sm.update_endpoint(EndpointName="grows", EndpointConfigName=instance_config(stack, "grows-3"))
    sm.get_waiter("endpoint_in_service").wait(EndpointName="grows", WaiterConfig={"Delay": 1})
    (variant,) = sm.describe_endpoint(EndpointName="grows")["ProductionVariants"]
    assert variant["CurrentInstanceCount"] == 1 and "CurrentServerlessConfig" not in variant
    assert invoke(stack, "grows") == ["setosa"]
