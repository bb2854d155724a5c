"""Tells people how a release ended: one SNS message that says what happened and what to do next."""

from __future__ import annotations

import json
import os
import re
import unicodedata
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

NOTIFY_TOPIC_ARN = os.environ["NOTIFY_TOPIC_ARN"]
STAGE = os.environ.get("STAGE", "staging")
# How the inference route authenticates (the stack's InferenceAuth: API_KEY, IAM or NONE); optional.
INFERENCE_AUTH = os.environ.get("INFERENCE_AUTH", "NONE").upper()
INFERENCE_API_KEY_ID = os.environ.get("INFERENCE_API_KEY_ID", "")
SUBJECT_MAX_CHARS = 100
CAUSE_MAX_CHARS = 4000
EXAMPLE_BODY = '{"data":"4.5,1.3,0.3,0.3"}'

NEXT_STEPS = {
    "training": (
        "Read the training job's log (CloudWatch group /aws/sagemaker/TrainingJobs), fix the model code, "
        "hyperparameters or training data, and push a new commit."
    ),
    "model": "Check that the image exists in ECR and that the SageMaker role may pull it, then re-run the release.",
    "batch_transform": (
        "Read the transform job's log (CloudWatch group /aws/sagemaker/TransformJobs); the model server "
        "must answer text/csv, one prediction per input line. Fix it and push a new commit."
    ),
    "evaluation": (
        "The transform output could not be scored: every line must be 'label,prediction'. The error names "
        "the object and line. Fix the model server's output and push a new commit."
    ),
    "quality_gate": (
        "The model misses the quality gate (GateMetric against GateThreshold); nobody was asked to approve "
        "it. Improve the model or its data and push a new commit."
    ),
    "approval": (
        "If it was rejected, address the reviewer's reason and push a new commit. If nobody decided in "
        "time, re-run the release and answer the approval mail before its links expire."
    ),
    "deploy": (
        "Check the endpoint's events in the SageMaker console. If an update was rolled back, the "
        "previous model is still serving; fix the cause and re-run the release."
    ),
}
DEFAULT_NEXT_STEP = "Open the execution in the Step Functions console to see the failed state."

logger = Logger()
tracer = Tracer()
sns = boto3.client("sns")


def short_commit(release: dict[str, Any] | None) -> str:
    return str((release or {}).get("commit") or "unknown")[:7]


