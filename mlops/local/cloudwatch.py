"""What SageMaker sends to CloudWatch for a job or an endpoint, and what it reads from it, with the execution role.

- A job's and an endpoint container's output goes to CloudWatch Logs (`/aws/sagemaker/TrainingJobs`,
  `/aws/sagemaker/TransformJobs`, `/aws/sagemaker/Endpoints/<name>`), as `aws logs tail` reads it on AWS.
- A training job's MetricDefinitions are matched against its output; the last value of each becomes a metric
  in the `/aws/sagemaker/TrainingJobs` namespace and an entry of DescribeTrainingJob's FinalMetricDataList.
- During a blue/green update's baking, the auto-rollback alarms are read (DescribeAlarms).

Each call is made by the calling thread, which acts as the execution role (mlops.local.principals), so the
role's policies decide. A refused call does not stop the job (its logs or metrics are missing, as on AWS);
the local AWS records the refusal, and the rehearsal's `iam.denied` shows it.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

log = logging.getLogger("mlops.local.cloudwatch")

TRAINING_NAMESPACE = "/aws/sagemaker/TrainingJobs"
_MAX_EVENTS = 10_000  # PutLogEvents takes at most 10,000 events (and 1 MB) per call
_MAX_EVENT_BYTES = 256 * 1024 - 26


class CloudWatch:
    def __init__(self, client: Callable[[str], Any]) -> None:
        """``client(service)``: a client of the local AWS that signs as the calling thread's principal."""
        self._client = client

    def ship_logs(self, group: str, stream: str, log_path: Path) -> None:
        """The program's output so far, as one log stream (the group is created if it is new)."""
        if not log_path.exists():
            return
        lines = [line for line in log_path.read_text(errors="replace").splitlines() if line.strip()]
        logs = self._client("logs")
        try:
            try:
                logs.create_log_group(logGroupName=group)
            except ClientError as error:
                if error.response["Error"]["Code"] != "ResourceAlreadyExistsException":
                    raise
            logs.create_log_stream(logGroupName=group, logStreamName=stream)
            now = int(time.time() * 1000)
            events = [{"timestamp": now, "message": line[:_MAX_EVENT_BYTES]} for line in lines[-_MAX_EVENTS:]]
            if events:
                logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)
        except (ClientError, BotoCoreError) as error:  # e.g. refused, or the local AWS already stopped
            log.warning("logs of %s/%s not delivered: %s", group, stream, _said(error))

    def publish_training_metrics(self, job_name: str, values: Mapping[str, float]) -> None:
        if not values:
            return
        try:
            self._client("cloudwatch").put_metric_data(
                Namespace=TRAINING_NAMESPACE,
                MetricData=[
                    {
                        "MetricName": name,
                        "Value": value,
                        "Dimensions": [{"Name": "Host", "Value": f"{job_name}/algo-1"}],
                    }
                    for name, value in values.items()
                ],
            )
        except (ClientError, BotoCoreError) as error:
            log.warning("metrics of %s not published: %s", job_name, _said(error))

    def alarms_firing(self, names: Iterable[str]) -> list[str]:
        """Which of the alarms are in ALARM now. An alarm that cannot be read counts as firing: SageMaker
        does not move traffic on an alarm it cannot watch."""
        names = list(names)
        if not names:
            return []
        try:
            found = self._client("cloudwatch").describe_alarms(AlarmNames=names)["MetricAlarms"]
        except (ClientError, BotoCoreError) as error:
            return [f"{name} (unreadable: {_said(error)})" for name in names]
        states = {alarm["AlarmName"]: alarm["StateValue"] for alarm in found}
        return [name for name in names if states.get(name, "ALARM") == "ALARM"]


def _said(error: Exception) -> str:
    return error.response["Error"]["Message"] if isinstance(error, ClientError) else str(error)


def metric_values(definitions: Iterable[Mapping[str, Any]] | None, output: str) -> dict[str, float]:
    """The last value each MetricDefinition's regex captures in the program's output (its first group)."""
    values: dict[str, float] = {}
    for definition in definitions or []:
        try:
            matches = re.findall(definition["Regex"], output)
        except re.error:
            continue
        for match in reversed(matches):
            text = match[0] if isinstance(match, tuple) else match
            try:
                values[definition["Name"]] = float(text)
                break
            except ValueError:
                continue
    return values


def rollback_alarms(deployment_config: Mapping[str, Any] | None) -> list[str]:
    rollback = (deployment_config or {}).get("AutoRollbackConfiguration") or {}
    return [alarm["AlarmName"] for alarm in rollback.get("Alarms", []) if alarm.get("AlarmName")]
