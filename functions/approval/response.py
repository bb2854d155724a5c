"""Approval links: GET shows a confirmation page (mail scanners prefetch GETs), POST records the decision.

The link's `d` parameter is verified before anything else: forged or altered → 403, expired → 410.
A decision moves the DynamoDB item out of PENDING exactly once, then reports it to Step Functions.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import re
import time
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs

import approval_store
import boto3
from approval_links import ExpiredLinkError, InvalidLinkError, LinkClaim, load_signing_key, verify
from approval_pages import (
    APPROVER_MAX_CHARS,
    HTML,
    PAGE_HEADERS,
    PREDICTIONS_LINK_SECONDS,
    REASON_MAX_CHARS,
    confirmation_page,
    message_page,
)
from approval_store import Approval, NotPendingError
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.exceptions import (
    BadRequestError,
    ForbiddenError,
    NotFoundError,
    ServiceError,
)
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

APPROVAL_TABLE = os.environ["APPROVAL_TABLE"]
SIGNING_SECRET_ARN = os.environ["SIGNING_SECRET_ARN"]
# Step Functions answers these when the waiting task is gone: timed out, finished, or never existed.
GONE_TASK_ERRORS = {"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"}
MAX_FORM_BYTES = 8192
# Control characters (C0 but whitespace, DEL, C1) and the bidirectional overrides that make a name read
# differently than it is stored: none belongs in a name or a reason that goes into logs, mails and the registry.
FORBIDDEN_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")

logger = Logger()
tracer = Tracer()
app = APIGatewayRestResolver()
table = boto3.resource("dynamodb").Table(APPROVAL_TABLE)
secrets_client = boto3.client("secretsmanager")
sfn = boto3.client("stepfunctions")
# SigV4, which every region accepts for presigned GETs.
s3 = boto3.client("s3", config=Config(signature_version="s3v4"))


class ConflictError(ServiceError):
    def __init__(self, msg: str, title: str = "Already decided"):
        super().__init__(HTTPStatus.CONFLICT, msg)
        self.title = title


class GoneError(ServiceError):
    def __init__(self, msg: str):
        super().__init__(HTTPStatus.GONE, msg)


class CrossSiteError(ForbiddenError):
    def __init__(self) -> None:
        super().__init__("Decide from the approval page itself: this form was sent from another site.")
        self.title = "Not from the approval page"


class DecisionNotDeliveredError(ServiceError):
    def __init__(self, msg: str):
        super().__init__(HTTPStatus.SERVICE_UNAVAILABLE, msg)


NO_LONGER_WAITING = "This release no longer waits for a decision."
TITLES = {
    HTTPStatus.BAD_REQUEST: "Check the form",
    HTTPStatus.FORBIDDEN: "This link is not valid",
    HTTPStatus.NOT_FOUND: "Unknown approval",
    HTTPStatus.GONE: "Too late",
    HTTPStatus.SERVICE_UNAVAILABLE: "Try again",
}


@functools.cache
def signing_key() -> bytes:
    return load_signing_key(secrets_client, SIGNING_SECRET_ARN)


def iso_utc(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def wants_json() -> bool:
    accept = (app.current_event.headers.get("accept") or "").lower()
    return "application/json" in accept and "text/html" not in accept


def html_response(status: int, body: str) -> Response:
    return Response(status_code=status, content_type=HTML, body=body, headers=dict(PAGE_HEADERS))


@app.exception_handler(ServiceError)
def render_error(error: ServiceError) -> Response:
    if wants_json():
        return Response(
            status_code=error.status_code,
            content_type="application/json",
            body=json.dumps({"message": error.msg}),
            headers=dict(PAGE_HEADERS),
        )
    title = getattr(error, "title", None) or TITLES.get(error.status_code, "Approval")
    return html_response(error.status_code, message_page(title, str(error.msg)))


def verified_claim(data: str | None, now: float) -> LinkClaim:
    try:
        return verify(data, signing_key(), now)
    except InvalidLinkError as exc:
        logger.warning("approval link rejected", extra={"why": str(exc)})
        raise ForbiddenError(
            "This approval link is not valid. Use the link from the mail, unchanged."
        ) from exc
    except ExpiredLinkError as exc:
        logger.info("approval link expired", extra={"approval_id": exc.claim.approval_id})
        raise GoneError(f"This approval link has expired. {NO_LONGER_WAITING}") from exc


def pending_approval(claim: LinkClaim) -> Approval:
    approval = approval_store.get(table, claim.approval_id)
    if approval is None or approval.status != approval_store.PENDING:
        raise not_pending_error(approval)
    return approval


def not_pending_error(approval: Approval | None) -> ServiceError:
    if approval is None:
        return NotFoundError("No such approval request. It may have been cleaned up after it expired.")
    if approval.status == approval_store.EXPIRED:
        return GoneError(NO_LONGER_WAITING)
    word = approval.status.lower()
    by = f" by {approval.approver}" if approval.approver else ""
    at = f" at {approval.decided_at}" if approval.decided_at else ""
    return ConflictError(
        f"This release was already {word}{by}{at}. Nothing changed.", title=f"Already {word}"
    )


def form_fields(body: str | None, is_base64: bool = False) -> tuple[str, str]:
    """approver and reason from a urlencoded form, or BadRequestError naming the field."""
    if body is not None and len(body) > MAX_FORM_BYTES:
        raise BadRequestError("The form is too large.")
    try:
        fields = parse_qs(form_text(body, is_base64), keep_blank_values=True, max_num_fields=20)
    except ValueError as exc:
        raise BadRequestError("The form could not be read.") from exc
    approver, reason = (clean_field(name, (fields.get(name) or [""])[0]) for name in ("approver", "reason"))
    if not approver:
        raise BadRequestError("approver: enter your name or email.")
    if len(approver) > APPROVER_MAX_CHARS:
        raise BadRequestError(f"approver: at most {APPROVER_MAX_CHARS} characters.")
    if len(reason) > REASON_MAX_CHARS:
        raise BadRequestError(f"reason: at most {REASON_MAX_CHARS} characters.")
    return approver, reason


def clean_field(name: str, value: str) -> str:
    """One line with single spaces, or BadRequestError naming the field that holds a control character."""
    if FORBIDDEN_CHARACTERS.search(value):
        raise BadRequestError(f"{name}: remove the control characters; use letters, digits and punctuation.")
    return " ".join(value.split())  # tabs, line breaks and runs of spaces become one space


def refuse_cross_site() -> None:
    """Defence in depth: the signed link is what authorises a decision, but a browser that says the form
    came from another site (Sec-Fetch-Site, Origin) is not deciding from the approval page."""
    headers = app.current_event.headers
    if (headers.get("Sec-Fetch-Site") or "").lower() in ("cross-site", "same-site"):
        raise CrossSiteError()
    origin = headers.get("Origin")
    # No Origin: not a browser form (curl, scripts), the link alone decides. "null": the page's own
    # Referrer-Policy (no-referrer) makes browsers send that for its own form; Sec-Fetch-Site told above.
    if origin is None or origin == "null":
        return
    scheme = headers.get("X-Forwarded-Proto") or "http"
    if origin.rstrip("/").lower() != f"{scheme}://{headers.get('Host', '')}".lower():
        raise CrossSiteError()


def request_origin() -> dict[str, str]:
    context = app.current_event.request_context
    identity = context.identity
    origin = {
        "source_ip": identity.source_ip or "",
        "user_agent": (identity.user_agent or "")[:200],
        "request_id": context.request_id or "",
    }
    if identity.user_arn:
        origin["user_arn"] = identity.user_arn
    return origin


def form_text(body: str | None, is_base64: bool) -> str:
    if not body:
        return ""
    try:
        return base64.b64decode(body, validate=True).decode("utf-8") if is_base64 else body
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequestError("The form could not be read.") from exc


def predictions_url(evidence: dict[str, Any]) -> str | None:
    """A download link for the release's predictions, signed now: signed with this function's session
    credentials, it lives at most an hour (less if those expire first), so each page view makes its own."""
    uri = (evidence.get("evaluation") or {}).get("predictions_object")
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        return None
    bucket, _, key = uri[5:].partition("/")
    return s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=PREDICTIONS_LINK_SECONDS
    )


def show_confirmation(data: str | None, now: float) -> Response:
    claim = verified_claim(data, now)
    approval = pending_approval(claim)
    logger.info("confirmation page shown", extra={"approval_id": claim.approval_id, "action": claim.action})
    page = confirmation_page(
        approval.evidence, claim.action, iso_utc(claim.expires_at), predictions_url(approval.evidence)
    )
    return html_response(HTTPStatus.OK, page)


@tracer.capture_method(capture_response=False)
def decide(
    data: str | None, form: tuple[str | None, bool], origin: dict[str, str], now: float
) -> tuple[str, str]:
    """Records the decision and tells Step Functions; returns (status, approver).

    Checked in this order: the link (403/410), the approval's state (404/409/410), then the form (400).
    """
    claim = verified_claim(data, now)
    approval = pending_approval(claim)
    approver, reason = form_fields(*form)
    status = approval_store.STATUS_FOR_ACTION[claim.action]
    decided_at = iso_utc(now)
    try:
        approval_store.decide(
            table,
            claim.approval_id,
            status=status,
            approver=approver,
            reason=reason,
            decided_at=decided_at,
            decided_from=origin,
        )
    except NotPendingError as exc:
        raise not_pending_error(exc.current) from exc

    try:
        if status == approval_store.APPROVED:
            sfn.send_task_success(
                taskToken=approval.task_token,
                output=json.dumps(
                    {
                        "decision": "approved",
                        "approver": approver,
                        "reason": reason,
                        "decided_at": decided_at,
                        "approval_id": claim.approval_id,
                    }
                ),
            )
        else:
            cause = f"rejected by {approver}: {reason}" if reason else f"rejected by {approver}"
            sfn.send_task_failure(taskToken=approval.task_token, error="Rejected", cause=cause)
    except (ClientError, BotoCoreError) as exc:
        code = exc.response["Error"]["Code"] if isinstance(exc, ClientError) else type(exc).__name__
        if code in GONE_TASK_ERRORS:
            approval_store.mark_expired(table, claim.approval_id, from_status=status)
            logger.info(
                "decision arrived too late", extra={"approval_id": claim.approval_id, "sfn_error": code}
            )
            raise GoneError(NO_LONGER_WAITING) from exc
        approval_store.reopen(table, claim.approval_id, from_status=status)
        logger.error("decision not delivered", extra={"approval_id": claim.approval_id, "sfn_error": code})
        raise DecisionNotDeliveredError(
            "The decision could not be delivered to the pipeline and was not recorded. Submit it again."
        ) from exc

    logger.info(
        "decision recorded",
        extra={"approval_id": claim.approval_id, "decision": status, "execution_arn": approval.execution_arn},
    )
    return status, approver


@app.get("/approval")
def get_approval() -> Response:
    return show_confirmation(app.current_event.get_query_string_value("d"), now=time.time())


@app.post("/approval")
def post_approval() -> Response:
    event = app.current_event
    refuse_cross_site()
    status, approver = decide(
        event.get_query_string_value("d"),
        (event.body, event.is_base64_encoded),
        request_origin(),
        now=time.time(),
    )
    if wants_json():
        return Response(
            status_code=HTTPStatus.OK,
            content_type="application/json",
            body=json.dumps({"decision": status.lower(), "approver": approver}),
            headers=dict(PAGE_HEADERS),
        )
    if status == approval_store.APPROVED:
        page = message_page(
            "Approved — the release continues", f"Approved by {approver}. You can close this page."
        )
    else:
        page = message_page(
            "Rejected — the release stops", f"Rejected by {approver}. You can close this page."
        )
    return html_response(HTTPStatus.OK, page)


@logger.inject_lambda_context(
    correlation_id_path=correlation_paths.API_GATEWAY_REST, log_event=False, clear_state=True
)
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
