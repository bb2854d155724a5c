"""Approval request and response functions against moto: DynamoDB, Secrets Manager, SES v2, Step Functions.

Task tokens come from real executions waiting in moto's Step Functions interpreter (an SQS
`.waitForTaskToken` state stands in for the Lambda one), so success/failure reach a real waiting task.
"""

from __future__ import annotations

import base64
import contextlib
import email
import email.policy
import html as html_lib
import itertools
import json
import re
import struct
import time
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import boto3
import pytest
import requests
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from fnharness import REGION, FakeLambdaContext, load_function, rest_event
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

API_URL = "https://abc123.execute-api.us-east-1.amazonaws.com/Prod"
SENDER = "releases@example.com"
APPROVER = "lead@example.com"
SIGNING_SECRET = "Zq8vN3kT7wLr2XcP9mB4sHd6JfG1aYeU5oQiWnRtKzVx0CbMlSpDgFhAjEyIuOq7"
COMMIT = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"
IMAGE = f"123456789012.dkr.ecr.us-east-1.amazonaws.com/mlops-iris:{COMMIT}"
PREDICTIONS = "s3://artifacts/transform/mlops-iris-a1b2c3d-eval-e1/test.csv.out"
PACKAGE = "arn:aws:sagemaker:us-east-1:123456789012:model-package/mlops-iris/7"
_machines = itertools.count()


def approval_event(task_token: str, execution_arn: str, **overrides: Any) -> dict[str, Any]:
    event = {
        "task_token": task_token,
        "execution_arn": execution_arn,
        "release": {"commit": COMMIT, "image_uri": IMAGE},
        "names": {
            "training_job": "mlops-iris-a1b2c3d-train-e1",
            "model": "mlops-iris-a1b2c3d-e1",
            "transform_job": "mlops-iris-a1b2c3d-eval-e1",
            "endpoint_config": "mlops-iris-a1b2c3d-e1",
        },
        "training": {
            "job_name": "mlops-iris-a1b2c3d-train-e1",
            "model_data": "s3://artifacts/training/mlops-iris-a1b2c3d-train-e1/output/model.tar.gz",
        },
        "evaluation": {
            "accuracy": 0.9667,
            "rows": 30,
            "labels": ["setosa", "versicolor", "virginica"],
            "confusion_matrix": [[10, 0, 0], [0, 9, 1], [0, 0, 10]],
            "report_uri": "s3://artifacts/evaluation/mlops-iris-a1b2c3d-eval-e1.json",
            "predictions_object": PREDICTIONS,
            "champion": {"endpoint_config": "mlops-iris-0f0f0f0-e0", "accuracy": 0.9333, "rows": 30},
        },
        "model_package_arn": PACKAGE,
        "api_url": API_URL,
        "timeout_seconds": 3600,
    }
    event.update(overrides)
    return event


@dataclass
class WaitingRelease:
    execution_arn: str
    task_token: str


def start_waiting_release(timeout_seconds: int = 300) -> WaitingRelease:
    """An execution paused on a `.waitForTaskToken` state, and the token it waits for."""
    sqs = boto3.client("sqs")
    sfn = boto3.client("stepfunctions")
    number = next(_machines)
    queue_url = sqs.create_queue(QueueName=f"approval-tokens-{number}")["QueueUrl"]
    definition = {
        "StartAt": "RequestApproval",
        "States": {
            "RequestApproval": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "Parameters": {"QueueUrl": queue_url, "MessageBody": {"token.$": "$$.Task.Token"}},
                "TimeoutSeconds": timeout_seconds,
                "End": True,
            }
        },
    }
    machine = sfn.create_state_machine(
        name=f"release-{number}",
        definition=json.dumps(definition),
        roleArn=f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/release",
    )["stateMachineArn"]
    execution_arn = sfn.start_execution(stateMachineArn=machine, name=f"run-{number}", input="{}")[
        "executionArn"
    ]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        messages = sqs.receive_message(QueueUrl=queue_url).get("Messages")
        if messages:
            return WaitingRelease(execution_arn, json.loads(messages[0]["Body"])["token"])
        time.sleep(0.02)
    raise AssertionError("the execution never reached its waiting state")


