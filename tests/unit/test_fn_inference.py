"""The inference API: validation before the endpoint, endpoint errors mapped to 502/503, never a 500."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys

import pytest
import requests
from botocore.response import StreamingBody
from botocore.stub import Stubber
from fnharness import FUNCTIONS, load_function, rest_event
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops.local.template import Template

ENDPOINT = "mlops-iris-staging"
PATH = "/v1/invokeSagemakerAPI"


def call(inference, lambda_context, body, **kwargs):
    response = inference.handler(rest_event("POST", PATH, body=body, **kwargs), lambda_context)
    return response["statusCode"], json.loads(response["body"])


def queue_endpoint_answers(*bodies: str) -> None:
    requests.post(
        "http://motoapi.amazonaws.com/moto-api/static/sagemaker/endpoint-results",
        json={"results": [{"Body": body, "ContentType": "text/csv"} for body in bodies]},
        timeout=5,
    )


@pytest.fixture
def inference(aws, monkeypatch):
    monkeypatch.setenv("ENDPOINT_NAME", ENDPOINT)
    monkeypatch.setenv("N_FEATURES", "4")  # a count fixed here; the model's own check is tested without it
    return load_function("inference/app.py")


@pytest.fixture
def model_counts(aws, monkeypatch):
    """As the template deploys it: no N_FEATURES, the model's metadata decides."""
    monkeypatch.setenv("ENDPOINT_NAME", ENDPOINT)
    monkeypatch.delenv("N_FEATURES", raising=False)
    return load_function("inference/app.py")


def test_prediction_for_one_row(inference, lambda_context):
    queue_endpoint_answers("setosa\n")

    status, body = call(inference, lambda_context, '{"data": "4.5,1.3,0.3,0.3"}')

    assert (status, body) == (200, {"result": "setosa"})


def test_endpoint_gets_the_row_as_csv_from_the_configured_endpoint(inference, lambda_context):
    with Stubber(inference.runtime) as runtime:
        runtime.add_response(
            "invoke_endpoint",
            {"Body": StreamingBody(io.BytesIO(b"virginica"), 9)},
            {
                "EndpointName": ENDPOINT,
                "ContentType": "text/csv",
                "Accept": "application/json, text/csv;q=0.5",
                "Body": b"6.1,2.8,4.7,1.2",
            },
        )
        status, body = call(inference, lambda_context, '{"data": " 6.1, 2.8,4.7 ,1.2 "}')

    assert (status, body) == (200, {"result": "virginica"})


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (None, "empty"),
        ("", "empty"),
        ("   ", "empty"),
        ("x" * 5000, "larger than 4096 bytes"),
        ("data=1,2,3,4", "not JSON"),
        ('{"data": "1,2,3,4"', "not JSON"),
        ("[1, 2, 3, 4]", "JSON object"),
        ('"4.5,1.3,0.3,0.3"', "JSON object"),
        ("{}", "'data' is missing"),
        ('{"data": [4.5, 1.3, 0.3, 0.3]}', "must be a string"),
        ('{"data": 4.5}', "must be a string"),
        ('{"data": null}', "must be a string"),
        ('{"data": "4.5,1.3,0.3"}', "got 3"),
        ('{"data": "4.5,1.3,0.3,0.3,9"}', "got 5"),
        ('{"data": ""}', "got 1"),
        ('{"data": "4.5,abc,0.3,0.3"}', "value 2 'abc' is not a number"),
        ('{"data": "4.5,,0.3,0.3"}', "value 2 '' is not a number"),
        ('{"data": "4.5,1_000,0.3,0.3"}', "value 2 '1_000' is not a number"),
        ('{"data": "4.5,1.3,0.3,NaN"}', "value 4 'NaN' is not a number"),
        ('{"data": "inf,1.3,0.3,0.3"}', "value 1 'inf' is not a number"),
        ('{"data": "1e999,1.3,0.3,0.3"}', "value 1 '1e999' is not a finite number"),
        ('{"data": "1e39,1.3,0.3,0.3"}', "value 1 '1e39' is out of range: the model reads 32-bit floats"),
        ('{"data": "4.5,1e308,0.3,0.3"}', "value 2 '1e308' is out of range"),
        ('{"data": "-3.5e38,1.3,0.3,0.3"}', "value 1 '-3.5e38' is out of range"),
        ('{"data": "\uff14.5,1.3,0.3,0.3"}', "value 1 '\uff14.5' is not a number"),  # full-width 4
        ('{"data": "\U0001d7d2.5,1.3,0.3,0.3"}', "value 1 '\U0001d7d2.5' is not a number"),  # bold 4
        ('{"data": "4.5,1.3,0.3,\u0664"}', "value 4 '\u0664' is not a number"),  # Arabic-Indic 4
        ('{"data": "4.5,1.3,0.3,0.3", "endpoint_name": "someone-elses"}', "'endpoint_name'"),
        ('{"data": "4.5,1.3,0.3,0.3", "EndpointName": "x"}', "only 'data' is accepted"),
        ("[" * 2000 + "]" * 2000, "not JSON"),
    ],
)
def test_bad_request_is_400_with_a_message(inference, lambda_context, body, message):
    with Stubber(inference.runtime):  # any call to the endpoint would fail the test
        status, answer = call(inference, lambda_context, body)

    assert status == 400
    assert message in answer["message"]


