"""The notify function against moto's SNS: what the release's people read when it ends."""

from __future__ import annotations

import json

import boto3
import pytest
from fnharness import load_function

API_URL = "https://abc123.execute-api.us-east-1.amazonaws.com/Prod"
EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:mlops-iris-staging-release:a1b2c3d-1"
RELEASE = {"commit": "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678", "image_uri": "repo/mlops-iris:a1b2c3d4e5f6"}
EXACT_CURL = (
    'curl -X POST "$API/v1/invokeSagemakerAPI" '
    "-H 'Content-Type: application/json' -d '{\"data\":\"4.5,1.3,0.3,0.3\"}'"
)


def success_event(**overrides):
    return {
        "outcome": "succeeded",
        "execution_arn": EXECUTION,
        "release": RELEASE,
        "names": {"endpoint_config": "mlops-iris-a1b2c3d-e1"},
        "evaluation": {
            "accuracy": 0.9667,
            "rows": 30,
            "champion": {"endpoint_config": "mlops-iris-0f0f0f0-e0", "accuracy": 0.9333, "rows": 30},
        },
        "approval": {
            "decision": "approved",
            "approver": "Ada Lovelace",
            "reason": "better recall",
            "decided_at": "2026-11-25T10:00:00Z",
            "approval_id": "abc",
        },
        "endpoint_name": "mlops-iris-staging",
        "endpoint_action": "update",
        "api_url": API_URL,
        **overrides,
    }


def failure_event(stage, error, cause):
    return {
        "outcome": "failed",
        "execution_arn": EXECUTION,
        "release": RELEASE,
        "failure": {"stage": stage, "Error": error, "Cause": cause},
    }


class Topic:
    """A topic with an SQS subscriber, to read back exactly what SNS delivered."""

    def __init__(self):
        sns, sqs = boto3.client("sns"), boto3.client("sqs")
        self.arn = sns.create_topic(Name="release-notifications")["TopicArn"]
        self.queue_url = sqs.create_queue(QueueName="inbox")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        sns.subscribe(TopicArn=self.arn, Protocol="sqs", Endpoint=queue_arn)

    def delivered(self) -> list[dict]:
        messages = boto3.client("sqs").receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
        return [json.loads(m["Body"]) for m in messages.get("Messages", [])]


@pytest.fixture
def topic(aws):
    return Topic()


@pytest.fixture
def notify(topic, monkeypatch):
    monkeypatch.setenv("NOTIFY_TOPIC_ARN", topic.arn)
    monkeypatch.delenv("INFERENCE_AUTH", raising=False)
    return load_function("notify/app.py")


def test_success_publishes_the_api_url_and_the_exact_curl(notify, topic, lambda_context):
    result = notify.handler(success_event(), lambda_context)

    [delivered] = topic.delivered()
    assert result == {"message_id": delivered["MessageId"]}
    assert delivered["Subject"] == "Release a1b2c3d is live on mlops-iris-staging"
    message = delivered["Message"]
    assert f"API={API_URL}\n" in message
    assert EXACT_CURL in message
    assert "0.9667" in message and "30 held-out rows" in message
    assert "Ada Lovelace" in message and "better recall" in message
    assert "was updated" in message
    assert "0.9333" in message and "mlops-iris-0f0f0f0-e0" in message
    assert EXECUTION in message


PACKAGE = "arn:aws:sagemaker:us-east-1:123456789012:model-package/mlops-iris/7"


def test_a_regressions_release_shows_its_gate_metric_and_a_numeric_answer(notify, topic, lambda_context):
    evaluation = {
        "problem_type": "regression",
        "model": {"name": "diabetes", "problem_type": "regression", "n_features": 10},
        "gate": {"metric": "rmse", "label": "RMSE", "value": 59.0816},
        "accuracy": None,
        "rows": 88,
        "champion": {"endpoint_config": "mlops-iris-0f0f0f0-e0", "rmse": 61.5, "rows": 88},
    }
    notify.handler(success_event(evaluation=evaluation), lambda_context)

    message = topic.delivered()[0]["Message"]
    assert "Held-out RMSE: 59.08 on 88 held-out rows" in message
    assert "Previous model:    RMSE 61.5 (mlops-iris-0f0f0f0-e0)" in message
    assert """-d '{"data":"<10 comma-separated numbers>"}'""" in message
    assert 'It answers {"result": <number>}.' in message
    assert "accuracy" not in message


