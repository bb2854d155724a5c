"""``mlops rehearse``: one release (or several) through the real state machine on the local AWS."""

from __future__ import annotations

import itertools
import json
import shlex
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from . import approver
from .data import write_iris_split
from .local.stack import REGION, LocalStack
from .local.template import ACCOUNT_ID
from .promotion import start_promotion
from .release import Release, image_tag_exists, start_release
from .sourceinfo import current_commit, image_digest_for_tree

SAMPLE = '{"data":"4.5,1.3,0.3,0.3"}'
TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


@dataclass
class Options:
    approve: str = "click"  # click | manual | reject
    hyperparameters: dict[str, str] = field(default_factory=dict)
    releases: int = 1
    serve: bool = False
    timeout: float = 600.0
    faults: list[tuple[str, int | None]] = field(default_factory=list)  # (fault, release number or every)
    stages: list[str] = field(default_factory=lambda: ["staging"])  # release to the first, promote on

    def faults_for(self, release: int) -> set[str]:
        return {name for name, number in self.faults if number in (None, release)}


# Faults the rehearsal itself injects (data and naming); the local SageMaker injects the others.
DATA_FAULTS = {
    "no-training-data": "nothing is uploaded under data/train/",
    "malformed-test-data": "line 7 of the held-out data has a non-number",
    "duplicate-execution": "the release reuses the previous release's execution name",
}
MALFORMED_LINE = 7


def parse_fault(text: str) -> tuple[str, int | None]:
    """``NAME`` (every release) or ``NAME@N`` (release N only)."""
    from .local.sagemaker import FAULTS

    name, _, number = text.partition("@")
    if name not in FAULTS and name not in DATA_FAULTS:
        known = ", ".join(sorted({**FAULTS, **DATA_FAULTS}))
        raise ValueError(f"unknown fault {name!r}: choose from {known}")
    if number and not number.isdigit():
        raise ValueError(f"fault {text!r}: the release after @ must be a number")
    return name, int(number) if number else None


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
    }


def _register_image(stack: LocalStack, commit: str) -> str:
    """Registers the commit-tagged image in the local ECR, as the release workflow pushes it."""
    ecr = stack.client("ecr")
    registry = f"{ACCOUNT_ID}.dkr.ecr.{REGION}.amazonaws.com"
    if not image_tag_exists(ecr, stack.ecr_repository, commit):
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": 0,
                "digest": image_digest_for_tree(),
            },
            "layers": [],
        }
        ecr.put_image(
            repositoryName=stack.ecr_repository, imageTag=commit, imageManifest=json.dumps(manifest)
        )
    return f"{registry}/{stack.ecr_repository}:{commit}"


def _approve_in_background(
    stack: LocalStack, options: Options, since: set[Path], out: TextIO, done: threading.Event
) -> threading.Thread:
    def act() -> None:
        try:
            decide()
        except Exception as error:  # the release then waits until its timeout; say why
            out.write(f"  ✉ could not act on the approval mail: {error}\n")
            out.flush()

    def decide() -> None:
        try:
            mail, links = approver.wait_for_approval_mail(
                stack.outbox.folder, options.timeout, stop=done.is_set, skip=since
            )
        except TimeoutError:
            return
        if options.approve == "manual":
            out.write(
                f"\nApproval mail: {mail}\nOpen this link to approve (or the reject link in the mail):\n"
                f"  {links.get('approve')}\n\n"
            )
            out.flush()
            return
        action = "reject" if options.approve == "reject" else "approve"
        status, _ = approver.click(
            links[action],
            approver="Rehearsal Approver <approver@example.com>",
            reason=("approved" if action == "approve" else "rejected") + " in the local rehearsal",
        )
        out.write(f"  ✉ clicked {action.capitalize()} in {mail.name}: HTTP {status}\n")
        out.flush()

    thread = threading.Thread(target=act, name="approver", daemon=True)
    thread.start()
    return thread


