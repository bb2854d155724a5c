import json
import urllib.error
import urllib.request

import pytest

from mlops.local.functions import LocalFunctions
from mlops.local.gateway import Gateway
from mlops.local.template import FunctionSpec, Resolver, Template

HANDLER = """
import json
def handler(event, context):
    if event["queryStringParameters"] and event["queryStringParameters"].get("boom"):
        raise RuntimeError("boom")
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"},
            "body": json.dumps({"method": event["httpMethod"], "path": event["path"], "body": event["body"],
                                "stage": event["requestContext"]["stage"]})}
"""


@pytest.fixture
def gateway(tmp_path):
    (tmp_path / "echo_handler.py").write_text(HANDLER)
    spec = FunctionSpec(
        "EchoFunction", tmp_path, "echo_handler", "handler", {}, (("POST", "/v1/echo"), ("GET", "/open"))
    )
    functions = LocalFunctions({"EchoFunction": spec}, {"EchoFunction": {}}, "us-east-1")
    gw = Gateway(functions, {("POST", "/v1/echo"): {"api_key"}, ("GET", "/open"): set()}, api_key="k3y")
    url = gw.start()
    yield url
    gw.stop()


def _call(url, method="GET", body=None, headers=None):
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_request_becomes_a_rest_proxy_event_under_the_stage(gateway):
    status, body = _call(gateway + "/v1/echo", "POST", b'{"a":1}', {"x-api-key": "k3y"})
    assert status == 200
    assert body == {"method": "POST", "path": "/v1/echo", "body": '{"a":1}', "stage": "Prod"}


def test_route_that_requires_an_api_key_is_403_without_it(gateway):
    assert _call(gateway + "/v1/echo", "POST", b"{}") == (403, {"message": "Forbidden"})
    assert _call(gateway + "/v1/echo", "POST", b"{}", {"x-api-key": "nope"})[0] == 403


def test_unknown_route_or_method_is_missing_authentication_token(gateway):
    assert _call(gateway + "/nowhere") == (403, {"message": "Missing Authentication Token"})
    assert _call(gateway + "/open", "DELETE")[0] == 403


def test_handler_exception_is_502_not_a_dropped_connection(gateway):
    assert _call(gateway + "/open?boom=1") == (502, {"message": "Internal server error"})


def test_template_security_follows_the_inference_auth_parameter():
    template = Template()
    conditions = template.conditions()

    def security(auth: str):
        params = {**template.parameter_defaults(), "InferenceAuth": auth}
        resolver = Resolver(params, {}, {}, "us-east-1", conditions)
        return template.api_security(resolver)[("POST", "/v1/invokeSagemakerAPI")]

    assert security("API_KEY") == {"api_key"}
    assert security("IAM") == {"sigv4"}
    assert security("NONE") == set()


def test_resolver_if_and_no_value():
    resolver = Resolver({"Mode": "a"}, {}, {}, "us-east-1", {"IsA": {"Fn::Equals": [{"Ref": "Mode"}, "a"]}})
    assert resolver.resolve({"Fn::If": ["IsA", "yes", "no"]}) == "yes"
    assert resolver.resolve({"x": {"Fn::If": ["IsA", {"Ref": "AWS::NoValue"}, 1]}, "y": 2}) == {"y": 2}
    with pytest.raises(KeyError):
        resolver.condition("Missing")
