"""The model image built with this machine's engine (Docker, or podman) and run as SageMaker runs it: `train`,
then `serve`, with /opt/ml mounted as it is (root-owned on SageMaker and here).

Where no registry answers (this repository's machines) the image builds on a local Debian base made by
debootstrap; the Dockerfile is the same one CI pushes to ECR.
"""

from __future__ import annotations

import contextlib
import http.client
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlmodel.contract import MODEL_FILE, Paths

from mlops.local import images
from mlops.local.runners import free_port

pytestmark = [pytest.mark.container, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
# Several checkouts on one machine share the engine's store: each may test its own tag.
TAG = os.environ.get("MLOPS_TEST_IMAGE_TAG") or "localhost/sagemaker-sfn-mlops-model:test"
# What the image adds to its base (Python and the OS). On python:3.11-slim (about 130 MB) this keeps the
# image under 400 MB; today it adds about 220 MB.
MAX_ADDED_BYTES = 240 * 1000**2
READY_SECONDS = 120


def in_image(*command: str) -> str:
    argv = [*images.run_args(TAG, command[0])[:-2], TAG, *command]
    return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=120).stdout.strip()


@pytest.fixture(scope="module")
def image() -> str:
    try:
        print(f"engine: {images.engine().describe()}")
    except images.ImageError as error:
        pytest.fail(str(error))
    started = time.monotonic()
    images.build_image(TAG)
    print(f"built {TAG} in {time.monotonic() - started:.1f} s")
    return TAG


