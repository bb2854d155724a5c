"""Local training and transform jobs through the SageMaker API: StoppingCondition is kept, as SageMaker keeps
it, and a stack that stops ends the programs its jobs still run."""

import io
import sys
import tarfile
import time
from pathlib import Path

import pytest

from mlops.local.runners import ProcessRunner
from mlops.local.stack import LocalStack

pytestmark = pytest.mark.slow

TERMINAL = {"Completed", "Failed", "Stopped"}


# A model server that answers /ping and never answers an invocation (a deadlock in the model's code).
STUCK_SERVE = """
import http.server, os, time
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/ping" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def do_POST(self):
        print("invocation received, never answering", flush=True)
        time.sleep(600)
http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["SAGEMAKER_BIND_TO_PORT"])), Handler).serve_forever()
"""


class StuckImage(ProcessRunner):
    """An image whose train never finishes (a stuck data loader, a loop that never converges) and whose
    serve never answers an invocation."""

    def _command(self, program: str) -> list[str]:
        if program == "train":
            return [
                sys.executable,
                "-c",
                "import time; print('training forever', flush=True); time.sleep(600)",
            ]
        return [sys.executable, "-c", STUCK_SERVE]


@pytest.fixture
def stack(tmp_path):
    local = LocalStack(work_dir=tmp_path / "work", runner=StuckImage()).start()
    local.client("s3").put_object(
        Bucket=local.bucket, Key="data/train/train.csv", Body=b"setosa,5.1,3.5,1.4,0.2\n"
    )
    yield local
    local.stop()


def start_training(stack, name: str, max_runtime: int) -> None:
    stack.client("sagemaker").create_training_job(
        TrainingJobName=name,
        AlgorithmSpecification={"TrainingImage": "local", "TrainingInputMode": "File"},
        RoleArn=stack.role_arn,
        InputDataConfig=[
            {
                "ChannelName": "training",
                "DataSource": {
                    "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{stack.bucket}/data/train"}
                },
            }
        ],
        OutputDataConfig={"S3OutputPath": f"s3://{stack.bucket}/training"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        StoppingCondition={"MaxRuntimeInSeconds": max_runtime},
    )


def wait_for_end(stack, name: str, timeout: float) -> tuple[dict, float]:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        job = stack.client("sagemaker").describe_training_job(TrainingJobName=name)
        if job["TrainingJobStatus"] in TERMINAL:
            return job, time.monotonic() - started
        time.sleep(0.1)
    pytest.fail(f"{name} still {job['TrainingJobStatus']} after {timeout} s")


def wait_for_line(log: Path, text: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not (log.exists() and text in log.read_text()):
        assert time.monotonic() < deadline, f"{log} never said {text!r}"
        time.sleep(0.1)


def test_a_training_job_past_its_max_runtime_is_stopped_as_max_runtime_exceeded(stack):
    start_training(stack, "endless", max_runtime=2)
    job, took = wait_for_end(stack, "endless", timeout=30)
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Stopped", "MaxRuntimeExceeded")
    assert 2 <= took < 15
    log = stack.work_dir / "sagemaker" / "training" / "endless" / "train.log"
    assert "training forever" in log.read_text()
    listed = stack.client("s3").list_objects_v2(Bucket=stack.bucket, Prefix="training/")
    assert listed["KeyCount"] == 0  # a stopped job uploads no model


def test_stopping_the_stack_stops_a_training_job_still_running(stack, processes_under):
    start_training(stack, "cut-short", max_runtime=600)
    wait_for_line(stack.work_dir / "sagemaker" / "training" / "cut-short" / "train.log", "training forever")
    assert processes_under(stack.work_dir), "train should be running"
    stack.stop()
    assert processes_under(stack.work_dir) == []


def test_stopping_the_stack_stops_a_transform_stuck_in_a_request(stack, processes_under):
    sm = stack.client("sagemaker")
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz"):
        pass
    stack.client("s3").put_object(
        Bucket=stack.bucket, Key="training/model/output/model.tar.gz", Body=archive.getvalue()
    )
    stack.client("s3").put_object(Bucket=stack.bucket, Key="data/test/test.csv", Body=b"5.1,3.5,1.4,0.2\n")
    sm.create_model(
        ModelName="stuck",
        ExecutionRoleArn=stack.role_arn,
        PrimaryContainer={
            "Image": "local",
            "ModelDataUrl": f"s3://{stack.bucket}/training/model/output/model.tar.gz",
        },
    )
    sm.create_transform_job(
        TransformJobName="stuck",
        ModelName="stuck",
        TransformInput={
            "DataSource": {
                "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{stack.bucket}/data/test"}
            },
            "ContentType": "text/csv",
            "SplitType": "Line",
        },
        TransformOutput={"S3OutputPath": f"s3://{stack.bucket}/transform/out"},
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1},
    )
    log = stack.work_dir / "sagemaker" / "transform" / "stuck" / "serve.log"
    wait_for_line(log, "invocation received")
    assert processes_under(stack.work_dir), "serve should be running"
    stack.stop()
    assert processes_under(stack.work_dir) == []


def test_a_release_past_the_rehearsal_timeout_is_aborted_where_it_waits(stack, processes_under, caplog):
    from mlops.rehearsal import Options, rehearse

    summary = rehearse(stack, Options(timeout=3), out=io.StringIO())
    assert (summary["status"], summary["failed_state"], summary["error"]) == (
        "ABORTED",
        "Train",
        "RehearsalTimedOut",
    )
    execution = stack.client("stepfunctions").describe_execution(executionArn=summary["execution_arn"])
    assert execution["status"] == "ABORTED"
    stack.stop()
    assert processes_under(stack.work_dir) == []
    assert "computation ended with exception" not in caplog.text  # stopped, not torn down mid-run
