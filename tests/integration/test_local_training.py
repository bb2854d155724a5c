"""Local training jobs through the SageMaker API: StoppingCondition is kept, as SageMaker keeps it."""

import sys
import time

import pytest

from mlops.local.runners import ProcessRunner
from mlops.local.stack import LocalStack

pytestmark = pytest.mark.slow

TERMINAL = {"Completed", "Failed", "Stopped"}


class EndlessTraining(ProcessRunner):
    """An image whose train never finishes (a stuck data loader, a loop that never converges)."""

    def _command(self, program: str) -> list[str]:
        if program != "train":
            return super()._command(program)
        return [sys.executable, "-c", "import time; print('training forever', flush=True); time.sleep(600)"]


@pytest.fixture
def stack(tmp_path):
    local = LocalStack(work_dir=tmp_path / "work", runner=EndlessTraining()).start()
    local.client("s3").put_object(
        Bucket=local.bucket, Key="train/train.csv", Body=b"setosa,5.1,3.5,1.4,0.2\n"
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
                    "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{stack.bucket}/train"}
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
    log = stack.work_dir / "sagemaker" / "training" / "cut-short" / "train.log"
    deadline = time.monotonic() + 30
    while not (log.exists() and "training forever" in log.read_text()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_under(stack.work_dir), "train should be running"
    stack.stop()
    assert processes_under(stack.work_dir) == []
