import json
import selectors
import socket
import time
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
    if event["queryStringParameters"] and event["queryStringParameters"].get("status"):
        return {"statusCode": int(event["queryStringParameters"]["status"]), "body": "{}"}
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"},
            "body": json.dumps({"method": event["httpMethod"], "path": event["path"], "body": event["body"],
                                "stage": event["requestContext"]["stage"],
                                "things": event["multiValueHeaders"].get("X-Thing")})}
"""


@pytest.fixture
def gw(tmp_path):
    (tmp_path / "echo_handler.py").write_text(HANDLER)
    spec = FunctionSpec(
        "EchoFunction", tmp_path, "echo_handler", "handler", {}, (("POST", "/v1/echo"), ("GET", "/open"))
    )
    functions = LocalFunctions({"EchoFunction": spec}, {"EchoFunction": {}}, "us-east-1")
    gw = Gateway(functions, {("POST", "/v1/echo"): {"api_key"}, ("GET", "/open"): set()}, api_key="k3y")
    gw.start()
    yield gw
    gw.stop()


@pytest.fixture
def gateway(gw):
    return gw.origin + "/Prod"


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
    assert body == {"method": "POST", "path": "/v1/echo", "body": '{"a":1}', "stage": "Prod", "things": None}


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


# --- HTTP as API Gateway takes it ---------------------------------------------------------------------


def _raw(gw: Gateway, request: bytes, timeout: float = 5) -> tuple[int, dict[str, str], bytes]:
    """Sends `request` as bytes; the status, headers and body of the answer (the server closes after it)."""
    with socket.create_connection(("127.0.0.1", gw.server.server_address[1]), timeout=timeout) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


def _post(path: str, extra: str = "", body: bytes = b"") -> bytes:
    return f"POST /Prod{path} HTTP/1.1\r\nHost: api\r\n{extra}\r\n".encode() + body


@pytest.mark.parametrize("length", ["abc", "-1", "1e3", "+5", "5, 6"])
def test_a_malformed_content_length_is_a_400_json_at_once(gw, length):
    started = time.monotonic()
    status, headers, body = _raw(gw, _post("/open", f"Content-Length: {length}\r\n", b"{}"))
    assert (status, json.loads(body)) == (400, {"message": "Invalid Content-Length"})
    assert headers["Content-Type"] == "application/json"
    assert time.monotonic() - started < 3  # Content-Length: -1 used to hang reading to the end


def test_two_different_content_lengths_are_a_400(gw):
    request = _post("/v1/echo", "x-api-key: k3y\r\nContent-Length: 2\r\nContent-Length: 3\r\n", b"{}")
    assert _raw(gw, request)[0] == 400


@pytest.mark.parametrize("size", [9000, 64 * 1024, 70 * 1024])
def test_an_over_long_request_line_is_a_414_json(gw, size):
    status, headers, body = _raw(gw, f"GET /Prod/open?q={'a' * size} HTTP/1.1\r\nHost: api\r\n\r\n".encode())
    assert (status, json.loads(body)) == (414, {"message": "Request-URI Too Long"})
    assert headers["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    "headers",
    [
        "X-Big: " + "b" * 11000 + "\r\n",  # over API Gateway's 10 KB of request line and header values
        "X-Huge: " + "b" * 70000 + "\r\n",  # over http.server's own line limit
        "".join(f"X-{i}: v\r\n" for i in range(120)),  # over its 100 headers
    ],
)
def test_oversized_headers_are_a_431_json(gw, headers):
    status, answer_headers, body = _raw(gw, f"GET /Prod/open HTTP/1.1\r\nHost: api\r\n{headers}\r\n".encode())
    assert (status, json.loads(body)) == (431, {"message": "Request Header Fields Too Large"})
    assert answer_headers["Content-Type"] == "application/json"


def test_an_unparseable_request_line_is_a_400_json(gw):
    status, _, body = _raw(gw, b"GARBAGE\r\n\r\n")
    assert (status, json.loads(body)) == (400, {"message": "Bad Request"})


def test_a_body_over_the_payload_limit_is_a_413_json_without_reading_it(gw):
    status, _, body = _raw(gw, _post("/open", f"Content-Length: {11 * 2**20}\r\n"))
    assert (status, json.loads(body)) == (413, {"message": "Request Too Long"})


def test_a_chunked_body_reaches_the_function(gw):
    chunked = b'3\r\n{"a\r\n4\r\n":1}\r\n0\r\n\r\n'
    status, _, body = _raw(gw, _post("/v1/echo", "x-api-key: k3y\r\nTransfer-Encoding: chunked\r\n", chunked))
    assert (status, json.loads(body)["body"]) == (200, '{"a":1}')


def test_a_status_code_without_a_standard_reason_reaches_the_client(gw):
    status, _, body = _raw(gw, b"GET /Prod/open?status=599 HTTP/1.1\r\nHost: api\r\n\r\n")
    assert (status, body) == (599, b"{}")


def test_a_transfer_encoding_other_than_chunked_is_a_501_json_at_once(gw):
    started = time.monotonic()
    status, _, body = _raw(gw, _post("/open", "Transfer-Encoding: gzip, chunked\r\n", b"{}"))
    assert (status, json.loads(body)) == (501, {"message": "Not Implemented"})
    assert time.monotonic() - started < 3


@pytest.mark.parametrize("method", ["HEAD", "OPTIONS"])
def test_head_and_options_on_a_route_without_them_are_api_gateways_403_not_a_501_page(gw, method):
    status, headers, body = _raw(gw, f"{method} /Prod/open HTTP/1.1\r\nHost: api\r\n\r\n".encode())
    assert (status, headers["Content-Type"]) == (403, "application/json")
    if method == "HEAD":
        assert body == b"" and int(headers["Content-Length"]) > 0
    else:
        assert json.loads(body) == {"message": "Missing Authentication Token"}


def test_repeated_x_api_key_headers_are_refused_even_when_one_is_right(gw):
    once = _post("/v1/echo", "x-api-key: k3y\r\nContent-Length: 2\r\n", b"{}")
    assert _raw(gw, once)[0] == 200
    for keys in ("x-api-key: k3y\r\nx-api-key: k3y\r\n", "x-api-key: nope\r\nX-Api-Key: k3y\r\n"):
        status, _, body = _raw(gw, _post("/v1/echo", keys + "Content-Length: 2\r\n", b"{}"))
        assert (status, json.loads(body)) == (403, {"message": "Forbidden"})


def test_a_repeated_header_reaches_the_function_with_every_value(gw):
    request = _post("/v1/echo", "x-api-key: k3y\r\nX-Thing: a\r\nX-Thing: b\r\nContent-Length: 2\r\n", b"{}")
    status, _, body = _raw(gw, request)
    assert (status, json.loads(body)["things"]) == (200, ["a", "b"])


def test_a_burst_of_200_clients_is_answered_in_full(gw):
    # The server's listen queue must hold a burst: with http.server's 5, connections were dropped by the
    # kernel and retried for seconds; with 128 and a thread per connection every one is answered at once.
    assert gw.server.request_queue_size >= 128 and gw.server.multithread
    port = gw.server.server_address[1]
    selector = selectors.DefaultSelector()
    for _ in range(200):
        sock = socket.socket()
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", port))
        selector.register(sock, selectors.EVENT_WRITE, [b""])
    request = b"GET /Prod/open HTTP/1.1\r\nHost: api\r\n\r\n"
    answered = 0
    deadline = time.monotonic() + 15
    while answered < 200 and time.monotonic() < deadline:
        for key, events in selector.select(timeout=1):
            if events & selectors.EVENT_WRITE:
                key.fileobj.send(request)
                selector.modify(key.fileobj, selectors.EVENT_READ, key.data)
                continue
            chunk = key.fileobj.recv(65536)
            key.data[0] += chunk
            if not chunk:
                assert key.data[0].startswith(b"HTTP/1.1 200 ")
                answered += 1
                selector.unregister(key.fileobj)
                key.fileobj.close()
    for key in list(selector.get_map().values()):
        key.fileobj.close()
    assert answered == 200
