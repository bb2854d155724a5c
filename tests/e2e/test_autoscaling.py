"""The endpoint's variant scales with its traffic: after a release its scalable target and target tracking policy
exist in Application Auto Scaling, with the template's range; without the permission the release still serves
and says what was refused."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlops.local.template import Template

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def rehearse(tmp_path: Path, *args: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlops",
            "rehearse",
            "--work-dir",
            str(tmp_path / "work"),
            "--timeout",
            "120",
            *args,
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = done.stdout.strip().splitlines()
    assert lines, done.stderr[-3000:]
    return json.loads(lines[-1])


def test_a_release_registers_the_variant_with_the_templates_range_and_target(tmp_path):
    summary = rehearse(tmp_path, "--parameter", "AutoScalingMaxCapacity=3")
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


def test_without_the_permission_the_release_serves_unscaled_and_says_what_was_refused(tmp_path):
    doc = Template().doc
    statements = doc["Resources"]["ReleaseStateMachine"]["Properties"]["Policies"][0]["Statement"]
    statements[:] = [s for s in statements if s.get("Sid") != "ScaleTheEndpointsVariant"]
    for folder in ("functions", "statemachine"):
        (tmp_path / folder).symlink_to(REPO / folder)
    (tmp_path / "infra").mkdir()
    (tmp_path / "infra" / "template.yaml").write_text(json.dumps(doc))
    summary = rehearse(tmp_path, "--template", str(tmp_path / "infra" / "template.yaml"))
    assert summary["status"] == "SUCCEEDED" and summary["prediction"] == {"result": "setosa"}
    assert summary["autoscaling"] is None
    assert {
        "state": "ScaleWithTraffic",
        "error": "ApplicationAutoScaling.ApplicationAutoScalingException",
    } in summary["task_errors"]
    assert [d["action"] for d in summary["iam"]["denied"]] == [
        "application-autoscaling:RegisterScalableTarget"
    ]
