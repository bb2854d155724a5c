"""The one place that decides AWS resource names.

SageMaker names: at most 63 characters of ``^[a-zA-Z0-9](-*[a-zA-Z0-9])*$``. Every name a release creates
carries the commit and the execution it belongs to, so rerunning a commit never collides with an earlier run.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

SAGEMAKER_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$")
SAGEMAKER_NAME_MAX = 63
EXECUTION_NAME_MAX = 80
COMMIT = re.compile(r"^[0-9a-f]{7,40}$")
PROJECT = re.compile(r"^[a-z0-9](-*[a-z0-9]){0,19}$")
STAGES = ("staging", "prod")  # the template's Stage AllowedValues


# Training writes each job's model under s3://<artifact bucket>/training/<job>/output/model.tar.gz (the
# definition's S3OutputPath, then SageMaker's own layout).
TRAINING_OUTPUT_PREFIX = "training"
# Each training job's checkpoints live under s3://<artifact bucket>/checkpoints/<job>/ (its CheckpointConfig): a
# spot interruption restarts the job from what it synced there, and no other release's job reads them.
CHECKPOINT_PREFIX = "checkpoints"


class InvalidNameError(ValueError):
    """A name that AWS would refuse."""


def check_sagemaker_name(name: str) -> str:
    if len(name) > SAGEMAKER_NAME_MAX or not SAGEMAKER_NAME.match(name):
        raise InvalidNameError(
            f"{name!r} is not a valid SageMaker name (63 characters of letters, digits and '-')"
        )
    return name


def check_commit(commit: str) -> str:
    if not COMMIT.match(commit):
        raise InvalidNameError(f"commit {commit!r} must be 7-40 lowercase hex characters")
    return commit


def endpoint_name_for(project: str, stage: str) -> str:
    """The one stable endpoint of a stage (the SAM template builds the same ``${ProjectName}-${Stage}``)."""
    return check_sagemaker_name(f"{project}-{stage}")


def execution_name_for(commit: str, attempt: int, run_id: str = "") -> str:
    """Step Functions refuses a second execution of the same name, so a rerun needs a new attempt or run id."""
    check_commit(commit)
    if attempt < 1:
        raise InvalidNameError(f"attempt must be 1 or more, got {attempt}")
    parts = [commit[:12], str(run_id), str(attempt)] if run_id else [commit[:12], str(attempt)]
    name = "-".join(parts)
    if len(name) > EXECUTION_NAME_MAX or not re.match(r"^[0-9A-Za-z_-]+$", name):
        raise InvalidNameError(f"execution name {name!r} is not valid")
    return name


@dataclass(frozen=True)
class ReleaseNames:
    """Names of what one release creates; all derive from the execution name."""

    training_job: str
    evaluation_model: str  # image + training artifact, for the batch transform before anyone approves
    model: str  # from the approved model package, for the endpoint
    transform_job: str
    endpoint_config: str
    checkpoints: str  # the training job's checkpoint key prefix in the artifact bucket (not a SageMaker name)

    def as_dict(self) -> dict[str, str]:
        return asdict(self)

    def sagemaker_names(self) -> dict[str, str]:
        return {kind: name for kind, name in self.as_dict().items() if kind != "checkpoints"}


def stage_prefix(project: str, stage: str) -> str:
    """What every name a stage's releases create starts with; the cleanup touches nothing else."""
    if not PROJECT.match(project):
        raise InvalidNameError(f"project name {project!r} must be 1-20 lowercase letters, digits or '-'")
    if stage not in STAGES:
        raise InvalidNameError(f"stage {stage!r} must be one of {', '.join(STAGES)}")
    return f"{project}-{stage}-"


def release_names_for(project: str, stage: str, execution_name: str) -> ReleaseNames:
    prefix = stage_prefix(project, stage)
    base = re.sub(r"[^A-Za-z0-9]+", "-", execution_name).strip("-")
    # Longest suffix is "-eval-model" (11): keep the whole within 63.
    base = base[: SAGEMAKER_NAME_MAX - len(prefix) - len("-eval-model")].strip("-")
    training_job = check_sagemaker_name(f"{prefix}{base}-train")
    return ReleaseNames(
        training_job=training_job,
        evaluation_model=check_sagemaker_name(f"{prefix}{base}-eval-model"),
        model=check_sagemaker_name(f"{prefix}{base}-model"),
        transform_job=check_sagemaker_name(f"{prefix}{base}-eval"),
        endpoint_config=check_sagemaker_name(f"{prefix}{base}-config"),
        checkpoints=checkpoint_key_prefix_for(training_job),
    )


def checkpoint_key_prefix_for(training_job: str) -> str:
    """Where a training job syncs /opt/ml/checkpoints in its stack's artifact bucket (ends with "/")."""
    return f"{CHECKPOINT_PREFIX}/{check_sagemaker_name(training_job)}/"


def model_artifact_key_for(training_job: str) -> str:
    """Where a training job's model lands in its stack's artifact bucket; a prod stack reads staging's."""
    return f"{TRAINING_OUTPUT_PREFIX}/{check_sagemaker_name(training_job)}/output/model.tar.gz"