def finished_execution(execution_arn: str, seconds: float = 10) -> dict[str, Any]:
    sfn = boto3.client("stepfunctions")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        execution = sfn.describe_execution(executionArn=execution_arn)
        if execution["status"] != "RUNNING":
            return execution
        time.sleep(0.02)
    raise AssertionError("the execution is still running")


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def with_payload(d: str, **changes: Any) -> str:
    """The same signature over a different payload: what someone editing a link would produce."""
    encoded, signature = d.split(".")
    payload = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    payload.update(changes)
    return f"{b64url(json.dumps(payload, separators=(',', ':'), sort_keys=True).encode())}.{signature}"


def header(response: dict[str, Any], name: str) -> str | None:
    for key, values in (response.get("multiValueHeaders") or {}).items():
        if key.lower() == name.lower():
            return values[0]
    for key, value in (response.get("headers") or {}).items():
        if key.lower() == name.lower():
            return value
    return None


@dataclass
class Approvals:
    request: ModuleType
    response: ModuleType
    table: Any
    context: FakeLambdaContext

    def ask(self, release: WaitingRelease, /, **overrides: Any) -> dict[str, Any]:
        event = approval_event(release.task_token, release.execution_arn, **overrides)
        return self.request.handler(event, self.context)

    def mails(self) -> list[EmailMessage]:
        sent = ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages
        return [email.message_from_string(m.raw_data, policy=email.policy.default) for m in sent]

    def links(self) -> dict[str, str]:
        """{"approve": d, "reject": d} from the text part of the latest mail."""
        text = self.mails()[-1].get_body(("plain",)).get_content()
        urls = dict(re.findall(r"^(Approve|Reject):\s+(\S+)$", text, flags=re.MULTILINE))
        return {action.lower(): parse_qs(urlsplit(url).query)["d"][0] for action, url in urls.items()}

    def get(self, d: str | None, **kwargs: Any) -> dict[str, Any]:
        event = rest_event("GET", "/approval", query=None if d is None else {"d": d}, **kwargs)
        return self.response.handler(event, self.context)

    def post(self, d: str | None, form: dict[str, str] | str | bytes, **kwargs: Any) -> dict[str, Any]:
        body = urlencode(form) if isinstance(form, dict) else form
        headers = {"Content-Type": "application/x-www-form-urlencoded", **kwargs.pop("headers", {})}
        event = rest_event(
            "POST", "/approval", query=None if d is None else {"d": d}, body=body, headers=headers, **kwargs
        )
        return self.response.handler(event, self.context)

    def item(self, approval_id: str) -> dict[str, Any]:
        return self.table.get_item(Key={"approval_id": approval_id}, ConsistentRead=True)["Item"]


