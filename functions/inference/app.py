"""The inference API: `POST /v1/invokeSagemakerAPI {"data": "4.5,1.3,0.3,0.3"}` → `{"result": "setosa"}`.

The endpoint comes only from the environment; the body is validated before anything reaches it. How many
features a row has is the model's to say (metadata.json's n_features, which the model server enforces): a
row of another length comes back as a 400 naming the count, unless N_FEATURES fixes it here. The answer is
the model's own JSON value: a label for a classifier, a number for a regression (`{"result": 152.3}`).
Endpoint failures map to 502 (the model failed) or 503 (no endpoint in service), never to 500.

No X-Ray SDK here: this function is the first call of a user's day, and importing aws_xray_sdk (what
Powertools' Tracer loads) doubled its cold start. Lambda's active tracing (`Tracing: Active` in the template)
still traces every invocation, its init and its duration, behind API Gateway's own trace.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
import re
from http import HTTPStatus
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.exceptions import BadRequestError, ServiceError
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, ReadTimeoutError

ENDPOINT_NAME = os.environ["ENDPOINT_NAME"]
# Optional: a fixed feature count checked here, before the endpoint; unset, the model's metadata decides.
N_FEATURES = int(os.environ["N_FEATURES"]) if os.environ.get("N_FEATURES", "").strip() else None
MAX_BODY_BYTES = int(os.environ.get("MAX_BODY_BYTES", "4096"))
# ASCII decimals only: \d would also take full-width and other Unicode digits the model cannot read.
NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
# The model compares features as 32-bit floats: from here on a value becomes infinite (2**128 - 2**103).
FLOAT32_LIMIT = 2.0**128 - 2.0**103
# curl -d sends form-urlencoded unless told otherwise, so the one-line example keeps working.
JSON_TYPES = ("", "application/json", "application/x-www-form-urlencoded")
EXAMPLE = '{"data": "4.5,1.3,0.3,0.3"}'
# The model server answers JSON (one value per row, labels or numbers); text/csv is an older image's answer.
ACCEPT = "application/json, text/csv;q=0.5"
# SageMaker Runtime's errors that mean "no endpoint to talk to right now" rather than "the model failed"
# (a missing endpoint is a ValidationError: the body was validated here already).
UNAVAILABLE_CODES = {
    "ValidationError",
    "ModelNotReadyException",
    "ServiceUnavailable",
    "InternalDependencyException",
    "ThrottlingException",
}

logger = Logger()
app = APIGatewayRestResolver()
runtime = boto3.client("sagemaker-runtime")


class ModelFailedError(ServiceError):
    def __init__(self, msg: str):
        super().__init__(HTTPStatus.BAD_GATEWAY, msg)


class EndpointUnavailableError(ServiceError):
    def __init__(self, msg: str):
        super().__init__(HTTPStatus.SERVICE_UNAVAILABLE, msg)


class EndpointTimeoutError(ServiceError):
    def __init__(self, msg: str):
        super().__init__(HTTPStatus.GATEWAY_TIMEOUT, msg)


class UnsupportedMediaTypeError(ServiceError):
    def __init__(self, msg: str):
        super().__init__(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, msg)


def check_content_type(header: str | None) -> None:
    media_type = (header or "").split(";", 1)[0].strip().lower()
    if media_type not in JSON_TYPES and not media_type.endswith("+json"):
        raise UnsupportedMediaTypeError(f"send the body as application/json, not {media_type[:80]!r}")


def body_text(body: str | None, is_base64: bool) -> str:
    if not body:
        raise BadRequestError(f"the request body is empty; send {EXAMPLE}")
    raw = body.encode("utf-8", errors="surrogatepass")
    if is_base64:
        try:
            raw = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise BadRequestError("the request body is not valid base64") from exc
    if len(raw) > MAX_BODY_BYTES:
        raise BadRequestError(f"the request body is larger than {MAX_BODY_BYTES} bytes")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequestError("the request body is not UTF-8 text") from exc


def features_from(text: str) -> str:
    """The CSV row to send to the model, or BadRequestError saying what is wrong with the body."""
    if not text.strip():
        raise BadRequestError(f"the request body is empty; send {EXAMPLE}")
    try:
        payload: Any = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise BadRequestError(f"the request body is not JSON; send {EXAMPLE}") from exc
    if not isinstance(payload, dict):
        raise BadRequestError(f"the request body must be a JSON object like {EXAMPLE}")
    extra = sorted(set(payload) - {"data"})
    if extra:
        raise BadRequestError(
            f"unexpected field(s) {', '.join(map(repr, extra))[:200]}: only 'data' is accepted"
        )
    if "data" not in payload:
        raise BadRequestError(f"'data' is missing; send {EXAMPLE}")
    data = payload["data"]
    if not isinstance(data, str):
        count = f"{N_FEATURES} " if N_FEATURES else ""
        raise BadRequestError(f"'data' must be a string of {count}comma-separated numbers")
    fields = [field.strip() for field in data.split(",")]
    if N_FEATURES is not None and len(fields) != N_FEATURES:
        raise BadRequestError(f"'data' must hold {N_FEATURES} comma-separated numbers, got {len(fields)}")
    for position, field in enumerate(fields, start=1):
        shown = repr(field if len(field) <= 24 else field[:21] + "...")
        if not NUMBER.fullmatch(field):
            raise BadRequestError(f"'data' value {position} {shown} is not a number")
        value = float(field)
        if not math.isfinite(value):
            raise BadRequestError(f"'data' value {position} {shown} is not a finite number")
        if abs(value) >= FLOAT32_LIMIT:
            raise BadRequestError(
                f"'data' value {position} {shown} is out of range: the model reads 32-bit floats "
                "(at most about 3.4e38)"
            )
    return ",".join(fields)


def refusal(original_message: str | None, n_values: int) -> str:
    """The 400 a model's own refusal becomes: the feature count it expects, or what it said was wrong."""
    try:
        detail = json.loads(original_message or "")
    except ValueError:
        detail = None
    if not isinstance(detail, dict):
        return "the model refused this input"
    expected = detail.get("expected_features")
    if isinstance(expected, int) and expected != n_values:
        return f"'data' must hold {expected} comma-separated numbers, got {n_values}"
    return f"the model refused this input: {str(detail.get('error', ''))[:200]}"


