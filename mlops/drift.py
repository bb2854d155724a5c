"""``mlops drift``: run the stage's drift check now; and the rehearsal's traffic, capture and drift step.

The check itself is the stack's drift function (functions/drift): on demand this command invokes it, as the
schedule does daily, so both read the same captures with the same role and write the same report.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from .release import ReleaseError

if TYPE_CHECKING:
    from .local.stack import LocalStack

DRIFT_OUTPUT = "DriftFunctionName"


def drift_function_name(cloudformation, project: str, stage: str) -> str:
    from .aws_cli import stack_outputs

    name = f"{project}-{stage}"
    function = stack_outputs(cloudformation, name).get(DRIFT_OUTPUT)
    if not function:
        raise ReleaseError(
            f"stack {name} has no {DRIFT_OUTPUT} output: deploy the current infra/template.yaml"
        )
    return function


def invoke_drift(lambda_client, function_name: str, hours: int) -> dict[str, Any]:
    """The drift function's report for the last ``hours``; its error, named, if it failed."""
    answer = lambda_client.invoke(FunctionName=function_name, Payload=json.dumps({"hours": hours}).encode())
    payload = json.loads(answer["Payload"].read() or b"null")
    if answer.get("FunctionError"):
        detail = (
            payload
            if not isinstance(payload, dict)
            else f"{payload.get('errorType')}: {payload.get('errorMessage')}"
        )
        raise ReleaseError(f"the drift check {function_name} failed: {detail}")
    return payload


def drift_record(report: dict[str, Any]) -> dict[str, Any]:
    """What a summary says of a drift report: where it is, the scores, what drifted."""
    scores = report["scores"]
    prediction = scores.get("prediction") or {}
    return {
        "report_uris": {"json": report["json_uri"], "html": report["html_uri"]},
        "rows": scores["rows"],
        "threshold": scores["threshold"],
        "scores": {f["name"]: f["psi"] for f in scores["features"]},
        "prediction_psi": prediction.get("psi"),
        "prediction_drifted": bool(prediction.get("drifted")),
        "drifted": scores["drifted"],
        "mailed": report.get("mailed", False),
    }


# -- the rehearsal's step ----------------------------------------------------------------------------------
def scheduled_event(rule_arn: str, now: datetime | None = None) -> dict[str, Any]:
    """What an EventBridge schedule rule sends its target."""
    when = now or datetime.now(UTC)
    return {
        "version": "0",
        "id": f"local-{when:%Y%m%d%H%M%S}",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": rule_arn.split(":")[4],
        "time": f"{when:%Y-%m-%dT%H:%M:%SZ}",
        "region": rule_arn.split(":")[3],
        "resources": [rule_arn],
        "detail": {},
    }


def fire_schedule(stack: LocalStack, function_name: str) -> dict[str, Any]:
    """Runs the stack's schedule rule that targets the function now, as EventBridge would: only if the
    function's resource policy lets events.amazonaws.com invoke it for that rule."""
    events = stack.client("events")
    arn = stack.client("lambda").get_function_configuration(FunctionName=function_name)["FunctionArn"]
    for rule in stack.created.of_type("AWS::Events::Rule").values():
        targets = events.list_targets_by_rule(Rule=rule)["Targets"]
        if not any(target["Arn"] == arn for target in targets):
            continue
        rule_arn = events.describe_rule(Name=rule)["Arn"]
        refused = stack.authorizer.service_may_invoke(arn, "events.amazonaws.com", rule_arn)
        if refused:
            raise ReleaseError(f"the schedule {rule} cannot run {function_name}: {refused}")
        ok, report = stack.functions.invoke(arn, scheduled_event(rule_arn))
        if not ok:
            raise ReleaseError(
                f"the drift check failed: {report.get('errorType')}: {report.get('errorMessage')}"
            )
        return report
    raise ReleaseError(f"no schedule rule of stack {stack.stack_name} targets {function_name}")


def watch(stack: LocalStack, rows: int, shifts: list[tuple[str, float]], out: TextIO) -> dict[str, Any]:
    """After a release: traffic through the API, the endpoint's captures, then the scheduled drift check."""
    from . import traffic
    from .data import write_split
    from .summary import model_of

    example = model_of(stack)
    _, test = write_split(example, stack.work_dir / "traffic")
    sent_rows = traffic.traffic_rows(
        traffic.held_out_rows(test), rows, traffic.feature_names_of(example), shifts
    )
    api_key = stack.api_key_file.read_text() if stack.api_key_file else None
    shifted = ", ".join(f"{name}{delta:+g}" for name, delta in shifts) or "unshifted"
    out.write(f"Traffic: {rows} held-out rows ({shifted}) through {stack.api_url}\n")
    out.flush()
    sent = traffic.send(stack.api_url, sent_rows, api_key)
    stack.sagemaker.capture.flush()
    prefix = f"{stack.created.parameters.get('CapturePrefix', 'capture')}/{stack.endpoint_name}/"
    keys = [
        o["Key"]
        for o in stack.client("s3").list_objects_v2(Bucket=stack.bucket, Prefix=prefix).get("Contents", [])
    ]
    capture = {"objects": len(keys), "uris": [f"s3://{stack.bucket}/{key}" for key in keys]}
    out.write(f"Capture: {len(keys)} objects under s3://{stack.bucket}/{prefix}\n")
    function = stack.created.outputs.get(DRIFT_OUTPUT)
    if not function:
        raise ReleaseError(f"stack {stack.stack_name} has no {DRIFT_OUTPUT} output, which --traffic runs")
    report = fire_schedule(stack, function)
    drift = drift_record(report)
    drift["report_file"] = str(save_page(stack, report["html_uri"], stack.work_dir / "drift" / "report.html"))
    out.write(
        f"Drift: {drift['rows']} rows, PSI "
        + ", ".join(f"{name} {value}" for name, value in drift["scores"].items())
        + f"; drifted: {', '.join(drift['drifted']) or 'nothing'}\n  report: {drift['report_file']}\n"
    )
    out.flush()
    return {"traffic": sent, "capture": capture, "drift": drift}


def save_page(stack: LocalStack, uri: str, path: Path) -> Path:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(stack.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    return path
