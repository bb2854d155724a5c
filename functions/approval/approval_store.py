"""Approval records in DynamoDB: one item per request, moved out of PENDING exactly once."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

PENDING = "PENDING"
APPROVED = "APPROVED"
REJECTED = "REJECTED"
EXPIRED = "EXPIRED"
STATUS_FOR_ACTION = {"approve": APPROVED, "reject": REJECTED}


class NotPendingError(Exception):
    """The approval left PENDING before this change: someone already decided, or the wait ended."""

    def __init__(self, approval_id: str, current: Approval | None):
        super().__init__(f"approval {approval_id} is {current.status if current else 'gone'}")
        self.approval_id = approval_id
        self.current = current


@dataclass(frozen=True)
class Approval:
    approval_id: str
    status: str
    task_token: str
    execution_arn: str
    expires_at: str
    evidence: dict[str, Any]
    approver: str | None = None
    reason: str | None = None
    decided_at: str | None = None

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Approval:
        return cls(
            approval_id=item["approval_id"],
            status=item["status"],
            task_token=item["task_token"],
            execution_arn=item.get("execution_arn", ""),
            expires_at=item.get("expires_at", ""),
            # Stored as JSON text: DynamoDB maps reject floats and empty strings the evidence may hold.
            evidence=json.loads(item.get("evidence") or "{}"),
            approver=item.get("approver"),
            reason=item.get("reason"),
            decided_at=item.get("decided_at"),
        )


def put_pending(
    table: Any,
    *,
    approval_id: str,
    task_token: str,
    execution_arn: str,
    created_at: str,
    expires_at: str,
    expires_at_ttl: int,
    evidence: dict[str, Any],
) -> None:
    table.put_item(
        Item={
            "approval_id": approval_id,
            "status": PENDING,
            "task_token": task_token,
            "execution_arn": execution_arn,
            "created_at": created_at,
            "expires_at": expires_at,
            "expires_at_ttl": expires_at_ttl,
            "evidence": json.dumps(evidence, sort_keys=True, default=str),
        },
        ConditionExpression="attribute_not_exists(approval_id)",
    )


def get(table: Any, approval_id: str) -> Approval | None:
    item = table.get_item(Key={"approval_id": approval_id}, ConsistentRead=True).get("Item")
    return Approval.from_item(item) if item else None


def decide(
    table: Any,
    approval_id: str,
    *,
    status: str,
    approver: str,
    reason: str,
    decided_at: str,
    decided_from: dict[str, str],
) -> None:
    """PENDING -> APPROVED/REJECTED, or NotPendingError if another request got there first."""
    try:
        table.update_item(
            Key={"approval_id": approval_id},
            UpdateExpression=(
                "SET #status = :status, approver = :approver, reason = :reason, "
                "decided_at = :decided_at, decided_from = :decided_from"
            ),
            ConditionExpression="attribute_exists(approval_id) AND #status = :pending",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":status": status,
                ":approver": approver,
                ":reason": reason,
                ":decided_at": decided_at,
                ":decided_from": decided_from,
                ":pending": PENDING,
            },
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise
        raise NotPendingError(approval_id, get(table, approval_id)) from exc


def _move(table: Any, approval_id: str, *, from_status: str, to_status: str, remove: str = "") -> None:
    try:
        table.update_item(
            Key={"approval_id": approval_id},
            UpdateExpression="SET #status = :to" + (f" REMOVE {remove}" if remove else ""),
            ConditionExpression="#status = :from",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":to": to_status, ":from": from_status},
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise


def mark_expired(table: Any, approval_id: str, *, from_status: str) -> None:
    """The execution no longer waits: later clicks answer 410 without asking Step Functions."""
    _move(table, approval_id, from_status=from_status, to_status=EXPIRED)


def reopen(table: Any, approval_id: str, *, from_status: str) -> None:
    """Undo a decision Step Functions never received, so the approver can try again."""
    _move(
        table,
        approval_id,
        from_status=from_status,
        to_status=PENDING,
        remove="approver, reason, decided_at, decided_from",
    )
