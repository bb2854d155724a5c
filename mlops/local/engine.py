"""Plugs the local SageMaker and the local Lambda functions into moto's Step Functions interpreter.

moto runs the real ASL file; it lacks the SageMaker optimised integrations and would send Lambda invokes to
its own Lambda emulation (which needs Docker). These are the private seams it offers for both; the test
``tests/unit/test_engine_seams.py`` fails loudly if an upgrade moves them.
"""

from __future__ import annotations

# isort: off
from . import lean_moto  # noqa: F401 - first, so the interpreter imports below skip moto's EC2 model

# isort: on
import contextlib
import functools
import json
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import ClientError, UnknownServiceError
from moto.core.config import default_user_config
from moto.core.responses import ActionResult, EmptyResult
from moto.settings import moto_server_port
from moto.stepfunctions.parser.api import ExecutionStatus, HistoryEventType, TaskFailedEventDetails
from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task import (
    lambda_eval_utils,
    state_task_factory,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_callback,
    state_task_service_factory,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import ResourceCondition
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import (
    StateTaskService,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk import (
    StateTaskServiceAwsSdk,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
    StateTaskServiceCallback,
)
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
from moto.stepfunctions.parser.asl.utils.boto_client import boto_client_for
from moto.stepfunctions.parser.asl.utils.encoding import to_json_str
from moto.stepfunctions.parser.models import StepFunctionsParserBackend
from moto.stepfunctions.responses import StepFunctionResponse

from . import principals
from .authorizer import Authorizer, Call
from .principals import Principals

LambdaInvoker = Callable[[str, Any], tuple[bool, Any]]
"""(function ARN, event) -> (ok, result or {"errorType", "errorMessage"})."""

# Step Functions' optimised SageMaker integrations, with the Describe call a `.sync` polls.
SAGEMAKER_ACTIONS: dict[str, str | None] = {
    "createTrainingJob": "describe_training_job",
    "createTransformJob": "describe_transform_job",
    "createProcessingJob": "describe_processing_job",
    "createModel": None,
    "createEndpointConfig": None,
    "createEndpoint": None,
    "updateEndpoint": None,
}
_JOB_KEY = {
    "describe_training_job": ("TrainingJobName", "TrainingJobStatus"),
    "describe_transform_job": ("TransformJobName", "TransformJobStatus"),
    "describe_processing_job": ("ProcessingJobName", "ProcessingJobStatus"),
}
# What a `.sync` job task needs besides Create and Describe (Step Functions developer guide, "IAM policies for
# Amazon SageMaker AI"): its managed EventBridge rule for the job's events, and the job's tags.
_SYNC_RULES = {
    "describe_training_job": "StepFunctionsGetEventsForSageMakerTrainingJobsRule",
    "describe_transform_job": "StepFunctionsGetEventsForSageMakerTransformJobsRule",
    "describe_processing_job": "StepFunctionsGetEventsForSageMakerProcessingJobsRule",
}
# AWS SDK integrations name a service by its SDK id, lower case without spaces; where botocore names it otherwise
# (Step Functions developer guide, "AWS SDK service integrations": arn:aws:states:::aws-sdk:applicationautoscaling:…).
SDK_SERVICE_NAMES = {"applicationautoscaling": "application-autoscaling"}
_TERMINAL_OK = {"Completed"}
_TERMINAL_BAD = {"Failed", "Stopped"}


def _jsonable(value: Any, stamp=lambda t: int(t.timestamp() * 1000)) -> Any:
    """Step Functions state data is JSON: timestamps become numbers (epoch ms, as the optimised
    integrations return them) or ISO strings (as the AWS SDK integrations do); no response metadata."""
    if isinstance(value, dict):
        return {k: _jsonable(v, stamp) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, list):
        return [_jsonable(v, stamp) for v in value]
    if isinstance(value, datetime):
        return stamp(value)
    return value


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _aws_sdk_with_json_output(original: Callable) -> Callable:
    # moto pushes the raw boto response, datetimes included, which DescribeExecution cannot serialise.
    def _eval_service_task(self, env, *args, **kwargs):
        with _as_execution_role(env):
            original(self, env, *args, **kwargs)
        env.stack[-1] = _jsonable(env.stack[-1], _iso)

    return _eval_service_task


def _sdk_error_service_name(original: Callable) -> staticmethod:
    """AWS names an AWS SDK integration's errors after the service's SDK id (``SageMaker.SageMakerException``,
    ``SageMaker.ResourceNotFoundException``); moto falls back to the lower-case ARN name (``sagemaker.``), which
    no Retry or Catch written for AWS matches."""

    def _normalise_service_error_name(service_name: str) -> str:
        name = original(service_name)
        if name != service_name:  # moto knows this service's name (DynamoDb, Sfn)
            return name
        try:
            return _service_id(SDK_SERVICE_NAMES.get(service_name, service_name))
        except UnknownServiceError:
            return name

    return staticmethod(_normalise_service_error_name)


@functools.cache
def _service_id(service_name: str) -> str:
    return botocore.session.get_session().get_service_model(service_name).service_id.replace(" ", "")


class SageMakerTask(StateTaskServiceCallback):
    """``arn:aws:states:::sagemaker:<action>[.sync]`` as Step Functions runs it, against the local AWS."""

    def __init__(self) -> None:
        # WaitForTaskToken is declared only because moto's `.sync` cleanup needs a callback endpoint;
        # `_eval_body` refuses it for SageMaker, as AWS does.
        super().__init__({ResourceCondition.Sync, ResourceCondition.WaitForTaskToken})

    def _get_supported_parameters(self) -> set[str] | None:
        return set() if self.resource.api_action in SAGEMAKER_ACTIONS else None

    def _eval_body(self, env) -> None:
        if self.resource.condition == ResourceCondition.WaitForTaskToken:
            raise ValueError(f"{self.resource.resource_arn}: SageMaker has no .waitForTaskToken integration")
        if (
            self.resource.condition == ResourceCondition.Sync
            and not SAGEMAKER_ACTIONS[self.resource.api_action]
        ):
            raise ValueError(f"{self.resource.resource_arn}: only jobs have a .sync integration")
        super()._eval_body(env)

    def _client(self, region: str, credentials):
        return _client_for(region, "sagemaker", credentials)

    def _eval_service_task(self, env, resource_runtime_part, normalised_parameters, state_credentials):
        client = self._client(resource_runtime_part.region, state_credentials)
        action = self._get_boto_service_action()
        with _as_execution_role(env):
            response = getattr(client, action)(**normalised_parameters)
        env.stack.append(_jsonable(response))

    def _build_sync_resolver(self, env, resource_runtime_part, normalised_parameters, state_credentials):
        describe = SAGEMAKER_ACTIONS[self.resource.api_action]
        name_key, status_key = _JOB_KEY[describe]
        name = normalised_parameters[name_key]
        client = self._client(resource_runtime_part.region, state_credentials)
        created = env.stack.pop()
        with _as_execution_role(env):
            self._check_sync_permissions(resource_runtime_part.region, describe, created)

        def resolve() -> dict | None:
            with _as_execution_role(env):
                job = _jsonable(getattr(client, describe)(**{name_key: name}))
            status = job[status_key]
            if status in _TERMINAL_OK:
                return job
            if status in _TERMINAL_BAD:
                raise FailureEventException(
                    self._task_failed(
                        env, "SageMaker.JobFailed" if status == "Failed" else "SageMaker.JobStopped", job
                    )
                )
            return None

        return resolve

    @staticmethod
    def _check_sync_permissions(region: str, describe: str, created: dict) -> None:
        acting = principals.current()
        if _AUTHORIZER is None or acting is None:
            return
        rule = _SYNC_RULES[describe]
        job_arn = next((v for k, v in created.items() if k.endswith("JobArn")), None)
        calls = [
            ("events", "PutTargets", {"Rule": rule}),
            ("events", "PutRule", {"Name": rule}),
            ("events", "DescribeRule", {"Name": rule}),
            *([("sagemaker", "ListTags", {"ResourceArn": job_arn})] if job_arn else []),
        ]
        for service, operation, params in calls:
            call = Call(acting.role_arn, service, operation, params, region, caller=acting.session_arn)
            outcome = _AUTHORIZER.authorize(call)
            if not outcome.allowed:
                raise ClientError({"Error": {"Code": outcome.code, "Message": outcome.message}}, operation)

    def _task_failed(self, env, error: str, cause: Any) -> FailureEvent:
        cause_text = cause if isinstance(cause, str) else to_json_str(cause)
        return FailureEvent(
            env=env,
            error_name=CustomErrorName(error),
            event_type=HistoryEventType.TaskFailed,
            event_details=EventDetails(
                taskFailedEventDetails=TaskFailedEventDetails(
                    error=error,
                    cause=cause_text,
                    resource=self._get_sfn_resource(),
                    resourceType=self._get_sfn_resource_type(),
                )
            ),
        )

    def _from_error(self, env, ex: Exception) -> FailureEvent:
        if isinstance(ex, ClientError):
            code = ex.response["Error"]["Code"]
            # Step Functions reports SageMaker API errors under this name; throttling keeps its own.
            error = (
                "SageMaker.ThrottlingException"
                if code == "ThrottlingException"
                else "SageMaker.AmazonSageMakerException"
            )
            return self._task_failed(env, error, f"{ex.response['Error']['Message']} (Error Code: {code})")
        return super()._from_error(env, ex)


def _factory_with_sagemaker(original: Callable) -> Callable:
    def state_task_service_for(service_name: str):
        return SageMakerTask() if service_name == "sagemaker" else original(service_name)

    return state_task_service_for


def _lambda_adapter(invoke: LambdaInvoker, authorizer: Authorizer | None) -> Callable:
    def _invoke_lambda_function(parameters: dict, region: str, state_credentials) -> dict:
        acting = principals.current()
        if authorizer is not None and acting is not None:  # Lambda checks lambda:InvokeFunction of the caller
            call = Call(
                acting.role_arn, "lambda", "Invoke", {"FunctionName": parameters["FunctionName"]}, region
            )
            outcome = authorizer.authorize(call)
            if not outcome.allowed:
                raise ClientError(
                    {
                        "Error": {"Code": outcome.code, "Message": outcome.message},
                        "ResponseMetadata": {"HTTPStatusCode": 403},
                    },
                    "Invoke",
                )
        payload = parameters.get("Payload") or b"{}"
        event = json.loads(payload.decode() if isinstance(payload, bytes) else payload)
        ok, result = invoke(parameters["FunctionName"], event)
        response = {"StatusCode": 200, "ExecutedVersion": "$LATEST", "Payload": result}
        if not ok:
            response["FunctionError"] = "Unhandled"
        return response

    return _invoke_lambda_function


def _client_for(region: str, service: str, state_credentials: Any = None):
    """moto's interpreter signs every call with made-up keys; here the execution's thread signs with its state
    machine's role (mlops.local.principals), as Step Functions calls with the state machine's role on AWS."""
    return boto3.client(
        service,
        region_name=region,
        endpoint_url=f"http://localhost:{moto_server_port()}",
        config=Config(parameter_validation=False, retries={"max_attempts": 0, "total_max_attempts": 1}),
    )


def _as_execution_role(env):
    """Calls made inside sign as the execution's state machine role (moto evaluates tasks in threads of
    their own, so the role comes from the task's environment, not from the thread that started it)."""
    if _ROLES is None:
        return contextlib.nullcontext()
    return principals.acting_as(
        _ROLES.for_service(env.aws_execution_details.role_arn, "states.amazonaws.com")
    )


def _lambda_as_execution_role(original: Callable) -> Callable:
    def execute_lambda_function_integration(env, *args, **kwargs):
        with _as_execution_role(env):
            return original(env, *args, **kwargs)

    return execute_lambda_function_integration


def _stop_execution_at_once(original: Callable) -> Callable:
    """StopExecution answers once the execution is ABORTED, as on AWS; moto's worker stops a moment later, so a
    DescribeExecution right after it could still say RUNNING."""

    def stop_execution(self, execution_arn: str):
        execution = original(self, execution_arn)
        deadline = time.monotonic() + 5
        while (
            getattr(execution, "exec_status", None) == ExecutionStatus.RUNNING and time.monotonic() < deadline
        ):
            time.sleep(0.01)
        return execution

    return stop_execution


def _send_task_failure_with_cause(self) -> ActionResult:
    """moto's handler drops ``cause``; the approver's reason belongs in the history."""
    self.stepfunction_backend.send_task_failure(
        self._get_param("taskToken"), error=self._get_param("error"), cause=self._get_param("cause")
    )
    return EmptyResult()


class _ParseOnce:
    """moto parses a definition when a state machine is created (to validate it) and again for every
    execution: about half a second each for this pipeline's ASL. The program the validation built, never run,
    is handed to the next execution of the same definition; executions never share a program."""

    def __init__(self) -> None:
        self._unused: dict[str, Any] = {}
        self._validating = threading.local()
        self._lock = threading.Lock()

    def validate(self, original: Callable) -> Callable:
        def _validate_definition(definition: str):
            self._validating.on = True
            try:
                return original(definition=definition)
            finally:
                self._validating.on = False

        return staticmethod(_validate_definition)

    def parse(self, original: Callable) -> Callable:
        def parse(definition: str):
            if getattr(self._validating, "on", False):
                parsed = original(definition)
                with self._lock:
                    self._unused[definition] = parsed
                return parsed
            with self._lock:
                unused = self._unused.pop(definition, None)
            return unused if unused is not None else original(definition)

        return staticmethod(parse)


_PARSE_ONCE = _ParseOnce()


# What install() was given: the state machines' roles, and the check of calls the interpreter makes in-process.
_ROLES: Principals | None = None
_AUTHORIZER: Authorizer | None = None
_saved: dict[str, tuple[Any, str, Any]] = {}  # what install() replaced: key -> (owner, name, original)
_INHERITED = object()  # what _saved holds for a name the class did not define itself


def _original(owner: Any, name: str) -> Any:
    key = f"{owner.__name__}.{name}"
    return _saved[key][2] if key in _saved else owner.__dict__[name]


def _patch_inherited(owner: type, name: str, value: Any) -> None:
    """Patches a method the class inherits: uninstall() deletes it again, and the base class's shows through."""
    _saved.setdefault(f"{owner.__name__}.{name}", (owner, name, owner.__dict__.get(name, _INHERITED)))
    setattr(owner, name, value)


def _patch(owner: Any, name: str, value: Any) -> None:
    _saved.setdefault(f"{owner.__name__}.{name}", (owner, name, owner.__dict__[name]))
    setattr(owner, name, value)


def install(
    invoke_lambda: LambdaInvoker,
    roles: Principals | None = None,
    authorizer: Authorizer | None = None,
    poll_seconds: float = 0.05,
) -> None:
    """Turns the interpreter on and routes SageMaker and Lambda tasks locally (idempotent). With `roles`, each
    execution's calls sign as its state machine's role; with `authorizer`, Lambda invokes are checked too."""
    global _AUTHORIZER, _ROLES
    _AUTHORIZER, _ROLES = authorizer, roles
    config = default_user_config.setdefault("stepfunctions", {})
    _saved.setdefault(
        "execute_state_machine", (config, "execute_state_machine", config.get("execute_state_machine"))
    )
    config["execute_state_machine"] = True
    factory = _factory_with_sagemaker(_original(state_task_factory, "state_task_service_for"))
    _patch(state_task_factory, "state_task_service_for", factory)
    _patch(state_task_service_factory, "state_task_service_for", factory)
    _patch(lambda_eval_utils, "_invoke_lambda_function", _lambda_adapter(invoke_lambda, authorizer))
    _patch(
        lambda_eval_utils,
        "execute_lambda_function_integration",
        _lambda_as_execution_role(_original(lambda_eval_utils, "execute_lambda_function_integration")),
    )
    if roles is not None:
        for name, module in list(sys.modules.items()):
            interpreter = name.startswith("moto.stepfunctions.parser") and module is not None
            if interpreter and module.__dict__.get("boto_client_for") is boto_client_for:
                _patch(module, "boto_client_for", _client_for)
    _patch(StepFunctionResponse, "send_task_failure", _send_task_failure_with_cause)
    overrides = _original(StateTaskService, "_SERVICE_NAME_SFN_TO_BOTO_OVERRIDES")
    _patch(StateTaskService, "_SERVICE_NAME_SFN_TO_BOTO_OVERRIDES", {**overrides, **SDK_SERVICE_NAMES})
    stop = StepFunctionsParserBackend.stop_execution  # inherited from moto's plain backend
    _patch_inherited(StepFunctionsParserBackend, "stop_execution", _stop_execution_at_once(stop))
    _patch(
        StateTaskServiceAwsSdk,
        "_eval_service_task",
        _aws_sdk_with_json_output(_original(StateTaskServiceAwsSdk, "_eval_service_task")),
    )
    _patch(
        StateTaskServiceAwsSdk,
        "_normalise_service_error_name",
        _sdk_error_service_name(_original(StateTaskServiceAwsSdk, "_normalise_service_error_name").__func__),
    )
    _patch(state_task_service_callback, "_DELAY_SECONDS_SYNC_CONDITION_CHECK", poll_seconds)
    validate = _original(StepFunctionsParserBackend, "_validate_definition").__func__
    _patch(StepFunctionsParserBackend, "_validate_definition", _PARSE_ONCE.validate(validate))
    parse = _original(AmazonStateLanguageParser, "parse").__func__
    _patch(AmazonStateLanguageParser, "parse", _PARSE_ONCE.parse(parse))


def uninstall() -> None:
    """moto's interpreter is plain moto again (later tests in the same process may use it)."""
    for owner, name, original in _saved.values():
        if original is _INHERITED:
            delattr(owner, name)
        elif not isinstance(owner, dict):
            setattr(owner, name, original)
        elif original is None:
            owner.pop(name, None)
        else:
            owner[name] = original
    _saved.clear()
    global _AUTHORIZER, _ROLES
    _AUTHORIZER, _ROLES = None, None