def subject_line(text: str) -> str:
    """SNS subjects: ASCII, no line breaks, at most 100 characters."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    ascii_text = re.sub(r"[\x00-\x1f\x7f\s]+", " ", ascii_text).strip()
    if len(ascii_text) > SUBJECT_MAX_CHARS:
        ascii_text = ascii_text[: SUBJECT_MAX_CHARS - 3].rstrip() + "..."
    return ascii_text or "Release notification"


def failure_reason(cause: Any) -> str:
    """The readable part of a Step Functions error cause: SageMaker's FailureReason, a Lambda's message."""
    if cause is None:
        return ""
    if not isinstance(cause, str):
        cause = json.dumps(cause)
    try:
        parsed = json.loads(cause)
    except ValueError:
        return cause.strip()
    if isinstance(parsed, dict):
        for key in ("FailureReason", "errorMessage", "message", "Message"):
            if isinstance(parsed.get(key), str) and parsed[key].strip():
                return parsed[key].strip()
    return cause.strip()


def console_url(execution_arn: str | None) -> str | None:
    parts = (execution_arn or "").split(":")
    if len(parts) < 4 or not parts[3]:
        return None
    region = parts[3]
    return f"https://{region}.console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{execution_arn}"


def format_accuracy(evaluation: dict[str, Any] | None) -> str:
    evaluation = evaluation or {}
    accuracy = evaluation.get("accuracy")
    if not isinstance(accuracy, int | float) or isinstance(accuracy, bool):
        return "n/a"
    rows = evaluation.get("rows")
    return f"{accuracy:.4f} ({accuracy:.2%})" + (f" on {rows} held-out rows" if rows is not None else "")


def held_out_line(evaluation: dict[str, Any]) -> str:
    """The release's held-out figure: accuracy for a classifier, the gate's metric for a regression."""
    gate = evaluation.get("gate") or {}
    if evaluation.get("problem_type") == "regression" and isinstance(gate.get("value"), int | float):
        rows = evaluation.get("rows")
        return f"Held-out {gate.get('label', gate.get('metric'))}: {gate['value']:.4g}" + (
            f" on {rows} held-out rows" if rows is not None else ""
        )
    return f"Held-out accuracy: {format_accuracy(evaluation)}"


def example_body(evaluation: dict[str, Any]) -> tuple[str, str]:
    """The curl's body and what it answers, for the released model (metadata.json's, through Evaluate)."""
    model = evaluation.get("model") or {}
    if model.get("problem_type") == "regression" or evaluation.get("problem_type") == "regression":
        count = model.get("n_features") or "its"
        return f'{{"data":"<{count} comma-separated numbers>"}}', 'It answers {"result": <number>}.'
    if model.get("n_features") not in (None, 4):
        return (
            f'{{"data":"<{model["n_features"]} comma-separated numbers>"}}',
            'It answers {"result": "<class>"}.',
        )
    return EXAMPLE_BODY, 'It answers {"result": "<class>"}.'


def success_message(event: dict[str, Any]) -> tuple[str, str]:
    release = event.get("release") or {}
    approval = event.get("approval") or {}
    evaluation = event.get("evaluation") or {}
    endpoint = event.get("endpoint_name") or "the endpoint"
    api_url = (event.get("api_url") or "").rstrip("/")
    action = {"create": "created", "update": "updated"}.get(event.get("endpoint_action") or "", "deployed")
    subject = subject_line(f"Release {short_commit(release)} is live on {endpoint}")
    champion = evaluation.get("champion") or {}
    reason = f" ({approval['reason']})" if approval.get("reason") else ""
    lines = [
        f"Release {short_commit(release)} is live: endpoint {endpoint} was {action}.",
        "",
        f"Commit:            {release.get('commit', 'unknown')}",
        f"Image:             {release.get('image_uri', 'unknown')}",
        held_out_line(evaluation),
    ]
    body, answers = example_body(evaluation)
    if isinstance(champion.get("accuracy"), int | float):
        lines.append(f"Previous model:    {format_accuracy(champion)} ({champion.get('endpoint_config')})")
    metric = (evaluation.get("gate") or {}).get("metric")
    if evaluation.get("problem_type") == "regression" and isinstance(champion.get(metric), int | float):
        label = evaluation["gate"].get("label", metric)
        lines.append(f"Previous model:    {label} {champion[metric]:.4g} ({champion.get('endpoint_config')})")
    lines += [
        f"Approved by:       {approval.get('approver', 'unknown')}{reason}"
        + (f" at {approval['decided_at']}" if approval.get("decided_at") else ""),
        "",
        "Try it:",
        "",
        *try_it(api_url, body),
        "",
        answers,
        *promotion_lines(event.get("model_package_arn")),
    ]
    return subject, "\n".join(lines)


def promotion_lines(model_package_arn: str | None) -> list[str]:
    """The registry version that now serves, and on staging the command that takes it to prod."""
    if not model_package_arn:
        return []
    lines = ["", f"Model package:     {model_package_arn}"]
    if STAGE == "staging":
        lines += [
            "",
            "Promote this model to prod (no retraining; prod's reviewers approve the run):",
            "",
            f"gh workflow run promote.yml -f model_package_arn={model_package_arn}",
        ]
    return lines


def try_it(api_url: str, body: str = EXAMPLE_BODY) -> list[str]:
    curl = "curl -X POST \"$API/v1/invokeSagemakerAPI\" -H 'Content-Type: application/json'"
    if INFERENCE_AUTH == "API_KEY":
        key_id = INFERENCE_API_KEY_ID or "<the stack's InferenceApiKeyId output>"
        return [
            f"API={api_url}",
            f"API_KEY=$(aws apigateway get-api-key --api-key {key_id} --include-value --query value --output text)",
            f"{curl} -H \"x-api-key: $API_KEY\" -d '{body}'",
        ]
    lines = [f"API={api_url}", f"{curl} -d '{body}'"]
    if INFERENCE_AUTH == "IAM":
        lines += [
            "",
            "The API takes SigV4-signed requests only: sign them, e.g. with awscurl --service execute-api.",
        ]
    return lines


def failure_message(event: dict[str, Any]) -> tuple[str, str]:
    release = event.get("release") or {}
    failure = event.get("failure") or {}
    stage = failure.get("stage") or "an unknown stage"
    error = failure.get("Error") or "unknown error"
    reason = failure_reason(failure.get("Cause"))
    subject = subject_line(f"Release {short_commit(release)} failed at {stage}: {reason or error}")
    lines = [
        f"Release {short_commit(release)} failed at {stage}.",
        "",
        f"Commit: {release.get('commit', 'unknown')}",
        f"Image:  {release.get('image_uri', 'unknown')}",
        f"Error:  {error}",
        f"Cause:  {reason[:CAUSE_MAX_CHARS] or 'not given'}",
        "",
        f"What to do next: {NEXT_STEPS.get(stage, DEFAULT_NEXT_STEP)}",
    ]
    raw_cause = failure.get("Cause")
    if isinstance(raw_cause, str) and raw_cause.strip() and raw_cause.strip() != reason:
        lines += ["", "Full cause:", raw_cause[:CAUSE_MAX_CHARS]]
    return subject, "\n".join(lines)


@tracer.capture_method
def notify(event: dict[str, Any]) -> dict[str, str]:
    succeeded = event.get("outcome") == "succeeded"
    subject, body = success_message(event) if succeeded else failure_message(event)
    execution_arn = event.get("execution_arn")
    if execution_arn:
        body += f"\n\nExecution: {execution_arn}"
        url = console_url(execution_arn)
        if url:
            body += f"\n{url}"
    response = sns.publish(TopicArn=NOTIFY_TOPIC_ARN, Subject=subject, Message=body + "\n")
    logger.info(
        "release notification sent",
        extra={
            "outcome": event.get("outcome"),
            "commit": (event.get("release") or {}).get("commit"),
            "stage": (event.get("failure") or {}).get("stage"),
            "message_id": response["MessageId"],
        },
    )
    return {"message_id": response["MessageId"]}


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    return notify(event)
