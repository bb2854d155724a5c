"""mlops drift: finding the stage's drift function, what the summary says of a report, the scheduled event."""

from __future__ import annotations

import boto3
import pytest

from mlops.drift import drift_function_name, drift_record, scheduled_event
from mlops.release import ReleaseError

RULE = "arn:aws:events:us-east-1:123456789012:rule/mlops-iris-staging-DriftFunctionDaily-ABC"


def test_a_stage_without_a_stack_says_to_deploy_it(aws):
    with pytest.raises(ReleaseError, match="stack mlops-iris-prod does not exist: deploy it first"):
        drift_function_name(boto3.client("cloudformation"), "mlops-iris", "prod")


def test_a_stack_without_the_drift_output_says_which_template_to_deploy(aws):
    boto3.client("cloudformation").create_stack(
        StackName="mlops-iris-staging",
        TemplateBody='{"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}',
    )
    with pytest.raises(ReleaseError, match="has no DriftFunctionName output: deploy the current"):
        drift_function_name(boto3.client("cloudformation"), "mlops-iris", "staging")


def test_the_record_keeps_uris_scores_and_what_drifted():
    report = {
        "json_uri": "s3://b/drift/e/t/report.json",
        "html_uri": "s3://b/drift/e/t/report.html",
        "mailed": True,
        "scores": {
            "rows": 10,
            "threshold": 0.25,
            "features": [{"name": "a", "psi": 0.01}, {"name": "b", "psi": 2.0}],
            "prediction": {"psi": 0.5, "drifted": True},
            "drifted": ["b"],
        },
    }
    assert drift_record(report) == {
        "report_uris": {"json": report["json_uri"], "html": report["html_uri"]},
        "rows": 10,
        "threshold": 0.25,
        "scores": {"a": 0.01, "b": 2.0},
        "prediction_psi": 0.5,
        "prediction_drifted": True,
        "drifted": ["b"],
        "mailed": True,
    }


def test_the_scheduled_event_is_eventbridges():
    event = scheduled_event(RULE)
    assert (event["source"], event["detail-type"], event["resources"]) == (
        "aws.events",
        "Scheduled Event",
        [RULE],
    )
    assert (event["account"], event["region"]) == ("123456789012", "us-east-1")