def run_release(stack: LocalStack, options: Options, attempt: int, out: TextIO) -> dict:
    faults = options.faults_for(attempt)
    stack.sagemaker.faults = faults - DATA_FAULTS.keys()
    if "duplicate-execution" in faults and attempt > 1:
        attempt -= 1
    commit = current_commit()
    image_uri = _register_image(stack, commit)
    release = Release(
        project=stack.project,
        stage=stack.stage,
        commit=commit,
        image_uri=image_uri,
        data_uri=f"s3://{stack.bucket}/data",
        attempt=attempt,
        hyperparameters=options.hyperparameters,
        image_digest=image_digest_for_tree(),
    )
    sfn = stack.client("stepfunctions")
    known_mail = set(stack.outbox.messages())
    execution_arn = start_release(sfn, stack.state_machine_arn, release)
    out.write(f"Release {attempt}: commit {commit[:12]}, execution {release.execution_name}\n")
    done = threading.Event()
    _approve_in_background(stack, options, known_mail, out, done)
    try:
        return follow_execution(stack, execution_arn, options.timeout, out)
    finally:
        done.set()


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
    else:
        result.update(failure_details(stack, execution_arn, progress.states))
    return result


def promote(staging: LocalStack, prod: LocalStack, package_arn: str, options: Options, out: TextIO) -> dict:
    """The prod stack deploys the package staging serves, through the same promotion path as ``mlops promote``."""
    execution_arn = start_promotion(
        prod.client("stepfunctions"),
        prod.client("sagemaker"),
        prod.client("sagemaker-runtime"),
        prod.state_machine_arn,
        package_arn,
        staging.endpoint_name,
        prod.project,
        prod.stage,
    )
    out.write(f"Promotion to {prod.stage}: {package_arn}\n")
    return follow_execution(prod, execution_arn, options.timeout, out)


def promote_through(staging: LocalStack, summary: dict, options: Options, out: TextIO) -> dict:
    """Deploys each later stage beside the first on the same local AWS and promotes the released package."""
    stages = {staging.stage: stage_record(staging)}
    result: dict = {"stages": stages, "promotions": []}
    for stage in options.stages[1:]:
        if summary["status"] != "SUCCEEDED" or not summary.get("model_package_arn"):
            break
        stack = LocalStack(
            work_dir=staging.work_dir / stage,
            runner=staging.runner,
            parameters={**staging.parameters, "Stage": stage},
            definition_path=staging.definition_path,
            shared=staging,
        ).start()
        staging.companions.append(stack)
        promotion = promote(staging, stack, summary["model_package_arn"], options, out)
        result["promotions"].append(
            {
                "stage": stage,
                **{
                    k: promotion.get(k)
                    for k in ("status", "execution_arn", "states", "failed_state", "error", "cause")
                },
            }
        )
        stages[stage] = stage_record(stack)
        if promotion["status"] != "SUCCEEDED":
            result.update(
                status=promotion["status"],
                failed_state=promotion.get("failed_state"),
                error=promotion.get("error"),
                cause=promotion.get("cause"),
            )
            break
    result["live_endpoints"] = staging.live_endpoints()
    return result


def stage_record(stack: LocalStack) -> dict:
    """The stage's endpoint and the model package it serves."""
    sm = stack.client("sagemaker")
    try:
        config = sm.describe_endpoint(EndpointName=stack.endpoint_name)["EndpointConfigName"]
    except sm.exceptions.ClientError:
        return {"endpoint_name": stack.endpoint_name, "model_package_arn": None, "api_url": stack.api_url}
    variant = sm.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"][0]
    container = sm.describe_model(ModelName=variant["ModelName"])["PrimaryContainer"]
    return {
        "endpoint_name": stack.endpoint_name,
        "endpoint_config": config,
        "model_package_arn": container.get("ModelPackageName"),
        "api_url": stack.api_url,
    }


def curl_command(stack: LocalStack, body: str = SAMPLE) -> str:
    """The exact command a person pastes; the API key is read from its file, never printed."""
    command = shlex.join(
        [
            "curl",
            "-sS",
            "-X",
            "POST",
            f"{stack.api_url}/v1/invokeSagemakerAPI",
            "-H",
            "Content-Type: application/json",
            "-d",
            body,
        ]
    )
    if stack.api_key_file:
        command += f' -H "x-api-key: $(cat {shlex.quote(str(stack.api_key_file))})"'
    return command


