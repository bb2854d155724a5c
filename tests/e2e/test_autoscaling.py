"""The endpoint's variant scales with its traffic: after a release its scalable target and target tracking policy
exist in Application Auto Scaling, with the template's range; without the permission the release still serves
and says what was refused."""

import json
from pathlib import Path

import pytest

from mlops.local.template import Template

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def test_a_release_registers_the_variant_with_the_templates_range_and_target(rehearse):
    _, summary, _ = rehearse("--parameter", "AutoScalingMaxCapacity=3", "--timeout", "120")
    assert summary["status"] == "SUCCEEDED"
    assert summary["autoscaling"] == {
        "resource_id": "endpoint/mlops-iris-staging/variant/AllTraffic",
        "min_capacity": 1,
        "max_capacity": 3,
        "policy": "mlops-iris-staging-invocations-per-instance",
        "metric": "SageMakerVariantInvocationsPerInstance",
        "target_value": 100,
    }
    assert summary["iam"]["denied"] == []


def test_without_the_permission_the_release_serves_unscaled_and_says_what_was_refused(rehearse, tmp_path):
    doc = Template().doc
    statements = doc["Resources"]["ReleaseStateMachine"]["Properties"]["Policies"][0]["Statement"]
    statements[:] = [s for s in statements if s.get("Sid") != "ScaleTheEndpointsVariant"]
    for folder in ("functions", "statemachine"):
        (tmp_path / folder).symlink_to(REPO / folder)
    (tmp_path / "infra").mkdir()
    (tmp_path / "infra" / "template.yaml").write_text(json.dumps(doc))
    _, summary, _ = rehearse("--template", str(tmp_path / "infra" / "template.yaml"), "--timeout", "120")
    assert summary["status"] == "SUCCEEDED" and summary["prediction"] == {"result": "setosa"}
    assert summary["autoscaling"] is None
    assert {
        "state": "ScaleWithTraffic",
        "error": "ApplicationAutoScaling.ApplicationAutoScalingException",
    } in summary["task_errors"]
    assert [d["action"] for d in summary["iam"]["denied"]] == [
        "application-autoscaling:RegisterScalableTarget"
    ]
