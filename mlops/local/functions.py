"""The template's Lambda functions, loaded in this process and invoked the way Lambda would."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import sys
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from . import principals
from .template import ACCOUNT_ID

log = logging.getLogger("mlops.local.functions")


@dataclass(frozen=True)
class FunctionSpec:
    """A created function as this process runs it: its handler in its code folder, and its environment."""

    logical_id: str
    code_dir: Path
    module: str
    attribute: str
    environment: dict[str, Any]
    api_events: tuple[tuple[str, str], ...] = ()  # (METHOD, path) its API routes here


@dataclass
class LambdaContext:
    function_name: str
    invoked_function_arn: str
    aws_request_id: str
    memory_limit_in_mb: int = 256
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 30_000


_STACKS: list[LocalFunctions] = []


class FunctionLoadError(RuntimeError):
    """A function's module could not be loaded."""


def function_arn(region: str, name: str) -> str:
    return f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{name}"


def _function_name(function: str) -> str:
    return function.split(":function:", 1)[-1].split(":", 1)[0]


def invoke_any(function: str, event: Any) -> tuple[bool, Any]:
    """Lambda's Invoke for every local stack: the function name says which stack's handler runs."""
    name = _function_name(function)
    for stack in reversed(_STACKS):
        if name in stack._logical:
            return stack.invoke(function, event)
    return False, {
        "errorType": "ResourceNotFoundException",
        "errorMessage": f"Function not found: {function}",
    }


