"""The rehearsal starts a release as GitHub does: by running ``.github/workflows/release.yml``'s job.

The repository variables come from the local stack, the event is a push of this commit to main (or a
workflow_dispatch when hyperparameters are given), and the steps' environment is this process's minus its
AWS credentials: a step reaches the local AWS only after configure-aws-credentials, as on GitHub.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from .actions import LocalImageActions, WebIdentityCredentials, local_actions
from .template import REPO_ROOT
from .workflow import Event, JobResult, JobRunner, environment_of, load_workflow

RELEASE_WORKFLOW = REPO_ROOT / ".github" / "workflows" / "release.yml"
PROMOTE_WORKFLOW = REPO_ROOT / ".github" / "workflows" / "promote.yml"
ROLLBACK_WORKFLOW = REPO_ROOT / ".github" / "workflows" / "rollback.yml"
# Every release of one rehearsal is a re-run (a new run_attempt) of one workflow run; a promotion and a rollback
# are runs of their own.
LOCAL_RUN_ID = "1"
PROMOTION_RUN_ID = "2"
ROLLBACK_RUN_ID = "3"
CREDENTIALS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",  # the older name of the session token, which botocore still reads first
    "AWS_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
)


def repository_name() -> str:
    """owner/name of the GitHub remote, else local/<folder>."""
    url = subprocess.run(
        ["git", "config", "--get", "remote.origin.url"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    match = re.search(r"github\.com[:/]([^/]+/[^/]+?)(?:\.git)?$", url)
    return match.group(1) if match else f"local/{REPO_ROOT.name}"


def repository_variables(stack) -> dict[str, str]:
    """What `mlops github-settings` would print for this stack (the variables release.yml's header lists)."""
    region = stack.state_machine_arn.split(":")[3]
    return {
        "AWS_REGION": region,
        "AWS_RELEASE_ROLE_ARN": stack.release_role_arn,
        "ECR_REPOSITORY": stack.ecr_repository,
        "STATE_MACHINE_ARN": stack.state_machine_arn,
        "DATA_URI": f"s3://{stack.bucket}/data",
        "PROJECT_NAME": stack.project,
    }


def runner_environment() -> dict[str, str]:
    """This process's environment as a fresh runner's: no AWS credentials and no mlops on PATH yet (the
    local AWS's address stays: it is this machine's network), and no instance metadata to wait for."""
    own_bin = str(Path(sys.executable).parent)
    # Nor what an outer runner gives (the rehearsal runs in ci.yml too): its GITHUB_OUTPUT is not this job's.
    outer = ("GIT_", "GITHUB_", "RUNNER_", "ACTIONS_")
    env = {k: v for k, v in os.environ.items() if k not in CREDENTIALS and not k.startswith(outer)}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", os.defpath).split(os.pathsep) if p != own_bin)
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    env.pop("VIRTUAL_ENV", None)
    return env


def run_release_workflow(
    stack,
    *,
    commit: str,
    attempt: int,
    hyperparameters: dict[str, str],
    config_digest,
    local_image_for=None,
    path: Path = RELEASE_WORKFLOW,
    out: TextIO | None = None,
) -> JobResult:
    if hyperparameters:
        pairs = " ".join(f"{k}={v}" for k, v in hyperparameters.items())
        event = Event("workflow_dispatch", inputs={"hyperparameters": pairs})
    else:
        event = Event("push")
    images = LocalImageActions(stack.endpoint_url, stack.ecr_repository, config_digest, local_image_for)
    return _run(stack, path, "release", event, commit, attempt, LOCAL_RUN_ID, _actions(stack, images), out)


def run_promote_workflow(
    stack, *, commit: str, package_arn: str, path: Path = PROMOTE_WORKFLOW, out: TextIO | None = None
) -> JobResult:
    """promote.yml dispatched by hand with the package, against ``stack`` (the prod stage's)."""
    event = Event("workflow_dispatch", inputs={"model_package_arn": package_arn})
    images = LocalImageActions(stack.endpoint_url, stack.ecr_repository, str, None)  # promote builds nothing
    return _run(stack, path, "promote", event, commit, 1, PROMOTION_RUN_ID, _actions(stack, images), out)


def run_rollback_workflow(
    stack, *, commit: str, to: str | None = None, path: Path = ROLLBACK_WORKFLOW, out: TextIO | None = None
) -> JobResult:
    """rollback.yml dispatched by hand for ``stack``'s stage (its rollback-<stage> job), optionally ``to`` a
    package."""
    event = Event("workflow_dispatch", inputs={"stage": stack.stage, "model_package_arn": to or ""})
    images = LocalImageActions(
        stack.endpoint_url, stack.ecr_repository, str, None
    )  # a rollback builds nothing
    job = f"rollback-{stack.stage}"
    return _run(stack, path, job, event, commit, 1, ROLLBACK_RUN_ID, _actions(stack, images), out)


def job_environment(path: Path = PROMOTE_WORKFLOW, job: str = "promote") -> str | None:
    """The GitHub environment a workflow's job declares: its token's subject names it, so the role it assumes
    must trust that environment (scripts/bootstrap --environment NAME)."""
    return environment_of(load_workflow(path)["jobs"].get(job) or {})


def _actions(stack, images: LocalImageActions) -> dict:
    return local_actions(images, WebIdentityCredentials(stack.issuer, stack.endpoint_url))


@contextmanager
def warm_commands() -> Iterator[dict[str, str]]:
    """The warm interpreter the workflow's mlops commands fork from (mlops.local.command_server), for one run.
    Its socket lives in a short folder of its own: a Unix socket's path is limited to about 100 bytes."""
    folder = Path(tempfile.mkdtemp(prefix="mlops-commands-"))
    socket_path = folder / "socket"
    server = subprocess.Popen(
        [sys.executable, "-m", "mlops.local.command_server", str(socket_path)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield {"MLOPS_COMMAND_SERVER": str(socket_path)}
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        shutil.rmtree(folder, ignore_errors=True)


def _run(stack, path, job, event, commit, attempt, run_id, actions, out) -> JobResult:
    runner = JobRunner(
        path,
        event,
        job=job,
        actions=actions,
        variables=repository_variables(stack),
        sha=commit,
        repository=repository_name(),
        run_id=run_id,
        run_attempt=attempt,
        workspace=REPO_ROOT,
        runner_temp=stack.work_dir / "workflow" / f"run-{run_id}-attempt-{attempt}",
        base_env=runner_environment(),
        out=out,
    )
    with warm_commands() as server_env:
        runner.base_env.update(server_env)
        return runner.run()


def workflow_record(result: JobResult, release_step: str = "release") -> dict[str, Any]:
    """The summary's ``workflow``: the file, the event, each step's outcome and time, the release's outputs."""
    try:
        file = str(Path(result.file).resolve().relative_to(REPO_ROOT))
    except ValueError:
        file = result.file
    record: dict[str, Any] = {
        "file": file,
        "job": result.job,
        "event": result.event,
        "status": result.status,
        "steps": [step.as_dict() for step in result.steps],
        "outputs": result.outputs(release_step),
        "log": str(result.log),
        **result.record,
    }
    failed = result.failed_step
    if failed:
        record["failed_step"] = failed.name
    return record
