"""The local runtime patches private parts of moto; an upgrade that moves them must fail here, loudly."""

import inspect
import subprocess
import sys

import moto
from moto.core.config import default_user_config
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.sagemaker.models import FakeEndpoint, FakeTrainingJob, FakeTransformJob, SageMakerModelBackend
from moto.sagemakerruntime.responses import SageMakerRuntimeResponse
from moto.ses.models import SESBackend
from moto.sns.models import Subscription
from moto.stepfunctions.parser.asl.component.state.exec.state_task import (
    lambda_eval_utils,
    state_task_factory,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_callback,
    state_task_service_factory,
)
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
from moto.stepfunctions.responses import StepFunctionResponse

from mlops.local import engine


def test_moto_is_the_pinned_version():
    assert moto.__version__ == "5.2.5"


def test_interpreter_seams_exist():
    assert callable(state_task_factory.state_task_service_for)
    assert callable(state_task_service_factory.state_task_service_for)
    assert list(inspect.signature(lambda_eval_utils._invoke_lambda_function).parameters) == [
        "parameters",
        "region",
        "state_credentials",
    ]
    assert isinstance(state_task_service_callback._DELAY_SECONDS_SYNC_CONDITION_CHECK, float)
    assert callable(StepFunctionResponse.send_task_failure)


def test_sagemaker_backend_seams_exist():
    for name in (
        "create_training_job",
        "create_transform_job",
        "create_endpoint",
        "describe_endpoint",
        "delete_endpoint",
    ):
        assert callable(getattr(SageMakerModelBackend, name))
    assert hasattr(SageMakerModelBackend(region_name="us-east-1", account_id="123456789012"), "_models")
    for cls in (FakeTrainingJob, FakeTransformJob, FakeEndpoint):
        assert "response_object" in dir(cls)
    # InvokeEndpoint's body is taken raw; an error's status travels in the "status" header.
    assert SageMakerRuntimeResponse.use_raw_body is False
    assert SageMakerRuntimeResponse._transform_response({}, ("", {"status": "424"}))[0] == 424


def test_mail_seams_exist():
    assert list(inspect.signature(SESBackend.send_raw_email).parameters)[:4] == [
        "self",
        "source",
        "destinations",
        "raw_data",
    ]
    assert "subject" in inspect.signature(Subscription.publish).parameters


def test_install_routes_sagemaker_keeps_other_services_and_uninstall_restores_moto():
    engine.uninstall()
    plain = {
        "factory": state_task_factory.state_task_service_for,
        "parse": AmazonStateLanguageParser.__dict__["parse"],
        "failure": StepFunctionResponse.send_task_failure,
        "execute": default_user_config.get("stepfunctions", {}).get("execute_state_machine"),
    }
    engine.install(lambda arn, event: (True, {}))
    engine.install(lambda arn, event: (True, {}))  # twice must not wrap twice
    assert type(state_task_factory.state_task_service_for("sagemaker")).__name__ == "SageMakerTask"
    assert type(state_task_factory.state_task_service_for("sns")).__name__ == "StateTaskServiceSns"
    assert default_user_config["stepfunctions"]["execute_state_machine"] is True

    engine.uninstall()
    assert state_task_factory.state_task_service_for is plain["factory"]
    assert state_task_service_factory.state_task_service_for is plain["factory"]
    assert AmazonStateLanguageParser.__dict__["parse"] is plain["parse"]
    assert StepFunctionResponse.send_task_failure is plain["failure"]
    assert default_user_config.get("stepfunctions", {}).get("execute_state_machine") == plain["execute"]


def test_the_interpreter_loads_without_moto_ec2_and_batch_still_loads_later():
    # A fresh interpreter: this test process may have imported moto.batch already.
    probe = (
        "import sys, mlops.local.engine\n"
        "assert 'moto.ec2.models' not in sys.modules, 'moto.ec2 was imported at start-up'\n"
        "from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import "
        "state_task_service_factory as f\n"
        "assert type(f.state_task_service_for('batch')).__name__ == 'StateTaskServiceBatch'\n"
        "import moto.batch\n"
        "assert moto.batch.batch_backends is not None and moto.batch.utils.JobStatus.SUCCEEDED\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_moto_server_seams_exist():
    source = inspect.getsource(ThreadedMotoServer._server_entry)
    assert "make_server(" in source
    assert "_server_ready_event.set()" in source
    assert "serve_forever()" in source


def test_the_local_sagemaker_uninstalled_twice_leaves_moto_as_it_was():
    from mlops.local import sagemaker

    missing = object()
    before = {(owner, name): owner.__dict__.get(name, missing) for owner, name, _ in sagemaker._PATCHES}
    sagemaker.install(object())
    assert all(owner.__dict__.get(name) is patched for owner, name, patched in sagemaker._PATCHES)
    sagemaker.uninstall()
    sagemaker.uninstall()  # a stack stopped twice
    after = {(owner, name): owner.__dict__.get(name, missing) for owner, name, _ in sagemaker._PATCHES}
    assert after == before
