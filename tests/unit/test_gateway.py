import json
import urllib.error
import urllib.request

import pytest

from mlops.local.cfn_resources import method_security
from mlops.local.functions import FunctionSpec, LocalFunctions
from mlops.local.gateway import Gateway

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


def _body(security):
    return {
        "openapi": "3.0.1",
        "paths": {"/v1/invokeSagemakerAPI": {"post": {"security": security}}},
        "components": {
            "securitySchemes": {
                "api_key": {"type": "apiKey", "name": "x-api-key", "in": "header"},
                "sigv4": {
                    "type": "apiKey",
                    "name": "Authorization",
                    "in": "header",
                    "x-amazon-apigateway-authtype": "awsSigv4",
                },
            }
        },
    }


def test_the_openapi_security_becomes_the_method_settings_api_gateway_imports():
    route = ("POST", "/v1/invokeSagemakerAPI")
    assert method_security(_body([{"api_key": []}]))[route] == {
        "api_key_required": True,
        "authorization_type": "NONE",
    }
    assert method_security(_body([{"sigv4": []}]))[route] == {
        "api_key_required": False,
        "authorization_type": "AWS_IAM",
    }
    assert method_security(_body(None))[route] == {"api_key_required": False, "authorization_type": "NONE"}


def test_a_gateway_started_before_its_routes_answers_403_then_serves_them(tmp_path):
    (tmp_path / "echo_handler.py").write_text(HANDLER)
    gw = Gateway(None)
    url = gw.start()
    try:
        assert url == gw.origin + "/Prod"
        assert gw.local_url("https://abc123.execute-api.us-east-1.amazonaws.com/Prod/x") == url + "/x"
        assert _call(url + "/open")[0] == 403
        spec = FunctionSpec("EchoFunction", tmp_path, "echo_handler", "handler", {}, (("GET", "/open"),))
        gw.route(LocalFunctions({"EchoFunction": spec}, {"EchoFunction": {}}, "us-east-1"))
        assert _call(url + "/open")[0] == 200
    finally:
        gw.stop()
