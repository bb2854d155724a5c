"""Packaging and transforming a template as `sam package` does, and the seam that fills moto's gaps."""

import io
import zipfile

import pytest
from moto.cloudformation import parsing
from moto.cloudformation.exceptions import ValidationError

from mlops.local import cfn_resources, cloudformation
from mlops.local.template import TemplateError

FUNCTION = {"Type": "AWS::Serverless::Function", "Properties": {"CodeUri": "fn/", "Handler": "app.handler"}}


def _uploads():
    uploaded = {}

    def put_object(key, body):
        uploaded[key] = body
        return f"s3://packages/{key}"

    return uploaded, put_object


def test_a_function_folder_zips_the_same_every_time_without_its_bytecode(tmp_path):
    (tmp_path / "app.py").write_text("def handler(e, c): return 1\n")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"\0")
    first = cloudformation.zip_folder(tmp_path)
    assert first == cloudformation.zip_folder(tmp_path)
    assert zipfile.ZipFile(io.BytesIO(first)).namelist() == ["app.py"]


def test_package_uploads_code_and_the_chosen_definition_and_leaves_the_source_template_alone(tmp_path):
    (tmp_path / "fn").mkdir()
    (tmp_path / "fn" / "app.py").write_text("x = 1\n")
    (tmp_path / "other.asl.json").write_text('{"StartAt": "A"}')
    doc = {
        "Resources": {
            "Fn": FUNCTION,
            "Machine": {
                "Type": "AWS::Serverless::StateMachine",
                "Properties": {"DefinitionUri": "missing.json"},
            },
        }
    }
    uploaded, put_object = _uploads()
    packaged = cloudformation.package(doc, tmp_path, put_object, definition=tmp_path / "other.asl.json")
    code_uri = packaged.template["Resources"]["Fn"]["Properties"]["CodeUri"]
    definition_uri = packaged.template["Resources"]["Machine"]["Properties"]["DefinitionUri"]
    assert uploaded[definition_uri.removeprefix("s3://packages/")] == b'{"StartAt": "A"}'
    code = uploaded[code_uri.removeprefix("s3://packages/")]
    assert packaged.code_dirs[cloudformation.code_sha256(code)] == (tmp_path / "fn").resolve()
    assert doc["Resources"]["Fn"]["Properties"]["CodeUri"] == "fn/"


def test_a_definition_that_cannot_be_read_names_the_state_machine(tmp_path):
    doc = {
        "Resources": {
            "Machine": {"Type": "AWS::Serverless::StateMachine", "Properties": {"DefinitionUri": "x"}}
        }
    }
    with pytest.raises(TemplateError, match="Machine: cannot read DefinitionUri"):
        cloudformation.package(doc, tmp_path, _uploads()[1])


def test_a_template_the_sam_transform_refuses_is_a_template_error_naming_the_resource():
    doc = {
        "Transform": "AWS::Serverless-2016-10-31",
        "Resources": {"Fn": {"Type": "AWS::Serverless::Function", "Properties": {"Handler": "app.handler"}}},
    }
    with pytest.raises(TemplateError, match=r"Resource with id \[Fn\] is invalid"):
        cloudformation.sam_transform(doc, {}, "us-east-1")


def test_plain_cloudformation_is_not_transformed():
    doc = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}
    assert cloudformation.sam_transform(doc, {}, "us-east-1") is doc


def test_the_seam_creates_adapted_types_fails_on_unknown_ones_and_uninstall_restores_moto():
    plain = parsing.resource_class_from_type
    cloudformation.install(lambda stack_name: None)
    try:
        assert parsing.resource_class_from_type("AWS::SecretsManager::Secret") is cfn_resources.Secret
        assert parsing.resource_class_from_type("AWS::SNS::Topic").__name__ == "Topic"
        with pytest.raises(ValidationError, match="cannot create resources of type AWS::Nope::Thing"):
            parsing.resource_class_from_type("AWS::Nope::Thing")
        cloudformation.install(lambda stack_name: None)  # twice must not wrap twice
    finally:
        cloudformation.uninstall()
    assert parsing.resource_class_from_type is plain


def test_template_values_are_typed_as_the_api_wants_them():
    client = cfn_resources._cached_client("apigateway", "us-east-1", "http://127.0.0.1:9")
    model = client.meta.service_model.operation_model("CreateUsagePlan").input_shape
    props = cfn_resources._lower_first({"Throttle": {"RateLimit": "10", "BurstLimit": "20"}, "Name": "p"})
    assert cfn_resources._as_shape(props, model) == {
        "throttle": {"rateLimit": 10.0, "burstLimit": 20},
        "name": "p",
    }


def test_an_adapted_resource_that_fails_names_itself_and_the_reason():
    with pytest.raises(ValidationError, match=r"Gate \(AWS::S3::BucketPolicy\) failed to create: KeyError"):
        cfn_resources.BucketPolicy.create_from_cloudformation_json(
            "x", {"Properties": {}}, "123456789012", "us-east-1", LogicalId="Gate"
        )
