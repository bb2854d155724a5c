"""Imported first by the engine: moto's Step Functions interpreter without moto's EC2 model."""

import importlib
import importlib.util
import sys

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
