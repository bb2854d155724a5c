"""The drift check: the live endpoint's captured inputs and answers against its training data's baseline.

Runs daily from the template's schedule and on demand (``mlops drift``, which invokes it). It reads the
captures of the last ``hours`` (SageMaker's capture files under the stack's capture prefix), scores each
feature and the predictions (drift_scores: population stability index), writes the report as JSON and as a
self-contained HTML page to S3, publishes the scores as CloudWatch metrics and mails the stage's topic when a
score is above the threshold.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import tarfile
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError
from drift_page import render
from drift_scores import DriftError, LiveData, read_captures, score

ARTIFACT_BUCKET = os.environ["ARTIFACT_BUCKET"]
ENDPOINT_NAME = os.environ["ENDPOINT_NAME"]
CAPTURE_PREFIX = os.environ.get("CAPTURE_PREFIX", "capture").strip("/")
NOTIFY_TOPIC_ARN = os.environ["NOTIFY_TOPIC_ARN"]
METRIC_NAMESPACE = os.environ.get("METRIC_NAMESPACE", "mlops/drift")
DRIFT_THRESHOLD = float(os.environ.get("DRIFT_THRESHOLD", "0.25"))
DRIFT_HOURS = int(os.environ.get("DRIFT_HOURS", "24"))
FEATURE_NAMES = [n.strip() for n in os.environ.get("DRIFT_FEATURE_NAMES", "").split(",") if n.strip()]
STAGE = os.environ.get("STAGE", "staging")
REPORT_PREFIX = "drift"
MAX_HOURS = 24 * 31

logger = Logger()
tracer = Tracer()
s3 = boto3.client("s3")
sagemaker = boto3.client("sagemaker")
cloudwatch = boto3.client("cloudwatch")
sns = boto3.client("sns")


def window_hours(event: Any) -> int:
    """The event's ``hours`` (the schedule's events have none: the stack's DRIFT_HOURS)."""
    hours = event.get("hours", DRIFT_HOURS) if isinstance(event, dict) else DRIFT_HOURS
    if isinstance(hours, bool) or not isinstance(hours, int | str) or not str(hours).isdigit():
        raise DriftError(f"hours must be a whole number of hours from 1 to {MAX_HOURS}, got {hours!r}")
    if not 1 <= int(hours) <= MAX_HOURS:
        raise DriftError(f"hours must be a whole number of hours from 1 to {MAX_HOURS}, got {hours!r}")
    return int(hours)


def live_model() -> tuple[str, str]:
    """(variant name, model.tar.gz URI) of the model the endpoint serves now."""
    endpoint = sagemaker.describe_endpoint(EndpointName=ENDPOINT_NAME)
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    variant = config["ProductionVariants"][0]
    container = sagemaker.describe_model(ModelName=variant["ModelName"]).get("PrimaryContainer") or {}
    if container.get("ModelPackageName"):
        package = sagemaker.describe_model_package(ModelPackageName=container["ModelPackageName"])
        container = package["InferenceSpecification"]["Containers"][0]
    return variant["VariantName"], container["ModelDataUrl"]


def read_baseline(model_data_url: str) -> dict[str, Any]:
    bucket, _, key = model_data_url.removeprefix("s3://").partition("/")
    archive = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        member = tar.extractfile("metadata.json")
        metadata = json.loads(member.read()) if member else {}
    if not metadata.get("baseline"):
        raise DriftError(
            f"{model_data_url}: metadata.json has no baseline (the model predates it: release again)"
        )
    return metadata["baseline"]


def capture_keys(variant: str, start: datetime, end: datetime) -> list[str]:
    """The capture files of the hours the window touches (SageMaker's yyyy/mm/dd/hh folders)."""
    keys, hour = [], start.replace(minute=0, second=0, microsecond=0)
    paginator = s3.get_paginator("list_objects_v2")
    while hour <= end:
        prefix = f"{CAPTURE_PREFIX}/{ENDPOINT_NAME}/{variant}/{hour:%Y/%m/%d/%H}/"
        for page in paginator.paginate(Bucket=ARTIFACT_BUCKET, Prefix=prefix):
            keys.extend(obj["Key"] for obj in page.get("Contents", []))
        hour += timedelta(hours=1)
    return keys


def in_window(line: str, start: datetime) -> bool:
    try:
        when = json.loads(line)["eventMetadata"]["inferenceTime"]
        return datetime.fromisoformat(when.replace("Z", "+00:00")) >= start
    except (ValueError, KeyError, TypeError):
        return True  # read_captures counts it as skipped