@pytest.fixture
def approvals(aws_with_sfn_engine, monkeypatch, lambda_context) -> Approvals:
    dynamodb = boto3.resource("dynamodb")
    table = dynamodb.create_table(
        TableName="approvals",
        KeySchema=[{"AttributeName": "approval_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "approval_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    secret_arn = boto3.client("secretsmanager").create_secret(
        Name="link-signing", SecretString=SIGNING_SECRET
    )["ARN"]
    boto3.client("sesv2").create_email_identity(EmailIdentity=SENDER)
    monkeypatch.setenv("APPROVAL_TABLE", "approvals")
    monkeypatch.setenv("SIGNING_SECRET_ARN", secret_arn)
    monkeypatch.setenv("APPROVER_EMAIL", APPROVER)
    monkeypatch.setenv("SENDER_EMAIL", SENDER)
    monkeypatch.setenv("LINK_TTL_SECONDS", "86400")
    return Approvals(
        request=load_function("approval/request.py"),
        response=load_function("approval/response.py"),
        table=table,
        context=lambda_context,
    )


@pytest.fixture
def waiting(approvals):
    release = start_waiting_release()
    yield release
    # End executions a test left waiting, so their threads do not outlive the test.
    with contextlib.suppress(ClientError):
        boto3.client("stepfunctions").send_task_failure(taskToken=release.task_token, error="TestOver")


# --- the request -------------------------------------------------------------------------------------------


def test_request_stores_a_pending_approval_and_returns_neither_token_nor_links(approvals, waiting):
    before = time.time()
    result = approvals.request.request_approval(
        approval_event(waiting.task_token, waiting.execution_arn), now=before
    )

    assert set(result) == {"approval_id", "expires_at"}
    item = approvals.item(result["approval_id"])
    assert item["status"] == "PENDING"
    assert item["task_token"] == waiting.task_token
    assert item["execution_arn"] == waiting.execution_arn
    assert item["expires_at"] == result["expires_at"]
    assert int(item["expires_at_ttl"]) > before + 3600
    assert json.loads(item["evidence"])["release"]["commit"] == COMMIT


def test_request_sends_one_multipart_mail_with_the_evidence_and_both_links(approvals, waiting):
    approvals.ask(waiting)

    [mail] = approvals.mails()
    assert mail["From"] == SENDER
    assert mail["To"] == APPROVER
    assert mail.get_content_type() == "multipart/alternative"
    assert "a1b2c3d" in mail["Subject"]
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    for part in (text, html):
        assert COMMIT in part
        assert IMAGE in part
        assert "mlops-iris-a1b2c3d-train-e1" in part
        assert "0.9667" in part
        assert "versicolor" in part
        assert "mlops-iris-0f0f0f0-e0" in part and "0.9333" in part
        assert PACKAGE in part  # the registry version promote.yml asks for
        assert "confirmation page" in part
        assert "expire" in part
    # A presigned link would die with the function's session credentials, hours before the links do: the
    # mail names the predictions and sends the reader to the page, which presigns when it opens.
    assert "X-Amz-Signature" not in mail.as_string()
    assert PREDICTIONS in text
    assert "fresh download link" in text and "fresh download link" in html
    assert f"{API_URL}/approval?d=" in text
    assert text.count(f"{API_URL}/approval?d=") == 2
    assert "<table>" in html and re.search(
        r'<td style="background:#[0-9a-f]{6};color:#[0-9a-f]{3}">9</td>', html
    )
    assert set(approvals.links()) == {"approve", "reject"}
    assert waiting.task_token not in mail.as_string()


REGRESSION_EVALUATION = {
    "problem_type": "regression",
    "model": {
        "name": "diabetes",
        "problem_type": "regression",
        "n_features": 10,
        "target": "disease_progression",
    },
    "metrics": {"rmse": 59.0816, "mae": 47.2752, "r2": 0.3724},
    "gate": {
        "metric": "rmse",
        "label": "RMSE",
        "value": 59.0816,
        "threshold": 70.0,
        "direction": "lower",
        "passed": True,
        "reason": "held-out RMSE 59.0816 meets the gate 70 (lower is better; 88 rows)",
    },
    "accuracy": None,
    "rows": 88,
    "labels": None,
    "confusion_matrix": None,
    "report_uri": "s3://artifacts/evaluation/mlops-iris-a1b2c3d-eval-e1.json",
    "predictions_object": PREDICTIONS,
    "champion": {
        "endpoint_config": "mlops-iris-0f0f0f0-e0",
        "rmse": 61.5,
        "mae": 49.0,
        "r2": 0.33,
        "rows": 88,
    },
    "training_metrics": {
        "rows": 354,
        "rmse": 30.12,
        "mae": 23.81,
        "r2": 0.8491,
        "cross_validation": {"folds": 5, "rmse": 58.41, "std": 5.98},
    },
}


def test_a_regressions_mail_and_page_show_its_rmse_mae_r2_and_gate_beside_the_champions(approvals, waiting):
    approvals.ask(waiting, evaluation=REGRESSION_EVALUATION)

    [mail] = approvals.mails()
    assert "Held-out RMSE 59.08" in mail["Subject"]
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    page = html_lib.unescape(approvals.get(approvals.links()["approve"])["body"])
    for part in (text, html_lib.unescape(html), page):
        assert "RMSE 59.08, MAE 47.28, R² 0.3724 on 88 rows (target: disease_progression)" in part
        assert "held-out RMSE 59.0816 meets the gate 70 (lower is better; 88 rows)" in part
        assert (
            "scores RMSE 61.5, MAE 49, R² 0.3300 on 88 rows on the same held-out rows; this release RMSE -2.4184"
            in part
        )
        assert "training RMSE 30.12" in part and "5-fold cross-validation RMSE 58.41 ± 5.98" in part
        assert "accuracy" not in part.lower() and "confusion" not in part.lower()


def png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and the unfiltered RGB rows of an 8-bit RGB PNG whose rows use filter 0."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, offset = {}, 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        chunks[kind] = chunks.get(kind, b"") + data[offset + 8 : offset + 8 + length]
        offset += 12 + length
    width, height = struct.unpack(">II", chunks[b"IHDR"][:8])
    raw = zlib.decompress(chunks[b"IDAT"])
    stride = 1 + 3 * width
    return width, height, [raw[y * stride + 1 : (y + 1) * stride] for y in range(height)]


def test_the_mail_shows_the_confusion_matrix_as_a_heat_map_and_the_accuracies_as_bars(approvals, waiting):
    approvals.ask(waiting)

    [mail] = approvals.mails()
    html_part = mail.get_body(("html",))
    related = next(part for part in mail.walk() if part.get_content_type() == "multipart/related")
    images = {
        part["Content-ID"].strip("<>"): part
        for part in related.iter_parts()
        if part.get_content_maintype() == "image"
    }
    html = html_part.get_content()
    referenced = re.findall(r'<img src="cid:([^"]+)" alt="([^"]+)"', html)
    assert {cid for cid, _ in referenced} == set(images) and len(images) == 2
    alts = " ".join(alt for _, alt in referenced)
    assert "heat map" in alts and "candidate (green)" in alts
    heatmap = next(images[cid] for cid, alt in referenced if "heat map" in alt).get_content()
    width, height, rows = png_pixels(heatmap)
    assert width == height == 3 * 40 + 1
    middle = 20  # the middle of a cell, away from the grid lines
    versicolor_right, versicolor_as_virginica = (
        rows[40 + middle][3 * (40 + middle)],
        rows[40 + middle][3 * (80 + middle)],
    )
    assert versicolor_right < versicolor_as_virginica  # 9 of 10 right: a darker red channel than 1 of 10
    # The text part keeps the numbers.
    assert "versicolor" in mail.get_body(("plain",)).get_content()


def test_the_confirmation_page_shows_the_charts_inline_under_its_own_policy(approvals, waiting):
    approvals.ask(waiting)

    response = approvals.get(approvals.links()["approve"])

    assert response["statusCode"] == 200
    assert response["body"].count('<img src="data:image/png;base64,') == 2
    assert "img-src data:" in response["multiValueHeaders"]["Content-Security-Policy"][0]


def test_links_expire_no_later_than_the_approval_wait(approvals, waiting):
    now = 1_700_000_000
    result = approvals.request.request_approval(
        approval_event(waiting.task_token, waiting.execution_arn, timeout_seconds=600), now=now
    )

    assert result["expires_at"] == "2023-11-14T22:23:20Z"  # now + 600 s, not + LINK_TTL_SECONDS


def test_signing_key_is_read_once_per_container(approvals, waiting):
    approvals.ask(waiting)
    approvals.ask(waiting)

    assert approvals.request.signing_key.cache_info().misses == 1


# --- GET: the confirmation page ------------------------------------------------------------------------------


def test_get_shows_a_confirmation_page_and_never_decides(approvals, waiting):
    approval_id = approvals.ask(waiting)["approval_id"]
    approve = approvals.links()["approve"]

    for _ in range(3):  # mail scanners and link previews fetch more than once
        response = approvals.get(approve)
        assert response["statusCode"] == 200
    body = response["body"]
    assert "Approve release" in body
    assert '<form method="post">' in body
    assert 'name="approver" required' in body
    assert "<textarea" in body and 'name="reason"' in body
    assert COMMIT in body and "0.9667" in body and "mlops-iris-0f0f0f0-e0" in body
    assert approvals.item(approval_id)["status"] == "PENDING"
    assert boto3.client("stepfunctions").describe_execution(executionArn=waiting.execution_arn)["status"] == (
        "RUNNING"
    )


def test_the_confirmation_page_presigns_the_predictions_when_it_opens(approvals, waiting):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="artifacts")
    s3.put_object(Bucket="artifacts", Key=PREDICTIONS.split("/", 3)[3], Body=b"setosa,setosa\n")
    approvals.ask(waiting)

    opened = time.time()
    body = approvals.get(approvals.links()["approve"])["body"]

    [url] = re.findall(r'href="([^"]+X-Amz-Signature[^"]+)"', body)
    url = html_lib.unescape(url)
    query = parse_qs(urlsplit(url).query)
    assert urlsplit(url).path.endswith("/transform/mlops-iris-a1b2c3d-eval-e1/test.csv.out")
    assert query["X-Amz-Expires"] == ["3600"]
    signed = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
    assert abs(signed - opened) < 60  # signed when the page opened, not when the mail was sent
    assert "valid for an hour" in body
    assert requests.get(url, timeout=5).content == b"setosa,setosa\n"


def test_reject_link_page_offers_only_reject(approvals, waiting):
    approvals.ask(waiting)

    body = approvals.get(approvals.links()["reject"])["body"]

    assert "Reject release</button>" in body
    assert "Approve release</button>" not in body


def test_pages_are_not_cached_indexed_or_referred(approvals, waiting):
    approvals.ask(waiting)

    response = approvals.get(approvals.links()["approve"])

    assert header(response, "Content-Type").startswith("text/html")
    assert header(response, "Cache-Control") == "no-store"
    assert header(response, "Referrer-Policy") == "no-referrer"
    assert '<meta name="robots" content="noindex' in response["body"]
    assert "<script" not in response["body"] and "http" not in response["body"].split("<body>")[0]


def test_page_escapes_everything_from_the_release(approvals, waiting):
    hostile = '<script>alert("x")</script>'
    approvals.ask(waiting, release={"commit": hostile, "image_uri": f"{IMAGE}{hostile}"})

    body = approvals.get(approvals.links()["approve"])["body"]

    assert "<script>" not in body
    assert "&lt;script&gt;" in body


# --- POST: the decision ---------------------------------------------------------------------------------------


def test_post_approve_resumes_the_release_with_the_approver(approvals, waiting):
    approval_id = approvals.ask(waiting)["approval_id"]

    response = approvals.post(
        approvals.links()["approve"], {"approver": "Ada Lovelace", "reason": "looks good"}
    )

    assert response["statusCode"] == 200
    assert "Approved — the release continues" in response["body"]
    execution = finished_execution(waiting.execution_arn)
    assert execution["status"] == "SUCCEEDED"
    output = json.loads(execution["output"])
    assert output["decision"] == "approved"
    assert output["approver"] == "Ada Lovelace"
    assert output["reason"] == "looks good"
    assert output["approval_id"] == approval_id
    assert output["decided_at"].endswith("Z")
    item = approvals.item(approval_id)
    assert item["status"] == "APPROVED"
    assert item["approver"] == "Ada Lovelace"
    assert item["decided_from"]["source_ip"] == "203.0.113.7"


def test_post_reject_fails_the_task_with_error_rejected(approvals, waiting):
    approval_id = approvals.ask(waiting)["approval_id"]

    response = approvals.post(approvals.links()["reject"], {"approver": "Grace", "reason": "recall too low"})

    assert response["statusCode"] == 200
    assert "Rejected — the release stops" in response["body"]
    execution = finished_execution(waiting.execution_arn)
    assert execution["status"] == "FAILED"
    assert execution["error"] == "Rejected"
    assert approvals.item(approval_id)["status"] == "REJECTED"


def test_post_reject_gives_step_functions_the_approver_and_reason(approvals, waiting):
    approvals.ask(waiting)
    reject = approvals.links()["reject"]

    with Stubber(approvals.response.sfn) as sfn:
        sfn.add_response(
            "send_task_failure",
            {},
            {
                "taskToken": waiting.task_token,
                "error": "Rejected",
                "cause": "rejected by Grace: recall too low",
            },
        )
        response = approvals.post(reject, {"approver": "Grace", "reason": "recall too low"})
        sfn.assert_no_pending_responses()

    assert response["statusCode"] == 200


def test_second_post_on_same_link_is_409(approvals, waiting):
    approve = (approvals.ask(waiting), approvals.links()["approve"])[1]
    assert approvals.post(approve, {"approver": "Ada"})["statusCode"] == 200

    again = approvals.post(approve, {"approver": "Ada"})

    assert again["statusCode"] == 409
    assert "already approved" in again["body"]
    assert "Ada" in again["body"]


def test_reject_after_approve_is_409_and_changes_nothing(approvals, waiting):
    approval_id = approvals.ask(waiting)["approval_id"]
    links = approvals.links()
    approvals.post(links["approve"], {"approver": "Ada"})

    response = approvals.post(links["reject"], {"approver": "Mallory", "reason": "changed my mind"})

    assert response["statusCode"] == 409
    assert approvals.item(approval_id)["status"] == "APPROVED"
    assert approvals.item(approval_id)["approver"] == "Ada"
    assert finished_execution(waiting.execution_arn)["status"] == "SUCCEEDED"


def test_get_after_decision_says_already_decided_with_409(approvals, waiting):
    approvals.ask(waiting)
    links = approvals.links()
    approvals.post(links["reject"], {"approver": "Grace"})

    response = approvals.get(links["approve"])

    assert response["statusCode"] == 409
    assert "already rejected" in response["body"]
    assert "<form" not in response["body"]


def test_post_with_json_accept_answers_json(approvals, waiting):
    approvals.ask(waiting)

    response = approvals.post(
        approvals.links()["approve"], {"approver": "Ada"}, headers={"Accept": "application/json"}
    )

    assert response["statusCode"] == 200
    assert json.loads(response["body"]) == {"decision": "approved", "approver": "Ada"}


def test_base64_encoded_form_is_read(approvals, waiting):
    approvals.ask(waiting)

    response = approvals.post(approvals.links()["approve"], urlencode({"approver": "Ada"}).encode())

    assert response["statusCode"] == 200


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({}, "approver"),
        ({"approver": "   "}, "approver"),
        ({"approver": "x" * 201}, "approver"),
        ({"approver": "Ada", "reason": "y" * 1001}, "reason"),
        ({"approver": "\x00"}, "approver"),
        ({"approver": "Ada\x1b[2J"}, "approver"),  # a terminal escape
        ({"approver": "Ada\x85"}, "approver"),  # C1 next line
        ({"approver": "\u202eadA"}, "approver"),  # right-to-left override
        ({"approver": "Ada", "reason": "fine\x07"}, "reason"),
    ],
)
def test_invalid_form_is_400_naming_the_field_and_decides_nothing(approvals, waiting, form, field):
    approval_id = approvals.ask(waiting)["approval_id"]

    response = approvals.post(approvals.links()["approve"], form)

    assert response["statusCode"] == 400
    assert f"{field}:" in response["body"]
    assert approvals.item(approval_id)["status"] == "PENDING"