def test_the_largest_32_bit_value_is_still_a_number_the_model_reads(inference, lambda_context):
    queue_endpoint_answers("setosa")

    status, body = call(inference, lambda_context, '{"data": "3.4e38,1.3,0.3,0.3"}')

    assert (status, body) == (200, {"result": "setosa"})


@pytest.mark.parametrize("content_type", ["text/csv", "text/plain", "multipart/form-data; boundary=x"])
def test_a_body_that_is_not_sent_as_json_is_415(inference, lambda_context, content_type):
    with Stubber(inference.runtime):
        status, body = call(
            inference, lambda_context, '{"data": "4.5,1.3,0.3,0.3"}', headers={"content-type": content_type}
        )

    assert status == 415
    assert "application/json" in body["message"]


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "Application/JSON; charset=utf-8", "application/x-www-form-urlencoded"],
)
def test_json_and_curls_default_content_type_are_taken(inference, lambda_context, content_type):
    queue_endpoint_answers("setosa")

    status, body = call(
        inference, lambda_context, '{"data": "4.5,1.3,0.3,0.3"}', headers={"Content-Type": content_type}
    )

    assert (status, body) == (200, {"result": "setosa"})


def test_base64_body_is_decoded(inference, lambda_context):
    queue_endpoint_answers("setosa")

    status, body = call(inference, lambda_context, b'{"data": "4.5,1.3,0.3,0.3"}')

    assert (status, body) == (200, {"result": "setosa"})


def test_binary_body_that_is_not_utf8_is_400(inference, lambda_context):
    status, body = call(inference, lambda_context, b"\xff\xfe{}")

    assert status == 400
    assert "UTF-8" in body["message"]


def test_invalid_base64_is_400(inference, lambda_context):
    status, _ = call(inference, lambda_context, "not base64!!", base64_body=True)

    assert status == 400


def test_model_error_is_502(inference, lambda_context):
    with Stubber(inference.runtime) as runtime:
        runtime.add_client_error("invoke_endpoint", service_error_code="ModelError", http_status_code=424)
        status, body = call(inference, lambda_context, '{"data": "4.5,1.3,0.3,0.3"}')

    assert status == 502
    assert body["message"] == "the model could not score this input"


@pytest.mark.parametrize(
    "code", ["ValidationError", "ModelNotReadyException", "ServiceUnavailable", "ThrottlingException"]
)
def test_missing_or_busy_endpoint_is_503(inference, lambda_context, code):
    with Stubber(inference.runtime) as runtime:
        runtime.add_client_error(
            "invoke_endpoint",
            service_error_code=code,
            service_message=f"Endpoint {ENDPOINT} of account 123456789012 not found.",
            http_status_code=400,
        )
        status, body = call(inference, lambda_context, '{"data": "4.5,1.3,0.3,0.3"}')

    assert status == 503
    assert "not available" in body["message"]
    assert "123456789012" not in body["message"]


def test_empty_model_answer_is_502(inference, lambda_context):
    queue_endpoint_answers("  \n")

    status, _ = call(inference, lambda_context, '{"data": "4.5,1.3,0.3,0.3"}')

    assert status == 502


def test_n_features_and_body_limit_come_from_the_environment(aws, monkeypatch, lambda_context):
    monkeypatch.setenv("ENDPOINT_NAME", ENDPOINT)
    monkeypatch.setenv("N_FEATURES", "2")
    monkeypatch.setenv("MAX_BODY_BYTES", "30")
    inference = load_function("inference/app.py")
    queue_endpoint_answers("setosa")

    assert call(inference, lambda_context, '{"data": "4.5,1.3"}')[0] == 200
    assert call(inference, lambda_context, '{"data": "4.5,1.3,0.3,0.3"}')[0] == 400
    assert (
        "larger than 30" in call(inference, lambda_context, '{"data": "4.5,             1.3"}')[1]["message"]
    )


json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
feature_text = st.lists(
    st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(str), st.text(max_size=6)),
    min_size=0,
    max_size=6,
).map(",".join)
bodies = st.one_of(
    st.none(),
    st.text(max_size=300),
    st.binary(max_size=300),
    json_values.map(json.dumps),
    st.fixed_dictionaries({"data": feature_text}).map(json.dumps),
    st.fixed_dictionaries({"data": feature_text}, optional={"endpoint": st.text(max_size=10)}).map(
        json.dumps
    ),
)


