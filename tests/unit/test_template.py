import json
import re

import pytest

from mlops.local.template import Resolver, Template, substitute


def test_every_function_handler_in_the_template_exists_on_disk():
    for spec in Template().functions().values():
        assert (spec.code_dir / f"{spec.module}.py").is_file(), spec


def test_every_substitution_the_definition_uses_is_declared_in_the_template():
    path, substitutions = Template().state_machine()
    filled = substitute(path.read_text(), {name: "x" for name in substitutions})
    json.loads(filled)


def test_an_undeclared_substitution_is_an_error_not_a_blank():
    with pytest.raises(KeyError, match="Missing"):
        substitute('{"a": "${Missing}"}', {})


def test_resolver_handles_ref_getatt_and_sub():
    resolver = Resolver({"Stage": "staging"}, {"Bucket": "b1"}, {"Fn": "arn:fn"}, "eu-west-1")
    assert resolver.resolve({"Ref": "Bucket"}) == "b1"
    assert resolver.resolve({"Fn::GetAtt": ["Fn", "Arn"]}) == "arn:fn"
    assert (
        resolver.resolve({"Fn::Sub": "x-${Stage}-${AWS::Region}-${Fn.Arn}"}) == "x-staging-eu-west-1-arn:fn"
    )
    with pytest.raises(KeyError):
        resolver.resolve({"Ref": "Nope"})


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
