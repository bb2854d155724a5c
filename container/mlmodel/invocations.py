"""POST /invocations as a plain WSGI handler placed in front of the Flask app.

Measured under gunicorn, Flask's request and response objects cost more CPU per request than reading a row,
predicting and answering it, so the hot path does without them; Flask keeps the other routes. Every answer,
errors included, is built here from the pure functions in `payload`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from mlmodel.payload import CSV, JSON, InvalidPayload, is_csv, parse_rows, response_type

PATH = "/invocations"
CSV_UTF8 = CSV + "; charset=utf-8"
Answer = tuple[int, str, bytes]
WsgiApp = Callable[[dict, Callable], Iterable[bytes]]


def error(status: int, message: str, **details: object) -> Answer:
    return status, JSON, json.dumps({"error": message, **details}).encode()


class Invocations:
    def __init__(self, model: Any, unavailable: str, max_bytes: int, app: WsgiApp):
        self.model = model  # any slot's served model: n_features and answer(rows, media_type)
        self.unavailable = unavailable
        self.max_bytes = max_bytes
        self.app = app

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != PATH:
            return self.app(environ, start_response)
        status, content_type, body = self.answer(environ)
        headers = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
        if status == HTTPStatus.METHOD_NOT_ALLOWED:
            headers.append(("Allow", "POST"))
        start_response(f"{status} {HTTPStatus(status).phrase}", headers)
        return [body]

    def answer(self, environ: dict) -> Answer:
        if environ.get("REQUEST_METHOD") != "POST":
            return error(405, f"{PATH} takes POST")
        model = self.model
        if model is None:
            return error(503, self.unavailable)
        content_type = environ.get("CONTENT_TYPE")
        if not is_csv(content_type):
            return error(
                415,
                f"unsupported Content-Type {content_type!r}: send text/csv, {model.n_features} numbers a row",
            )
        accept = environ.get("HTTP_ACCEPT")
        out_type = response_type(accept)
        if out_type is None:
            return error(406, f"cannot answer with Accept {accept!r}: ask for text/csv or application/json")
        body = self.read_body(environ)
        if body is None:
            return error(
                413, f"the request body is over {self.max_bytes // 2**20} MB: send fewer rows at a time"
            )
        try:
            rows = parse_rows(body, model.n_features)
        except InvalidPayload as invalid:
            details = {"row": invalid.row} if invalid.row else {}
            return error(400, str(invalid), expected_features=model.n_features, **details)
        return 200, CSV_UTF8 if out_type == CSV else JSON, model.answer(rows, out_type)

    def read_body(self, environ: dict) -> bytes | None:
        """The request body, or None when it is over the limit (read no further than the limit)."""
        stream = environ["wsgi.input"]
        length = environ.get("CONTENT_LENGTH")
        if length:
            try:
                size = int(length)
            except ValueError:
                size = -1
            if size > self.max_bytes:
                return None
            if size >= 0:
                return stream.read(size)
        body = stream.read(self.max_bytes + 1)  # chunked: no length announced
        return None if len(body) > self.max_bytes else body