def test_line_breaks_and_runs_of_spaces_become_one_space_before_anything_is_recorded(approvals, waiting):
    approval_id = approvals.ask(waiting)["approval_id"]

    response = approvals.post(
        approvals.links()["reject"],
        {"approver": "Ada\r\nX-Approved-By: Mallory", "reason": "  too\n\nslow\tfor  prod "},
    )

    assert response["statusCode"] == 200
    item = approvals.item(approval_id)
    assert (item["approver"], item["reason"]) == ("Ada X-Approved-By: Mallory", "too slow for prod")
    assert finished_execution(waiting.execution_arn)["status"] == "FAILED"


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "https://evil.example", "Host": "abc.execute-api.us-east-1.amazonaws.com"},
        {"Origin": "null", "Sec-Fetch-Site": "cross-site"},
    ],
)
def test_a_form_sent_from_another_site_is_403_and_decides_nothing(approvals, waiting, headers):
    approval_id = approvals.ask(waiting)["approval_id"]

    response = approvals.post(approvals.links()["approve"], {"approver": "Ada"}, headers=headers)

    assert response["statusCode"] == 403
    assert "another site" in response["body"]
    assert approvals.item(approval_id)["status"] == "PENDING"


@pytest.mark.parametrize(
    "headers",
    [
        {},  # curl, scripts: no Origin at all
        # The page's own form under its no-referrer policy: browsers send Origin "null".
        {"Sec-Fetch-Site": "same-origin", "Origin": "null"},
        {
            "Sec-Fetch-Site": "same-origin",
            "Origin": "https://abc.execute-api.us-east-1.amazonaws.com",
            "Host": "abc.execute-api.us-east-1.amazonaws.com",
            "X-Forwarded-Proto": "https",
        },
    ],
)
def test_the_approval_page_itself_and_clients_without_origin_decide(approvals, waiting, headers):
    approvals.ask(waiting)

    response = approvals.post(approvals.links()["approve"], {"approver": "Ada"}, headers=headers)

    assert response["statusCode"] == 200


