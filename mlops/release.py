"""Starting a release: the one path the GitHub workflow, CodePipeline and the local rehearsal share."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from botocore.exceptions import ClientError

from .names import check_commit, execution_name_for, release_names_for


class ReleaseError(RuntimeError):
    """A release that cannot start; the message says what to do."""


@dataclass(frozen=True)
class Release:
    project: str
    commit: str
    image_uri: str
    data_uri: str  # s3://bucket/prefix holding train/ and test/
    attempt: int = 1
    run_id: str = ""
    hyperparameters: dict[str, str] = field(default_factory=dict)
    image_digest: str = "unknown"
    stage: str = "staging"  # sha256:... of the pushed image, recorded in the model registry

    @property
    def execution_name(self) -> str:
        return execution_name_for(self.commit, self.attempt, self.run_id)

    def execution_input(self) -> dict:
        check_commit(self.commit)
        if not self.data_uri.startswith("s3://"):
            raise ReleaseError(f"data URI {self.data_uri!r} must start with s3://")
        base = self.data_uri.rstrip("/")
        return {
            "promote": None,  # set only by a promotion (mlops.promotion)
            "release": {
                "commit": self.commit,
                "image_uri": self.image_uri,
                "image_digest": self.image_digest,
                "attempt": self.attempt,
                "run_id": self.run_id,
                "execution_name": self.execution_name,
            },
            "names": release_names_for(self.project, self.stage, self.execution_name).as_dict(),
            "data": {"train_uri": f"{base}/train/", "test_uri": f"{base}/test/"},
            "hyperparameters": {k: str(v) for k, v in self.hyperparameters.items()},
        }


def parse_hyperparameters(pairs: list[str]) -> dict[str, str]:
    """``["max_depth=3", ...]`` → dict; SageMaker passes every value as a string."""
    result: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ReleaseError(f"hyperparameter {pair!r} must look like name=value")
        result[key.strip()] = value.strip()
    return result


def image_tag_exists(ecr, repository: str, tag: str) -> bool:
    return pushed_image_digest(ecr, repository, tag) is not None


def pushed_image_digest(ecr, repository: str, tag: str) -> str | None:
    """The manifest digest (sha256:...) ECR holds for the tag, or None when the tag is absent."""
    try:
        details = ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])["imageDetails"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("ImageNotFoundException",):
            return None
        raise
    return details[0].get("imageDigest", "unknown") if details else None


def already_started(sfn, state_machine_arn: str, name: str) -> bool:
    execution_arn = state_machine_arn.replace(":stateMachine:", ":execution:", 1) + f":{name}"
    try:
        sfn.describe_execution(executionArn=execution_arn)
        return True
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ExecutionDoesNotExist":
            return False
        raise


def start_release(sfn, state_machine_arn: str, release: Release) -> str:
    # AWS refuses a reused name itself (ExecutionAlreadyExists); asking first gives the same answer everywhere.
    if already_started(sfn, state_machine_arn, release.execution_name):
        raise ReleaseError(rerun_advice(release.execution_name, release.attempt))
    try:
        response = sfn.start_execution(
            stateMachineArn=state_machine_arn,
            name=release.execution_name,
            input=json.dumps(release.execution_input()),
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ExecutionAlreadyExists":
            raise ReleaseError(
                f"an execution named {release.execution_name} already exists: rerun with a new attempt "
                f"(--attempt {release.attempt + 1}) to release commit {release.commit[:12]} again"
            ) from exc
        raise
    return response["executionArn"]


def rerun_advice(execution_name: str, attempt: int) -> str:
    return (
        f"an execution named {execution_name} already exists: rerun with a new attempt "
        f"(--attempt {attempt + 1})"
    )
