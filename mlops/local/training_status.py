"""What DescribeTrainingJob reports of a local job as AWS reports it: SecondaryStatusTransitions, training and
billable seconds; and the StoppingCondition rules CreateTrainingJob enforces for managed spot training."""

from __future__ import annotations

import math
from typing import Any

from moto.core.utils import utcnow
from moto.sagemaker.utils import ValidationError

# SageMaker's own messages where they are known; the spot restart's are this runtime's words.
MESSAGES = {
    "Starting": "Preparing the instances for training",
    "Restarting": "Launching a new spot instance; the job resumes from its checkpoints",
    "Downloading": "Downloading input data",
    "Training": "Training image download completed. Training in progress.",
    "Interrupted": "The spot instance was interrupted; the checkpoints in S3 are kept for the restart",
    "Uploading": "Uploading generated training model",
    "Completed": "Training job completed",
    "Failed": "Training job failed",
    "Stopped": "Training job stopped",
    "MaxRuntimeExceeded": "Training job stopped: it ran longer than MaxRuntimeInSeconds",
    "MaxWaitTimeExceeded": "Training job stopped: it took longer than MaxWaitTimeInSeconds",
}
ENDED = {"Completed", "Failed", "Stopped", "MaxRuntimeExceeded", "MaxWaitTimeExceeded"}
# What a spot instance costs next to an on-demand one, for BillableTimeInSeconds. A typical discount (70 %):
# AWS bills the spot price the job actually ran at, which no local run can know.
SPOT_PRICE_FRACTION = 0.3


def check_stopping_condition(stopping: dict[str, Any] | None, spot: bool) -> None:
    """The ValidationException CreateTrainingJob answers for a StoppingCondition spot training cannot use."""
    stopping = stopping or {}
    wait = stopping.get("MaxWaitTimeInSeconds")
    runtime = stopping.get("MaxRuntimeInSeconds", 86400)
    if wait is not None and not spot:
        raise ValidationError(
            message="Invalid MaxWaitTimeInSeconds. It is only supported when EnableManagedSpotTraining is "
            "set to true"
        )
    if spot and (wait is None or wait < runtime):
        raise ValidationError(
            message="Invalid MaxWaitTimeInSeconds. It must be present and be greater than or equal to "
            "MaxRuntimeInSeconds"
        )


def start_transitions(job) -> None:
    job.secondary_status_transitions = []
    transition(job, "Starting")


def transition(job, status: str, message: str | None = None) -> None:
    """SecondaryStatus moves on: the current entry ends now and the new one starts (and ends, if final)."""
    now = utcnow()
    transitions = job.secondary_status_transitions
    if transitions and "EndTime" not in transitions[-1]:
        transitions[-1]["EndTime"] = now
    shown = "Starting" if status == "Restarting" else status
    entry = {"Status": shown, "StartTime": now, "StatusMessage": (message or MESSAGES[status])[:1024]}
    if shown in ENDED:
        entry["EndTime"] = now
    transitions.append(entry)
    job.secondary_status = shown
    job.last_modified_time = now


def interruptions(job) -> int:
    return sum(1 for t in job.secondary_status_transitions if t["Status"] == "Interrupted")


def record_times(job, seconds: float) -> None:
    """TrainingTimeInSeconds (the instances' time, interrupted attempts included) and BillableTimeInSeconds
    (what is charged: with spot, the discounted share of it)."""
    training = max(1, math.ceil(seconds))
    job.training_time_in_seconds = training
    spot = bool(getattr(job, "enable_managed_spot_training", False))
    job.billable_time_in_seconds = int(training * SPOT_PRICE_FRACTION) if spot else training