def test_invalid_form_answers_json_when_asked(approvals, waiting):
    approvals.ask(waiting)

    response = approvals.post(approvals.links()["approve"], {}, headers={"Accept": "application/json"})

    assert response["statusCode"] == 400
    assert json.loads(response["body"])["message"].startswith("approver:")


# --- links that must not work -----------------------------------------------------------------------------


def test_forged_signature_is_403(approvals, waiting):
    approval_id = approvals.ask(waiting)["approval_id"]
    encoded = approvals.links()["approve"].split(".")[0]

    for method in (approvals.get, lambda d: approvals.post(d, {"approver": "Mallory"})):
        response = method(f"{encoded}.{b64url(b'0' * 32)}")
        assert response["statusCode"] == 403
    assert approvals.item(approval_id)["status"] == "PENDING"


def test_link_is_checked_before_the_form(approvals, waiting):
    approvals.ask(waiting)
    encoded, signature = approvals.links()["approve"].split(".")
    forged = f"{encoded}.{'B' if signature[0] == 'A' else 'A'}{signature[1:]}"

    response = approvals.post(forged, "%%%", base64_body=True)

    assert response["statusCode"] == 403


def test_link_with_swapped_action_is_403(approvals, waiting):
    approval_id = approvals.ask(waiting)["approval_id"]
    approve = approvals.links()["approve"]

    response = approvals.post(with_payload(approve, a="reject"), {"approver": "Mallory"})

    assert response["statusCode"] == 403
    assert approvals.item(approval_id)["status"] == "PENDING"


