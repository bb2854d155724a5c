"""The local runtime patches private parts of moto; an upgrade that moves them must fail here, loudly."""

import inspect
import re
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


def test_cloudformation_seams_exist():
    from moto.apigateway.models import APIGatewayBackend, Method, Resource
    from moto.cloudformation import parsing
    from moto.iam.access_control import PermissionResult
    from moto.s3.models import FakeBucket

    # mlops.local.cloudformation replaces this function; moto's parse_resource calls it by its global name
    assert list(inspect.signature(parsing.resource_class_from_type).parameters) == ["resource_type"]
    assert "resource_class_from_type(resource_type)" in inspect.getsource(parsing.parse_resource)
    assert "LogicalId" in inspect.getsource(parsing.parse_and_create_resource)
    assert "StackId" in inspect.getsource(parsing.parse_and_create_resource)
    assert isinstance(parsing.NULL_MODELS, list)
    for cached in (parsing.get_model_list, parsing.get_model_map, parsing.get_name_type_map):
        assert callable(cached.cache_clear)
    assert list(inspect.signature(FakeBucket.get_permission).parameters) == ["self", "action", "resource"]
    assert PermissionResult.NEUTRAL
    # the RestApi adapter imports an OpenAPI body through the backend and sets what the import leaves out
    create = inspect.signature(APIGatewayBackend.create_rest_api).parameters
    assert {"name", "description", "endpoint_configuration"} <= create.keys()
    assert list(inspect.signature(APIGatewayBackend.put_rest_api).parameters) == [
        "self",
        "function_id",
        "api_doc",
        "fail_on_warnings",
        "mode",
    ]
    assert callable(APIGatewayBackend.get_resources) and callable(Resource.get_path)
    method = Method("POST", None)
    assert method.api_key_required is False and hasattr(method, "authorization_type")
    assert "resource_methods" in inspect.getsource(Resource.__init__)


def test_moto_cloudformation_imports_no_model_beyond_the_ones_stood_in_for():
    from moto.cloudformation import parsing

    from mlops.local.lean_moto import CLOUDFORMATION_UNUSED

    imported = set(re.findall(r"^from (moto\.\w+)(?:\.\w+)* import", inspect.getsource(parsing), re.M))
    heavy = {"moto.ec2", "moto.autoscaling", "moto.batch", "moto.ecs", "moto.efs", "moto.elb", "moto.elbv2"}
    assert heavy <= set(CLOUDFORMATION_UNUSED)
    assert set(CLOUDFORMATION_UNUSED) <= imported  # a name moto no longer imports is a stale stand-in


def test_the_local_cloudformation_loads_without_moto_ec2_and_ec2_still_loads_later():
    probe = (
        "import sys, mlops.local.cloudformation as cfn\n"
        "assert 'moto.ec2' not in sys.modules and 'moto.ssm' not in sys.modules\n"
        "import moto.ec2.models, moto.ssm.models\n"
        "assert type(moto.ec2.models.ec2_backends).__name__ == 'BackendDict'\n"
        "cfn.install(lambda name: None); cfn.uninstall()\n"
        "from moto.cloudformation import parsing\n"
        "assert 'AWS::EC2::VPC' in parsing.get_model_map()\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_botocore_model_sharing_seams_exist():
    from moto.core import base_backend, utils

    assert list(inspect.signature(utils._load_service_model).parameters) == ["service_name", "model_name"]
    assert "_load_service_model(" in inspect.getsource(utils.get_service_model)
    assert "get_session()" in inspect.getsource(base_backend.AccountSpecificBackend._generate_regions)
    assert callable(base_backend.AccountSpecificBackend.get_session)
