import time
from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import Stubber
from fnharness import load_function
from moto import mock_aws

ROLE = "arn:aws:iam::123456789012:role/sagemaker"


@pytest.fixture
def cleanup(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("PROJECT_NAME", "mlops-iris")
    monkeypatch.setenv("STAGE", "staging")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    with mock_aws():
        yield load_function("cleanup/app.py"), boto3.client("sagemaker", region_name="us-east-1")


def _model(sm, name: str) -> None:
    sm.create_model(
        ModelName=name,
        ExecutionRoleArn=ROLE,
        PrimaryContainer={"Image": "img", "ModelDataUrl": "s3://b/m.tar.gz"},
    )


def _release(sm, n: int) -> dict[str, str]:
    names = {"model": f"mlops-iris-staging-r{n}-model", "endpoint_config": f"mlops-iris-staging-r{n}-config"}
    _model(sm, names["model"])
    sm.create_endpoint_config(
        EndpointConfigName=names["endpoint_config"],
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": names["model"],
                "InstanceType": "ml.t2.medium",
                "InitialInstanceCount": 1,
            }
        ],
    )
    time.sleep(0.01)  # creation times must differ
    return names


def _names(sm) -> tuple[set[str], set[str]]:
    return (
        {c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]},
        {m["ModelName"] for m in sm.list_models()["Models"]},
    )


def test_success_keeps_live_and_rollback_and_deletes_older_releases(cleanup):
    fn, sm = cleanup
    r1, r2, r3 = (_release(sm, n) for n in (1, 2, 3))
    sm.create_endpoint(EndpointName="mlops-iris-staging", EndpointConfigName=r3["endpoint_config"])
    sm.create_model(
        ModelName="other-team-model",
        ExecutionRoleArn=ROLE,
        PrimaryContainer={"Image": "img", "ModelDataUrl": "s3://b/x"},
    )

    result = fn.clean_up(
        {
            "endpoint_name": "mlops-iris-staging",
            "names": r3,
            "outcome": "succeeded",
            "previous_config": r2["endpoint_config"],
        }
    )

    configs, models = _names(sm)
    assert configs == {r2["endpoint_config"], r3["endpoint_config"]}
    assert models == {r2["model"], r3["model"], "other-team-model"}
    assert sorted(result["deleted"]) == sorted([r1["endpoint_config"], r1["model"]])


def test_failed_release_removes_only_its_own_unused_resources(cleanup):
    fn, sm = cleanup
    live, failed = _release(sm, 1), _release(sm, 2)
    sm.create_endpoint(EndpointName="mlops-iris-staging", EndpointConfigName=live["endpoint_config"])

    fn.clean_up(
        {"endpoint_name": "mlops-iris-staging", "names": failed, "outcome": "failed", "previous_config": None}
    )

    assert _names(sm) == ({live["endpoint_config"]}, {live["model"]})


def test_failed_first_release_without_endpoint_config_is_fine(cleanup):
    fn, sm = cleanup
    _model(sm, "mlops-iris-staging-r1-model")
    result = fn.clean_up(
        {
            "endpoint_name": "mlops-iris-staging",
            "outcome": "failed",
            "names": {
                "model": "mlops-iris-staging-r1-model",
                "endpoint_config": "mlops-iris-staging-r1-config",
            },
        }
    )
    assert result["deleted"] == ["mlops-iris-staging-r1-model"]
    assert _names(sm) == (set(), set())


def test_a_newer_concurrent_release_is_not_touched(cleanup):
    fn, sm = cleanup
    r1 = _release(sm, 1)
    sm.create_endpoint(EndpointName="mlops-iris-staging", EndpointConfigName=r1["endpoint_config"])
    newer = _release(sm, 2)
    fn.clean_up(
        {"endpoint_name": "mlops-iris-staging", "names": r1, "outcome": "succeeded", "previous_config": None}
    )
    configs, models = _names(sm)
    assert newer["endpoint_config"] in configs and newer["model"] in models


