"""Imported first by the engine: moto's Step Functions interpreter and CloudFormation without moto's EC2 model."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types

BATCH_TASK = "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_batch"


def _import_batch_task_without_ec2() -> None:
    """moto's Step Functions interpreter imports ``moto.batch.utils`` for one enum of job states, and the
    ``moto.batch`` package's ``__init__`` loads moto's whole EC2 model with it: over a second of every
    start-up. Import the interpreter's Batch task under a ``moto.batch`` package that is not executed, then
    forget both, so a later ``import moto.batch`` (a Batch request to the local AWS) loads the real ones."""
    if "moto.batch" in sys.modules or BATCH_TASK in sys.modules:
        return
    spec = importlib.util.find_spec("moto.batch")
    if spec is None:
        return
    sys.modules["moto.batch"] = importlib.util.module_from_spec(spec)
    try:
        importlib.import_module(BATCH_TASK)
    finally:
        sys.modules.pop("moto.batch", None)
        sys.modules.pop("moto.batch.utils", None)
        sys.modules.pop("moto.batch.exceptions", None)


_import_batch_task_without_ec2()


# moto's CloudFormation imports every model it can create, to list them; the templates use none of these, and
# they load moto's EC2 model (instance types, regions: about two seconds of start-up).
CLOUDFORMATION_UNUSED = (
    "moto.ec2",
    "moto.autoscaling",
    "moto.batch",
    "moto.datapipeline",
    "moto.ecs",
    "moto.efs",
    "moto.elb",
    "moto.elbv2",
    "moto.emr",
    "moto.rds",
    "moto.redshift",
    "moto.ssm",
)


class _StandIn(types.ModuleType):
    """A module whose every attribute is a new empty class: imports of it succeed, isinstance checks fail."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.__path__: list[str] = []

    def __getattr__(self, attribute: str) -> type:
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        value = type(attribute, (), {})
        setattr(self, attribute, value)
        return value


class _Deferred:
    """``module.name``, imported when something of it is used: ``x[a][b]`` is deferred too, an attribute is not."""

    def __init__(self, module: str, name: str, keys: tuple = ()) -> None:
        self._module, self._name, self._keys = module, name, keys

    def __getitem__(self, key) -> _Deferred:
        return _Deferred(self._module, self._name, (*self._keys, key))

    def __getattr__(self, attribute: str):
        if attribute.startswith("_"):
            raise AttributeError(attribute)
        value = getattr(importlib.import_module(self._module), self._name)
        for key in self._keys:
            value = value[key]
        return getattr(value, attribute)


class _StandInFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def __init__(self, packages: tuple[str, ...]) -> None:
        self.packages = packages

    def find_spec(self, fullname, path, target=None):
        if any(fullname == p or fullname.startswith(p + ".") for p in self.packages):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        return _StandIn(spec.name)

    def exec_module(self, module) -> None:
        pass


def import_cloudformation_without_unused_models() -> None:
    """Imports ``moto.cloudformation.parsing`` (and Application Auto Scaling's model) with stand-ins for the
    models in CLOUDFORMATION_UNUSED (types the local stacks cannot then create), then forgets the stand-ins, so
    a later ``import moto.ec2`` loads the real one. Nothing happens if moto's CloudFormation or any of those
    models is loaded already."""
    if "moto.cloudformation.parsing" in sys.modules or any(p in sys.modules for p in CLOUDFORMATION_UNUSED):
        return
    finder = _StandInFinder(CLOUDFORMATION_UNUSED)
    sys.meta_path.insert(0, finder)
    try:
        importlib.import_module("moto.cloudformation.parsing")
        importlib.import_module("moto.cloudformation.responses")
        # Application Auto Scaling's model imports moto's ECS (and with it EC2: two seconds) only to check ECS
        # targets; the state machine registers SageMaker ones. Its backends get ECS's when they touch it.
        autoscaling = importlib.import_module("moto.applicationautoscaling.models")
        autoscaling.ecs_backends = _Deferred("moto.ecs", "ecs_backends")
    finally:
        sys.meta_path.remove(finder)
        for name in [n for n in sys.modules if finder.find_spec(n, None)]:
            del sys.modules[name]


def load_botocore_models_once() -> None:
    """The clients, moto's request parsing (``moto.core.utils._load_service_model``, a new loader per service)
    and moto's region lists (``AccountSpecificBackend.get_session``, a session of its own) each parse the same
    botocore service models, several megabytes of JSON for SageMaker alone: all three read them through the
    default session's loader, which parses each once. Idempotent."""
    import boto3
    from moto.core import base_backend, utils

    if getattr(utils._load_service_model, "shared", False):
        return
    session = boto3._get_default_session()  # what boto3.client() creates its clients from
    loader = session._session.get_component("data_loader")

    def _load_service_model(service_name: str, model_name: str):
        return loader.load_service_model(service_name, model_name)

    _load_service_model.shared = True  # type: ignore[attr-defined]
    utils._load_service_model = _load_service_model
    base_backend.AccountSpecificBackend.get_session = classmethod(lambda cls: session)
