"""The inference app in-process through Flask's test client; the real gunicorn server is in integration."""

import io
import itertools
import json

import pytest
from mlmodel.contract import WORKERS_ENV
from mlmodel.serve import create_app, gunicorn_argv
from mlmodel.serve import main as serve_main
from werkzeug.test import EnvironBuilder

CSV = {"Content-Type": "text/csv"}


@pytest.fixture
def client(model_dir, monkeypatch):
    monkeypatch.setenv(WORKERS_ENV, "3")
    return create_app(model_dir).test_client()


def test_ping_is_200_when_the_model_is_loaded(client):
    assert client.get("/ping").status_code == 200


def test_ping_is_503_with_the_reason_when_the_model_cannot_load(tmp_path):
    response = create_app(tmp_path).test_client().get("/ping")
    assert response.status_code == 503
    assert "cannot be loaded" in response.get_json()["error"]


def test_invocations_are_503_without_a_model(tmp_path):
    response = create_app(tmp_path).test_client().post("/invocations", data=b"1,2,3,4", headers=CSV)
    assert response.status_code == 503


def test_model_dir_defaults_to_the_contract_path(model_dir, monkeypatch, tmp_path):
    (tmp_path / "model").symlink_to(model_dir)
    monkeypatch.setenv("SAGEMAKER_BASE_DIR", str(tmp_path))
    assert create_app().test_client().get("/ping").status_code == 200


def test_one_csv_row_gives_one_label(client):
    response = client.post("/invocations", data=b"4.5,1.3,0.3,0.3", headers=CSV)
    assert (response.status_code, response.mimetype, response.data) == (200, "text/csv", b"setosa")


def test_many_rows_give_labels_in_row_order(client):
    body = b"5.9,3,5.1,1.8\n4.5,1.3,0.3,0.3\n6.0,2.2,4.0,1.0\n5.9,3,5.1,1.8\r\n"
    response = client.post("/invocations", data=body, headers=CSV)
    assert response.data.decode().splitlines() == ["virginica", "setosa", "versicolor", "virginica"]


def test_accept_json_gives_a_json_list(client):
    body = b"4.5,1.3,0.3,0.3\n5.9,3,5.1,1.8"
    response = client.post("/invocations", data=body, headers={**CSV, "Accept": "application/json"})
    assert response.mimetype == "application/json"
    assert response.get_json() == ["setosa", "virginica"]
    single = client.post(
        "/invocations", data=b"4.5,1.3,0.3,0.3", headers={**CSV, "Accept": "application/json"}
    )
    assert single.get_json() == ["setosa"]


def test_unsupported_content_type_is_415_json(client):
    response = client.post("/invocations", json={"data": "4.5,1.3,0.3,0.3"})
    assert response.status_code == 415
    assert "text/csv" in response.get_json()["error"]


def test_unacceptable_accept_is_406_json(client):
    response = client.post("/invocations", data=b"4.5,1.3,0.3,0.3", headers={**CSV, "Accept": "text/html"})
    assert response.status_code == 406
    assert "application/json" in response.get_json()["error"]


@pytest.mark.parametrize(
    ("body", "row"),
    [
        (b"4.5,1.3,0.3", 1),
        (b"4.5,1.3,0.3,0.3\n4.5,1.3,0.3,x", 2),
        (b"4.5,1.3,0.3,0.3\n4.5,1.3,0.3,0.3\n4.5,nan,0.3,0.3", 3),
        (b"4.5,1.3,0.3,0.3\ninf,1.3,0.3,0.3", 2),
    ],
)
def test_malformed_row_is_400_json_naming_the_row(client, body, row):
    response = client.post("/invocations", data=body, headers=CSV)
    assert response.status_code == 400
    assert response.get_json()["row"] == row
    assert f"row {row}" in response.get_json()["error"]


def test_empty_body_is_400_json(client):
    response = client.post("/invocations", data=b"", headers=CSV)
    assert response.status_code == 400
    assert "empty" in response.get_json()["error"]


def test_payload_over_the_advertised_limit_is_413_json(client):
    response = client.post("/invocations", data=b"1,2,3,4\n" * 800_000, headers=CSV)
    assert response.status_code == 413
    assert response.mimetype == "application/json"


def test_execution_parameters_describe_batch_transform_settings(client):
    response = client.get("/execution-parameters")
    assert response.get_json() == {
        "MaxConcurrentTransforms": 3,
        "BatchStrategy": "MULTI_RECORD",
        "MaxPayloadInMB": 6,
    }


def test_unknown_path_and_wrong_method_are_json_errors(client):
    assert client.get("/nowhere").status_code == 404
    assert "error" in json.loads(client.get("/nowhere").data)
    assert client.get("/invocations").status_code == 405
    assert client.get("/invocations").mimetype == "application/json"


def test_gunicorn_serves_the_app_factory_with_the_contract_settings():
    argv = gunicorn_argv(port=9000, workers=3, timeout=45)
    assert argv[-1] == "mlmodel.serve:create_front()"
    pairs = dict(itertools.pairwise(argv))
    assert pairs["--bind"] == "0.0.0.0:9000"  # SageMaker's contract
    assert (
        dict(itertools.pairwise(gunicorn_argv(9000, 3, 45, host="127.0.0.1")))["--bind"] == "127.0.0.1:9000"
    )
    assert (pairs["--workers"], pairs["--timeout"], pairs["--worker-class"]) == ("3", "45", "asgi")
    assert "--no-control-socket" in argv


def test_get_on_invocations_is_405_allowing_post(client):
    response = client.get("/invocations")
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"


def test_body_without_a_length_is_read_up_to_the_limit(model_dir):
    # As with chunked transfer encoding: no Content-Length, the body ends where the stream does.
    app = create_app(model_dir)

    def post(rows: int) -> tuple[str, bytes]:
        environ = EnvironBuilder(method="POST", path="/invocations", headers=CSV).get_environ()
        environ.pop("CONTENT_LENGTH", None)
        environ["wsgi.input"] = io.BytesIO(b"4.5,1.3,0.3,0.3\n" * rows)
        status = []
        body = b"".join(app(environ, lambda code, headers: status.append(code)))
        return status[0], body

    assert post(3) == ("200 OK", b"setosa\nsetosa\nsetosa")
    status, body = post(400_000)
    assert status == "413 Request Entity Too Large"
    assert "fewer rows" in json.loads(body)["error"]


def test_csv_answers_declare_utf8(client):
    response = client.post("/invocations", data=b"4.5,1.3,0.3,0.3", headers=CSV)
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Length"] == "6"


def test_serve_refuses_an_invalid_port_setting_with_exit_1(monkeypatch, capsys):
    monkeypatch.setenv("SAGEMAKER_BIND_TO_PORT", "http")
    assert serve_main() == 1
    assert "SAGEMAKER_BIND_TO_PORT='http' is invalid" in capsys.readouterr().err
