"""A local API Gateway: HTTP requests on loopback become REST API proxy events for the template's functions."""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from .functions import LocalFunctions

log = logging.getLogger("mlops.local.gateway")
STAGE = "Prod"
MAX_BODY = 10 * 1024 * 1024  # API Gateway's payload limit


def _json(status: int, message: str) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json"}, json.dumps({"message": message}).encode()


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
        self.server: ThreadingHTTPServer | None = None
        self.routes: dict[tuple[str, str], str] = {}
        self.route(functions, security, api_key, stages)

    def route(
        self,
        functions: LocalFunctions | None,
        security: dict[tuple[str, str], set[str]] | None = None,
        api_key: str | None = None,
        stages: set[str] | None = None,
    ) -> None:
        """``stages``: the API's deployed stage names, each the first segment of a URL path (default Prod)."""
        self.stages = stages or {STAGE}
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
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY:
                    status, headers, body = _json(413, "Request Too Long")
                else:
                    raw = self.rfile.read(length) if length else b""
                    try:
                        status, headers, body = gateway.dispatch(
                            self.command, self.path, dict(self.headers), raw, self.client_address[0]
                        )
                    except Exception:  # API Gateway answers 502 when the integration breaks
                        log.exception("gateway dispatch failed")
                        status, headers, body = _json(502, "Internal server error")
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

            def log_message(self, format: str, *args) -> None:
                log.debug("%s %s", self.command, urlsplit(self.path).path)  # never the query: it holds links

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, name="gateway", daemon=True
        ).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}/{STAGE}"

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    def _denied(self, schemes: set[str], headers: dict[str, str]) -> tuple[int, dict[str, str], bytes] | None:
        lower = {k.lower(): v for k, v in headers.items()}
        if "api_key" in schemes and (not self.api_key or lower.get("x-api-key") != self.api_key):
            return _json(403, "Forbidden")
        if "sigv4" in schemes and not lower.get("authorization", "").startswith("AWS4-HMAC-SHA256 "):
            return _json(403, "Missing Authentication Token")
        return None

    def dispatch(
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes, source_ip: str
    ) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(raw_path)
        stage, _, rest = parts.path.removeprefix("/").partition("/")
        if stage not in self.stages:
            return _json(403, "Missing Authentication Token")
        path = "/" + rest
        logical = self.routes.get((method, path))
        if logical is None or self.functions is None:
            return _json(403, "Missing Authentication Token")
        denied = self._denied(self.security.get((method, path), set()), headers)
        if denied:
            return denied
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
            "multiValueHeaders": {k: [v] for k, v in headers.items()},
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
        ok, result = self.functions.invoke(logical, event)
        if not ok or not isinstance(result, dict) or "statusCode" not in result:
            return _json(502, "Internal server error")
        out_headers = dict(result.get("headers") or {})
        for key, values in (result.get("multiValueHeaders") or {}).items():
            out_headers[key] = ", ".join(values)
        payload = result.get("body") or ""
        data = base64.b64decode(payload) if result.get("isBase64Encoded") else payload.encode()
        return int(result["statusCode"]), out_headers, data
