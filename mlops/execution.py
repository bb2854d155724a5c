"""Following one Step Functions execution: a line per state entered and left, then what it ended with."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path
from typing import TextIO

from .diagram import mermaid
from .local.stack import LocalStack

TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}
REASON_MAX_CHARS = 300


def readable_reason(cause: str | None) -> str:
    """The line a person reads first: SageMaker's FailureReason, a function's errorMessage, else the cause
    itself, on one line and cut to a few hundred characters (the full cause stays in the record)."""
    text = cause or ""
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        for key in ("FailureReason", "errorMessage", "message", "Message", "Cause"):
            if isinstance(parsed.get(key), str) and parsed[key].strip():
                text = parsed[key]
                break
    line = " ".join(text.split())
    return line if len(line) <= REASON_MAX_CHARS else line[: REASON_MAX_CHARS - 1] + "…"


class Progress:
    """Prints one line per state entered and left, with its duration, while an execution runs."""

    def __init__(self, sfn, execution_arn: str, out: TextIO):
        self.sfn, self.execution_arn, self.out = sfn, execution_arn, out
        self.states: list[str] = []
        self.durations: dict[str, float] = {}
        self.task_errors: list[dict[str, str]] = []  # every failed attempt, retried or not
        self._seen = 0
        self._entered: dict[str, float] = {}

    def poll(self) -> None:
        events = self.sfn.get_execution_history(executionArn=self.execution_arn, maxResults=1000)["events"]
        for event in events[self._seen :]:
            kind, stamp = event["type"], event["timestamp"].timestamp()
            if kind.endswith("StateEntered"):
                name = event["stateEnteredEventDetails"]["name"]
                self.states.append(name)
                self._entered[name] = stamp
                self.out.write(f"  → {name}\n")
            elif kind.endswith("StateExited"):
                name = event["stateExitedEventDetails"]["name"]
                took = stamp - self._entered.get(name, stamp)
                self.durations[name] = round(self.durations.get(name, 0.0) + took, 3)
                self.out.write(f"  ✓ {name} ({took:.2f} s)\n")
            elif kind == "TaskFailed":
                error = event["taskFailedEventDetails"].get("error", "")
                state = self.states[-1] if self.states else ""
                self.task_errors.append({"state": state, "error": error})
                self.out.write(f"  ✗ {state}: {error}\n")
            self.out.flush()
        self._seen = len(events)


def failure_details(stack: LocalStack, execution_arn: str, states: list[str]) -> dict:
    """The state that failed, and the error and cause the Fail state reported."""
    description = stack.client("stepfunctions").describe_execution(executionArn=execution_arn)
    definition = json.loads(
        stack.client("stepfunctions").describe_state_machine(stateMachineArn=stack.state_machine_arn)[
            "definition"
        ]
    )
    recorders = {
        name
        for name, state in definition["States"].items()
        if state.get("Type") == "Pass" and state.get("ResultPath") == "$.failure"
    }
    failed_state = None
    for previous, current in itertools.pairwise(states):
        if current in recorders:
            failed_state = previous
            break
    return {
        "failed_state": failed_state,
        "error": description.get("error"),
        "cause": description.get("cause"),
        "reason": readable_reason(description.get("cause")),
    }


def follow_execution(stack: LocalStack, execution_arn: str, timeout: float, out: TextIO) -> dict:
    """Prints the execution's progress until it ends; returns what the summary reports of it."""
    sfn = stack.client("stepfunctions")
    progress = Progress(sfn, execution_arn, out)
    started = time.monotonic()
    status = "RUNNING"
    while time.monotonic() - started < timeout:
        progress.poll()
        status = sfn.describe_execution(executionArn=execution_arn)["status"]
        if status in TERMINAL:
            break
        time.sleep(0.1)  # each poll has the local AWS serialise the whole history
    progress.poll()
    timed_out = status not in TERMINAL
    if timed_out:
        current = progress.states[-1] if progress.states else None
        gave_up = {
            "failed_state": current,
            "error": "RehearsalTimedOut",
            "cause": f"still running {current} after {timeout:g} s (--timeout)",
        }
        # Stopped as a person would stop it, so it does not run on while the local AWS shuts down.
        sfn.stop_execution(executionArn=execution_arn, error=gave_up["error"], cause=gave_up["cause"])
        status = "ABORTED"
    description = sfn.describe_execution(executionArn=execution_arn)
    result = {
        "names": json.loads(description["input"])["names"],
        "status": status,
        "execution_arn": execution_arn,
        "execution_name": description["name"],
        "states": progress.states,
        "durations": progress.durations,
        "task_errors": progress.task_errors,
        "seconds": round(time.monotonic() - started, 3),
    }
    if status == "SUCCEEDED":
        output = json.loads(description["output"])
        result.update(
            {
                "endpoint_action": output["deploy"]["action"],
                "rollback_config": output["previous"]["config"],
                "evaluation": output["evaluation"],
                "approval": output.get("approval"),
            }
        )
    elif timed_out:
        result.update(gave_up)
    else:
        result.update(failure_details(stack, execution_arn, progress.states))
        record = stack.work_dir / "logs" / f"{description['name']}-failure.json"
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(
            json.dumps({k: result[k] for k in ("failed_state", "error", "cause")}, indent=2) + "\n"
        )
        result["failure_record"] = str(record)
    result["diagram"] = str(_draw_path(stack, description["name"], progress))
    return result


def _draw_path(stack: LocalStack, execution_name: str, progress: Progress) -> Path:
    """The state machine with this execution's path highlighted, as a mermaid file in the work dir."""
    definition = json.loads(
        stack.client("stepfunctions").describe_state_machine(stateMachineArn=stack.state_machine_arn)[
            "definition"
        ]
    )
    path = stack.work_dir / f"{execution_name}.mmd"
    taken = {name: progress.durations.get(name, 0.0) for name in progress.states}
    path.write_text(mermaid(definition, taken=taken) + "\n")
    return path