def curl_prediction(stack: LocalStack) -> tuple[str, object]:
    command = curl_command(stack)
    if shutil.which("curl") is None:
        return command, "curl is not installed"
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=30, check=False)
    answer = (done.stdout or done.stderr).strip()
    try:
        return command, json.loads(answer)
    except json.JSONDecodeError:
        return command, answer


def registry_record(stack: LocalStack, release: dict) -> dict:
    """The release's model package version and its approval status, as the registry holds them."""
    sm = stack.client("sagemaker")
    packages = sm.list_model_packages(ModelPackageGroupName=stack.model_package_group)[
        "ModelPackageSummaryList"
    ]
    for summary in packages:
        package = sm.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
        if f"({release['execution_name']})" in package.get("ModelPackageDescription", ""):
            return {
                "model_package_arn": package["ModelPackageArn"],
                "approval_status": package["ModelApprovalStatus"],
                "approval_description": package.get("ApprovalDescription"),
            }
    return {"model_package_arn": None, "approval_status": None}


def upload_data(stack: LocalStack, faults: set[str]) -> None:
    train, test = write_iris_split(stack.work_dir / "data")
    if "malformed-test-data" in faults:
        lines = test.read_text().splitlines()
        lines[MALFORMED_LINE - 1] = "setosa,abc,3.5,1.4,0.2"
        test.write_text("\n".join(lines) + "\n")
    s3 = stack.client("s3")
    if "no-training-data" not in faults:
        s3.upload_file(str(train), stack.bucket, "data/train/train.csv")
    s3.upload_file(str(test), stack.bucket, "data/test/test.csv")


def left_over(stack: LocalStack, rollback_config: str | None) -> list[str]:
    """SageMaker resources besides the live endpoint's config, the rollback config and their models."""
    sm = stack.client("sagemaker")
    keep = {rollback_config} if rollback_config else set()
    keep.update(
        sm.describe_endpoint(EndpointName=e["EndpointName"])["EndpointConfigName"]
        for e in sm.list_endpoints()["Endpoints"]
    )
    configs = [c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]]
    keep_models = {
        v["ModelName"]
        for c in configs
        if c in keep
        for v in sm.describe_endpoint_config(EndpointConfigName=c)["ProductionVariants"]
    }
    models = [m["ModelName"] for m in sm.list_models()["Models"]]
    return [f"endpoint-config/{c}" for c in sorted(configs) if c not in keep] + [
        f"model/{m}" for m in sorted(models) if m not in keep_models
    ]


def rehearse(stack: LocalStack, options: Options, out: TextIO = sys.stderr) -> dict:
    upload_data(stack, options.faults_for(1))
    releases = [run_release(stack, options, number, out) for number in range(1, options.releases + 1)]
    last = releases[-1]
    summary = {
        "status": last["status"],
        "execution_arn": last["execution_arn"],
        "states": last["states"],
        "endpoint_name": stack.endpoint_name,
        "api_url": stack.api_url,
        "outbox": str(stack.outbox.folder),
        "aws_endpoint_url": stack.endpoint_url,
        "state_machine_arn": stack.state_machine_arn,
        "runner": stack.runner.name,
        "durations": last["durations"],
        "task_errors": last["task_errors"],
        "seconds": last["seconds"],
    }
    if last["status"] == "SUCCEEDED":
        summary["curl"], summary["prediction"] = curl_prediction(stack)
    else:
        summary.update({k: last.get(k) for k in ("failed_state", "error", "cause")})
        summary["curl"], summary["prediction"] = None, None
    summary["live_endpoints"] = stack.live_endpoints()
    summary.update(registry_record(stack, last))
    summary["artifacts"] = sorted(
        o["Key"] for o in stack.client("s3").list_objects_v2(Bucket=stack.bucket).get("Contents", [])
    )
    succeeded = [r for r in releases if r["status"] == "SUCCEEDED"]
    summary["left_over"] = left_over(stack, succeeded[-1].get("rollback_config") if succeeded else None)
    if len(options.stages) > 1:
        summary.update(promote_through(stack, summary, options, out))
    if options.releases > 1:
        summary["releases"] = [
            {
                k: r.get(k)
                for k in (
                    "status",
                    "execution_name",
                    "names",
                    "endpoint_action",
                    "evaluation",
                    "rollback_config",
                    "failed_state",
                    "error",
                    "cause",
                )
            }
            for r in releases
        ]
    return summary
