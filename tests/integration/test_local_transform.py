"""The local batch transform's two data paths (whole-line chunks, per-record) give the same .out objects."""

import json

import joblib
import numpy as np
import pytest
from mlmodel.contract import MODEL_FILE, Paths
from mlmodel.model import TreeModel
from moto.server import ThreadedMotoServer
from sklearn.datasets import load_iris
from sklearn.tree import DecisionTreeClassifier

from mlops.local.batch import TransformInputError
from mlops.local.runners import ProcessRunner
from mlops.local.transform_bench import local_sagemaker, run_transform, transform_job

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    base = tmp_path_factory.mktemp("serve")
    iris = load_iris()
    estimator = DecisionTreeClassifier(random_state=0).fit(iris.data, iris.target_names[iris.target])
    Paths(base).model_dir.mkdir(parents=True)
    joblib.dump(estimator, Paths(base).model_dir / MODEL_FILE)
    TreeModel(estimator).save_tree(Paths(base).model_dir)
    server = ProcessRunner().serve("local", base, base / "serve.log")
    server.wait_ready(60)
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    url = f"http://127.0.0.1:{moto.get_host_and_port()[1]}"
    yield server, url, estimator, tmp_path_factory.mktemp("work")
    server.stop()
    moto.stop()


def _s3(url):
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def test_whole_line_chunks_and_per_record_batches_agree_with_predict(served):
    server, url, estimator, work = served
    s3 = _s3(url)
    s3.create_bucket(Bucket="bench-b")
    rows = np.random.default_rng(1).uniform(0, 8, size=(20_000, 4)).round(2)
    body = "\n".join(",".join(f"{v:g}" for v in row) for row in rows).encode() + b"\n"
    s3.put_object(Bucket="bench-b", Key="in/plain.csv", Body=body)
    s3.put_object(Bucket="bench-b", Key="blank/gappy.csv", Body=body.replace(b"\n", b"\n\n", 3))
    local = local_sagemaker(url, work)
    run_transform(
        local, server, transform_job("s3://bench-b/in/", "s3://bench-b/out-plain/", max_payload_mb=1)
    )
    run_transform(
        local, server, transform_job("s3://bench-b/blank/", "s3://bench-b/out-gappy/", max_payload_mb=1)
    )
    plain = s3.get_object(Bucket="bench-b", Key="out-plain/plain.csv.out")["Body"].read().decode().split()
    gappy = s3.get_object(Bucket="bench-b", Key="out-gappy/gappy.csv.out")["Body"].read().decode().split()
    expected = estimator.predict(rows).tolist()
    assert plain == expected
    assert gappy == expected  # blank lines are skipped on the per-record path


def test_a_bad_row_names_the_object_and_its_lines(served):
    server, url, _, work = served
    s3 = _s3(url)
    s3.create_bucket(Bucket="bench-c")
    s3.put_object(Bucket="bench-c", Key="in/bad.csv", Body=b"1,2,3,4\n1,2,x,4\n")
    with pytest.raises(TransformInputError, match=r"s3://bench-c/in/bad.csv, lines 1-2: .*400"):
        run_transform(
            local_sagemaker(url, work), server, transform_job("s3://bench-c/in/", "s3://bench-c/out/")
        )


def test_concurrency_comes_from_the_servers_execution_parameters_when_the_job_leaves_it_out(served):
    from mlops.local.transform import advertised_concurrency

    server, *_ = served
    status, _, body = server.request("GET", "/execution-parameters")
    assert status == 200
    assert advertised_concurrency(server) == json.loads(body)["MaxConcurrentTransforms"] >= 1


def test_a_server_without_execution_parameters_gets_the_default_concurrency():
    from mlops.local.transform import advertised_concurrency

    class NoParameters:
        def request(self, method, path, body=None, headers=None, timeout=60.0):
            return 404, {}, b"not found"

    class Down:
        def request(self, method, path, body=None, headers=None, timeout=60.0):
            raise ConnectionRefusedError

    assert advertised_concurrency(NoParameters()) is None
    assert advertised_concurrency(Down()) is None