def test_no_body_produces_a_server_error_or_an_exception(inference, lambda_context):
    """Whatever arrives, the answer is a 200 or a 400 with a JSON message (moto's endpoint always answers)."""

    @settings(max_examples=300, deadline=None)
    @given(body=bodies, as_base64=st.booleans())
    def check(body, as_base64):
        if isinstance(body, str) and as_base64:
            encoded = base64.b64encode(body.encode("utf-8", "surrogatepass")).decode()
            event = rest_event("POST", PATH, body=encoded, base64_body=True)
        else:
            event = rest_event("POST", PATH, body=body)

        response = inference.handler(event, lambda_context)

        assert response["statusCode"] in (200, 400)
        answer = json.loads(response["body"])
        if response["statusCode"] == 200:
            assert set(answer) == {"result"}
        else:
            assert isinstance(answer["message"], str)

    check()


def test_a_cold_start_serves_its_first_request_without_loading_the_xray_sdk():
    # aws_xray_sdk (what Powertools' Tracer imports) was a third of the function's cold start; Lambda's
    # active tracing traces the function without it.
    script = f"""
import json, sys
sys.path.insert(0, {str(FUNCTIONS / "inference")!r})
import app
from fnharness import FakeLambdaContext, rest_event
response = app.handler(rest_event("POST", {PATH!r}, body='{{"data": "1,abc,3"}}'), FakeLambdaContext())
print(json.dumps([response["statusCode"], sorted(m for m in sys.modules if m.startswith("aws_xray_sdk"))]))
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))}
    env.update(ENDPOINT_NAME=ENDPOINT, AWS_DEFAULT_REGION="us-east-1", POWERTOOLS_SERVICE_NAME="mlops-iris")
    env["PYTHONPATH"] = os.pathsep.join([os.path.dirname(__file__), env.get("PYTHONPATH", "")])
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [400, []]


def test_the_inference_function_is_traced_by_lambda_itself():
    doc = Template().doc
    function = doc["Resources"]["InferenceFunction"]["Properties"]
    assert function.get("Tracing", doc["Globals"]["Function"].get("Tracing")) == "Active"
    api = doc["Resources"]["InferenceApi"]["Properties"]
    assert api.get("TracingEnabled") is True  # and the trace starts at API Gateway


def json_answer(value: str, content_type: str = "application/json") -> dict:
    data = value.encode()
    return {"Body": StreamingBody(io.BytesIO(data), len(data)), "ContentType": content_type}


@pytest.mark.parametrize(("answer", "result"), [('["setosa"]', "setosa"), ("[152.3]", 152.3), ("[7]", 7)])
def test_the_models_json_value_is_the_result_a_label_or_a_number(
    model_counts, lambda_context, answer, result
):
    with Stubber(model_counts.runtime) as runtime:
        runtime.add_response("invoke_endpoint", json_answer(answer))
        status, body = call(model_counts, lambda_context, '{"data": "59,2,32.1,101,157,93.2,38,4,4.8598,87"}')

    assert (status, body) == (200, {"result": result})
    assert type(body["result"]) is type(result)


@pytest.mark.parametrize("answer", ["[]", '["a", "b"]', '{"result": 1}', "[true]", "[null]", "not json"])
def test_a_json_answer_that_is_not_one_prediction_is_502(model_counts, lambda_context, answer):
    with Stubber(model_counts.runtime) as runtime:
        runtime.add_response("invoke_endpoint", json_answer(answer))
        status, _ = call(model_counts, lambda_context, '{"data": "1,2"}')

    assert status == 502


def test_the_models_feature_count_refusal_is_a_400_naming_the_count(model_counts, lambda_context):
    refusal = {
        "error": "row 1 has 4 values: expected 10 comma-separated numbers",
        "expected_features": 10,
        "row": 1,
    }
    with Stubber(model_counts.runtime) as runtime:
        runtime.add_client_error(
            "invoke_endpoint",
            service_error_code="ModelError",
            http_status_code=424,
            modeled_fields={"OriginalStatusCode": 400, "OriginalMessage": json.dumps(refusal)},
        )
        status, body = call(model_counts, lambda_context, '{"data": "4.5,1.3,0.3,0.3"}')

    assert (status, body["message"]) == (400, "'data' must hold 10 comma-separated numbers, got 4")


def test_a_model_error_other_than_a_400_stays_502(model_counts, lambda_context):
    with Stubber(model_counts.runtime) as runtime:
        runtime.add_client_error(
            "invoke_endpoint",
            service_error_code="ModelError",
            http_status_code=424,
            modeled_fields={"OriginalStatusCode": 500, "OriginalMessage": "boom"},
        )
        status, _ = call(model_counts, lambda_context, '{"data": "4.5,1.3,0.3,0.3"}')

    assert status == 502
