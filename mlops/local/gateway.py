"""A local API Gateway: HTTP requests on loopback become REST API proxy events for the template's functions.

Served by werkzeug's threaded WSGI server (a thread per connection, listen backlog 128), so a burst of
clients queues instead of overflowing the kernel's listen queue. Requests API Gateway would refuse are
refused here the same way, as JSON: a malformed Content-Length is 400, an over-long request line 414,
headers over API Gateway's size limit 431, a body over its payload limit 413.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from .functions import LocalFunctions

log = logging.getLogger("mlops.local.gateway")
STAGE = "Prod"
MAX_BODY = 10 * 1024 * 1024  # API Gateway's payload limit
# API Gateway's REST API quotas: the URL of a request, and its request line and header values together.
MAX_REQUEST_LINE = 8192
MAX_HEADER_BYTES = 10240
IDLE_SECONDS = 30  # a connection that sends nothing for this long is closed (its thread freed)
Answer = tuple[int, dict[str, str], bytes]


def _json(status: int, message: str) -> Answer:
    return status, {"Content-Type": "application/json"}, json.dumps({"message": message}).encode()


class _RequestHandler(WSGIRequestHandler):
    """werkzeug's handler, keeping each header as sent (repeats too) and answering its own errors as JSON."""

    timeout = IDLE_SECONDS

    def make_environ(self) -> dict[str, Any]:
        environ = super().make_environ()
        environ["mlops.headers"] = list(self.headers.items())  # werkzeug's environ joins repeated headers
        environ["mlops.request_line"] = self.requestline
        environ["mlops.path"] = self.path  # as sent: werkzeug's REQUEST_URI is re-encoded
        return environ

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # http.server's own refusals (a request line or header line over 64 KiB, over 100 headers, an
        # unparseable request line) would be HTML pages; API Gateway answers JSON.
        _, headers, body = _json(code, HTTPStatus(code).phrase)
        self.close_connection = True
        # A line it cannot parse leaves http.server at HTTP/0.9, which has no status line: answer in 1.1.
        if getattr(self, "request_version", "HTTP/0.9") == "HTTP/0.9":
            self.request_version = "HTTP/1.1"
        self.send_response(code)
        for name, value in {**headers, "Content-Length": str(len(body)), "Connection": "close"}.items():
            self.send_header(name, value)
        self.end_headers()
        if getattr(self, "command", "") != "HEAD":
            self.wfile.write(body)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        path = urlsplit(getattr(self, "path", "")).path  # never the query: it holds approval links
        log.debug("%s %s %s", getattr(self, "command", "") or "-", path[:200], code)

    def log(self, type: str, message: str, *args: Any) -> None:
        log.debug("%s: %s", type, (message % args if args else message)[:500])


