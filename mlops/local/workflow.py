"""A small GitHub Actions step runner: one job of a workflow file, its steps in order, on this machine.

What a hosted runner gives a step is given here too: the ``github``, ``inputs``, ``vars``, ``env``, ``steps``,
``runner`` and ``job`` contexts, workflow/job/step ``env:``, ``${{ }}`` in env/with/if (mlops.local.expressions),
``if:`` with the status functions, ``id:`` + ``$GITHUB_OUTPUT``, ``$GITHUB_ENV``, ``$GITHUB_PATH``,
``$GITHUB_STEP_SUMMARY``, ``$RUNNER_TEMP``, ``::error::`` lines, ``defaults.run``, ``working-directory``,
``continue-on-error`` and ``timeout-minutes``. ``run:`` steps run in the shell GitHub's table names (unspecified:
``bash -e {0}``; ``bash``: ``bash --noprofile --norc -eo pipefail {0}``; ``sh``: ``sh -e {0}``). ``uses:`` steps
call a local function per action, keyed by the action's name without its ref; an action without one is an
error. Not emulated: services, containers, matrices, ``needs``, secrets, caches, artifacts, job outputs.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import yaml

from .expressions import ExpressionError, Strict, condition, interpolate

SHELLS = {
    None: ["bash", "-e", "{0}"],
    "bash": ["bash", "--noprofile", "--norc", "-eo", "pipefail", "{0}"],
    "sh": ["sh", "-e", "{0}"],
}
TAIL_LINES = 12
_COMMAND = re.compile(r"^::(?P<command>[a-z-]+)(?: [^:]*)?::(?P<message>.*)$")


class WorkflowError(Exception):
    """The workflow cannot be run as asked (no such job, an event it does not take, a bad input)."""


class ActionFailed(Exception):
    """A local action's failure; the message is what the step's log says."""


@dataclass
class Event:
    """What started the run: ``push`` (to ``ref``) or ``workflow_dispatch`` with its inputs."""

    name: str = "push"
    ref: str = "refs/heads/main"
    inputs: dict[str, str] = field(default_factory=dict)


@dataclass
class ActionCall:
    """What a local action sees of its step, and how it changes the job as the real action would."""

    step: str
    inputs: dict[str, str]
    env: dict[str, str]
    workspace: Path
    runner_temp: Path
    set_env: Callable[[str, str], None]
    add_path: Callable[[str], None]
    record: dict[str, Any]  # what the run's result keeps (e.g. the role a credentials step assumed)
    log: Callable[[str], None]
    environment: str | None = None  # the job's `environment:` name (it goes into the job's OIDC token)


Action = Callable[[ActionCall], Mapping[str, str] | None]


@dataclass
class StepResult:
    name: str
    id: str | None
    outcome: str  # success | failure | skipped
    conclusion: str
    seconds: float = 0.0
    outputs: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)  # ::error:: lines and the runner's own reasons
    tail: list[str] = field(default_factory=list)  # last output lines of a failed step

    def as_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "name": self.name,
            "outcome": self.outcome,
            "seconds": round(self.seconds, 3),
        }
        if self.id:
            record["id"] = self.id
        if self.conclusion != self.outcome:
            record["conclusion"] = self.conclusion
        if self.errors:
            record["errors"] = self.errors
        if self.outcome == "failure":
            record["tail"] = self.tail
        return record


@dataclass
class JobResult:
    file: str
    job: str
    event: str
    steps: list[StepResult]
    summary: str  # the job's $GITHUB_STEP_SUMMARY, every step's in order
    record: dict[str, Any]
    log: Path
    skipped: bool = False  # the job's own `if:` was false: no step ran

    @property
    def failed_step(self) -> StepResult | None:
        return next((s for s in self.steps if s.conclusion == "failure"), None)

    @property
    def status(self) -> str:
        if self.skipped:
            return "skipped"
        return "failure" if self.failed_step else "success"

    def outputs(self, step_id: str) -> dict[str, str]:
        return next((s.outputs for s in self.steps if s.id == step_id), {})


def environment_of(job: Mapping[str, Any]) -> str | None:
    """A job's deployment environment: `environment: NAME` or `environment: {name: NAME}`."""
    declared = job.get("environment")
    if isinstance(declared, Mapping):
        declared = declared.get("name")
    return str(declared) if declared else None


def load_workflow(path: Path) -> dict[str, Any]:
    try:
        workflow = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as error:
        raise WorkflowError(f"cannot read {path}: {error}") from error
    if not isinstance(workflow, dict) or not isinstance(workflow.get("jobs"), dict):
        raise WorkflowError(f"{path} is not a workflow: it has no jobs")
    return workflow


