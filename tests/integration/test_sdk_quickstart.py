"""scripts/sdk_quickstart.py: the sagemaker SDK (v3) against the rehearsal's local AWS.

The SDK lives in its own venv (.venv-sdk, made by scripts/sdk_venv on first use: minutes and ~1 GB), so every
SDK call runs in a subprocess with that venv's python; the local AWS is a ``mlops rehearse --serve`` that has
released once. What runs through the SDK, unchanged from AWS use:
- ``ModelTrainer.train`` → CreateTrainingJob: the local SageMaker runs the container's ``train`` on the
  rehearsal's ``data/train/`` and uploads ``model.tar.gz``; ``TrainingJob.get/get_all/refresh`` follow it.
- ``Endpoint.get(name).invoke(...)`` with the SDK's CSV serializer/deserializer → InvokeEndpoint on the
  endpoint the pipeline deployed.
What the local AWS needs from the quickstart (``use_local_aws``), each because of moto: fake credentials and
``AWS_ENDPOINT_URL``; ``SAGEMAKER_VALIDATE_ROLE=false`` (no IAM SimulatePrincipalPolicy); telemetry off (it
calls an AWS host); empty ``DataCaptureConfig: {}`` dropped from DescribeEndpoint (the SDK's model rejects it).
Not covered here: ``ModelBuilder.deploy`` (the pipeline deploys, behind its approval) and ``TrainingJob.wait``'s
live log streaming (the local SageMaker sends a job's log to CloudWatch Logs when the job ends).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tarfile
from pathlib import Path

import boto3
import pytest

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "scripts" / "sdk_quickstart.py"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]  # the first run installs the SDK


def _env_without_aws() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}


@pytest.fixture(scope="module")
def sdk_python() -> str:
    done = subprocess.run(
        [str(REPO / "scripts" / "sdk_venv")], capture_output=True, text=True, timeout=1200, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def local_aws(tmp_path_factory):
    """A released rehearsal kept up (``--serve``): its summary plus what the pipeline trained with."""
    work = tmp_path_factory.mktemp("sdk-rehearsal")
    stderr_path = work / "stderr.txt"
    with stderr_path.open("w") as stderr_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "mlops", "rehearse", "--serve", "--work-dir", str(work / "work")],
            cwd=REPO,
            env=_env_without_aws(),
            stdout=subprocess.PIPE,
            stderr=stderr_file,
            text=True,
        )
    try:
        summary = next((json.loads(line) for line in process.stdout if line.startswith("{")), None)
        assert summary is not None and summary["status"] == "SUCCEEDED", stderr_path.read_text()[-3000:]
        session = boto3.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
        )
        clients = {
            name: session.client(name, endpoint_url=summary["aws_endpoint_url"])
            for name in ("s3", "sagemaker", "stepfunctions", "cloudformation")
        }
        # the stack's own bucket (the local AWS also holds the bucket `sam package` uploads to)
        stack = clients["cloudformation"].describe_stacks(StackName="mlops-iris-staging")["Stacks"][0]
        execution_input = json.loads(
            clients["stepfunctions"].describe_execution(executionArn=summary["execution_arn"])["input"]
        )
        pipeline_job = clients["sagemaker"].describe_training_job(
            TrainingJobName=execution_input["names"]["training_job"]
        )
        yield {
            "summary": summary,
            "work": work / "work",
            "clients": clients,
            "bucket": next(
                o["OutputValue"] for o in stack["Outputs"] if o["OutputKey"] == "ArtifactBucketName"
            ),
            "image_uri": execution_input["release"]["image_uri"],
            "role_arn": pipeline_job["RoleArn"],
            "pipeline_job": pipeline_job["TrainingJobName"],
        }
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


def _in_sdk_venv(sdk_python: str, local_aws: dict, code: str) -> object:
    """Runs ``code`` (which sets ``result``) in .venv-sdk with ``quick`` = the quickstart module pointed at
    the local AWS; returns ``result`` (JSON)."""
    program = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(QUICKSTART.parent)!r})\n"
        "import sdk_quickstart as quick\n"
        f"quick.use_local_aws({local_aws['summary']['aws_endpoint_url']!r})\n"
        f"{code}\n"
        "print(json.dumps(result))\n"
    )
    done = _run([sdk_python, "-c", program])
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _cli(python: str, *args: str, endpoint_url: str | None = None) -> subprocess.CompletedProcess:
    local = ["--endpoint-url", endpoint_url] if endpoint_url else []
    return _run([python, str(QUICKSTART), *local, *args])


def _run(argv: list[str]) -> subprocess.CompletedProcess:
    """``argv`` from the repository, with no AWS settings of this process, output captured."""
    return subprocess.run(
        argv, cwd=REPO, env=_env_without_aws(), capture_output=True, text=True, timeout=600, check=False
    )


def test_model_trainer_runs_the_image_train_on_the_pipeline_data(sdk_python, local_aws, tmp_path):
    bucket = local_aws["bucket"]
    result = _in_sdk_venv(
        sdk_python,
        local_aws,
        "result = quick.train("
        f"{local_aws['image_uri']!r}, 's3://{bucket}/data/train/', 's3://{bucket}/training/sdk', "
        f"{local_aws['role_arn']!r}, {{'max_depth': 3, 'criterion': 'entropy'}})",
    )

    assert result["status"] == "Completed", result
    assert result["job_name"].startswith("mlops-iris-sdk-")
    # under training/: the stack's SageMaker role may write its models there and nowhere else
    assert result["model_data"] == f"s3://{bucket}/training/sdk/{result['job_name']}/output/model.tar.gz"
    job = local_aws["clients"]["sagemaker"].describe_training_job(TrainingJobName=result["job_name"])
    assert job["AlgorithmSpecification"]["TrainingImage"] == local_aws["image_uri"]
    assert job["HyperParameters"] == {"max_depth": "3", "criterion": "entropy"}
    archive = tmp_path / "model.tar.gz"
    local_aws["clients"]["s3"].download_file(
        bucket, f"training/sdk/{result['job_name']}/output/model.tar.gz", str(archive)
    )
    with tarfile.open(archive) as tar:
        assert tar.getnames()  # what the container's train wrote to the model directory
    # The local SageMaker ran the container's train program for this very job, in its own folder.
    assert list(local_aws["work"].rglob(f"{result['job_name']}/train.log"))


def test_an_invalid_hyperparameter_fails_the_sdk_job_with_the_container_reason(sdk_python, local_aws):
    done = _cli(
        sdk_python,
        "train",
        "--like",
        local_aws["pipeline_job"],
        "-p",
        "max_depth=-3",
        endpoint_url=local_aws["summary"]["aws_endpoint_url"],
    )

    assert done.returncode == 1, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["status"] == "Failed"
    assert result["model_data"] is None
    assert "max_depth" in result["failure_reason"]
    assert "Failed" in done.stderr and "Traceback" not in done.stderr


def test_cli_train_defaults_to_the_setup_of_the_pipelines_last_job(sdk_python, local_aws):
    # A job of the quickstart's own completes first: the default must still be the pipeline's job.
    _in_sdk_venv(
        sdk_python,
        local_aws,
        "setup = quick.pipeline_training_job()\n"
        "result = quick.train(setup.image_uri, setup.train_uri, setup.output_uri, setup.role_arn)",
    )

    done = _cli(sdk_python, "train", endpoint_url=local_aws["summary"]["aws_endpoint_url"])

    assert done.returncode == 0, done.stderr[-3000:]
    assert f"training like {local_aws['pipeline_job']}" in done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["status"] == "Completed"
    assert result["model_data"].startswith(f"s3://{local_aws['bucket']}/training/mlops-iris-sdk-")


def test_predict_through_the_sdk_endpoint_invoke_returns_the_labels(sdk_python, local_aws):
    endpoint = local_aws["summary"]["endpoint_name"]

    labels = _in_sdk_venv(
        sdk_python,
        local_aws,
        f"result = quick.predict({endpoint!r}, ['4.5,1.3,0.3,0.3', '5.9,3,5.1,1.8'])",
    )

    assert labels == ["setosa", "virginica"]


def test_cli_predict_prints_the_labels_and_names_an_unknown_endpoint(sdk_python, local_aws):
    url = local_aws["summary"]["aws_endpoint_url"]

    done = _cli(
        sdk_python,
        "predict",
        "--endpoint-name",
        local_aws["summary"]["endpoint_name"],
        "5.9,3,5.1,1.8",
        endpoint_url=url,
    )
    missing = _cli(
        sdk_python, "predict", "--endpoint-name", "no-such-endpoint", "5.9,3,5.1,1.8", endpoint_url=url
    )
    malformed = _cli(sdk_python, "predict", "5.9,abc", endpoint_url=url)

    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout)["predictions"] == ["virginica"]
    assert missing.returncode == 1 and "no-such-endpoint" in missing.stderr
    assert malformed.returncode == 2 and "4 comma-separated numbers" in malformed.stderr
    for run in (missing, malformed):
        assert "Traceback" not in run.stderr


@pytest.mark.parametrize("command", [["predict", "4.5,1.3,0.3,0.3"], ["train"]])
def test_without_the_sdk_the_cli_says_how_to_install_it(command):
    # sagemaker blocked in sys.modules: the same whichever venv runs the tests.
    program = (
        "import runpy, sys\n"
        "sys.modules['sagemaker'] = None\n"
        f"sys.argv = [{str(QUICKSTART)!r}, '--region', 'us-east-1', *{command!r}]\n"
        f"runpy.run_path({str(QUICKSTART)!r}, run_name='__main__')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program],
        env=_env_without_aws(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 2
    assert "pip install -e '.[sdk]'" in done.stderr
    assert "Traceback" not in done.stderr
