"""Asks a person to approve a release: stores the task token, mails signed approve/reject links.

Invoked by the RequestApproval state (`lambda:invoke.waitForTaskToken`); the execution waits until the
response function reports the decision or the state's timeout fires.
"""

from __future__ import annotations

import functools
import os
import secrets
import time
from datetime import UTC, datetime
from typing import Any

import approval_store
import boto3
from approval_links import LinkClaim, link_url, load_signing_key, sign
from approval_mail import build_approval_mail
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

APPROVAL_TABLE = os.environ["APPROVAL_TABLE"]
SIGNING_SECRET_ARN = os.environ["SIGNING_SECRET_ARN"]
APPROVER_EMAIL = os.environ["APPROVER_EMAIL"]
SENDER_EMAIL = os.environ["SENDER_EMAIL"]
LINK_TTL_SECONDS = int(os.environ.get("LINK_TTL_SECONDS", "86400"))
# Approval records outlive their links a little, so a late click reads "expired", not "unknown".
RECORD_GRACE_SECONDS = 7 * 24 * 3600

logger = Logger()
tracer = Tracer()
table = boto3.resource("dynamodb").Table(APPROVAL_TABLE)
secrets_client = boto3.client("secretsmanager")
ses = boto3.client("sesv2")


@functools.cache
def signing_key() -> bytes:
    return load_signing_key(secrets_client, SIGNING_SECRET_ARN)


def iso_utc(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def link_lifetime(timeout_seconds: Any) -> int:
    """Links die no later than the wait they answer: a link that outlives it could only say "too late"."""
    if (
        isinstance(timeout_seconds, int | float)
        and not isinstance(timeout_seconds, bool)
        and timeout_seconds > 0
    ):
        return int(min(LINK_TTL_SECONDS, timeout_seconds))
    return LINK_TTL_SECONDS


def evidence_from(event: dict[str, Any]) -> dict[str, Any]:
    return {
        "release": event.get("release") or {},
        "names": event.get("names") or {},
        "training": event.get("training") or {},
        "evaluation": event.get("evaluation") or {},
        "model_package_arn": event.get("model_package_arn"),
    }


@tracer.capture_method(capture_response=False)
def request_approval(event: dict[str, Any], now: float) -> dict[str, str]:
    task_token = event["task_token"]
    api_url = event["api_url"]
    approval_id = secrets.token_urlsafe(16)
    expiry = int(now) + link_lifetime(event.get("timeout_seconds"))
    expires_at = iso_utc(expiry)
    evidence = evidence_from(event)

    approval_store.put_pending(
        table,
        approval_id=approval_id,
        task_token=task_token,
        execution_arn=event.get("execution_arn", ""),
        created_at=iso_utc(now),
        expires_at=expires_at,
        expires_at_ttl=expiry + RECORD_GRACE_SECONDS,
        evidence=evidence,
    )
    key = signing_key()
    approve_url, reject_url = (
        link_url(api_url, sign(LinkClaim(approval_id, action, expiry), key))
        for action in ("approve", "reject")
    )
    message = build_approval_mail(
        sender=SENDER_EMAIL,
        recipient=APPROVER_EMAIL,
        evidence=evidence,
        approve_url=approve_url,
        reject_url=reject_url,
        expires_at=expires_at,
    )
    sent = ses.send_email(
        FromEmailAddress=SENDER_EMAIL,
        Destination={"ToAddresses": [APPROVER_EMAIL]},
        Content={"Raw": {"Data": message.as_bytes()}},
    )
    logger.info(
        "approval requested",
        extra={
            "approval_id": approval_id,
            "execution_arn": event.get("execution_arn"),
            "commit": evidence["release"].get("commit"),
            "expires_at": expires_at,
            "mail_message_id": sent.get("MessageId"),
        },
    )
    return {"approval_id": approval_id, "expires_at": expires_at}


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    return request_approval(event, now=time.time())
