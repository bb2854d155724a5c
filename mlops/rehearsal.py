"""``mlops rehearse``: one release (or several) through the real state machine on the local AWS."""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from . import approver
from .data import write_split
from .execution import follow_execution
from .local.release_workflow import (
    RELEASE_WORKFLOW,
    job_environment,
    run_promote_workflow,
    run_release_workflow,
    run_rollback_workflow,
    workflow_record,
)
from .local.stack import LocalStack
from .local.template import TemplateError
from .local.workflow import WorkflowError
from .release import ReleaseError
from .rollback import served_packages
from .sourceinfo import current_commit, image_digest_for_tree
from .summary import (
    autoscaling_record,
    capacity_record,
    curl_prediction,
    left_over,
    model_of,
    registry_record,
    stage_record,
    training_record,
)


@dataclass
class Options:
    approve: str = "click"  # click | manual | reject
    hyperparameters: dict[str, str] = field(default_factory=dict)
    releases: int = 1
    serve: bool = False
    timeout: float = 600.0
    faults: list[tuple[str, int | None]] = field(default_factory=list)  # (fault, release number or every)
    stages: list[str] = field(default_factory=lambda: ["staging"])  # release to the first, promote on
    workflow: Path = RELEASE_WORKFLOW  # the workflow whose job starts each release
    rollback: bool = False  # after the releases and promotions, roll the first stage back (rollback.yml)
    traffic: int = 0  # rows sent through the API after the release, then the drift check (0: neither)
    shifts: list[tuple[str, float]] = field(default_factory=list)  # (feature, delta) added to the traffic
    update_traffic: float = 0.0  # requests per second through the API while an endpoint update runs

    def faults_for(self, release: int) -> set[str]:
        return {name for name, number in self.faults if number in (None, release)}


# Faults the rehearsal itself injects (data and naming); the local SageMaker injects the others.
DATA_FAULTS = {
    "no-training-data": "nothing is uploaded under data/train/",
    "malformed-test-data": "line 7 of the held-out data has a non-number",
    "duplicate-execution": "the release reuses the previous release's execution name",
}
MALFORMED_LINE = 7
# What `--model NAME` sets on the stack unless --parameter does: the example and its quality gate.
EXAMPLE_PARAMETERS = {
    "iris": {},
    "diabetes": {"Model": "diabetes", "GateMetric": "rmse", "GateThreshold": "70"},
}


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
            out.write(approver.manual_prompt(mail, links, *_gives_up(stack, options, started)))
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

    started = time.time()
    thread = threading.Thread(target=act, name="approver", daemon=True)
    thread.start()
    return thread


def _gives_up(stack: LocalStack, options: Options, started: float) -> tuple[float, str, str]:
    created = getattr(stack, "created", None)
    approval = created.parameters.get("ApprovalTimeoutSeconds") if created else None
    return gives_up(time.time(), started + options.timeout, options.timeout, approval)


def gives_up(
    now: float, release_ends: float, release_timeout: float, approval_timeout: str | None
) -> tuple[float, str, str]:
    """When a release waiting for its approval stops, by which setting, and how it ends: the template's
    ApprovalTimeoutSeconds from now (the mail has just been sent), or the rehearsal's --timeout from the
    release's start, whichever comes first."""
    if approval_timeout and now + float(approval_timeout) <= release_ends:
        return (
            now + float(approval_timeout),
            f"ApprovalTimeoutSeconds={approval_timeout}",
            "FAILED with ApprovalTimedOut",
        )
    return release_ends, f"--timeout {release_timeout:g}", "ABORTED with RehearsalTimedOut"


def run_release(stack: LocalStack, options: Options, attempt: int, out: TextIO) -> dict:
    faults = options.faults_for(attempt)
    stack.sagemaker.faults = faults - DATA_FAULTS.keys()
    if "duplicate-execution" in faults and attempt > 1:
        attempt -= 1
    commit = current_commit()
    known_mail = set(stack.outbox.messages())
    workflow = start_from_workflow(stack, options, commit, attempt, out)
    outputs = workflow["outputs"]
    if workflow["status"] != "success" or not outputs.get("execution_arn"):
        return {"status": "NOT_STARTED", "workflow": workflow}
    out.write(f"Release {attempt}: commit {commit[:12]}, execution {outputs['execution_name']}\n")
    done = threading.Event()
    _approve_in_background(stack, options, known_mail, out, done)
    during_updates = (
        UpdateTraffic(stack, options.update_traffic, out).start(done) if options.update_traffic else None
    )
    try:
        followed = follow_execution(stack, outputs["execution_arn"], options.timeout, out)
    finally:
        done.set()
    deployment = stack.sagemaker.deployments.get(followed["names"]["endpoint_config"])
    if deployment:
        if during_updates:
            deployment["traffic"] = during_updates.result()
        out.write(deployment_line(deployment) + "\n")
    return {**followed, "deployment": deployment, "workflow": workflow}