def test_link_with_extended_expiry_is_403(approvals, waiting):
    approvals.ask(waiting)

    response = approvals.get(with_payload(approvals.links()["approve"], e=4_102_444_800))

    assert response["statusCode"] == 403


def test_link_signed_with_another_key_is_403(approvals, waiting):
    from approval_links import LinkClaim, sign

    approval_id = approvals.ask(waiting)["approval_id"]

    d = sign(LinkClaim(approval_id, "approve", int(time.time()) + 600), b"another key of the right length!!")

    assert approvals.post(d, {"approver": "Mallory"})["statusCode"] == 403


@pytest.mark.parametrize("d", [None, "", "abc", "a.b.c", "not base64!.sig", "é.é", "x" * 600])
def test_malformed_link_is_403(approvals, d):
    response = approvals.get(d)

    assert response["statusCode"] == 403
    assert header(response, "Cache-Control") == "no-store"


def test_expired_link_is_410(approvals, waiting):
    from approval_links import LinkClaim, sign

    approval_id = approvals.ask(waiting)["approval_id"]
    d = sign(LinkClaim(approval_id, "approve", int(time.time()) - 1), SIGNING_SECRET.encode())

    assert approvals.get(d)["statusCode"] == 410
    response = approvals.post(d, {"approver": "Ada"})
    assert response["statusCode"] == 410
    assert "expired" in response["body"]
    assert approvals.item(approval_id)["status"] == "PENDING"


