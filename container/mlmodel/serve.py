"""`serve`: the inference server SageMaker starts for endpoints and batch transform.

`create_app()` is a Flask app factory; `create_front()` puts it behind the buffering front (see `front`) and
`main()` hands that to gunicorn's asyncio worker (`mlmodel.serve:create_front()`), so each worker loads the
model once and a slow client never holds a worker. POST /invocations is answered in front of Flask (see
`invocations`); bad input is always a JSON 4xx that says what to fix, never a 500.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

from flask import Flask, Response
from gunicorn.app.wsgiapp import WSGIApplication
from werkzeug.exceptions import HTTPException

from mlmodel import contract
from mlmodel.front import BufferedFront
from mlmodel.invocations import Invocations
from mlmodel.models import load_served_model

log = logging.getLogger("mlmodel.serve")
APP = "mlmodel.serve:create_front()"
GRACEFUL_TIMEOUT_SECONDS = 20  # in-flight requests finish after SIGTERM; SageMaker waits 30 s
# Worker heartbeats touch a file every second; on a container's overlay filesystem that can stall, so
# gunicorn's docs recommend tmpfs. The file is created with mkstemp and unlinked at once.
HEARTBEAT_DIR = "/dev/shm"  # noqa: S108


def _json(status: int, payload: dict) -> Response:
    return Response(json.dumps(payload), status=status, mimetype="application/json")


def _error(status: int, message: str, **details: object) -> Response:
    return _json(status, {"error": message, **details})


def create_app(model_dir: str | Path | None = None) -> Flask:
    if not logging.getLogger().handlers:
        logging.basicConfig(
            stream=sys.stdout, level=logging.INFO, format="%(levelname)s %(name)s: %(message)s"
        )
    model_dir = Path(model_dir) if model_dir else contract.Paths.from_env().model_dir
    app = Flask(__name__)
    max_bytes = contract.MAX_PAYLOAD_MB * 2**20
    app.config["MAX_CONTENT_LENGTH"] = max_bytes
    try:
        workers = contract.server_workers()
    except ValueError:
        workers = contract.available_cpus()

    model = None
    unavailable = ""
    try:
        model = load_served_model(model_dir)
        log.info("loaded model from %s: %s", model_dir, model.describe())
    except Exception as error:
        unavailable = f"the model in {model_dir} cannot be loaded: {type(error).__name__}: {error}"
        log.error("%s", unavailable)

    @app.get("/ping")
    def ping() -> Response:
        if model is None:
            return _error(503, unavailable)
        return Response(b"", status=200, mimetype="text/plain")

    @app.get("/execution-parameters")
    def execution_parameters() -> Response:
        return _json(
            200,
            {
                "MaxConcurrentTransforms": workers,
                "BatchStrategy": contract.BATCH_STRATEGY,
                "MaxPayloadInMB": contract.MAX_PAYLOAD_MB,
            },
        )

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        return _error(error.code or 500, error.description or error.name)

    app.wsgi_app = Invocations(model, unavailable, max_bytes, app.wsgi_app)
    return app


def create_front(model_dir: str | Path | None = None) -> BufferedFront:
    """The app gunicorn serves: `create_app()` behind a front that reads each body whole, with a deadline."""
    app = create_app(model_dir)
    return BufferedFront(app.wsgi_app, app.config["MAX_CONTENT_LENGTH"], contract.body_timeout())


def gunicorn_argv(port: int, workers: int, timeout: int, host: str = contract.DEFAULT_BIND_HOST) -> list[str]:
    argv = [
        "gunicorn",
        "--bind",
        f"{host}:{port}",
        "--workers",
        str(workers),
        # asyncio workers: the event loop reads request bodies, many at once, and the model code runs only
        # on a complete body (sync workers block on a slow client's body: two of them stalled the endpoint)
        "--worker-class",
        "asgi",
        "--asgi-loop",
        "asyncio",
        "--asgi-lifespan",
        "off",
        "--timeout",
        str(timeout),
        "--graceful-timeout",
        str(GRACEFUL_TIMEOUT_SECONDS),
        "--no-control-socket",
        "--error-logfile",
        "-",
        "--log-level",
        "info",
        # gunicorn's default user is whoever imported it (root, before drop_privileges): the workers' files
        # must belong to the user the server runs as now.
        "--user",
        str(os.geteuid()),
        "--group",
        str(os.getegid()),
    ]
    if os.path.isdir(HEARTBEAT_DIR):
        argv += ["--worker-tmp-dir", HEARTBEAT_DIR]
    return [*argv, APP]


def main() -> int:
    try:
        port = contract.server_port()
        host = contract.bind_host()
        workers = contract.server_workers()
        timeout = contract.server_timeout()
        body_timeout = contract.body_timeout()
    except ValueError as error:
        print(f"serve: {error}", file=sys.stderr)
        return contract.EXIT_USER_ERROR
    if who := contract.drop_privileges():  # serve only reads the model
        print(f"serve: {who}", flush=True)
    print(
        f"serve: gunicorn on {host}:{port}, {workers} workers, timeout {timeout} s, "
        f"request bodies within {body_timeout} s",
        flush=True,
    )
    # gunicorn's master runs in this process, so it receives SageMaker's SIGTERM directly, and the workers it
    # forks start with this package, Flask and numpy already imported.
    sys.argv = gunicorn_argv(port, workers, timeout, host)
    WSGIApplication("%(prog)s [OPTIONS] [APP_MODULE]", prog="gunicorn").run()
    return contract.EXIT_UNEXPECTED  # not reached: the master exits through SystemExit
