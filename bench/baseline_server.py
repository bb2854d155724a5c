"""The baseline model server: the upstream `scikit_bring_your_own` predictor, as most teams would run it.

Flask, `pandas.read_csv` on every request body, `model.predict` on the DataFrame, `DataFrame.to_csv` out,
served by gunicorn sync workers, one per core. It reads the model file `train` wrote through our model
loader (`TreeModel.load_estimator`, the scikit-learn estimator itself) and predicts with scikit-learn; the
benchmark checks that both servers answer the same labels for the same rows. Only the benchmark uses it.
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import flask
import pandas as pd
from mlmodel import contract
from mlmodel.model import TreeModel

APP = "bench.baseline_server:app"
REPO_ROOT = Path(__file__).resolve().parents[1]


class ScoringService:
    model = None

    @classmethod
    def get_model(cls):
        if cls.model is None:
            cls.model = TreeModel.load_estimator(contract.Paths.from_env().model_dir).estimator
        return cls.model

    @classmethod
    def predict(cls, data: pd.DataFrame):
        return cls.get_model().predict(data)


app = flask.Flask(__name__)


@app.route("/ping", methods=["GET"])
def ping() -> flask.Response:
    health = ScoringService.get_model() is not None
    return flask.Response(response="\n", status=200 if health else 404, mimetype="application/json")


@app.route("/invocations", methods=["POST"])
def transformation() -> flask.Response:
    if flask.request.content_type != "text/csv":
        return flask.Response(
            response="This predictor only supports CSV data", status=415, mimetype="text/plain"
        )
    data = pd.read_csv(io.StringIO(flask.request.data.decode("utf-8")), header=None)
    print(f"Invoked with {data.shape[0]} records")
    predictions = ScoringService.predict(data)
    out = io.StringIO()
    pd.DataFrame({"results": predictions}).to_csv(out, header=False, index=False)
    return flask.Response(response=out.getvalue(), status=200, mimetype="text/csv")


def main() -> int:
    port = contract.server_port()
    workers = contract.server_workers()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        "sync",
        "--timeout",
        str(contract.server_timeout()),
        "--no-control-socket",
        "--error-logfile",
        "-",
        APP,
    ]
    os.execve(sys.executable, argv, env)  # noqa: S606 - fixed argv, no shell
    return contract.EXIT_UNEXPECTED  # not reached


if __name__ == "__main__":
    sys.exit(main())