def test_unknown_approval_is_404(approvals):
    from approval_links import LinkClaim, sign

    d = sign(LinkClaim("no-such-approval", "approve", int(time.time()) + 600), SIGNING_SECRET.encode())

    assert approvals.get(d)["statusCode"] == 404


# --- the release stopped waiting ---------------------------------------------------------------------------


def test_post_after_task_timed_out_is_410_and_marks_expired(approvals, waiting):
    approval_id = approvals.ask(waiting)["approval_id"]
    approve = approvals.links()["approve"]

    with Stubber(approvals.response.sfn) as sfn:
        sfn.add_client_error("send_task_success", service_error_code="TaskTimedOut", http_status_code=400)
        response = approvals.post(approve, {"approver": "Ada"})

    assert response["statusCode"] == 410
    assert "no longer waits for a decision" in response["body"]
    assert approvals.item(approval_id)["status"] == "EXPIRED"
    assert approvals.get(approve)["statusCode"] == 410


def test_post_after_the_wait_timed_out_is_410(approvals):
    release = start_waiting_release(timeout_seconds=1)
    approval_id = approvals.ask(release)["approval_id"]
    links = approvals.links()
    assert finished_execution(release.execution_arn)["error"] == "States.Timeout"

    response = approvals.post(links["approve"], {"approver": "Ada"})

    assert response["statusCode"] == 410
    assert approvals.item(approval_id)["status"] == "EXPIRED"


