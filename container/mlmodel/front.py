"""The model server's front: an ASGI app, run by gunicorn's asyncio worker, in front of the WSGI app.

A sync worker reads a request's body itself, so a client that sends its body slowly holds the whole worker
until the last byte arrives: two such clients stalled both workers of a two-core endpoint. Here the event
loop buffers every body, many at once, and only a complete body reaches the model code, which then runs
without waiting on the network. A body that has not arrived within the body timeout is a 408 and the
connection is closed, so a stalled client holds nothing for long. The handlers behind it are CPU-only and
take microseconds (a batch of rows: milliseconds), so they run inline in the loop, without a thread hop.
"""

from __future__ import annotations

import asyncio
import io
import json
import sys
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
WsgiApp = Callable[[dict, Callable], Iterable[bytes]]


def _json_response(status: int, payload: dict) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    return status, headers, body


class BufferedFront:
    """ASGI → WSGI with the whole body read first (at most ``max_bytes + 1`` bytes, within ``body_timeout``
    seconds); a body announced as larger than ``max_bytes`` is not read at all: the app answers 413."""

    def __init__(self, app: WsgiApp, max_bytes: int, body_timeout: float):
        self.app = app
        self.max_bytes = max_bytes
        self.body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":  # no websockets: refuse the handshake
            await send({"type": "websocket.close", "code": 1003})
            return
        try:
            async with asyncio.timeout(self.body_timeout):
                body = await self._body(scope, receive)
        except TimeoutError:
            status, headers, payload = _json_response(
                408, {"error": f"the request body did not arrive within {self.body_timeout:g} s"}
            )
            headers.append((b"connection", b"close"))
            await self._send(send, status, headers, payload)
            return
        if body is None:  # the client went away
            return
        status, headers, payload = self._call_wsgi(scope, body)
        await self._send(send, status, headers, payload)

    async def _body(self, scope: Scope, receive: Receive) -> bytes | None:
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return b""  # the app answers 413 from the announced length; nothing is read
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
            if size > self.max_bytes or not message.get("more_body", False):
                return b"".join(chunks)  # over the limit: the app sees more than it takes and says 413

    def _call_wsgi(self, scope: Scope, body: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        environ = wsgi_environ(scope, body)
        started: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
            started[:] = [status, headers]

        result = self.app(environ, start_response)
        try:
            payload = b"".join(result)
        finally:
            if hasattr(result, "close"):
                result.close()
        status, headers = started
        return (
            int(status.split(" ", 1)[0]),
            [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers],
            payload,
        )

    @staticmethod
    async def _send(send: Send, status: int, headers: list[tuple[bytes, bytes]], payload: bytes) -> None:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    @staticmethod
    async def _lifespan(receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return value.decode("latin-1").strip()
    return None


def wsgi_environ(scope: Scope, body: bytes) -> dict[str, Any]:
    """The WSGI environ (PEP 3333) of an ASGI HTTP scope whose body has been read."""
    server = scope.get("server") or ("localhost", 8080)
    client = scope.get("client") or ("", 0)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": scope.get("root_path", "").encode().decode("latin-1"),
        "PATH_INFO": scope["path"].encode().decode("latin-1"),
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1]),
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "REMOTE_ADDR": str(client[0]),
        "REMOTE_PORT": str(client[1]),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.decode("latin-1").upper().replace("-", "_")
        value = raw_value.decode("latin-1")
        if name not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            name = "HTTP_" + name
        environ[name] = f"{environ[name]},{value}" if name in environ else value
    if "HTTP_TRANSFER_ENCODING" in environ:  # the body is whole now: its length is what it is
        environ["CONTENT_LENGTH"] = str(len(body))
    return environ
