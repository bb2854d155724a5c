"""Starting and stopping the local stack leaves the process as it found it, also when the start fails."""

import os

import pytest
from moto.sagemaker.models import SageMakerModelBackend

from mlops.local import sagemaker
from mlops.local.functions import invoke_any
from mlops.local.stack import LocalStack

pytestmark = pytest.mark.slow


def test_a_failed_start_stops_what_it_started(tmp_path, monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    plain_describe = SageMakerModelBackend.describe_endpoint
    broken = LocalStack(work_dir=tmp_path / "broken", definition_path=tmp_path / "missing.asl.json")
    with pytest.raises(FileNotFoundError):
        broken.start()
    assert "AWS_ENDPOINT_URL" not in os.environ
    assert sagemaker._ACTIVE is None
    assert SageMakerModelBackend.describe_endpoint is plain_describe
    ok, error = invoke_any(broken.functions.arns["NotifyFunction"], {})
    assert not ok and error["errorType"] == "ResourceNotFoundException"  # its functions are gone too


def test_a_new_stack_starts_on_an_empty_local_aws(tmp_path):
    for run in ("first", "second"):  # the same project's repository, group and bucket, created twice
        stack = LocalStack(work_dir=tmp_path / run).start()
        try:
            assert (
                stack.client("ecr").describe_repositories()["repositories"][0]["repositoryName"]
                == "mlops-iris"
            )
            assert (
                stack.client("stepfunctions").list_executions(stateMachineArn=stack.state_machine_arn)[
                    "executions"
                ]
                == []
            )
        finally:
            stack.stop()