def test_decision_step_functions_did_not_receive_can_be_sent_again(approvals, waiting):
    approval_id = approvals.ask(waiting)["approval_id"]
    approve = approvals.links()["approve"]

    with Stubber(approvals.response.sfn) as sfn:
        sfn.add_client_error(
            "send_task_success", service_error_code="ThrottlingException", http_status_code=400
        )
        response = approvals.post(approve, {"approver": "Ada"})

    assert response["statusCode"] == 503
    item = approvals.item(approval_id)
    assert item["status"] == "PENDING"
    assert "approver" not in item
    assert approvals.post(approve, {"approver": "Ada"})["statusCode"] == 200
    assert finished_execution(waiting.execution_arn)["status"] == "SUCCEEDED"


# --- secrets stay out of the logs ----------------------------------------------------------------------------


def test_logs_never_hold_the_token_the_key_or_a_link(approvals, waiting, monkeypatch, capsys, caplog):
    caplog.set_level("DEBUG", logger="mlops-approval-logs")
    caplog.set_level("INFO")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "mlops-approval-logs")
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "DEBUG")
    request = load_function("approval/request.py")
    response = load_function("approval/response.py")
    context = approvals.context

    request.handler(approval_event(waiting.task_token, waiting.execution_arn), context)
    links = approvals.links()
    for event in (
        rest_event("GET", "/approval", query={"d": links["approve"]}),
        rest_event("GET", "/approval", query={"d": with_payload(links["approve"], a="reject")}),
        rest_event("GET", "/approval", query={"d": links["approve"] + "x"}),
        rest_event(
            "POST",
            "/approval",
            query={"d": links["approve"]},
            body=urlencode({"approver": "Ada"}),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ),
        rest_event("POST", "/approval", query={"d": links["reject"]}, body="approver=Ada"),
    ):
        response.handler(event, context)

    captured = capsys.readouterr()
    ours = [r.getMessage() + json.dumps(r.__dict__, default=str) for r in caplog.records]
    logs = captured.out + captured.err + "\n".join(ours)
    assert '"approval requested"' in captured.out and '"decision recorded"' in captured.out
    secrets = [waiting.task_token, SIGNING_SECRET, links["approve"], links["reject"]]
    secrets += [d.split(".")[1] for d in links.values()]
    for secret in secrets:
        assert secret not in logs
    assert "approval?d=" not in logs


# --- the link format --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def links():
    return load_function("approval/approval_links.py")


def test_a_signed_link_verifies_to_its_claim(links):
    claim = links.LinkClaim("abc", "reject", 2_000_000_000)

    d = links.sign(claim, SIGNING_SECRET.encode())

    assert links.verify(d, SIGNING_SECRET.encode(), now=1_999_999_999) == claim
    assert re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", d)
    with pytest.raises(links.ExpiredLinkError):
        links.verify(d, SIGNING_SECRET.encode(), now=2_000_000_000)


def test_any_one_character_change_to_a_link_is_rejected(links):
    key = SIGNING_SECRET.encode()
    d = links.sign(links.LinkClaim("abc", "approve", 2_000_000_000), key)

    @settings(max_examples=300, deadline=None)
    @given(position=st.integers(0, len(d) - 1), character=st.characters(codec="ascii"))
    def check(position, character):
        assume(character != d[position])
        with pytest.raises(links.InvalidLinkError):
            links.verify(d[:position] + character + d[position + 1 :], key, now=1_700_000_000)

    check()
