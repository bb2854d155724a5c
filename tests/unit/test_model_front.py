"""The model server's buffering front, driven as gunicorn's asyncio worker drives it (ASGI messages), in front of
the real app built by `create_front`; the server itself is in tests/integration/test_container_contract.py."""

import asyncio
import json

import pytest
from mlmodel.contract import BODY_TIMEOUT_ENV
from mlmodel.serve import create_front


@pytest.fixture
def front(model_dir, monkeypatch):
    monkeypatch.setenv(BODY_TIMEOUT_ENV, "1")
    return create_front(model_dir)


def _scope(method="POST", path="/invocations", headers=(("content-type", "text/csv"),)):
    return {
        "type": "http",
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.encode(), v.encode()) for k, v in headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
    }


def _serve(front, scope, messages, gap=0.0):
    """Runs one request: `messages` are what the client sends (`gap` seconds apart; None: it stalls)."""
    sent, received = [], 0

    async def receive():
        nonlocal received
        await asyncio.sleep(gap)
        message = messages[received] if received < len(messages) else None
        received += 1
        if message is None:
            await asyncio.sleep(3600)
        return message

    async def send(message):
        sent.append(message)

    async def run():
        await front(scope, receive, send)

    asyncio.run(run())
    status = sent[0]["status"] if sent else None
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return status, dict(sent[0]["headers"]) if sent else {}, body, received


def _chunk(body, more=False):
    return {"type": "http.request", "body": body, "more_body": more}


def test_a_body_sent_in_pieces_reaches_the_model_whole(front):
    pieces = [_chunk(b"4.5,1", True), _chunk(b".3,0.3,0.3\n5.9,3,5.1", True), _chunk(b",1.8")]
    status, headers, body, _ = _serve(front, _scope(), pieces, gap=0.01)
    assert (status, body) == (200, b"setosa\nvirginica")
    assert headers[b"content-type"].startswith(b"text/csv")


def test_a_body_that_stalls_is_a_408_json_after_the_body_timeout(front):
    status, headers, body, _ = _serve(front, _scope(), [_chunk(b"4.5,", True), None])
    assert status == 408
    assert json.loads(body) == {"error": "the request body did not arrive within 1 s"}
    assert headers[b"connection"] == b"close"


def test_a_body_announced_over_the_limit_is_413_without_reading_it(front):
    scope = _scope(headers=(("content-type", "text/csv"), ("content-length", str(7 * 2**20))))
    status, _, body, received = _serve(front, scope, [None])
    assert (status, received) == (413, 0)
    assert "over 6 MB" in json.loads(body)["error"]


def test_a_chunked_body_over_the_limit_is_413_once_the_limit_is_passed(front):
    scope = _scope(headers=(("content-type", "text/csv"), ("transfer-encoding", "chunked")))
    megabyte = _chunk(b"4.5,1.3,0.3,0.3\n" * 2**16, True)
    status, _, _, received = _serve(front, scope, [megabyte] * 20)
    assert (status, received) == (413, 7)


def test_a_client_that_goes_away_mid_body_gets_nothing_and_holds_nothing(front):
    status, _, _, _ = _serve(front, _scope(), [_chunk(b"4.5,", True), {"type": "http.disconnect"}])
    assert status is None


def test_other_routes_reach_the_flask_app(front):
    assert _serve(front, _scope("GET", "/ping", ()), [_chunk(b"")])[0] == 200
    status, _, body, _ = _serve(front, _scope("GET", "/execution-parameters", ()), [_chunk(b"")])
    assert status == 200 and json.loads(body)["MaxPayloadInMB"] == 6
    assert _serve(front, _scope("GET", "/nowhere", ()), [_chunk(b"")])[0] == 404


def test_the_worker_lifespan_starts_and_stops(front):
    sent = []
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

    async def receive():
        return next(messages)

    async def send(message):
        sent.append(message["type"])

    asyncio.run(front({"type": "lifespan"}, receive, send))
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