def triggers(workflow: Mapping[str, Any]) -> dict[str, Any]:
    on = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on:` key as true
    if isinstance(on, str):
        return {on: {}}
    if isinstance(on, list):
        return {name: {} for name in on}
    return {name: value or {} for name, value in (on or {}).items()}


def dispatch_inputs(workflow: Mapping[str, Any], event: Event) -> dict[str, Any]:
    """The ``inputs`` context: for workflow_dispatch the declared inputs with their defaults; else empty."""
    on = triggers(workflow)
    if event.name not in on:
        raise WorkflowError(f"the workflow does not run on {event.name} (it runs on {', '.join(on)})")
    if event.name != "workflow_dispatch":
        if event.inputs:
            raise WorkflowError(f"inputs are given only to workflow_dispatch, not {event.name}")
        return {}
    declared = (on["workflow_dispatch"] or {}).get("inputs") or {}
    unknown = sorted(set(event.inputs) - set(declared))
    if unknown:
        raise WorkflowError(
            f"unknown input(s) {', '.join(unknown)}: the workflow declares {', '.join(declared)}"
        )
    inputs: dict[str, Any] = {}
    for name, spec in declared.items():
        spec = spec or {}
        if name in event.inputs:
            inputs[name] = event.inputs[name]
        elif spec.get("required") and spec.get("default") in (None, ""):
            raise WorkflowError(f"input {name} is required")
        else:
            inputs[name] = spec.get("default", "")
        if spec.get("type") == "boolean":
            inputs[name] = str(inputs[name]).lower() == "true"
    return inputs


def github_context(
    workflow: Mapping[str, Any],
    job_id: str,
    event: Event,
    *,
    sha: str,
    repository: str,
    run_id: str,
    run_attempt: int,
    workspace: Path,
    inputs: Mapping[str, Any],
) -> Strict:
    ref_name = event.ref.split("/", 2)[-1]
    payload: dict[str, Any] = {"ref": event.ref, "repository": {"full_name": repository}}
    if event.name == "push":
        payload.update(after=sha, head_commit={"id": sha})
    else:
        payload["inputs"] = dict(inputs)
    return Strict(
        "the github context of the local runner",
        {
            "sha": sha,
            "ref": event.ref,
            "ref_name": ref_name,
            "ref_type": "tag" if event.ref.startswith("refs/tags/") else "branch",
            "event_name": event.name,
            "event": payload,
            "repository": repository,
            "repository_owner": repository.split("/")[0],
            "run_id": str(run_id),
            "run_number": str(run_id),
            "run_attempt": str(run_attempt),
            "workspace": str(workspace),
            "workflow": str(workflow.get("name", "")),
            "job": job_id,
            "actor": "rehearsal",
            "server_url": "https://github.com",
            "api_url": "https://api.github.com",
        },
    )


def _step_name(step: Mapping[str, Any]) -> str:
    if step.get("name"):
        return str(step["name"])
    if step.get("uses"):
        return f"Run {step['uses']}"
    return f"Run {str(step.get('run', '')).strip().splitlines()[0] if step.get('run') else '?'}"


def read_file_command(path: Path, what: str) -> dict[str, str]:
    """``name=value`` lines and ``name<<DELIMITER`` … ``DELIMITER`` blocks, as the runner reads them."""
    values: dict[str, str] = {}
    lines = path.read_text().splitlines() if path.exists() else []
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if not line.strip():
            continue
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            body = []
            while index < len(lines) and lines[index] != delimiter:
                body.append(lines[index])
                index += 1
            if index >= len(lines):
                raise ActionFailed(f"{what}: {name}<<{delimiter} has no closing {delimiter} line")
            index += 1
            value = "\n".join(body)
        elif "=" in line:
            name, value = line.split("=", 1)
        else:
            raise ActionFailed(f"{what}: invalid line {line!r} (name=value or name<<DELIMITER)")
        if not name.strip():
            raise ActionFailed(f"{what}: line {line!r} has no name")
        values[name] = value
    return values


class JobRunner:
    """Runs one job; construct, then ``run()``."""

    def __init__(
        self,
        path: Path,
        event: Event,
        *,
        actions: Mapping[str, Action],
        variables: Mapping[str, str],
        sha: str,
        repository: str,
        run_id: str,
        run_attempt: int,
        workspace: Path,
        runner_temp: Path,
        base_env: Mapping[str, str],
        job: str | None = None,
        out: TextIO | None = None,
    ):
        self.path = Path(path)
        self.workflow = load_workflow(self.path)
        jobs = self.workflow["jobs"]
        if job is None and len(jobs) != 1:
            raise WorkflowError(f"{self.path.name} has jobs {', '.join(jobs)}: name one")
        self.job_id = job or next(iter(jobs))
        if self.job_id not in jobs:
            raise WorkflowError(f"{self.path.name} has no job {self.job_id!r} (it has {', '.join(jobs)})")
        self.job = jobs[self.job_id]
        for unsupported in ("strategy", "services", "container", "needs", "uses"):
            if unsupported in self.job:
                raise WorkflowError(
                    f"job {self.job_id}: the local runner does not run jobs with {unsupported}:"
                )
        self.event, self.actions = event, actions
        self.workspace, self.temp = Path(workspace), Path(runner_temp)
        self.temp.mkdir(parents=True, exist_ok=True)
        self.out = out
        self.inputs = dispatch_inputs(self.workflow, event)
        self.github = github_context(
            self.workflow,
            self.job_id,
            event,
            sha=sha,
            repository=repository,
            run_id=run_id,
            run_attempt=run_attempt,
            workspace=self.workspace,
            inputs=self.inputs,
        )
        self.vars = Strict("vars (the repository variables the workflow's header lists)", variables)
        self.base_env = dict(base_env)
        self.persisted_env: dict[str, str] = {}  # from $GITHUB_ENV and actions
        self.paths: list[str] = []  # from $GITHUB_PATH and actions, newest first
        self.steps_context: dict[str, Any] = {}
        self.results: list[StepResult] = []
        self.summary: list[str] = []
        self.record: dict[str, Any] = {}
        self.log_path = self.temp / "job.log"

    # --- contexts ----------------------------------------------------------------------------------------

    def contexts(self, env: Mapping[str, str]) -> dict[str, Any]:
        failed = any(r.conclusion == "failure" for r in self.results)
        return {
            "github": self.github,
            "inputs": Strict("inputs (the workflow_dispatch inputs the workflow declares)", self.inputs)
            if self.event.name == "workflow_dispatch"
            else {},
            "vars": self.vars,
            "env": dict(env),
            "steps": self.steps_context,
            "runner": Strict(
                "the runner context",
                {
                    "os": "Linux",
                    "arch": "X64",
                    "name": "local",
                    "temp": str(self.temp),
                    "environment": "local",
                },
            ),
            "job": {"status": "failure" if failed else "success"},
        }

    def functions(self) -> dict[str, Callable[[], bool]]:
        failed = any(r.conclusion == "failure" for r in self.results)
        return {
            "success": lambda: not failed,
            "failure": lambda: failed,
            "always": lambda: True,
            "cancelled": lambda: False,
        }

    def evaluated_env(self, env: Mapping[str, Any] | None, context_env: Mapping[str, str]) -> dict[str, str]:
        result: dict[str, str] = {}
        for name, value in (env or {}).items():
            contexts = self.contexts({**context_env, **result})
            result[str(name)] = interpolate(value, contexts, self.functions())
        return result

    # --- running -------------------------------------------------------------------------------------------

    def run(self) -> JobResult:
        self.log_path.write_text("")
        if "if" in self.job and not self.job_wanted():
            self.say(f"  ○ job {self.job_id} skipped (if: {self.job['if']})")
            return JobResult(
                str(self.path), self.job_id, self.event.name, [], "", self.record, self.log_path, True
            )
        try:
            workflow_env = self.evaluated_env(self.workflow.get("env"), {})
            job_env = self.evaluated_env(self.job.get("env"), workflow_env)
            job_error = None
        except ExpressionError as error:
            workflow_env, job_env, job_error = {}, {}, f"job env: {error}"
        self.static_env = {**workflow_env, **job_env}
        defaults = {
            **((self.workflow.get("defaults") or {}).get("run") or {}),
            **((self.job.get("defaults") or {}).get("run") or {}),
        }
        for number, step in enumerate(self.job.get("steps") or [], start=1):
            name = _step_name(step)
            if job_error:
                self.results.append(
                    StepResult(name, step.get("id"), "failure", "failure", errors=[job_error])
                )
                job_error = None
                continue
            self.results.append(self.run_step(number, step, name, defaults))
            result = self.results[-1]
            if result.id:
                self.steps_context[result.id] = {
                    "outputs": dict(result.outputs),
                    "outcome": result.outcome,
                    "conclusion": result.conclusion,
                }
        return JobResult(
            file=str(self.path),
            job=self.job_id,
            event=self.event.name,
            steps=self.results,
            summary="".join(self.summary),
            record=self.record,
            log=self.log_path,
        )

    def job_wanted(self) -> bool:
        """The job's `if:`, evaluated as GitHub does before the job starts (github, inputs and vars)."""
        try:
            return condition(self.job["if"], self.contexts({}), self.functions())
        except ExpressionError as error:
            raise WorkflowError(f"job {self.job_id}: if: {error}") from error

    def say(self, line: str) -> None:
        if self.out is not None:
            self.out.write(line + "\n")
            self.out.flush()

    def run_step(
        self, number: int, step: Mapping[str, Any], name: str, defaults: Mapping[str, Any]
    ) -> StepResult:
        step_id = step.get("id")
        started = time.monotonic()
        env_so_far = {**self.persisted_env, **self.static_env}
        try:
            if "if" in step and not condition(step["if"], self.contexts(env_so_far), self.functions()):
                self.say(f"  ○ {name} (skipped)")
                return StepResult(name, step_id, "skipped", "skipped")
            if "if" not in step and not self.functions()["success"]():
                self.say(f"  ○ {name} (skipped)")
                return StepResult(name, step_id, "skipped", "skipped")
            step_env = self.evaluated_env(step.get("env"), env_so_far)
        except ExpressionError as error:
            return self.finish(
                StepResult(name, step_id, "failure", "failure", errors=[str(error)]), step, started
            )
        with self.log_path.open("a") as log:
            log.write(f"##[group]{name}\n")
        if "run" in step:
            result = self.run_script(number, step, name, step_env, defaults)
        elif "uses" in step:
            result = self.run_action(step, name, step_env)
        else:
            result = StepResult(name, step_id, "failure", "failure", errors=["a step needs run: or uses:"])
        return self.finish(result, step, started)

    def finish(self, result: StepResult, step: Mapping[str, Any], started: float) -> StepResult:
        result.seconds = time.monotonic() - started
        if result.outcome == "failure":
            if not result.tail:
                result.tail = self.log_tail()
            if str(step.get("continue-on-error", "false")).lower() == "true":
                result.conclusion = "success"
            self.say(f"  ✗ {result.name} failed ({result.seconds:.2f} s): {'; '.join(result.errors)}")
        elif result.outcome == "success":
            self.say(f"  ✓ {result.name} ({result.seconds:.2f} s)")
        return result

    def log_tail(self) -> list[str]:
        lines = self.log_path.read_text(errors="replace").splitlines()
        start = max((i for i, line in enumerate(lines) if line.startswith("##[group]")), default=-1) + 1
        return lines[start:][-TAIL_LINES:]

    def process_env(self, step_env: Mapping[str, str]) -> dict[str, str]:
        env = {**self.base_env, **self.persisted_env, **self.static_env, **step_env}
        env["PATH"] = os.pathsep.join([*self.paths, env.get("PATH", os.defpath)])
        env.update(
            {
                "CI": "true",
                "GITHUB_ACTIONS": "true",
                "GITHUB_SHA": self.github["sha"],
                "GITHUB_REF": self.github["ref"],
                "GITHUB_REF_NAME": self.github["ref_name"],
                "GITHUB_REF_TYPE": self.github["ref_type"],
                "GITHUB_EVENT_NAME": self.github["event_name"],
                "GITHUB_EVENT_PATH": str(self.temp / "event.json"),
                "GITHUB_REPOSITORY": self.github["repository"],
                "GITHUB_REPOSITORY_OWNER": self.github["repository_owner"],
                "GITHUB_RUN_ID": self.github["run_id"],
                "GITHUB_RUN_NUMBER": self.github["run_number"],
                "GITHUB_RUN_ATTEMPT": self.github["run_attempt"],
                "GITHUB_WORKSPACE": str(self.workspace),
                "GITHUB_WORKFLOW": self.github["workflow"],
                "GITHUB_JOB": self.job_id,
                "GITHUB_ACTOR": self.github["actor"],
                "RUNNER_TEMP": str(self.temp),
                "RUNNER_OS": "Linux",
                "RUNNER_ARCH": "X64",
            }
        )
        (self.temp / "event.json").write_text(json.dumps(self.github["event"]))
        return env

    def file_commands(self, number: int) -> dict[str, Path]:
        folder = self.temp / "_runner_file_commands"
        folder.mkdir(exist_ok=True)
        files = {}
        for kind in ("output", "env", "path", "step_summary"):
            files[kind] = folder / f"{kind}_{number}"
            files[kind].write_text("")
        return files

    def apply_file_commands(self, files: Mapping[str, Path], result: StepResult) -> None:
        try:
            result.outputs.update(read_file_command(files["output"], "GITHUB_OUTPUT"))
            self.persisted_env.update(read_file_command(files["env"], "GITHUB_ENV"))
        except ActionFailed as error:
            result.outcome = result.conclusion = "failure"
            result.errors.append(str(error))
        for line in files["path"].read_text().splitlines():
            if line.strip():
                self.paths.insert(0, line.strip())
        self.summary.append(files["step_summary"].read_text())

    def run_script(
        self, number: int, step: Mapping[str, Any], name: str, step_env: Mapping[str, str], defaults: Mapping
    ) -> StepResult:
        result = StepResult(name, step.get("id"), "success", "success")
        shell = step.get("shell", defaults.get("shell"))
        if shell not in SHELLS:
            result.outcome = result.conclusion = "failure"
            result.errors.append(f"shell {shell!r}: the local runner runs bash and sh only")
            return result
        files = self.file_commands(number)
        script = self.temp / f"step_{number}.sh"
        script.write_text(str(step["run"]))
        env = self.process_env(step_env)
        env.update(
            GITHUB_OUTPUT=str(files["output"]),
            GITHUB_ENV=str(files["env"]),
            GITHUB_PATH=str(files["path"]),
            GITHUB_STEP_SUMMARY=str(files["step_summary"]),
        )
        directory = step.get("working-directory", defaults.get("working-directory"))
        cwd = self.workspace / str(directory) if directory else self.workspace
        timeout = float(step["timeout-minutes"]) * 60 if "timeout-minutes" in step else None
        argv = [str(script) if part == "{0}" else part for part in SHELLS[shell]]
        with self.log_path.open("a") as log:
            try:
                done = subprocess.run(
                    argv,
                    cwd=cwd,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    timeout=timeout,
                    check=False,
                )
                output, code = done.stdout.decode(errors="replace"), done.returncode
            except subprocess.TimeoutExpired as expired:
                output = (expired.stdout or b"").decode(errors="replace")
                code = None
            except OSError as error:
                output, code = f"{argv[0]}: {error.strerror}\n", 127
            log.write(output)
        lines = output.splitlines()
        for line in lines:
            command = _COMMAND.match(line)
            if command and command.group("command") == "error":
                result.errors.append(command.group("message"))
        if code != 0:
            result.outcome = result.conclusion = "failure"
            result.errors.append(
                f"timed out after {step['timeout-minutes']} minute(s)"
                if code is None
                else f"Process completed with exit code {code}."
            )
            result.tail = lines[-TAIL_LINES:]
        self.apply_file_commands(files, result)
        return result

    def run_action(self, step: Mapping[str, Any], name: str, step_env: Mapping[str, str]) -> StepResult:
        result = StepResult(name, step.get("id"), "success", "success")
        uses = str(step["uses"])
        action_name = uses.split("@", 1)[0]
        action = self.actions.get(action_name)
        if action is None:
            result.outcome = result.conclusion = "failure"
            known = ", ".join(sorted(self.actions)) or "none"
            result.errors.append(
                f"{uses}: no local equivalent of {action_name} (the local runner has: {known})"
            )
            return result
        env = self.process_env(step_env)
        lines: list[str] = []

        def log(line: str) -> None:
            lines.append(line)
            with self.log_path.open("a") as file:
                file.write(line + "\n")

        try:
            inputs = {
                str(k): interpolate(
                    v, self.contexts({**self.persisted_env, **self.static_env, **step_env}), self.functions()
                )
                for k, v in (step.get("with") or {}).items()
            }
            call = ActionCall(
                step=name,
                inputs=inputs,
                env=env,
                workspace=self.workspace,
                runner_temp=self.temp,
                set_env=self.persisted_env.__setitem__,
                add_path=lambda folder: self.paths.insert(0, folder),
                record=self.record,
                log=log,
                environment=environment_of(self.job),
            )
            result.outputs.update({k: str(v) for k, v in (action(call) or {}).items()})
        except (ActionFailed, ExpressionError) as error:
            result.outcome = result.conclusion = "failure"
            result.errors.append(str(error))
            log(f"::error::{error}")
            result.tail = lines[-TAIL_LINES:]
        return result
