"""Local endpoints through the SageMaker API: Creating → InService, a DescribeEndpoint that waits for a short
transition to end, and UpdateEndpoint to a new config; the model server really answers."""

import json
import os
import stat
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mlops.local import sagemaker
from mlops.local.stack import LocalStack

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stack(stack_with_a_model):
    return stack_with_a_model


def test_the_api_key_file_is_private_from_its_creation_and_never_written_through_a_link(
    tmp_path, monkeypatch
):
    work = tmp_path / "work"
    work.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("")
    (work / "api-key").symlink_to(elsewhere)  # planted before the run, or left by something else
    plain_chmod = os.chmod

    def chmod_that_comes_too_late(path, mode, *args, **kwargs):
        # Someone may read the file between its creation and a chmod: the key must not depend on one.
        if Path(path).name != "api-key":
            plain_chmod(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "chmod", chmod_that_comes_too_late)
    local = LocalStack(work_dir=work).start()
    try:
        key_file = work / "api-key"
        assert not key_file.is_symlink()
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert key_file.read_text() == local.gateway.api_key
        assert elsewhere.read_text() == ""
        assert [p.name for p in work.iterdir() if p.name.startswith(".api-key")] == []
    finally:
        local.stop()


def config(stack, name):
    sm = stack.client("sagemaker")
    sm.create_model(
        ModelName=name,
        ExecutionRoleArn=stack.role_arn,
        PrimaryContainer={
            "Image": "local",
            "ModelDataUrl": f"s3://{stack.bucket}/training/model/output/model.tar.gz",
        },
    )
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
    return name


def predict(stack, endpoint, row):
    answer = stack.client("sagemaker-runtime").invoke_endpoint(
        EndpointName=endpoint, ContentType="text/csv", Accept="application/json", Body=row
    )
    return json.loads(answer["Body"].read())


def test_describe_answers_in_service_once_a_quick_start_ends(stack):
    sm = stack.client("sagemaker")
    sm.create_endpoint(EndpointName="quick", EndpointConfigName=config(stack, "quick-1"))
    described = sm.describe_endpoint(EndpointName="quick")
    assert described["EndpointStatus"] == "InService"
    assert predict(stack, "quick", "4.5,1.3,0.3,0.3") == ["setosa"]

    sm.update_endpoint(EndpointName="quick", EndpointConfigName=config(stack, "quick-2"))
    described = sm.describe_endpoint(EndpointName="quick")
    assert (described["EndpointStatus"], described["EndpointConfigName"]) == ("InService", "quick-2")
    assert predict(stack, "quick", "5.9,3,5.1,1.8") == ["virginica"]


def test_the_model_folder_a_server_reads_is_read_only_as_sagemaker_mounts_it(stack):
    sm = stack.client("sagemaker")
    sm.create_endpoint(EndpointName="mounted", EndpointConfigName=config(stack, "mounted-1"))
    assert sm.describe_endpoint(EndpointName="mounted")["EndpointStatus"] == "InService"
    model_dir = stack.work_dir / "sagemaker" / "endpoints" / "mounted-mounted-1" / "model"
    paths = [model_dir, *model_dir.rglob("*")]
    assert len(paths) > 1
    assert [p for p in paths if stat.S_IMODE(p.stat().st_mode) & 0o222] == []
    sm.update_endpoint(EndpointName="mounted", EndpointConfigName=config(stack, "mounted-2"))
    stack.sagemaker.stop_endpoint("mounted")
    stack.sagemaker._scratch("endpoints", "mounted-mounted-1")  # a read-only model folder is still removable
    assert list((stack.work_dir / "sagemaker" / "endpoints" / "mounted-mounted-1").iterdir()) == []


def test_a_poller_that_does_not_wait_sees_creating_then_in_service(stack, monkeypatch):
    monkeypatch.setattr(sagemaker, "SETTLE_SECONDS", 0.0)
    sm = stack.client("sagemaker")
    sm.create_endpoint(EndpointName="polled", EndpointConfigName=config(stack, "polled-1"))
    statuses = [sm.describe_endpoint(EndpointName="polled")["EndpointStatus"]]
    deadline = time.monotonic() + 30
    while statuses[-1] == "Creating" and time.monotonic() < deadline:
        time.sleep(0.01)
        statuses.append(sm.describe_endpoint(EndpointName="polled")["EndpointStatus"])
    assert statuses[0] == "Creating"
    assert statuses[-1] == "InService"