def test_another_stages_resources_are_never_touched(cleanup):
    fn, sm = cleanup
    _model(sm, "mlops-iris-prod-r0-model")
    time.sleep(0.01)
    live = _release(sm, 1)
    sm.create_endpoint(EndpointName="mlops-iris-staging", EndpointConfigName=live["endpoint_config"])
    fn.clean_up(
        {
            "endpoint_name": "mlops-iris-staging",
            "names": live,
            "outcome": "succeeded",
            "previous_config": None,
        }
    )
    assert "mlops-iris-prod-r0-model" in _names(sm)[1]


def test_a_failed_release_also_removes_its_evaluation_model(cleanup):
    fn, sm = cleanup
    live = _release(sm, 1)
    sm.create_endpoint(EndpointName="mlops-iris-staging", EndpointConfigName=live["endpoint_config"])
    failed = {
        "evaluation_model": "mlops-iris-staging-r2-eval-model",
        "model": "mlops-iris-staging-r2-model",
        "endpoint_config": "mlops-iris-staging-r2-config",
    }
    _model(sm, failed["evaluation_model"])  # the release failed at evaluation: nothing else was created

    result = fn.clean_up(
        {"endpoint_name": "mlops-iris-staging", "names": failed, "outcome": "failed", "previous_config": None}
    )

    assert result["deleted"] == [failed["evaluation_model"]]
    assert _names(sm) == ({live["endpoint_config"]}, {live["model"]})


def _endpoint_config(name: str, model: str) -> dict:
    return {
        "EndpointConfigName": name,
        "EndpointConfigArn": f"arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/{name}",
        "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": model}],
        "CreationTime": datetime(2026, 1, 1, tzinfo=UTC),
    }


def test_a_failed_release_never_deletes_what_an_updating_endpoint_is_moving_to(monkeypatch, aws_credentials):
    # The release failed while the endpoint was still updating to its config (a throttled DescribeEndpoint
    # sends the run to the failure path): SageMaker is deploying that config and its model right now.
    monkeypatch.setenv("PROJECT_NAME", "mlops-iris")
    monkeypatch.setenv("STAGE", "staging")
    fn = load_function("cleanup/app.py")
    serving, moving_to = _names_of(1), _names_of(2)
    stub = Stubber(fn.sagemaker)
    stub.add_response(
        "describe_endpoint",
        {
            "EndpointName": "mlops-iris-staging",
            "EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/mlops-iris-staging",
            "EndpointConfigName": serving["endpoint_config"],
            "EndpointStatus": "Updating",
            "CreationTime": datetime(2026, 1, 1, tzinfo=UTC),
            "LastModifiedTime": datetime(2026, 1, 2, tzinfo=UTC),
            "PendingDeploymentSummary": {"EndpointConfigName": moving_to["endpoint_config"]},
        },
        {"EndpointName": "mlops-iris-staging"},
    )
    for names in sorted((serving, moving_to), key=lambda n: n["endpoint_config"]):
        stub.add_response(
            "describe_endpoint_config",
            _endpoint_config(names["endpoint_config"], names["model"]),
            {"EndpointConfigName": names["endpoint_config"]},
        )
    # Only the evaluation model, which nothing serves, may go.
    stub.add_response("delete_model", {}, {"ModelName": moving_to["evaluation_model"]})

    with stub:
        result = fn.clean_up({"endpoint_name": "mlops-iris-staging", "names": moving_to, "outcome": "failed"})
    stub.assert_no_pending_responses()
    assert result["deleted"] == [moving_to["evaluation_model"]]
    assert moving_to["endpoint_config"] in result["kept_configs"]
    assert moving_to["model"] in result["kept_models"]


def _names_of(n: int) -> dict[str, str]:
    return {
        "evaluation_model": f"mlops-iris-staging-r{n}-eval-model",
        "model": f"mlops-iris-staging-r{n}-model",
        "endpoint_config": f"mlops-iris-staging-r{n}-config",
    }
