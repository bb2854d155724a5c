"""The template's monitoring: capture settings reach the endpoint config, the dashboard's body is JSON that
watches this stage's endpoint and drift scores, the drift function is scheduled and scoped to its stage."""

from __future__ import annotations

import json
import re

from mlops.local.template import Template

TEMPLATE = Template().doc
RESOURCES = TEMPLATE["Resources"]
VALUES = {
    "AWS::Region": "us-east-1",
    "DriftThreshold": "0.25",
    "Endpoint": "mlops-iris-staging",
    "Namespace": "mlops-iris/Drift",
}


def dashboard_body() -> dict:
    template, variables = RESOURCES["MonitoringDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    assert set(variables) == {"Endpoint", "Namespace"}
    names = set(re.findall(r"\$\{([^}!]+)\}", template))
    assert names <= VALUES.keys(), names - VALUES.keys()
    return json.loads(re.sub(r"\$\{([^}!]+)\}", lambda m: VALUES[m.group(1)], template))


def test_the_dashboard_watches_the_endpoint_and_the_drift_scores():
    body = dashboard_body()
    metrics = json.dumps([w["properties"]["metrics"] for w in body["widgets"]])
    for name in ("Invocations", "ModelLatency", "Invocation4XXErrors", "Invocation5XXErrors", "FeatureDrift"):
        assert name in metrics
    assert "mlops-iris-staging" in metrics
    threshold = [w for w in body["widgets"] if "annotations" in w["properties"]]
    assert threshold[0]["properties"]["annotations"]["horizontal"][0]["value"] == 0.25


def test_the_dashboard_reads_the_namespace_the_drift_function_writes_and_may_write():
    function = RESOURCES["DriftFunction"]["Properties"]
    namespace = function["Environment"]["Variables"]["METRIC_NAMESPACE"]
    (statement,) = [s for s in function["Policies"][0]["Statement"] if s["Sid"] == "PublishDriftScores"]
    assert statement["Condition"]["StringEquals"]["cloudwatch:namespace"] == namespace
    assert (
        RESOURCES["MonitoringDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"][1]["Namespace"]
        == namespace
    )


def test_the_drift_function_runs_on_the_drift_schedule():
    events = RESOURCES["DriftFunction"]["Properties"]["Events"]
    (schedule,) = events.values()
    assert schedule["Type"] == "Schedule"
    assert schedule["Properties"]["Schedule"] == {"Ref": "DriftSchedule"}
    assert TEMPLATE["Parameters"]["DriftSchedule"]["Default"] == "rate(1 day)"


def test_the_drift_function_touches_only_its_stage():
    statements = RESOURCES["DriftFunction"]["Properties"]["Policies"][0]["Statement"]
    for statement in statements:
        if statement["Resource"] == "*":  # only where AWS has no resource-level permissions
            assert statement["Action"] == "cloudwatch:PutMetricData" and "Condition" in statement
        actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        assert all("*" not in action for action in actions)


def test_capture_content_types_cannot_break_the_definition():
    for name in ("CaptureCsvContentTypes", "CaptureJsonContentTypes"):
        pattern = re.compile(TEMPLATE["Parameters"][name]["AllowedPattern"])
        assert pattern.match("text/csv,application/x-csv")
        assert not pattern.match('text/csv"], "x": ["y')
