"""What the local SageMaker refuses of a serverless endpoint config or update, its concurrency limit, and how
the summary reads a config's capacity."""

import threading

import pytest
from moto.sagemaker.utils import ValidationError

from mlops.local.serverless import (
    ConcurrencyLimit,
    check_endpoint_config,
    check_update,
    limit_for,
    serves_serverless,
)
from mlops.summary import capacity_of


def serverless_variant(memory=2048, concurrency=5, **extra):
    return {
        "VariantName": "AllTraffic",
        "ModelName": "m",
        "ServerlessConfig": {"MemorySizeInMB": memory, "MaxConcurrency": concurrency},
        **extra,
    }


INSTANCE_VARIANT = {
    "VariantName": "AllTraffic",
    "ModelName": "m",
    "InstanceType": "ml.t2.medium",
    "InitialInstanceCount": 1,
}
CAPTURE = {"EnableCapture": True, "InitialSamplingPercentage": 100, "DestinationS3Uri": "s3://b/capture"}


@pytest.mark.parametrize("memory", [1024, 2048, 3072, 4096, 5120, 6144])
@pytest.mark.parametrize("concurrency", [1, 200])
def test_every_documented_memory_size_and_the_concurrency_bounds_are_accepted(memory, concurrency):
    check_endpoint_config([serverless_variant(memory, concurrency)], None)


@pytest.mark.parametrize(
    ("memory", "concurrency", "field"),
    [
        (1500, 5, "memorySizeInMB"),
        (512, 5, "memorySizeInMB"),
        (8192, 5, "memorySizeInMB"),
        (2048, 0, "maxConcurrency"),
        (2048, 201, "maxConcurrency"),
    ],
)
def test_a_memory_size_or_concurrency_aws_refuses_is_a_validation_error_naming_the_field(
    memory, concurrency, field
):
    with pytest.raises(ValidationError, match=field):
        check_endpoint_config([serverless_variant(memory, concurrency)], None)


def test_a_variant_with_both_serverless_and_instance_fields_is_refused():
    with pytest.raises(ValidationError, match="InstanceType"):
        check_endpoint_config([serverless_variant(InstanceType="ml.t2.medium")], None)
    with pytest.raises(ValidationError, match="InitialInstanceCount"):
        check_endpoint_config([serverless_variant(InitialInstanceCount=1)], None)


def test_provisioned_concurrency_above_max_concurrency_is_refused():
    variant = serverless_variant(concurrency=2)
    variant["ServerlessConfig"]["ProvisionedConcurrency"] = 3
    with pytest.raises(ValidationError, match="provisionedConcurrency"):
        check_endpoint_config([variant], None)


def test_what_serverless_excludes_is_refused_with_a_serverless_variant_and_allowed_without():
    with pytest.raises(ValidationError, match="DataCaptureConfig"):
        check_endpoint_config([serverless_variant()], CAPTURE)
    second = {**INSTANCE_VARIANT, "VariantName": "Second"}
    with pytest.raises(ValidationError, match="one production variant"):
        check_endpoint_config([serverless_variant(), second], None)
    check_endpoint_config([INSTANCE_VARIANT, second], CAPTURE)


def test_an_instance_endpoint_cannot_become_serverless_but_the_other_way_is_allowed():
    with pytest.raises(ValidationError, match="instance-based endpoint cannot be updated"):
        check_update(False, [serverless_variant()], None)
    check_update(True, [INSTANCE_VARIANT], None)
    check_update(True, [serverless_variant(4096, 10)], None)
    check_update(False, [INSTANCE_VARIANT], {"RollingUpdatePolicy": {}})


def test_an_endpoint_is_serverless_when_describe_shows_a_current_serverless_config():
    described = {
        "VariantName": "AllTraffic",
        "CurrentServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5},
    }
    assert serves_serverless([described])
    assert not serves_serverless([{"VariantName": "AllTraffic", "CurrentInstanceCount": 1}])
    assert not serves_serverless(None)


def test_a_serverless_update_takes_blue_green_but_not_a_rolling_deployment():
    blue_green = {
        "BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE"}},
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "health"}]},
    }
    check_update(True, [serverless_variant()], blue_green)
    rolling = {"RollingUpdatePolicy": {"MaximumBatchSize": {"Type": "CAPACITY_PERCENT", "Value": 50}}}
    with pytest.raises(ValidationError, match="Rolling"):
        check_update(True, [serverless_variant()], rolling)


def test_the_limit_admits_max_concurrency_invocations_at_once_and_frees_a_place_when_one_ends():
    limit = ConcurrencyLimit(2)
    with limit.slot() as first, limit.slot() as second, limit.slot() as third:
        assert (first, second, third) == (True, True, False)
    with limit.slot() as again:
        assert again


def test_the_limit_holds_under_threads():
    limit = ConcurrencyLimit(3)
    running, most, lock = [0], [0], threading.Lock()
    inside = threading.Barrier(8, timeout=5)

    def invoke():
        with limit.slot() as admitted:
            if admitted:
                with lock:
                    running[0] += 1
                    most[0] = max(most[0], running[0])
            try:
                inside.wait()  # every thread is here at once: the admitted ones hold their places
            finally:
                if admitted:
                    with lock:
                        running[0] -= 1

    threads = [threading.Thread(target=invoke) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most[0] == 3


def test_only_a_serverless_variant_has_a_limit():
    assert limit_for(INSTANCE_VARIANT) is None
    assert limit_for(serverless_variant(concurrency=7)).limit == 7


def test_the_summary_says_how_a_variant_is_provisioned():
    assert capacity_of(serverless_variant(3072, 9)) == {
        "endpoint_type": "serverless",
        "memory_size_in_mb": 3072,
        "max_concurrency": 9,
    }
    assert capacity_of(INSTANCE_VARIANT) == {
        "endpoint_type": "instance",
        "instance_type": "ml.t2.medium",
        "instance_count": 1,
    }
