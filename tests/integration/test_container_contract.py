"""The container contract with real processes: `train` and `serve` as SageMaker (and the local runtime) run
them, against a temporary SAGEMAKER_BASE_DIR and a free port."""

from __future__ import annotations

import http.client
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import joblib
import numpy as np
import pytest
from mlmodel.contract import (
    BASE_DIR_ENV,
    BODY_TIMEOUT_ENV,
    EXIT_USER_ERROR,
    METADATA_FILE,
    MODEL_FILE,
    PORT_ENV,
    WORKERS_ENV,
    Paths,
)

from mlops.local.runners import ModelServer, ProcessRunner, free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / "container" / "bin"
READY_SECONDS = 90


def write_iris_split(out_dir: Path) -> tuple[Path, Path]:
    spec = importlib.util.spec_from_file_location("prepare_data", ROOT / "scripts" / "prepare_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.write_iris_split(out_dir)


def program_env(base: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, BASE_DIR_ENV: str(base), **extra}


def run_train(base: Path, hyperparameters: dict | None = None, **env: str) -> subprocess.CompletedProcess:
    paths = Paths(base)
    paths.config_dir.mkdir(parents=True, exist_ok=True)
    paths.hyperparameters_file.write_text(json.dumps(hyperparameters or {}))
    paths.input_data_config_file.write_text(json.dumps({"training": {"ContentType": "text/csv"}}))
    return subprocess.run(
        [sys.executable, str(BIN / "train")],
        env=program_env(base, **env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def request(port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type"), response.read()
    finally:
        conn.close()


class Server(ModelServer):
    """bin/serve as a real process (the local runtime's ModelServer), with what these tests ask of it."""

    def __init__(self, base: Path, log: Path, workers: int = 1, **env: str):
        port = free_port()
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, str(BIN / "serve")],
                env=program_env(base, **{PORT_ENV: str(port), WORKERS_ENV: str(workers), **env}),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        super().__init__(process=process, port=port, log_path=log)

    def wait_until_listening(self) -> int:
        """Polls GET /ping until the server answers; returns that first answer's status."""
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"serve exited early: {self.log_path.read_text()}"
            try:
                return request(self.port, "GET", "/ping")[0]
            except OSError:
                time.sleep(0.1)
        raise AssertionError(
            f"serve did not answer /ping within {READY_SECONDS} s: {self.log_path.read_text()}"
        )

    def post_csv(self, body: bytes, **headers: str):
        return request(self.port, "POST", "/invocations", body, {"Content-Type": "text/csv", **headers})


@pytest.fixture(scope="module")
def iris(tmp_path_factory) -> tuple[Path, Path]:
    return write_iris_split(tmp_path_factory.mktemp("data"))


def base_with_training_data(root: Path, train_csv: Path | None) -> Path:
    channel = Paths(root).channel_dir("training")
    channel.mkdir(parents=True)
    if train_csv is not None:
        (channel / "train.csv").write_bytes(train_csv.read_bytes())
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory, iris) -> tuple[Path, subprocess.CompletedProcess]:
    base = base_with_training_data(tmp_path_factory.mktemp("ml"), iris[0])
    return base, run_train(base, {"max_depth": "5", "criterion": "gini"})


@pytest.fixture(scope="module")
def server(trained, tmp_path_factory):
    base, result = trained
    assert result.returncode == 0, result.stdout + result.stderr
    server = Server(base, tmp_path_factory.mktemp("logs") / "serve.log", workers=2)
    try:
        assert server.wait_until_listening() == 200
        yield server
    finally:
        server.stop()


# --- train -----------------------------------------------------------------------------------------


def test_entry_points_are_executable_scripts():
    for program in ("train", "serve"):
        path = BIN / program
        assert os.access(path, os.X_OK)
        assert path.read_text().startswith("#!/usr/bin/env python3\n")


def test_train_writes_the_model_and_metadata(trained):
    base, result = trained
    assert result.returncode == 0, result.stdout + result.stderr
    model_dir = Paths(base).model_dir
    metadata = json.loads((model_dir / METADATA_FILE).read_text())
    assert (model_dir / MODEL_FILE).is_file()
    assert metadata["classes"] == ["setosa", "versicolor", "virginica"]
    assert metadata["hyperparameters"]["max_depth"] == 5
    assert metadata["metrics"]["training"]["rows"] == 120
    assert not Paths(base).failure_file.exists()
    assert "training complete" in result.stdout


def test_bad_hyperparameter_fails_and_the_failure_file_names_it(tmp_path, iris):
    base = base_with_training_data(tmp_path, iris[0])
    result = run_train(base, {"max_depth": "-3"})
    assert result.returncode == EXIT_USER_ERROR
    reason = Paths(base).failure_file.read_text()
    assert "hyperparameter max_depth='-3' is invalid" in reason
    assert not Paths(base).model_dir.joinpath(MODEL_FILE).exists()


def test_missing_training_data_fails_with_a_reason(tmp_path):
    base = base_with_training_data(tmp_path, None)
    result = run_train(base)
    assert result.returncode == EXIT_USER_ERROR
    assert "'training' channel has no .csv file" in Paths(base).failure_file.read_text()


# --- serve -----------------------------------------------------------------------------------------


def test_ping_is_200(server):
    assert request(server.port, "GET", "/ping")[0] == 200


def test_documented_examples_predict_setosa_and_virginica(server):
    assert server.post_csv(b"4.5,1.3,0.3,0.3")[::2] == (200, b"setosa")
    assert server.post_csv(b"5.9,3,5.1,1.8")[::2] == (200, b"virginica")


def test_csv_batch_keeps_row_order_and_matches_the_model(server, trained, iris):
    rows = [line.split(",", 1) for line in iris[1].read_text().splitlines()]
    features = "\n".join(row[1] for row in rows).encode()
    estimator = joblib.load(Paths(trained[0]).model_dir / MODEL_FILE)
    expected = estimator.predict(np.array([[float(v) for v in row[1].split(",")] for row in rows])).tolist()
    status, content_type, body = server.post_csv(features + b"\n")
    assert (status, content_type) == (200, "text/csv; charset=utf-8")
    assert body.decode().split("\n") == expected
    assert sum(a == b for a, b in zip(expected, (row[0] for row in rows), strict=True)) >= 27


def test_accept_json_returns_a_json_list(server):
    status, content_type, body = server.post_csv(
        b"4.5,1.3,0.3,0.3\r\n5.9,3,5.1,1.8\r\n", Accept="application/json"
    )
    assert (status, content_type) == (200, "application/json")
    assert json.loads(body) == ["setosa", "virginica"]


def test_unsupported_content_type_is_415(server):
    status, content_type, body = request(
        server.port,
        "POST",
        "/invocations",
        b'{"data": "4.5,1.3,0.3,0.3"}',
        {"Content-Type": "application/json"},
    )
    assert (status, content_type) == (415, "application/json")
    assert "text/csv" in json.loads(body)["error"]


@pytest.mark.parametrize(
    ("body", "row"),
    [(b"4.5,1.3,0.3,0.3\n4.5,1.3,0.3", 2), (b"4.5,1.3,0.3,0.3\n1,2,3,4\nabc,1,2,3", 3), (b"1,2,nan,4", 1)],
)
def test_malformed_row_is_400_naming_the_row(server, body, row):
    status, content_type, answer = server.post_csv(body)
    assert (status, content_type) == (400, "application/json")
    assert json.loads(answer)["row"] == row


def test_empty_body_is_400(server):
    assert server.post_csv(b"")[0] == 400


def test_execution_parameters_for_batch_transform(server):
    status, _, body = request(server.port, "GET", "/execution-parameters")
    assert status == 200
    assert json.loads(body) == {
        "MaxConcurrentTransforms": 2,
        "BatchStrategy": "MULTI_RECORD",
        "MaxPayloadInMB": 6,
    }


def test_concurrent_single_row_clients_all_get_their_answer(server):
    examples = {
        b"4.5,1.3,0.3,0.3": b"setosa",
        b"5.9,3,5.1,1.8": b"virginica",
        b"6.0,2.2,4.0,1.0": b"versicolor",
    }
    cases = list(examples.items()) * 40

    def ask(case):
        return server.post_csv(case[0])[::2] == (200, case[1])

    with ThreadPoolExecutor(max_workers=16) as pool:
        assert all(pool.map(ask, cases))


def test_ping_is_503_when_the_model_cannot_be_loaded(tmp_path):
    server = Server(tmp_path, tmp_path / "serve.log")
    try:
        assert server.wait_until_listening() == 503
        assert "cannot be loaded" in json.loads(request(server.port, "GET", "/ping")[2])["error"]
    finally:
        server.stop()


def test_sigterm_drains_and_exits_0_within_seconds(trained, tmp_path):
    server = Server(trained[0], tmp_path / "serve.log")
    try:
        assert server.wait_until_listening() == 200
        assert server.post_csv(b"4.5,1.3,0.3,0.3")[0] == 200
        started = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=10) == 0
        assert time.monotonic() - started < 10
    finally:
        server.stop()


def _listening_addresses(port: int) -> set[str]:
    """The local addresses listening on `port` (Linux's /proc/net/tcp: state 0A is LISTEN)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:
            found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
    return found


def test_a_model_server_started_on_this_machine_listens_on_loopback_only(trained, tmp_path):
    base, result = trained
    assert result.returncode == 0
    server = ProcessRunner().serve("local", base, tmp_path / "serve.log")
    try:
        server.wait_ready()
        assert _listening_addresses(server.port) == {"127.0.0.1"}
    finally:
        server.stop()


# --- slow clients ------------------------------------------------------------------------------------


def _half_sent_request(port: int, sent: bytes, length: int) -> socket.socket:
    """A connection that has sent its headers and the first bytes (`sent`) of a `length`-byte body."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    head = f"POST /invocations HTTP/1.1\r\nHost: model\r\nContent-Type: text/csv\r\nContent-Length: {length}\r\n\r\n"
    sock.sendall(head.encode() + sent)
    return sock


def _answer(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection or its answer is complete."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = [line for line in head.lower().split(b"\r\n") if line.startswith(b"content-length:")]
        if length and len(body) >= int(length[0].split(b":")[1]):
            break
    return data


def test_two_clients_sending_their_bodies_slowly_do_not_hold_up_a_third(server):
    # The module's server has two workers. Sync workers each blocked on a slow client's body, and a third
    # request waited until a slow body was complete.
    slow = [_half_sent_request(server.port, b"4.5,", 15) for _ in range(2)]
    try:
        time.sleep(0.5)  # both are mid-body
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        started = time.monotonic()
        conn.request("POST", "/invocations", b"5.9,3,5.1,1.8", {"Content-Type": "text/csv"})
        response = conn.getresponse()
        assert (response.status, response.read()) == (200, b"virginica")
        assert time.monotonic() - started < 2
        for sock in slow:  # the slow ones are answered once their bodies are complete
            sock.sendall(b"1.3,0.3,0.3")
            answer = _answer(sock)
            assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"setosa")
    finally:
        for sock in slow:
            sock.close()


def test_a_body_that_stops_arriving_is_a_408_json_within_the_body_timeout(trained, tmp_path):
    server = Server(trained[0], tmp_path / "serve.log", workers=1, **{BODY_TIMEOUT_ENV: "1"})
    try:
        assert server.wait_until_listening() == 200
        sock = _half_sent_request(server.port, b"4.5,", 15)
        started = time.monotonic()
        answer = _answer(sock)
        sock.close()
        assert answer.startswith(b"HTTP/1.1 408 ")
        assert json.loads(answer.partition(b"\r\n\r\n")[2]) == {
            "error": "the request body did not arrive within 1 s"
        }
        assert time.monotonic() - started < 5
        assert server.post_csv(b"4.5,1.3,0.3,0.3")[::2] == (200, b"setosa")  # the worker serves on
    finally:
        server.stop()


def test_a_chunked_body_and_a_kept_alive_connection_are_served(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request(
        "POST", "/invocations", iter([b"4.5,1.3,", b"0.3,0.3\n5.9,3,5.1,1.8"]), {"Content-Type": "text/csv"}
    )
    response = conn.getresponse()
    assert (response.status, response.read()) == (200, b"setosa\nvirginica")
    conn.request("POST", "/invocations", b"6.0,2.2,4.0,1.0", {"Content-Type": "text/csv"})
    response = conn.getresponse()
    assert (response.status, response.read()) == (200, b"versicolor")
    conn.close()


def test_a_body_announced_over_the_limit_is_413_json_without_being_read(server):
    sock = _half_sent_request(server.port, b"", 7 * 2**20)
    answer = _answer(sock)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert "over 6 MB" in json.loads(answer.partition(b"\r\n\r\n")[2])["error"]


# --- the second example: a regression in the same programs ------------------------------------------------


@pytest.fixture(scope="module")
def diabetes_server(tmp_path_factory):
    from mlops.data import write_split

    train_csv, _ = write_split("diabetes", tmp_path_factory.mktemp("diabetes-data"))
    base = base_with_training_data(tmp_path_factory.mktemp("diabetes-ml"), train_csv)
    result = run_train(base, {"n_estimators": "100"}, MLMODEL_NAME="diabetes")
    assert result.returncode == 0, result.stdout + result.stderr
    server = Server(base, tmp_path_factory.mktemp("diabetes-logs") / "serve.log")
    try:
        assert server.wait_until_listening() == 200
        yield base, server
    finally:
        server.stop()


def test_the_diabetes_slot_trains_as_a_process_and_records_a_regression(diabetes_server):
    base, _ = diabetes_server
    metadata = json.loads((Paths(base).model_dir / METADATA_FILE).read_text())
    assert (metadata["model"], metadata["problem_type"], metadata["n_features"]) == (
        "diabetes",
        "regression",
        10,
    )
    assert metadata["hyperparameters"]["n_estimators"] == 100


def test_the_diabetes_server_answers_numbers_and_refuses_four_features_naming_ten(diabetes_server):
    _, server = diabetes_server
    row = b"59,2,32.1,101,157,93.2,38,4,4.8598,87"
    status, content_type, body = server.post_csv(row + b"\n" + row, Accept="application/json")
    assert (status, content_type) == (200, "application/json")
    values = json.loads(body)
    assert len(values) == 2 and values[0] == values[1] and 25 <= values[0] <= 346
    status, _, body = server.post_csv(b"4.5,1.3,0.3,0.3")
    assert status == 400
    assert json.loads(body)["expected_features"] == 10 and "expected 10" in json.loads(body)["error"]