def deployment_line(deployment: dict) -> str:
    """One line on how an endpoint update went, e.g. for a canary rolled back by its alarm."""
    steps = " → ".join(f"{step['new_percent']:g}%" for step in deployment["steps"])
    outcome = deployment["outcome"] + (f" by alarm {deployment['alarm']}" if deployment["alarm"] else "")
    fleets = "; ".join(
        f"{fleet} fleet answered {count['answered']}, failed {count['failed']}"
        for fleet, count in (deployment["requests"] or {}).items()
    )
    return f"  update ({deployment['strategy']}, {steps}): {outcome}" + (f" ({fleets})" if fleets else "")


class UpdateTraffic:
    """While the stage's endpoint is being updated, held-out rows go through the API at a steady rate, as users
    keep calling during a blue/green update; the result says how many were sent, answered and failed."""

    def __init__(self, stack: LocalStack, rate: float, out: TextIO) -> None:
        from .traffic import held_out_rows

        _, test = write_split(model_of(stack), stack.work_dir / "traffic")
        self._rows = [",".join(row) for row in held_out_rows(test)]
        self._stack = stack
        self._rate = rate
        self._out = out
        self._results: list[dict] = []
        self._thread: threading.Thread | None = None

    def start(self, done: threading.Event) -> UpdateTraffic:
        self._thread = threading.Thread(target=self._watch, args=(done,), name="update-traffic", daemon=True)
        self._thread.start()
        return self

    def _watch(self, done: threading.Event) -> None:
        from .traffic import SteadyTraffic

        sagemaker, name = self._stack.sagemaker, self._stack.endpoint_name
        api_key = self._stack.api_key_file.read_text() if self._stack.api_key_file else None
        while not done.is_set():
            with sagemaker.updating:
                if not sagemaker.updating.wait_for(lambda: name in sagemaker.updates, timeout=0.2):
                    continue
            self._out.write(
                f"  ↻ update of {name}: {self._rate:g} requests/s through the API while it runs\n"
            )
            self._out.flush()
            traffic = SteadyTraffic(self._stack.api_url, self._rows, self._rate, api_key).start()
            with sagemaker.updating:
                while name in sagemaker.updates and not done.is_set():
                    sagemaker.updating.wait(timeout=0.2)
            self._results.append(traffic.stop())

    def result(self) -> dict | None:
        if self._thread:
            self._thread.join(timeout=40)
        return self._results[-1] if self._results else None


def start_from_workflow(stack: LocalStack, options: Options, commit: str, attempt: int, out: TextIO) -> dict:
    """Runs the release workflow's job (attempt N of one local run); returns the summary's ``workflow``."""
    try:
        name = options.workflow.relative_to(RELEASE_WORKFLOW.parents[2])
    except ValueError:
        name = options.workflow
    event = "workflow_dispatch" if options.hyperparameters else "push to main"
    out.write(f"Workflow {name} ({event}, attempt {attempt}):\n")
    out.flush()
    try:
        result = run_release_workflow(
            stack,
            commit=commit,
            attempt=attempt,
            hyperparameters=options.hyperparameters,
            config_digest=image_digest_for_tree,
            local_image_for=getattr(stack.runner, "image_for_uri", None),
            path=options.workflow,
            out=out,
        )
    except WorkflowError as error:
        raise ReleaseError(f"{name}: {error}") from error
    return workflow_record(result)


def promote(staging: LocalStack, prod: LocalStack, package_arn: str, options: Options, out: TextIO) -> dict:
    """The prod stack deploys the package staging serves: promote.yml dispatched with the package runs
    ``mlops promote``, which checks that staging's endpoint (``<project>-staging``) serves it."""
    out.write(f"Workflow .github/workflows/promote.yml (workflow_dispatch, {package_arn}):\n")
    try:
        result = run_promote_workflow(prod, commit=current_commit(), package_arn=package_arn, out=out)
    except WorkflowError as error:
        raise ReleaseError(f"promote.yml: {error}") from error
    workflow = workflow_record(result, release_step="promote")
    if workflow["status"] != "success" or not workflow["outputs"].get("execution_arn"):
        return {"status": "NOT_STARTED", "workflow": workflow}
    out.write(f"Promotion to {prod.stage}: {package_arn}\n")
    execution_arn = workflow["outputs"]["execution_arn"]
    return {**follow_execution(prod, execution_arn, options.timeout, out), "workflow": workflow}