def publish_metrics(scores: dict[str, Any]) -> None:
    dimensions = [{"Name": "EndpointName", "Value": ENDPOINT_NAME}]
    data = [
        {"MetricName": "CapturedRows", "Dimensions": dimensions, "Value": scores["rows"], "Unit": "Count"}
    ]
    data += [
        {
            "MetricName": "FeatureDrift",
            "Dimensions": [*dimensions, {"Name": "Feature", "Value": feature["name"]}],
            "Value": feature["psi"],
            "Unit": "None",
        }
        for feature in scores["features"]
        if feature["psi"] is not None
    ]
    if scores.get("prediction"):
        data.append(
            {"MetricName": "PredictionDrift", "Dimensions": dimensions, "Value": scores["prediction"]["psi"]}
        )
    for first in range(0, len(data), 1000):  # PutMetricData's limit per call
        cloudwatch.put_metric_data(Namespace=METRIC_NAMESPACE, MetricData=data[first : first + 1000])


def mail(report: dict[str, Any]) -> bool:
    scores = report["scores"]
    crossed = [f for f in scores["features"] if f["drifted"]]
    prediction = scores.get("prediction") or {}
    if not crossed and not prediction.get("drifted"):
        return False
    names = [f["name"] for f in crossed] + (["predictions"] if prediction.get("drifted") else [])
    lines = [
        f"The live inputs of {ENDPOINT_NAME} ({STAGE}) no longer look like its training data.",
        "",
        f"Window: {report['window']['start']} to {report['window']['end']}, {scores['rows']} live rows.",
        f"Population stability index above {scores['threshold']:g}:",
        *(
            f"  {f['name']}: {f['psi']:.3f} (training mean {f['baseline_mean']:.3g}, live {f['live_mean']:.3g})"
            for f in crossed
        ),
        *([f"  predictions: {prediction['psi']:.3f}"] if prediction.get("drifted") else []),
        "",
        f"Report (open in a browser): {report['html_uri']}",
        f"Scores as JSON: {report['json_uri']}",
        "",
        "Next: check where these inputs come from; if the world changed, retrain on recent data and release.",
    ]
    sns.publish(
        TopicArn=NOTIFY_TOPIC_ARN,
        Subject=f"[{STAGE}] Drift on {ENDPOINT_NAME}: {', '.join(names)}"[:100],
        Message="\n".join(lines),
    )
    return True


def check(hours: int, now: datetime | None = None) -> dict[str, Any]:
    end = now or datetime.now(UTC)
    start = end - timedelta(hours=hours)
    variant, model_data_url = live_model()
    baseline = read_baseline(model_data_url)
    keys = capture_keys(variant, start, end)
    live = LiveData()
    for key in keys:
        text = s3.get_object(Bucket=ARTIFACT_BUCKET, Key=key)["Body"].read().decode("utf-8", "replace")
        read_captures(
            (line for line in text.splitlines() if in_window(line, start)), len(baseline["features"]), live
        )
    scores = score(baseline, live, DRIFT_THRESHOLD, FEATURE_NAMES)
    # a check of its own in the same second (the schedule beside `mlops drift`) must not overwrite this report
    folder = f"{REPORT_PREFIX}/{ENDPOINT_NAME}/{end:%Y-%m-%dT%H-%M-%SZ}-{secrets.token_hex(4)}"
    report = {
        "endpoint": ENDPOINT_NAME,
        "stage": STAGE,
        "model_data_url": model_data_url,
        "window": {
            "hours": hours,
            "start": f"{start:%Y-%m-%dT%H:%M:%SZ}",
            "end": f"{end:%Y-%m-%dT%H:%M:%SZ}",
        },
        "capture": {"objects": len(keys), "uris": [f"s3://{ARTIFACT_BUCKET}/{k}" for k in keys]},
        "json_uri": f"s3://{ARTIFACT_BUCKET}/{folder}/report.json",
        "html_uri": f"s3://{ARTIFACT_BUCKET}/{folder}/report.html",
        "scores": scores,
    }
    s3.put_object(
        Bucket=ARTIFACT_BUCKET,
        Key=f"{folder}/report.html",
        Body=render(report).encode(),
        ContentType="text/html",
    )
    publish_metrics(scores)
    report["mailed"] = mail(report)
    s3.put_object(
        Bucket=ARTIFACT_BUCKET,
        Key=f"{folder}/report.json",
        Body=json.dumps(report, indent=2).encode(),
        ContentType="application/json",
    )
    return report


@tracer.capture_lambda_handler
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    hours = window_hours(event)
    try:
        report = check(hours)
    except ClientError as error:
        logger.error("drift check failed", extra={"error": str(error)})
        raise
    logger.info(
        "drift checked", extra={"rows": report["scores"]["rows"], "drifted": report["scores"]["drifted"]}
    )
    return report
