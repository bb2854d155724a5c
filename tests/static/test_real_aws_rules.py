"""Rules a real AWS account enforces that the local rehearsal cannot see: the template and the state machine
definition are checked against them here, each rule against the files as they are."""

from __future__ import annotations

import json

import pytest
from policy_checks import INFRA, load_template

APP = INFRA / "template.yaml"
DEFINITION = json.loads((INFRA.parent / "statemachine" / "mlops.asl.json").read_text())


@pytest.fixture(scope="module")
def app() -> dict:
    return load_template(APP)


def test_the_model_registry_outlives_the_stack_that_created_it(app):
    # CloudFormation cannot delete a group that still holds versions: deleting the stack would fail.
    group = app["Resources"]["ModelPackageGroup"]
    assert group["DeletionPolicy"] == "Retain"
    assert group["UpdateReplacePolicy"] == "Retain"


def _state(name: str) -> dict:
    return DEFINITION["States"][name]


def _alarm_window_seconds(alarm: dict) -> int:
    """How long the alarm needs to see an update's errors: its longest period times the periods it evaluates."""
    periods = [m["MetricStat"]["Period"] for m in alarm["Metrics"] if "MetricStat" in m]
    return max(periods) * alarm["EvaluationPeriods"]


def test_the_blue_green_baking_period_outlasts_the_rollback_alarms_window(app):
    # SageMaker watches the rollback alarm only while it bakes the new fleet; a shorter bake cannot roll back.
    baking = app["Parameters"]["DeploymentBakingSeconds"]
    window = _alarm_window_seconds(app["Resources"]["EndpointHealthAlarm"]["Properties"])
    assert baking["Default"] > window
    assert baking["MaxValue"] <= 3600  # the API's limit for both wait fields
    substitutions = app["Resources"]["ReleaseStateMachine"]["Properties"]["DefinitionSubstitutions"]
    assert substitutions["DeploymentBakingSeconds"] == {"Ref": "DeploymentBakingSeconds"}
    configure = _state("Configure")["Parameters"]
    assert "'${DeploymentBakingSeconds}'" in configure["deployment_baking_seconds.$"]
    policy = _state("UpdateEndpoint")["Parameters"]["DeploymentConfig"]["BlueGreenUpdatePolicy"]
    assert (
        policy["TrafficRoutingConfiguration"]["WaitIntervalInSeconds.$"]
        == "$.config.deployment_baking_seconds"
    )
    assert policy["TerminationWaitInSeconds.$"] == "$.config.deployment_baking_seconds"
    assert policy["MaximumExecutionTimeoutInSeconds.$"] == "$.config.deployment_timeout_seconds"