def test_a_staging_release_names_its_model_package_and_the_command_that_promotes_it(
    notify, topic, lambda_context
):
    notify.handler(success_event(model_package_arn=PACKAGE), lambda_context)

    message = topic.delivered()[0]["Message"]
    assert f"Model package:     {PACKAGE}" in message
    assert f"gh workflow run promote.yml -f model_package_arn={PACKAGE}\n" in message


def test_a_prod_release_names_its_package_but_has_nothing_to_promote_to(topic, monkeypatch, lambda_context):
    monkeypatch.setenv("NOTIFY_TOPIC_ARN", topic.arn)
    monkeypatch.setenv("STAGE", "prod")
    notify = load_function("notify/app.py")

    notify.handler(success_event(model_package_arn=PACKAGE), lambda_context)

    message = topic.delivered()[0]["Message"]
    assert PACKAGE in message and "promote.yml" not in message


def test_success_with_api_key_auth_shows_how_to_send_the_key(topic, monkeypatch, lambda_context):
    monkeypatch.setenv("NOTIFY_TOPIC_ARN", topic.arn)
    monkeypatch.setenv("INFERENCE_AUTH", "API_KEY")
    monkeypatch.setenv("INFERENCE_API_KEY_ID", "k3y1d")
    notify = load_function("notify/app.py")

    notify.handler(success_event(), lambda_context)

    message = topic.delivered()[0]["Message"]
    assert "aws apigateway get-api-key --api-key k3y1d --include-value" in message
    assert '-H "x-api-key: $API_KEY"' in message


def test_training_failure_names_the_stage_and_sagemakers_failure_reason(notify, topic, lambda_context):
    cause = json.dumps(
        {
            "TrainingJobName": "mlops-iris-a1b2c3d-train-e1",
            "TrainingJobStatus": "Failed",
            "FailureReason": "AlgorithmError: max_depth must be a positive integer, got 'deep'",
        }
    )

    notify.handler(failure_event("training", "SageMaker.AmazonSageMakerException", cause), lambda_context)

    [delivered] = topic.delivered()
    assert delivered["Subject"].startswith("Release a1b2c3d failed at training: AlgorithmError: max_depth")
    message = delivered["Message"]
    assert "failed at training" in message
    assert "Error:  SageMaker.AmazonSageMakerException" in message
    assert "Cause:  AlgorithmError: max_depth must be a positive integer" in message
    assert "/aws/sagemaker/TrainingJobs" in message
    assert "console.aws.amazon.com/states/home?region=us-east-1#/v2/executions/details/" in message


def test_evaluation_failure_shows_the_lambda_error_message(notify, topic, lambda_context):
    cause = json.dumps(
        {
            "errorType": "MalformedPredictionsError",
            "errorMessage": "transform/job/test.csv.out line 4: expected 'label,prediction', got 1 field(s)",
            "stackTrace": ["..."],
        }
    )

    notify.handler(failure_event("evaluation", "MalformedPredictionsError", cause), lambda_context)

    message = topic.delivered()[0]["Message"]
    assert "Cause:  transform/job/test.csv.out line 4" in message
    assert "label,prediction" in message


def test_rejection_shows_who_rejected_and_why(notify, topic, lambda_context):
    notify.handler(failure_event("approval", "Rejected", "rejected by Grace: recall too low"), lambda_context)

    [delivered] = topic.delivered()
    assert delivered["Subject"] == "Release a1b2c3d failed at approval: rejected by Grace: recall too low"
    assert "reviewer's reason" in delivered["Message"]


def test_subject_is_ascii_single_line_and_at_most_100_characters(notify, topic, lambda_context):
    cause = "Modèle refusé —\nligne 2\t" + "x" * 300

    notify.handler(failure_event("quality_gate", "QualityGateFailed", cause), lambda_context)

    subject = topic.delivered()[0]["Subject"]
    assert len(subject) <= 100
    assert subject.isascii()
    assert "\n" not in subject and "\t" not in subject
    assert subject.startswith("Release a1b2c3d failed at quality_gate: Modele refuse ligne 2 x")
    assert subject.endswith("...")


def test_failure_without_a_cause_still_says_what_failed(notify, topic, lambda_context):
    notify.handler({"outcome": "failed", "release": {}, "failure": {"stage": "deploy"}}, lambda_context)

    [delivered] = topic.delivered()
    assert delivered["Subject"] == "Release unknown failed at deploy: unknown error"
    assert "What to do next:" in delivered["Message"]
