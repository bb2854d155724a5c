"""The text the model registry records when a release is rejected: one line, within SageMaker's limit.

UpdateModelPackage refuses an ApprovalDescription above 1,024 characters or with a line break (its pattern
is `.*`), and a refused update leaves the version PendingManualApproval. A longer reason is cut visibly;
the whole reason stays in the execution's output and in the failure mail.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

DESCRIPTION_MAX_CHARS = 1024
TRUNCATED = "… (truncated; full reason in the execution output)"

logger = Logger()
tracer = Tracer()


def approval_description(error: str, cause: str) -> tuple[str, bool]:
    """``"<error>: <cause>"`` on one line; cut to the limit with a visible note when it is longer."""
    text = " ".join(f"{error}: {cause}".split())
    if len(text) <= DESCRIPTION_MAX_CHARS:
        return text, False
    return text[: DESCRIPTION_MAX_CHARS - len(TRUNCATED)] + TRUNCATED, True


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    failure = event["failure"]
    description, truncated = approval_description(str(failure.get("Error")), str(failure.get("Cause")))
    logger.info("rejection described", extra={"stage": failure.get("stage"), "truncated": truncated})
    return {"description": description, "truncated": truncated}