def _status_line(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:  # a function may answer any status code; the reason phrase is only a courtesy
        return f"{status} Unknown"


def _content_length(headers: list[tuple[str, str]]) -> int | str | None:
    """The announced body length, None when there is none, or why it cannot be used (a message)."""
    values = [value.strip() for name, value in headers if name.lower() == "content-length"]
    if not values:
        return None
    if len(set(values)) > 1 or not values[0].isdigit() or not values[0].isascii():
        return "Invalid Content-Length"
    return int(values[0])


class Gateway:
    def __init__(
        self,
        functions: LocalFunctions | None,
        security: dict[tuple[str, str], set[str]] | None = None,
        api_key: str | None = None,
        stages: set[str] | None = None,
    ):
        """``security`` maps (METHOD, path) to the schemes the API requires there: ``api_key`` (the
        ``x-api-key`` header must hold ``api_key``) or ``sigv4`` (a SigV4 Authorization header). Without
        ``functions`` it answers 403 for every path until ``route`` gives it some."""
        self.server: BaseWSGIServer | None = None
        self.routes: dict[tuple[str, str], str] = {}
        self.route(functions, security, api_key, stages)

    def route(
        self,
        functions: LocalFunctions | None,
        security: dict[tuple[str, str], set[str]] | None = None,
        api_key: str | None = None,
        stages: set[str] | None = None,
        may_invoke: Callable[[str, str, str, str], str | None] | None = None,
    ) -> None:
        """``stages``: the API's deployed stage names, each the first segment of a URL path (default Prod).
        ``may_invoke(function, METHOD, path, stage)``: None if the function's resource policy lets API Gateway
        invoke it for that route, else why not (API Gateway then answers 500, as on AWS)."""
        self.stages = stages or {STAGE}
        self.may_invoke = may_invoke
        self.functions = functions
        self.security = security or {}
        self.api_key = api_key
        self.routes = {
            (method, path): logical
            for logical, spec in (functions.specs.items() if functions else ())
            for method, path in spec.api_events
        }

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:PORT``: what stands in for ``https://{api}.execute-api.{region}.amazonaws.com``."""
        if self.server is None:
            raise RuntimeError("the gateway is not started")
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def local_url(self, url: str) -> str:
        """An execute-api URL (e.g. a stack output) as this gateway serves it."""
        return re.sub(r"^https://[a-z0-9]+\.execute-api\.[a-z0-9-]+\.amazonaws\.com", self.origin, url)

    def start(self, port: int = 0) -> str:
        self.server = make_server(
            "127.0.0.1", port, self._wsgi, threaded=True, request_handler=_RequestHandler
        )
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, name="gateway", daemon=True
        ).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}/{STAGE}"

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    def _wsgi(self, environ: dict[str, Any], start_response) -> list[bytes]:
        method = environ["REQUEST_METHOD"]
        status, headers, body = self._answer(environ)
        headers = {**headers, "Content-Length": str(len(body))}
        start_response(_status_line(status), list(headers.items()))
        return [b"" if method == "HEAD" else body]

    def _answer(self, environ: dict[str, Any]) -> Answer:
        request_line = environ["mlops.request_line"]
        headers: list[tuple[str, str]] = environ["mlops.headers"]
        if len(request_line) > MAX_REQUEST_LINE:
            return _json(414, "Request-URI Too Long")
        if len(request_line) + sum(len(name) + len(value) for name, value in headers) > MAX_HEADER_BYTES:
            return _json(431, "Request Header Fields Too Large")
        length = _content_length(headers)
        encoding = environ.get("HTTP_TRANSFER_ENCODING")
        if encoding is not None and encoding.strip().lower() != "chunked":
            return _json(501, "Not Implemented")  # a body framed in a way this server cannot read
        chunked = encoding is not None
        if isinstance(length, str) or (chunked and length is not None):
            return _json(400, length if isinstance(length, str) else "Invalid Content-Length")
        if length is not None and length > MAX_BODY:
            return _json(413, "Request Too Long")
        stream = environ["wsgi.input"]
        raw = stream.read(length) if length else (stream.read(MAX_BODY + 1) if chunked else b"")
        if len(raw) > MAX_BODY:
            return _json(413, "Request Too Long")
        try:
            return self.dispatch(
                environ["REQUEST_METHOD"], environ["mlops.path"], headers, raw, environ.get("REMOTE_ADDR", "")
            )
        except Exception:  # API Gateway answers 502 when the integration breaks
            log.exception("gateway dispatch failed")
            return _json(502, "Internal server error")

    def _denied(self, schemes: set[str], headers: list[tuple[str, str]]) -> Answer | None:
        keys = [value for name, value in headers if name.lower() == "x-api-key"]
        # API Gateway reads one x-api-key; a request carrying several presents no one key, and any key it
        # cannot match is the same 403 "Forbidden" (a 400 would tell a prober that one of them was right).
        if "api_key" in schemes and (not self.api_key or keys != [self.api_key]):
            return _json(403, "Forbidden")
        authorization = next((v for n, v in headers if n.lower() == "authorization"), "")
        if "sigv4" in schemes and not authorization.startswith("AWS4-HMAC-SHA256 "):
            return _json(403, "Missing Authentication Token")
        return None

    def dispatch(
        self, method: str, raw_path: str, header_list: list[tuple[str, str]], body: bytes, source_ip: str
    ) -> Answer:
        """The answer to one request; ``header_list`` holds the headers as sent, repeated ones included."""
        parts = urlsplit(raw_path)
        stage, _, rest = parts.path.removeprefix("/").partition("/")
        if stage not in self.stages:
            return _json(403, "Missing Authentication Token")
        path = "/" + rest
        logical = self.routes.get((method, path))
        if logical is None or self.functions is None:
            return _json(403, "Missing Authentication Token")
        denied = self._denied(self.security.get((method, path), set()), header_list)
        if denied:
            return denied
        headers: dict[str, str] = {}
        multi_value: dict[str, list[str]] = {}
        for name, value in header_list:  # as API Gateway: the last value, and every value
            headers[name] = value
            multi_value.setdefault(name, []).append(value)
        query = parse_qs(parts.query, keep_blank_values=True)
        try:
            text, is_b64 = body.decode("utf-8"), False
        except UnicodeDecodeError:
            text, is_b64 = base64.b64encode(body).decode(), True
        event = {
            "resource": path,
            "path": path,
            "httpMethod": method,
            "headers": headers,
            "multiValueHeaders": multi_value,
            "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
            "multiValueQueryStringParameters": query or None,
            "pathParameters": None,
            "stageVariables": None,
            "requestContext": {
                "resourcePath": path,
                "httpMethod": method,
                "path": parts.path,
                "stage": stage,
                "requestId": str(uuid.uuid4()),
                "requestTimeEpoch": int(time.time() * 1000),
                "accountId": "123456789012",
                "apiId": "local",
                "identity": {"sourceIp": source_ip, "userAgent": headers.get("User-Agent", "")},
            },
            "body": text if body else None,
            "isBase64Encoded": is_b64,
        }
        refused = self.may_invoke(logical, method, path, stage) if self.may_invoke else None
        if refused:
            log.warning("API Gateway may not invoke %s: %s", logical, refused)
            return _json(500, "Internal server error")
        ok, result = self.functions.invoke(logical, event)
        if not ok or not isinstance(result, dict) or "statusCode" not in result:
            return _json(502, "Internal server error")
        out_headers = dict(result.get("headers") or {})
        for key, values in (result.get("multiValueHeaders") or {}).items():
            out_headers[key] = ", ".join(values)
        payload = result.get("body") or ""
        data = base64.b64decode(payload) if result.get("isBase64Encoded") else payload.encode()
        return int(result["statusCode"]), out_headers, data
