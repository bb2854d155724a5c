"""Scores a batch transform by the model's problem type, and the serving endpoint beside it; applies the gate.

The transform joins each input row to its prediction and keeps `$[0,-1]`, so every output line is
`label,prediction`. metadata.json in the model archive says what the model is: a classifier is scored by
accuracy, confusion matrix and per-class figures, a regressor by RMSE, MAE and R². The serving endpoint (the
champion), when in service, is asked about the same held-out rows so the approver can compare. The quality
gate's metric, threshold and direction come from the template (GateMetric, GateThreshold, GateDirection):
this function resolves them against the model's metrics; the state machine's QualityGate compares.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tarfile
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError

ARTIFACT_BUCKET = os.environ["ARTIFACT_BUCKET"]
# InvokeEndpoint accepts at most 6 MB; stay well below it.
MAX_INVOKE_BYTES = 5 * 1024 * 1024

logger = Logger()
tracer = Tracer()
s3 = boto3.client("s3")
sagemaker = boto3.client("sagemaker")
runtime = boto3.client("sagemaker-runtime")


class EvaluationError(Exception):
    """The evaluation cannot produce a trustworthy score."""


class MalformedPredictionsError(EvaluationError):
    pass


class NoPredictionsError(EvaluationError):
    pass


class MalformedTestDataError(EvaluationError):
    pass


class GateSettingError(EvaluationError):
    """A quality gate setting that does not fit the model (its message names the template parameter)."""


CLASSIFICATION, REGRESSION = "classification", "regression"
# Each problem type's metrics and which way is better.
GATE_METRICS = {
    CLASSIFICATION: {"accuracy": "higher"},
    REGRESSION: {"rmse": "lower", "mae": "lower", "r2": "higher"},
}
METRIC_LABELS = {"accuracy": "accuracy", "rmse": "RMSE", "mae": "MAE", "r2": "R²"}


def parse_s3_uri(uri: str) -> tuple[str, str]:
    bucket, _, key = (
        uri[5:].partition("/") if isinstance(uri, str) and uri.startswith("s3://") else ("", "", "")
    )
    if not bucket:
        raise EvaluationError(f"not an s3:// URI: {uri!r}")
    return bucket, key


def list_keys(bucket: str, prefix: str) -> list[str]:
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [obj["Key"] for obj in page.get("Contents", []) if not obj["Key"].endswith("/")]
    return sorted(keys)


def read_lines(key: str, body: bytes, error: type[EvaluationError]) -> Iterator[tuple[int, list[str]]]:
    """(1-based line number, CSV fields) of every non-blank line."""
    for number, raw in enumerate(body.splitlines(), start=1):
        try:
            line = raw.decode("utf-8").strip()
        except UnicodeDecodeError as exc:
            raise error(f"{key} line {number}: not UTF-8 text") from exc
        if not line:
            continue
        try:
            fields = next(csv.reader([line]))
        except csv.Error as exc:
            raise error(f"{key} line {number}: not CSV ({exc})") from exc
        yield number, [field.strip() for field in fields]


def parse_predictions(key: str, body: bytes) -> list[tuple[str, str]]:
    """(true label, predicted label) pairs of one transform output object."""
    pairs = []
    for number, fields in read_lines(key, body, MalformedPredictionsError):
        if len(fields) != 2 or not all(fields):
            shown = ",".join(fields)[:80]
            raise MalformedPredictionsError(
                f"{key} line {number}: expected 'label,prediction', got {len(fields)} field(s): {shown!r}"
            )
        pairs.append((fields[0], fields[1]))
    return pairs


def scores(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Accuracy, confusion matrix (rows true, columns predicted) and per-class precision/recall."""
    labels = sorted({label for pair in pairs for label in pair})
    index = {label: i for i, label in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for true, predicted in pairs:
        matrix[index[true]][index[predicted]] += 1
    correct = sum(matrix[i][i] for i in range(len(labels)))
    per_class = {}
    for i, label in enumerate(labels):
        support = sum(matrix[i])
        predicted = sum(row[i] for row in matrix)
        per_class[label] = {
            "precision": round(matrix[i][i] / predicted, 4) if predicted else 0.0,
            "recall": round(matrix[i][i] / support, 4) if support else 0.0,
            "support": support,
        }
    return {
        "accuracy": round(correct / len(pairs), 4) if pairs else 0.0,
        "rows": len(pairs),
        "labels": labels,
        "confusion_matrix": matrix,
        "per_class": per_class,
    }


def regression_scores(pairs: list[tuple[str, str]], where: str = "the predictions") -> dict[str, Any]:
    """RMSE, MAE and R² of (true value, predicted value) pairs."""
    values: list[tuple[float, float]] = []
    for number, (true, predicted) in enumerate(pairs, start=1):
        try:
            values.append((float(true), float(predicted)))
        except ValueError:
            raise MalformedPredictionsError(
                f"{where} row {number}: a regression's label and prediction are numbers, got {true[:24]!r}, "
                f"{predicted[:24]!r}"
            ) from None
    n = len(values)
    if not n:
        return {"rmse": 0.0, "mae": 0.0, "r2": 0.0, "rows": 0}
    mean = sum(true for true, _ in values) / n
    squared = sum((predicted - true) ** 2 for true, predicted in values)
    spread = sum((true - mean) ** 2 for true, _ in values)
    return {
        "rmse": round(math.sqrt(squared / n), 4),
        "mae": round(sum(abs(predicted - true) for true, predicted in values) / n, 4),
        "r2": round(1 - squared / spread, 4) if spread else 0.0,
        "rows": n,
    }


def scores_for(
    problem_type: str, pairs: list[tuple[str, str]], where: str = "the predictions"
) -> dict[str, Any]:
    if problem_type == REGRESSION:
        return {**regression_scores(pairs, where), "accuracy": None, "labels": None, "confusion_matrix": None}
    return scores(pairs)


def headline(problem_type: str, result: dict[str, Any]) -> dict[str, Any]:
    """The problem type's metrics (what the gate, the mail and the summary show)."""
    return {name: result.get(name) for name in GATE_METRICS[problem_type]}


def quality_gate(
    settings: dict[str, Any] | None, problem_type: str, result: dict[str, Any]
) -> dict[str, Any]:
    """The gate's metric, value, threshold and direction for this model, and the sentence that explains it."""
    settings = settings or {}
    metric = str(settings.get("metric") or "accuracy").strip().lower()
    natural = GATE_METRICS[problem_type]
    if metric not in natural:
        raise GateSettingError(
            f"GateMetric {metric!r} is not a metric of a {problem_type} model: choose {' or '.join(natural)}"
        )
    label = METRIC_LABELS[metric]
    text = str(settings.get("threshold") or "").strip()
    if text:
        try:
            threshold = float(text)
        except ValueError:
            raise GateSettingError(f"GateThreshold {text!r} is not a number") from None
    elif metric == "accuracy":
        threshold = float(settings.get("min_accuracy", 0.9))  # MinAccuracy, as before GateThreshold existed
    else:
        raise GateSettingError(
            f"GateThreshold is empty: set the {label} a release must reach (GateMetric={metric})"
        )
    direction = str(settings.get("direction") or "auto").strip().lower()
    if direction == "auto":
        direction = natural[metric]
    if direction not in ("higher", "lower"):
        raise GateSettingError(f"GateDirection {direction!r} must be higher, lower or auto")
    value = result[metric]
    passed = value >= threshold if direction == "higher" else value <= threshold
    better = "" if direction == "higher" else "lower is better; "
    verdict = "meets" if passed else ("is below" if direction == "higher" else "is above")
    return {
        "metric": metric,
        "label": label,
        "value": value,
        "threshold": threshold,
        "direction": direction,
        "passed": passed,
        "reason": f"held-out {label} {value} {verdict} the gate {threshold:g} ({better}{result['rows']} rows)",
    }


def read_predictions(predictions_uri: str) -> tuple[str, list[str], list[tuple[str, str]]]:
    bucket, prefix = parse_s3_uri(predictions_uri)
    # The transform writes <S3OutputPath>/<input key>.out; the slash keeps job-1 from matching job-10.
    prefix = prefix.rstrip("/") + "/" if prefix else ""
    keys = [key for key in list_keys(bucket, prefix) if key.endswith(".out")]
    if not keys:
        raise NoPredictionsError(
            f"no .out objects under {predictions_uri}: the batch transform wrote nothing"
        )
    pairs: list[tuple[str, str]] = []
    for key in keys:
        pairs += parse_predictions(key, s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    if not pairs:
        raise NoPredictionsError(f"the .out objects under {predictions_uri} hold no rows")
    return bucket, keys, pairs


def read_test_rows(test_uri: str) -> list[tuple[str, str]]:
    """(label, feature CSV) of every held-out row: the label is the first column."""
    bucket, prefix = parse_s3_uri(test_uri)
    rows: list[tuple[str, str]] = []
    for key in list_keys(bucket, prefix):
        for number, fields in read_lines(
            key, s3.get_object(Bucket=bucket, Key=key)["Body"].read(), MalformedTestDataError
        ):
            if len(fields) < 2 or not fields[0]:
                raise MalformedTestDataError(f"{key} line {number}: expected 'label,feature,...'")
            rows.append((fields[0], ",".join(fields[1:])))
    return rows


def chunks(lines: Iterable[str], max_bytes: int) -> Iterator[list[str]]:
    """Groups lines so each group, newline-joined, stays within max_bytes."""
    chunk: list[str] = []
    size = 0
    for line in lines:
        line_size = len(line.encode("utf-8")) + 1
        if line_size > max_bytes:
            raise MalformedTestDataError(f"a held-out row is larger than {max_bytes} bytes")
        if chunk and size + line_size > max_bytes:
            yield chunk
            chunk, size = [], 0
        chunk.append(line)
        size += line_size
    if chunk:
        yield chunk


def predict(endpoint_name: str, rows: list[str]) -> list[str]:
    response = runtime.invoke_endpoint(
        EndpointName=endpoint_name,
        ContentType="text/csv",
        Accept="text/csv",
        Body="\n".join(rows).encode("utf-8"),
    )
    text = response["Body"].read().decode("utf-8")
    # Like the transform's OutputFilter: the prediction is the last column of each output line.
    predictions = [
        fields[-1].strip() for fields in csv.reader(line for line in text.splitlines() if line.strip())
    ]
    if len(predictions) != len(rows):
        raise EvaluationError(f"the endpoint answered {len(predictions)} predictions for {len(rows)} rows")
    return predictions


@tracer.capture_method
def score_champion(
    endpoint_name: str, test_uri: str, problem_type: str = CLASSIFICATION
) -> dict[str, Any] | None:
    """The serving endpoint's metrics on the held-out rows, or None when nothing is in service."""
    try:
        endpoint = sagemaker.describe_endpoint(EndpointName=endpoint_name)
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ValidationException":
            logger.info("no champion endpoint", extra={"endpoint_name": endpoint_name})
            return None
        raise
    if endpoint["EndpointStatus"] != "InService":
        logger.info(
            "champion endpoint not in service",
            extra={"endpoint_name": endpoint_name, "status": endpoint["EndpointStatus"]},
        )
        return None
    config = endpoint["EndpointConfigName"]
    rows = read_test_rows(test_uri)
    try:
        predictions: list[str] = []
        for chunk in chunks((features for _, features in rows), MAX_INVOKE_BYTES):
            predictions += predict(endpoint_name, chunk)
        pairs = [(label, predicted) for (label, _), predicted in zip(rows, predictions, strict=True)]
        result = scores_for(problem_type, pairs, f"the champion {endpoint_name}'s answers")
    except (ClientError, BotoCoreError, EvaluationError, UnicodeDecodeError, csv.Error) as exc:
        # A broken champion is a reason to replace it, not to stop the release: the approver sees why.
        logger.warning(
            "champion could not be scored", extra={"endpoint_name": endpoint_name, "error": str(exc)}
        )
        failed = dict.fromkeys(GATE_METRICS[problem_type])
        return {"endpoint_config": config, **failed, "rows": 0, "error": str(exc)[:500]}
    return {"endpoint_config": config, **headline(problem_type, result), "rows": result["rows"]}


def write_report(transform_job: str, report: dict[str, Any]) -> str:
    key = f"evaluation/{transform_job}.json"
    s3.put_object(
        Bucket=ARTIFACT_BUCKET,
        Key=key,
        Body=json.dumps(report, indent=2, sort_keys=True).encode("utf-8"),
        ContentType="application/json",
    )
    return f"s3://{ARTIFACT_BUCKET}/{key}"


def read_metadata(model_data_uri: str | None) -> dict[str, Any] | None:
    """metadata.json from model.tar.gz (its schema: container/mlmodel/contract.py); None if unreadable."""
    if not model_data_uri:
        return None
    try:
        bucket, key = model_data_uri.removeprefix("s3://").split("/", 1)
        archive = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            member = tar.extractfile("metadata.json")
            metadata = json.loads(member.read()) if member else {}
    except (ClientError, tarfile.TarError, KeyError, ValueError) as exc:
        logger.warning("no model metadata", extra={"reason": type(exc).__name__})
        return None
    return metadata if isinstance(metadata, dict) else None


def training_metrics(
    model_data_uri: str | None, metadata: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """What train recorded about the fit, for the approver; None if unreadable."""
    metadata = metadata if metadata is not None else read_metadata(model_data_uri)
    if metadata is None:
        return None
    training = metadata.get("metrics", {}).get("training") or {}
    keep = ("rows", "training_accuracy", "rmse", "mae", "r2", "tree_depth", "tree_leaves", "cross_validation")
    return {k: training[k] for k in keep if k in training}


@tracer.capture_method(capture_response=False)
def evaluate(event: dict[str, Any]) -> dict[str, Any]:
    predictions_uri = event["predictions_uri"]
    names = event.get("names") or {}
    transform_job = names.get("transform_job") or predictions_uri.rstrip("/").rsplit("/", 1)[-1]
    bucket, keys, pairs = read_predictions(predictions_uri)
    metadata = read_metadata(event.get("model_data")) or {}
    problem_type = metadata.get("problem_type") or CLASSIFICATION
    if problem_type not in GATE_METRICS:
        raise EvaluationError(
            f"metadata.json's problem_type {problem_type!r} is neither {' nor '.join(GATE_METRICS)}"
        )
    result = scores_for(problem_type, pairs)
    metrics = headline(problem_type, result)
    gate = quality_gate(event.get("gate"), problem_type, result)
    champion = (
        score_champion(event["endpoint_name"], event["test_uri"], problem_type)
        if event.get("endpoint_name")
        else None
    )
    model = {
        "name": metadata.get("model"),
        "problem_type": problem_type,
        "n_features": metadata.get("n_features"),
        "target": metadata.get("target"),
    }

    report = {
        **result,
        "problem_type": problem_type,
        "model": model,
        "gate": gate,
        "champion": champion,
        "transform_job": transform_job,
        "predictions_uri": predictions_uri,
        "prediction_objects": [f"s3://{bucket}/{key}" for key in keys],
        "test_uri": event.get("test_uri"),
        "endpoint_name": event.get("endpoint_name"),
        "release": event.get("release") or {},
        "evaluated_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    }
    report_uri = write_report(transform_job, report)
    logger.info(
        "evaluated",
        extra={
            "transform_job": transform_job,
            **metrics,
            "rows": result["rows"],
            "gate_passed": gate["passed"],
            "champion": champion and headline(problem_type, champion),
        },
    )
    return {
        **result,
        "problem_type": problem_type,
        "model": model,
        "metrics": metrics,
        "gate": gate,
        "report_uri": report_uri,
        # Not a presigned link: one signed here would expire with this function's session credentials,
        # hours before the approval does. The approval page presigns this object each time it opens.
        "predictions_object": f"s3://{bucket}/{keys[0]}",
        "champion": champion,
        "training_metrics": training_metrics(event.get("model_data"), metadata or None),
    }


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return evaluate(event)