@pytest.fixture
def ml_dir(tmp_path) -> Path:
    spec = importlib.util.spec_from_file_location("prepare_data", ROOT / "scripts" / "prepare_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    paths = Paths(tmp_path / "ml")
    module.write_iris_split(paths.channel_dir("training"))
    (paths.channel_dir("training") / "test.csv").unlink()
    paths.config_dir.mkdir(parents=True)
    paths.hyperparameters_file.write_text(json.dumps({"max_depth": "4"}))
    return paths.base


def test_the_image_path_finds_the_programs_and_the_system(image):
    # An image built on a base without PATH (an imported root filesystem) ends up with "/opt/program:
    # /opt/venv/bin:" only, and the engine then cannot find `train`: say so instead of a bare exec error.
    env = json.loads(
        subprocess.run(
            images.engine().argv("image", "inspect", "--format", "{{json .Config.Env}}", image),
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    path = next((entry.split("=", 1)[1] for entry in env if entry.startswith("PATH=")), "")
    assert {"/opt/program", "/opt/venv/bin", "/usr/bin", "/bin"} <= set(path.split(":")), (
        f"the image's PATH is {path!r}: its base image {images.engine().base_image} sets no PATH "
        "(rebuild the local base: podman rmi it and run scripts/build_image)"
    )


def test_the_model_user_can_read_the_images_system_and_programs(image):
    # A base image whose "/" is 0700 (a root filesystem packed from a temporary folder) works for root and,
    # with overlay storage, for everyone; with vfs storage (podman inside a container) the model user can
    # then load nothing, not even libc.
    command = ("setpriv", "--reuid=1000", "--regid=1000", "--clear-groups", "python3", "-c", "import mlmodel")
    done = subprocess.run(
        [*images.run_args(image, command[0])[:-2], image, *command],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"the model user (uid 1000) cannot run python3 in the image: {done.stderr}"


def test_image_adds_little_to_its_base(image):
    added = images.image_size_bytes(image) - images.image_size_bytes(images.engine().base_image)
    print(f"image {images.image_size_bytes(image) / 1e6:.0f} MB, {added / 1e6:.0f} MB over the base")
    assert added <= MAX_ADDED_BYTES


def test_image_starts_as_root_as_sagemaker_expects_with_the_programs_on_path_and_no_build_tools(image):
    assert in_image("id", "-u") == "0"
    assert in_image("sh", "-c", "id -u $MODEL_RUN_AS") == "1000"
    found = in_image(
        "sh", "-c", "for p in train serve python3 gcc cc /opt/venv/bin/pip; do command -v $p; done; true"
    )
    assert found.split() == ["/opt/program/train", "/opt/program/serve", "/opt/venv/bin/python3"]


@contextlib.contextmanager
def serving_in_image(image: str, base: Path) -> Iterator[tuple[subprocess.Popen, int]]:
    """`serve` of the image on a free port, once /ping answers; removed afterwards if still running."""
    port = free_port()
    name = f"mlmodel-test-{port}"
    server = subprocess.Popen(
        images.run_args(image, "serve", base_dir=base, port=port, name=name),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + READY_SECONDS
        while True:
            assert server.poll() is None, server.stdout.read().decode()
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.request("GET", "/ping")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "serve in the image did not become healthy"
            time.sleep(0.2)
        yield server, port
    finally:
        if server.poll() is None:
            subprocess.run(images.engine().argv("rm", "--force", name), capture_output=True, check=False)
            server.kill()
        server.wait()


def test_train_then_serve_in_the_image_predicts_setosa(image, ml_dir):
    trained = subprocess.run(
        images.run_args(image, "train", base_dir=ml_dir),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert trained.returncode == 0, trained.stdout + trained.stderr
    model_file = Paths(ml_dir).model_dir / MODEL_FILE
    assert model_file.is_file()
    # /opt/ml came in as it was mounted (root's on SageMaker); train handed model/ to the model user and
    # wrote as that user, not as root.
    assert ml_dir.stat().st_uid == os.getuid() and model_file.stat().st_uid == 1000
    assert "running as model (uid 1000)" in trained.stdout

    with serving_in_image(image, ml_dir) as (server, port):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("POST", "/invocations", body=b"4.5,1.3,0.3,0.3", headers={"Content-Type": "text/csv"})
        response = conn.getresponse()
        assert (response.status, response.read()) == (200, b"setosa")

        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
        # gunicorn's master gave up root before it started (its workers are forked from it).
        assert "serve: running as model (uid 1000)" in server.stdout.read().decode()


def test_the_diabetes_slot_trains_in_the_image_when_the_job_names_it_and_serves_numbers(image, tmp_path):
    from mlops.data import write_split

    paths = Paths(tmp_path / "ml")
    write_split("diabetes", paths.channel_dir("training"))
    (paths.channel_dir("training") / "test.csv").unlink()
    paths.config_dir.mkdir(parents=True)
    paths.hyperparameters_file.write_text(json.dumps({"n_estimators": "50"}))
    trained = subprocess.run(
        images.run_args(image, "train", base_dir=paths.base, env={"MLMODEL_NAME": "diabetes"}),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert trained.returncode == 0, trained.stdout + trained.stderr
    assert json.loads((paths.model_dir / "metadata.json").read_text())["problem_type"] == "regression"

    with serving_in_image(image, paths.base) as (
        _,
        port,
    ):  # serve is not told the model: metadata.json names it
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        row = b"59,2,32.1,101,157,93.2,38,4,4.8598,87"
        conn.request("POST", "/invocations", body=row, headers={"Content-Type": "text/csv"})
        response = conn.getresponse()
        assert response.status == 200 and 25 <= float(response.read()) <= 346


def test_bad_hyperparameter_in_the_image_writes_the_failure_file(image, ml_dir):
    Paths(ml_dir).hyperparameters_file.write_text(json.dumps({"criterion": "mse"}))
    result = subprocess.run(
        images.run_args(image, "train", base_dir=ml_dir),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 1
    assert "hyperparameter criterion='mse' is invalid" in Paths(ml_dir).failure_file.read_text()


def test_an_image_whose_user_is_not_root_cannot_train_under_sagemakers_mounts(image, ml_dir, tmp_path):
    """The defect the image had: `USER 1000` and a root-owned /opt/ml, as SageMaker mounts it."""
    context = tmp_path / "context"
    shutil.copytree(images.CONTAINER_DIR, context)
    with (context / "Dockerfile").open("a") as dockerfile:
        dockerfile.write("USER 1000:1000\n")
    non_root = f"{TAG}-non-root"
    images.build_image(non_root, context=context, quiet=True)
    try:
        result = subprocess.run(
            images.run_args(non_root, "train", base_dir=ml_dir),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    finally:
        subprocess.run(images.engine().argv("rmi", non_root), capture_output=True, check=False)
    assert result.returncode != 0
    said = result.stdout + result.stderr
    # the first thing train writes under /opt/ml: its first checkpoint (or, without checkpoints, the model)
    assert (
        "Permission denied: '/opt/ml/checkpoints" in said or "Permission denied: '/opt/ml/model'" in said
    ), said
    assert not Paths(ml_dir).failure_file.exists()  # it could not even say why: SageMaker shows the exit code