def test_a_model_error_reaches_boto3_as_sagemakers_424_model_error_with_the_containers_message(stack):
    endpoint = "errors-endpoint"
    sm = stack.client("sagemaker")
    sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=config(stack, "errors-config"))
    sm.get_waiter("endpoint_in_service").wait(EndpointName=endpoint, WaiterConfig={"Delay": 1})
    runtime = stack.client("sagemaker-runtime")
    for body in (b"abc,1,2,3", b"\xff\xfe,1,2,3"):  # a bad row; bytes that are not UTF-8 at all
        with pytest.raises(runtime.exceptions.ModelError) as raised:
            runtime.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=body)
        error = raised.value.response
        assert error["ResponseMetadata"]["HTTPStatusCode"] == 424
        assert error["OriginalStatusCode"] == 400
        assert "row 1" in error["OriginalMessage"]


def test_a_missing_endpoint_is_sagemakers_400_validation_error(stack):
    runtime = stack.client("sagemaker-runtime")
    with pytest.raises(runtime.exceptions.ClientError) as raised:
        runtime.invoke_endpoint(EndpointName="no-such-endpoint", ContentType="text/csv", Body=b"1,2,3,4")
    error = raised.value.response
    assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]) == ("ValidationError", 400)
    assert "no-such-endpoint" in error["Error"]["Message"]


def rollback_alarms(stack) -> list[str]:
    """The template's rollback alarms of the stack's endpoint (deployed with the stack)."""
    name = stack.endpoint_name
    return [f"{name}-endpoint-5xx-errors", f"{name}-endpoint-latency-p99", f"{name}-model-errors"]


def guarded(routing: dict, alarms: list[str]) -> dict:
    return {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": routing,
            "TerminationWaitInSeconds": 60,
            "MaximumExecutionTimeoutInSeconds": 1800,
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": alarm} for alarm in alarms]},
    }


def update_under_traffic(stack, endpoint: str, config_name: str, routing: dict) -> dict[str, int]:
    """UpdateEndpoint with the template's rollback alarms, then InvokeEndpoint, one request after another,
    until the update ends; the answers' outcomes."""
    stack.client("sagemaker").update_endpoint(
        EndpointName=endpoint,
        EndpointConfigName=config(stack, config_name),
        DeploymentConfig=guarded(routing, rollback_alarms(stack)),
    )
    sm, runtime = stack.client("sagemaker"), stack.client("sagemaker-runtime")
    outcomes = {"answered": 0, "model_errors": 0}
    deadline = time.monotonic() + 60
    while sm.describe_endpoint(EndpointName=endpoint)["EndpointStatus"] == "Updating":
        assert time.monotonic() < deadline, "the update did not end"
        for _ in range(5):
            try:
                runtime.invoke_endpoint(
                    EndpointName=endpoint, ContentType="text/csv", Body=b"4.5,1.3,0.3,0.3"
                )
                outcomes["answered"] += 1
            except runtime.exceptions.ModelError:
                outcomes["model_errors"] += 1
    return outcomes


@pytest.fixture
def guarded_endpoint(stack):
    name = stack.endpoint_name
    sm = stack.client("sagemaker")
    sm.create_endpoint(EndpointName=name, EndpointConfigName=config(stack, "guarded-1"))
    sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 1})
    yield name
    sm.delete_endpoint(EndpointName=name)
    stack.sagemaker.faults = set()


def test_a_failing_canary_is_rolled_back_by_the_templates_alarm_and_the_old_fleet_fails_no_request(
    stack, guarded_endpoint
):
    sm, cloudwatch = stack.client("sagemaker"), stack.client("cloudwatch")
    alarms = rollback_alarms(stack)
    stack.sagemaker.faults = {"canary-errors"}  # the new fleet's model fails every other request
    routing = {
        "Type": "CANARY",
        "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 25},
        "WaitIntervalInSeconds": 600,
    }
    outcomes = update_under_traffic(stack, guarded_endpoint, "guarded-2", routing)

    described = sm.describe_endpoint(EndpointName=guarded_endpoint)
    assert (described["EndpointStatus"], described["EndpointConfigName"]) == ("InService", "guarded-1")
    assert f"alarm {alarms[0]} fired during baking" in described["FailureReason"]
    record = stack.sagemaker.deployments["guarded-2"]
    assert (record["outcome"], record["alarm"], record["strategy"]) == ("rolled back", alarms[0], "CANARY")
    requests = record["requests"]
    # every request the old fleet took was answered (a call made as the update ended is no longer counted)
    assert requests["old"]["failed"] == 0 and 0 < requests["old"]["answered"] <= outcomes["answered"]
    assert requests["new"]["failed"] == outcomes["model_errors"] >= 1
    # the rollback came during the canary's bake (600 s, 5 s locally), at its first failure
    assert sum(requests["new"].values()) <= 2
    (alarm,) = cloudwatch.describe_alarms(AlarmNames=[alarms[0]])["MetricAlarms"]
    assert alarm["StateValue"] == "ALARM" and alarm["StateReason"].startswith("Threshold Crossed")
    stack.sagemaker.publish_metrics()
    errors = cloudwatch.get_metric_statistics(
        Namespace="AWS/SageMaker",
        MetricName="Invocation5XXErrors",
        Dimensions=[
            {"Name": "EndpointName", "Value": guarded_endpoint},
            {"Name": "VariantName", "Value": "AllTraffic"},
        ],
        StartTime=datetime.now(UTC) - timedelta(minutes=10),
        EndTime=datetime.now(UTC) + timedelta(minutes=1),
        Period=60,
        Statistics=["Sum"],
    )["Datapoints"]
    assert sum(point["Sum"] for point in errors) >= outcomes["model_errors"]
    assert predict(stack, guarded_endpoint, "4.5,1.3,0.3,0.3") == ["setosa"]  # the old fleet still answers