def roll_back(stack: LocalStack, options: Options, out: TextIO) -> dict:
    """rollback.yml for the stack's stage, followed to its end; `model_package_arn`: what serves after it."""
    out.write(f"Workflow .github/workflows/rollback.yml (workflow_dispatch, stage {stack.stage}):\n")
    try:
        result = run_rollback_workflow(stack, commit=current_commit(), out=out)
    except WorkflowError as error:
        raise ReleaseError(f"rollback.yml: {error}") from error
    workflow = workflow_record(result, release_step="rollback")
    wanted = workflow["outputs"].get("model_package_arn")
    if workflow["status"] != "success" or not workflow["outputs"].get("execution_arn"):
        return {"status": "NOT_STARTED", "model_package_arn": None, "workflow": workflow}
    out.write(f"Rollback of {stack.stage} to {wanted}\n")
    followed = follow_execution(stack, workflow["outputs"]["execution_arn"], options.timeout, out)
    serving = sorted(served_packages(stack.client("sagemaker"), stack.endpoint_name))
    return {
        "status": followed["status"],
        "execution_arn": followed["execution_arn"],
        "wanted": wanted,
        "model_package_arn": serving[0] if len(serving) == 1 else serving or None,
        **{k: followed.get(k) for k in ("failed_state", "error", "reason") if followed.get(k)},
        "workflow": workflow,
    }


def promote_through(staging: LocalStack, summary: dict, options: Options, out: TextIO) -> dict:
    """Deploys each later stage beside the first on the same local AWS and promotes the released package."""
    stages = {staging.stage: stage_record(staging)}
    result: dict = {"stages": stages, "promotions": []}
    for stage in options.stages[1:]:
        if summary["status"] != "SUCCEEDED" or not summary.get("model_package_arn"):
            break
        stage_stack = LocalStack(
            work_dir=staging.work_dir / stage,
            runner=staging.runner,
            parameters={**staging.parameters, "Stage": stage},
            definition_path=staging.definition_path,
            template=staging.template,
            access_template=staging.access_template,
            # bootstrapped as the README says: its role trusts the environment promote.yml's job declares
            access_parameters={"Environment": job_environment() or ""},
            shared=staging,
        )
        try:
            stack = stage_stack.start()
        except TemplateError as error:  # as `sam deploy` of that stage would stop, naming the resource
            raise ReleaseError(f"deploying stage {stage}: {error}") from error
        staging.companions.append(stack)
        promotion = promote(staging, stack, summary["model_package_arn"], options, out)
        result["promotions"].append(
            {
                "stage": stage,
                **{
                    k: promotion.get(k)
                    for k in (
                        "status",
                        "execution_arn",
                        "states",
                        "failed_state",
                        "error",
                        "reason",
                        "cause",
                        "workflow",
                    )
                },
            }
        )
        stages[stage] = stage_record(stack)
        if promotion["status"] == "NOT_STARTED":
            result.update(not_started_fields(promotion["workflow"]))
            break
        if promotion["status"] != "SUCCEEDED":
            result.update(
                status=promotion["status"],
                failed_state=promotion.get("failed_state"),
                error=promotion.get("error"),
                reason=promotion.get("reason"),
                cause=promotion.get("cause"),
                failure_record=promotion.get("failure_record"),
            )
            break
    result["live_endpoints"] = staging.live_endpoints()
    return result


def upload_data(stack: LocalStack, faults: set[str]) -> None:
    train, test = write_split(model_of(stack), stack.work_dir / "data")
    if "malformed-test-data" in faults:
        lines = test.read_text().splitlines()
        lines[MALFORMED_LINE - 1] = "setosa,abc,3.5,1.4,0.2"
        test.write_text("\n".join(lines) + "\n")
    s3 = stack.client("s3")
    if "no-training-data" not in faults:
        s3.upload_file(str(train), stack.bucket, "data/train/train.csv")
    s3.upload_file(str(test), stack.bucket, "data/test/test.csv")