def answer_value(content_type: str, text: str) -> str | int | float:
    """The one prediction in the model's answer: a JSON label or number, or an older image's CSV line."""
    if content_type.split(";", 1)[0].strip().lower() != "application/json":
        return text
    try:
        values = json.loads(text)
    except ValueError as exc:
        raise ModelFailedError("the model answered JSON that cannot be read") from exc
    if (
        not isinstance(values, list)
        or len(values) != 1
        or isinstance(values[0], bool)
        or not isinstance(values[0], str | int | float)
    ):
        raise ModelFailedError("the model answered something other than one prediction")
    return values[0]


def predict(row: str) -> str | int | float:
    try:
        response = runtime.invoke_endpoint(
            EndpointName=ENDPOINT_NAME, ContentType="text/csv", Accept=ACCEPT, Body=row.encode("utf-8")
        )
        result = response["Body"].read().decode("utf-8").strip()
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        logger.warning("endpoint call failed", extra={"endpoint_name": ENDPOINT_NAME, "error_code": code})
        if code == "ModelError" and exc.response.get("OriginalStatusCode") == HTTPStatus.BAD_REQUEST:
            raise BadRequestError(refusal(exc.response.get("OriginalMessage"), row.count(",") + 1)) from exc
        if code in UNAVAILABLE_CODES:
            raise EndpointUnavailableError("the model endpoint is not available; try again later") from exc
        raise ModelFailedError("the model could not score this input") from exc
    except (ReadTimeoutError, ConnectTimeoutError) as exc:
        logger.warning("endpoint call timed out", extra={"endpoint_name": ENDPOINT_NAME})
        raise EndpointTimeoutError("the model endpoint did not answer in time") from exc
    except BotoCoreError as exc:
        logger.warning(
            "endpoint unreachable", extra={"endpoint_name": ENDPOINT_NAME, "error": type(exc).__name__}
        )
        raise EndpointUnavailableError("the model endpoint is not available; try again later") from exc
    except UnicodeDecodeError as exc:
        raise ModelFailedError("the model answered something that is not text") from exc
    if not result:
        raise ModelFailedError("the model answered nothing")
    return answer_value(response.get("ContentType", ""), result)


@app.post("/v1/invokeSagemakerAPI")
def invoke() -> dict[str, str | int | float]:
    event = app.current_event
    check_content_type(event.headers.get("Content-Type"))  # Powertools' headers ignore case
    row = features_from(body_text(event.body, event.is_base64_encoded))
    result = predict(row)
    logger.info("prediction served", extra={"endpoint_name": ENDPOINT_NAME})
    return {"result": result}


@logger.inject_lambda_context(
    correlation_id_path=correlation_paths.API_GATEWAY_REST, log_event=False, clear_state=True
)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