class LocalFunctions:
    def __init__(
        self,
        specs: dict[str, FunctionSpec],
        environment: dict[str, dict[str, str]],
        region: str,
        log_path: Path | None = None,
        arns: dict[str, str] | None = None,
        keys: dict[str, principals.Principal] | None = None,
    ):
        """``arns``: the created functions' ARNs by logical id (by default each is named after its logical id);
        ``keys``: the role each function's calls sign as (by default the caller's)."""
        self.specs = specs
        self.log_path = log_path
        self.region = region
        self.arns = arns or {logical: function_arn(region, logical) for logical in specs}
        self.keys = keys or {}
        self._logical = {
            **{_function_name(arn): logical for logical, arn in self.arns.items()},
            **{lo: lo for lo in specs},
        }
        self._handlers: dict[str, Callable[[Any, Any], Any]] = {}
        self._load_error: Exception | None = None
        self._log_stream: TextIO | None = None
        self._redirected: list[tuple[logging.StreamHandler, TextIO]] = []  # (handler, the stream it had)
        self._set_environment(environment)
        # The modules load while the caller goes on (their imports take most of a second); invoke waits.
        self._loader = threading.Thread(target=self._load, args=(environment,), name="functions", daemon=True)
        self._loader.start()
        _STACKS.append(self)

    def close(self) -> None:
        """Takes these functions out of Lambda's Invoke (a stopped stack answers no more), lets loading end
        while the stack's environment is still set, and gives the loggers back the streams they had."""
        with contextlib.suppress(ValueError):
            _STACKS.remove(self)
        self._loader.join(timeout=30)  # imports take about a second; never hang a shutdown on them
        for handler, previous in self._redirected:
            handler.setStream(previous)
        self._redirected.clear()
        if self._log_stream is not None:
            self._log_stream.close()
            self._log_stream = None

    def _set_environment(self, environment: dict[str, dict[str, str]]) -> None:
        # All functions share this process, so their variables must agree where names repeat.
        merged: dict[str, str] = {}
        for logical, env in environment.items():
            for key, value in env.items():
                if merged.get(key, value) != value:
                    raise ValueError(
                        f"{logical} sets {key}={value!r} but another function sets {merged[key]!r}"
                    )
                merged[key] = value
        os.environ.update(merged)

    def _load(self, environment: dict[str, dict[str, str]]) -> None:
        try:
            self._load_modules(environment)
        except Exception as error:
            log.error("loading the functions failed: %s: %s", type(error).__name__, error)
            self._load_error = error

    def _load_modules(self, environment: dict[str, dict[str, str]]) -> None:
        for logical, spec in self.specs.items():
            path = spec.code_dir / f"{spec.module.replace('.', '/')}.py"
            if str(spec.code_dir) not in sys.path:
                sys.path.insert(0, str(spec.code_dir))
            module_spec = importlib.util.spec_from_file_location(f"localfn_{logical}_{spec.module}", path)
            if module_spec is None or module_spec.loader is None:
                raise ImportError(f"cannot load {path} for {logical}")
            module = importlib.util.module_from_spec(module_spec)
            module_spec.loader.exec_module(module)
            self._handlers[logical] = getattr(module, spec.attribute)
        if self.log_path:
            self._send_logs_to(
                self.log_path, {env.get("POWERTOOLS_SERVICE_NAME") for env in environment.values()}
            )

    def _send_logs_to(self, path: Path, logger_names: set[str | None]) -> None:
        """Function logs go to a file, as they would go to CloudWatch Logs, not into the CLI's output."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self._log_stream = path.open("a", buffering=1)
        for name in filter(None, logger_names):
            for handler in logging.getLogger(name).handlers:
                if isinstance(handler, logging.StreamHandler) and not isinstance(
                    handler, logging.FileHandler
                ):
                    previous = handler.setStream(self._log_stream)
                    if previous is not None:  # None: it already wrote there
                        self._redirected.append((handler, previous))

    def logical_id_for(self, function: str) -> str:
        name = _function_name(function)
        if name not in self._logical:
            raise LookupError(f"no function {name!r} in the template")
        return self._logical[name]

    def loaded(self) -> None:
        """Waits until the function modules are loaded; raises what loading them raised."""
        self._loader.join()
        if self._load_error is not None:
            raise FunctionLoadError(f"{type(self._load_error).__name__}: {self._load_error}")

    def invoke(self, function: str, event: Any) -> tuple[bool, Any]:
        logical = self.logical_id_for(function)
        try:
            self.loaded()
        except FunctionLoadError as error:  # as Lambda reports a handler that cannot be imported
            return False, {"errorType": "Runtime.ImportModuleError", "errorMessage": str(error)}
        context = LambdaContext(logical, self.arns[logical], str(uuid.uuid4()))
        try:
            with principals.acting_as(self.keys.get(logical, principals.current())):
                return True, self._handlers[logical](event, context)
        except Exception as exc:  # Lambda turns an unhandled error into FunctionError + errorType
            log.debug("%s raised %s", logical, type(exc).__name__)
            return False, {"errorType": type(exc).__name__, "errorMessage": str(exc)}


# -- Lambda's Invoke API -----------------------------------------------------------------------------------
# moto's Lambda would run a function in Docker; the local AWS's Invoke (`aws lambda invoke`, `mlops drift`)
# runs the template's handler in this process instead, as the state machine's invokes do.
_original_backend_invoke: Any = None


def _backend_invoke(self, function_name: str, qualifier, body, headers, response_headers) -> str:
    try:
        event = json.loads(body) if body else {}
    except ValueError as error:
        response_headers["x-amz-function-error"] = "Unhandled"
        return json.dumps({"errorType": "InvalidRequestContentException", "errorMessage": str(error)})
    ok, result = invoke_any(function_name, event)
    if not ok:
        response_headers["x-amz-function-error"] = "Unhandled"
    return json.dumps(result, default=str)


def install_invoke() -> None:
    global _original_backend_invoke
    from moto.awslambda.models import LambdaBackend

    if _original_backend_invoke is None:
        _original_backend_invoke = LambdaBackend.invoke
        LambdaBackend.invoke = _backend_invoke


def uninstall_invoke() -> None:
    global _original_backend_invoke
    from moto.awslambda.models import LambdaBackend

    if _original_backend_invoke is not None:
        LambdaBackend.invoke = _original_backend_invoke
        _original_backend_invoke = None