def rehearse(stack: LocalStack, options: Options, out: TextIO = sys.stderr) -> dict:
    upload_data(stack, options.faults_for(1))
    releases: list[dict] = []
    for number in range(1, options.releases + 1):
        releases.append(run_release(stack, options, number, out))
        if releases[-1]["status"] == "NOT_STARTED":
            return not_started(stack, releases)
    last = releases[-1]
    summary = {
        "status": last["status"],
        "execution_arn": last["execution_arn"],
        "states": last["states"],
        "endpoint_name": stack.endpoint_name,
        "api_url": stack.api_url,
        "outbox": str(stack.outbox.folder),
        "work_dir": str(stack.work_dir),
        "aws_endpoint_url": stack.endpoint_url,
        "state_machine_arn": stack.state_machine_arn,
        "runner": stack.runner.name,
        "durations": last["durations"],
        "task_errors": last["task_errors"],
        "seconds": last["seconds"],
        "diagram": last["diagram"],
        "workflow": last["workflow"],
    }
    if last["status"] != "SUCCEEDED":
        summary.update(
            {k: last.get(k) for k in ("failed_state", "error", "reason", "cause", "failure_record")}
        )
    # After a rolled-back update the previous model still serves: the curl shows it.
    if last["status"] == "SUCCEEDED" or last.get("error") == "DeploymentRolledBack":
        summary["curl"], summary["prediction"] = curl_prediction(stack)
    else:
        summary["curl"], summary["prediction"] = None, None
    summary["live_endpoints"] = stack.live_endpoints()
    if training := training_record(stack, last):
        summary["training"] = training
    if options.traffic and last["status"] == "SUCCEEDED":
        from .drift import watch

        summary.update(watch(stack, options.traffic, options.shifts, out))
    stack.sagemaker.capture.flush()  # what the endpoint captured so far is in S3 before the listing
    summary["endpoint_capacity"] = capacity_record(stack)
    summary["autoscaling"] = autoscaling_record(stack)
    summary.update(registry_record(stack, last))
    summary["artifacts"] = sorted(
        o["Key"] for o in stack.client("s3").list_objects_v2(Bucket=stack.bucket).get("Contents", [])
    )
    succeeded = [r for r in releases if r["status"] == "SUCCEEDED"]
    summary["left_over"] = left_over(stack, succeeded[-1].get("rollback_config") if succeeded else None)
    if len(options.stages) > 1:
        summary.update(promote_through(stack, summary, options, out))
        if options.traffic and summary["status"] == "SUCCEEDED":
            from .drift import watch

            for later in stack.companions:  # each later stage's endpoint is watched as staging's is
                summary["stages"][later.stage].update(watch(later, options.traffic, options.shifts, out))
    if options.rollback and summary["status"] == "SUCCEEDED":
        rollback = summary["rollback"] = roll_back(stack, options, out)
        if rollback["status"] == "NOT_STARTED":
            summary.update(not_started_fields(rollback["workflow"]))
        elif rollback["status"] != "SUCCEEDED":
            summary.update({k: rollback.get(k) for k in ("status", "failed_state", "error")})
            summary["reason"] = f"rollback: {rollback.get('reason') or rollback['status']}"
    summary["iam"] = {**stack.authorizer.summary(), "record": str(stack.export_iam())}
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
                    "deployment",
                )
            }
            | {
                "model_package_arn": registry_record(stack, r)["model_package_arn"],
                "alarm": (r.get("deployment") or {}).get("alarm"),
            }
            for r in releases
        ]
    return summary


def not_started(stack: LocalStack, releases: list[dict]) -> dict:
    """The summary when the workflow stopped before the state machine started: which step, and why."""
    workflow = releases[-1]["workflow"]
    summary = {
        **not_started_fields(workflow),
        "workflow": workflow,
        "outbox": str(stack.outbox.folder),
        "work_dir": str(stack.work_dir),
        "aws_endpoint_url": stack.endpoint_url,
        "state_machine_arn": stack.state_machine_arn,
        "runner": stack.runner.name,
        "live_endpoints": stack.live_endpoints(),
    }
    if len(releases) > 1:
        summary["releases"] = [
            {k: r.get(k) for k in ("status", "execution_name", "endpoint_action", "failed_state", "error")}
            for r in releases
        ]
    return summary


def not_started_fields(workflow: dict) -> dict:
    """What the summary says of a workflow that stopped before its execution started."""
    failed = next((s for s in workflow["steps"] if s.get("conclusion", s["outcome"]) == "failure"), None)
    return {
        "status": "NOT_STARTED",
        "failed_workflow": workflow["file"],
        "failed_step": failed["name"] if failed else None,
        "error": "WorkflowStepFailed" if failed else "NoExecutionStarted",
        "reason": "; ".join(failed.get("errors", [])) if failed else "the workflow wrote no execution_arn",
        "tail": failed.get("tail", []) if failed else [],
        "workflow_log": workflow["log"],
    }
