"""Starting and stopping the local stack leaves the process as it found it, also when the start fails."""

import json
import os
from pathlib import Path

import pytest
from moto.cloudformation import parsing
from moto.sagemaker.models import SageMakerModelBackend

from mlops.local import sagemaker
from mlops.local.functions import invoke_any
from mlops.local.stack import LocalStack
from mlops.local.template import REPO_ROOT, Template, TemplateError

pytestmark = pytest.mark.slow


def test_a_failed_start_stops_what_it_started(tmp_path, monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    plain_describe = SageMakerModelBackend.describe_endpoint
    plain_resource_class = parsing.resource_class_from_type
    broken = LocalStack(work_dir=tmp_path / "broken", definition_path=tmp_path / "missing.asl.json")
    with pytest.raises(TemplateError, match="ReleaseStateMachine: cannot read DefinitionUri"):
        broken.start()
    assert "AWS_ENDPOINT_URL" not in os.environ
    assert sagemaker._ACTIVE is None
    assert SageMakerModelBackend.describe_endpoint is plain_describe
    assert parsing.resource_class_from_type is plain_resource_class
    assert broken.gateway.server.socket.fileno() == -1  # the gateway it had started is closed


def test_a_failed_stack_names_the_resource_and_stops_the_functions_it_loaded(tmp_path, monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    doc = Template().doc
    del doc["Outputs"]["ApiUrl"]
    broken = LocalStack(work_dir=tmp_path / "broken", template=_copy(tmp_path, doc))
    with pytest.raises(TemplateError, match="has no ApiUrl output"):
        broken.start()
    assert "AWS_ENDPOINT_URL" not in os.environ
    ok, error = invoke_any(broken.functions.arns["NotifyFunction"], {})
    assert not ok and error["errorType"] == "ResourceNotFoundException"  # its functions are gone too


def _copy(tmp_path: Path, doc: dict) -> Template:
    """A copy of the app template beside links to the repository's functions/ and statemachine/."""
    for folder in ("functions", "statemachine"):
        (tmp_path / folder).symlink_to(REPO_ROOT / folder)
    (tmp_path / "infra").mkdir()
    path = tmp_path / "infra" / "template.yaml"
    path.write_text(json.dumps(doc))  # JSON is YAML; the intrinsics are in their long form
    return Template(path)


def _statements(stack: LocalStack, role_logical_id: str) -> dict[str, dict]:
    iam = stack.client("iam")
    role = stack.created.physical[role_logical_id]
    return {
        statement["Sid"]: statement
        for name in iam.list_role_policies(RoleName=role)["PolicyNames"]
        for statement in iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]["Statement"]
    }


def test_the_rehearsal_creates_what_the_template_says_not_what_the_runtime_knows(tmp_path):
    doc = Template().doc
    table = doc["Resources"]["ApprovalTable"]["Properties"]
    table["AttributeDefinitions"][0]["AttributeName"] = table["KeySchema"][0]["AttributeName"] = "release_id"
    statements = doc["Resources"]["ApprovalRequestFunction"]["Properties"]["Policies"][0]["Statement"]
    statements[:] = [s for s in statements if s["Sid"] != "ReadLinkSigningKey"]
    stack = LocalStack(work_dir=tmp_path / "work", template=_copy(tmp_path, doc)).start()
    try:
        table_name = stack.created.physical["ApprovalTable"]
        key = stack.client("dynamodb").describe_table(TableName=table_name)["Table"]["KeySchema"]
        assert key == [{"AttributeName": "release_id", "KeyType": "HASH"}]
        assert "ReadLinkSigningKey" not in _statements(stack, "ApprovalRequestFunctionRole")
        assert "ReadLinkSigningKey" in _statements(stack, "ApprovalResponseFunctionRole")
        # the functions run with the created functions' environment: the generated names of this stack
        environment = stack.functions.specs["ApprovalRequestFunction"].environment
        assert environment["APPROVAL_TABLE"] == table_name
        assert environment["SIGNING_SECRET_ARN"] == stack.created.physical["LinkSigningSecret"]
        assert (
            stack.functions.arns["NotifyFunction"]
            .split(":function:")[1]
            .startswith("mlops-iris-staging-Notify")
        )
    finally:
        stack.stop()


def test_a_second_stage_is_a_second_stack_sharing_the_project_resources(tmp_path):
    staging = LocalStack(work_dir=tmp_path / "staging").start()
    try:
        prod = LocalStack(work_dir=tmp_path / "prod", parameters={"Stage": "prod"}, shared=staging).start()
        staging.companions.append(prod)
        sm = staging.client("sagemaker")
        groups = [
            g["ModelPackageGroupName"] for g in sm.list_model_package_groups()["ModelPackageGroupSummaryList"]
        ]
        assert groups == ["mlops-iris"] == [prod.model_package_group]
        assert "ModelPackageGroup" not in prod.created.physical  # OwnsProjectResources is false in prod
        repositories = staging.client("ecr").describe_repositories()["repositories"]
        assert [r["repositoryName"] for r in repositories] == [prod.ecr_repository]
        assert "ReadStagingModelArtifacts" in prod.created.physical  # PromotesFromStaging
        assert "ReadStagingModelArtifacts" not in staging.created.physical
        assert prod.endpoint_name == "mlops-iris-prod" and prod.bucket != staging.bucket
        assert prod.api_url != staging.api_url
    finally:
        staging.stop()


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
