import json
import re

import pytest

from mlops.local.cloudformation import code_sha256, package, sam_transform
from mlops.local.template import Template, substitute


@pytest.fixture(scope="module")
def transformed():
    """infra/template.yaml as `sam package` and the SAM transform leave it (no AWS involved)."""
    uploaded = {}

    def put_object(key, body):
        uploaded[key] = body
        return f"s3://packages/{key}"

    template = Template()
    packaged = package(template.doc, template.path.parent, put_object)
    return sam_transform(packaged.template, {}, "us-east-1"), packaged, uploaded


def test_every_function_handler_in_the_transformed_template_is_in_its_package(transformed):
    template, packaged, uploaded = transformed
    functions = {k: r for k, r in template["Resources"].items() if r["Type"] == "AWS::Lambda::Function"}
    assert len(functions) >= 5
    for logical, resource in functions.items():
        code = uploaded[resource["Properties"]["Code"]["S3Key"]]
        module = resource["Properties"]["Handler"].rsplit(".", 1)[0]
        assert (packaged.code_dirs[code_sha256(code)] / f"{module}.py").is_file(), logical


def test_every_substitution_the_definition_uses_is_declared_in_the_transformed_template(transformed):
    template, _, uploaded = transformed
    (machine,) = (
        r for r in template["Resources"].values() if r["Type"] == "AWS::StepFunctions::StateMachine"
    )
    definition = uploaded[machine["Properties"]["DefinitionS3Location"]["Key"]].decode()
    substitutions = machine["Properties"]["DefinitionSubstitutions"]
    json.loads(substitute(definition, {name: "x" for name in substitutions}))


def test_an_undeclared_substitution_is_an_error_not_a_blank():
    with pytest.raises(KeyError, match="Missing"):
        substitute('{"a": "${Missing}"}', {})


def test_every_default_passes_the_parameter_constraints():
    template = Template()
    template.check_parameters(template.parameter_defaults())


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"NoSuchParam": "1"}, "NoSuchParam is not a parameter of template.yaml; it has ProjectName, "),
        ({"ApprovalTimeoutSeconds": "soon"}, "ApprovalTimeoutSeconds='soon': must be a number"),
        ({"ApprovalLinkTtlSeconds": "59"}, "ApprovalLinkTtlSeconds='59': must be at least 60"),
        ({"InferenceAuth": "OPEN"}, "InferenceAuth='OPEN': must be one of API_KEY, IAM, NONE"),
        ({"ProjectName": "Iris_Model"}, "ProjectName='Iris_Model': must match "),
    ],
)
def test_a_value_cloudformation_would_refuse_is_named_with_the_reason(values, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        Template().check_parameters(values)


def test_values_cloudformation_accepts_pass():
    Template().check_parameters(
        {
            "ApprovalTimeoutSeconds": "2",
            "ApprovalLinkTtlSeconds": "60",
            "InferenceAuth": "NONE",
            "ProjectName": "a-b",
        }
    )