def test_a_healthy_linear_update_moves_all_traffic_step_by_step_and_the_alarms_stay_ok(
    stack, guarded_endpoint
):
    sm, cloudwatch = stack.client("sagemaker"), stack.client("cloudwatch")
    alarms = rollback_alarms(stack)
    routing = {
        "Type": "LINEAR",
        "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 50},
        "WaitIntervalInSeconds": 120,
    }
    outcomes = update_under_traffic(stack, guarded_endpoint, "guarded-3", routing)

    described = sm.describe_endpoint(EndpointName=guarded_endpoint)
    assert (described["EndpointStatus"], described["EndpointConfigName"]) == ("InService", "guarded-3")
    assert "FailureReason" not in described
    record = stack.sagemaker.deployments["guarded-3"]
    assert record["outcome"] == "completed" and record["alarm"] is None
    assert [step["new_percent"] for step in record["steps"]] == [50.0, 100.0]
    assert outcomes["model_errors"] == 0
    assert record["requests"]["new"]["answered"] > 0 and record["requests"]["old"]["answered"] > 0
    states = {
        a["AlarmName"]: a["StateValue"] for a in cloudwatch.describe_alarms(AlarmNames=alarms)["MetricAlarms"]
    }
    assert states[alarms[0]] == "OK" and states[alarms[2]] == "OK"


def test_a_deployment_config_sagemaker_refuses_is_a_validation_error_and_nothing_changes(
    stack, guarded_endpoint
):
    sm = stack.client("sagemaker")
    routing = {
        "Type": "CANARY",
        "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 60},
        "WaitIntervalInSeconds": 60,
    }
    with pytest.raises(sm.exceptions.ClientError) as raised:
        sm.update_endpoint(
            EndpointName=guarded_endpoint,
            EndpointConfigName=config(stack, "guarded-4"),
            DeploymentConfig=guarded(routing, rollback_alarms(stack)),
        )
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert "at most 50%" in raised.value.response["Error"]["Message"]
    described = sm.describe_endpoint(EndpointName=guarded_endpoint)
    assert (described["EndpointStatus"], described["EndpointConfigName"]) == ("InService", "guarded-1")


def test_invocations_reach_cloudwatch_once_a_minute_of_the_deployment_clock(stack):
    sm, cloudwatch = stack.client("sagemaker"), stack.client("cloudwatch")
    sm.create_endpoint(EndpointName="counted", EndpointConfigName=config(stack, "counted-1"))
    sm.get_waiter("endpoint_in_service").wait(EndpointName="counted", WaiterConfig={"Delay": 1})
    for _ in range(3):
        predict(stack, "counted", "4.5,1.3,0.3,0.3")

    def invocations() -> float:
        points = cloudwatch.get_metric_statistics(
            Namespace="AWS/SageMaker",
            MetricName="Invocations",
            Dimensions=[
                {"Name": "EndpointName", "Value": "counted"},
                {"Name": "VariantName", "Value": "AllTraffic"},
            ],
            StartTime=datetime.now(UTC) - timedelta(minutes=10),
            EndTime=datetime.now(UTC) + timedelta(minutes=1),
            Period=60,
            Statistics=["Sum"],
        )["Datapoints"]
        return sum(point["Sum"] for point in points)

    deadline = time.monotonic() + 10
    while invocations() < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert invocations() == 3
