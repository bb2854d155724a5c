"""Managed spot training on the local SageMaker: the StoppingCondition rules AWS enforces, checkpoints synced
with S3 as the execution role, and a reclaimed instance whose job restarts and resumes from its checkpoint."""

import io
import tarfile
import time

import joblib
import numpy as np
import pytest
from botocore.exceptions import ClientError
from mlmodel.dataset import load_channel

from mlops.data import write_split
from mlops.local import archive
from mlops.local.runners import ProcessRunner
from mlops.local.stack import LocalStack
from mlops.names import checkpoint_key_prefix_for

pytestmark = pytest.mark.slow

TERMINAL = {"Completed", "Failed", "Stopped"}
INTERRUPTED_AND_RESUMED = [
    "Starting",
    "Downloading",
    "Training",
    "Interrupted",
    "Starting",
    "Downloading",
    "Training",
    "Uploading",
    "Completed",
]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("spot")
    local = LocalStack(work_dir=tmp / "work", runner=ProcessRunner()).start()
    train, _ = write_split("iris", tmp / "data")
    local.client("s3").upload_file(str(train), local.bucket, "data/train/train.csv")
    yield local
    local.stop()


def job_name(stack, label: str) -> str:
    return f"{stack.project}-{stack.stage}-{label}-train"


def create(stack, name: str, spot: bool = True, **stopping) -> None:
    stack.client("sagemaker").create_training_job(
        TrainingJobName=name,
        AlgorithmSpecification={"TrainingImage": "local", "TrainingInputMode": "File"},
        RoleArn=stack.role_arn,
        InputDataConfig=[
            {
                "ChannelName": "training",
                "ContentType": "text/csv",
                "DataSource": {
                    "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{stack.bucket}/data/train/"}
                },
            }
        ],
        OutputDataConfig={"S3OutputPath": f"s3://{stack.bucket}/training"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        StoppingCondition=stopping or {"MaxRuntimeInSeconds": 600, "MaxWaitTimeInSeconds": 1200},
        EnableManagedSpotTraining=spot,
        CheckpointConfig={
            "S3Uri": f"s3://{stack.bucket}/{checkpoint_key_prefix_for(name)}",
            "LocalPath": "/opt/ml/checkpoints",
        },
    )


def finished(stack, name: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = stack.client("sagemaker").describe_training_job(TrainingJobName=name)
        if job["TrainingJobStatus"] in TERMINAL:
            return job
        time.sleep(0.1)
    pytest.fail(f"{name} still {job['TrainingJobStatus']} after {timeout} s")


def predictions(stack, job: dict, rows: np.ndarray, tmp_path) -> np.ndarray:
    bucket, key = job["ModelArtifacts"]["S3ModelArtifacts"].removeprefix("s3://").split("/", 1)
    body = stack.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    folder = tmp_path / job["TrainingJobName"]
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        archive.extract_all(tar, folder)  # the tar data filter is missing before Python 3.11.4
    return joblib.load(folder / "model.joblib").predict(rows)


def statuses(job: dict) -> list[str]:
    return [t["Status"] for t in job["SecondaryStatusTransitions"]]


def checkpoint_keys(stack, name: str) -> list[str]:
    listed = stack.client("s3").list_objects_v2(Bucket=stack.bucket, Prefix=checkpoint_key_prefix_for(name))
    return sorted(o["Key"].rsplit("/", 1)[1] for o in listed.get("Contents", []))


def test_a_reclaimed_spot_job_restarts_resumes_from_its_checkpoint_and_fits_the_same_model(stack, tmp_path):
    steady, reclaimed = job_name(stack, "steady"), job_name(stack, "reclaimed")
    create(stack, steady)
    uninterrupted = finished(stack, steady)
    stack.sagemaker.faults = {"spot-interrupt"}
    try:
        create(stack, reclaimed)
        job = finished(stack, reclaimed)
    finally:
        stack.sagemaker.faults = set()

    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert statuses(job) == INTERRUPTED_AND_RESUMED
    assert "Interrupted" not in statuses(uninterrupted)
    assert job["EnableManagedSpotTraining"] is True
    assert job["BillableTimeInSeconds"] < job["TrainingTimeInSeconds"]
    # the restart ran on a fresh /opt/ml that held only what had reached S3: the first checkpoint
    work = stack.work_dir / "sagemaker" / "training"
    second_log = (work / f"{reclaimed}-attempt-2" / "train.log").read_text()
    assert "resumed from checkpoint: step 1 of 2" in second_log
    assert "checkpoint: step 2 of 2" in second_log
    assert checkpoint_keys(stack, reclaimed) == ["step-0001.ckpt", "step-0002.ckpt"]
    rows = load_channel(work / steady / "input" / "data" / "training").features
    assert np.array_equal(
        predictions(stack, job, rows, tmp_path), predictions(stack, uninterrupted, rows, tmp_path)
    )
    streams = stack.client("logs").describe_log_streams(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix=f"{reclaimed}/"
    )["logStreams"]
    assert len(streams) == 2  # one per instance
    assert stack.authorizer.summary()["denied"] == []


def test_a_spot_job_without_an_interruption_completes_and_bills_less_than_it_trains(stack):
    name = job_name(stack, "calm")
    create(stack, name)
    job = finished(stack, name)
    assert job["TrainingJobStatus"] == "Completed"
    assert statuses(job) == ["Starting", "Downloading", "Training", "Uploading", "Completed"]
    assert job["BillableTimeInSeconds"] < job["TrainingTimeInSeconds"]
    assert checkpoint_keys(stack, name) == ["step-0001.ckpt", "step-0002.ckpt"]


def test_an_on_demand_job_bills_all_it_trains_and_is_never_reclaimed(stack):
    name = job_name(stack, "ondemand")
    stack.sagemaker.faults = {"spot-interrupt"}
    try:
        create(stack, name, spot=False, MaxRuntimeInSeconds=600)
        job = finished(stack, name)
    finally:
        stack.sagemaker.faults = set()
    assert job["TrainingJobStatus"] == "Completed"
    assert "Interrupted" not in statuses(job)
    assert job["BillableTimeInSeconds"] == job["TrainingTimeInSeconds"]


@pytest.mark.parametrize(
    ("spot", "stopping"),
    [
        (False, {"MaxRuntimeInSeconds": 600, "MaxWaitTimeInSeconds": 1200}),
        (True, {"MaxRuntimeInSeconds": 600}),
        (True, {"MaxRuntimeInSeconds": 600, "MaxWaitTimeInSeconds": 300}),
    ],
    ids=["wait-without-spot", "spot-without-wait", "wait-below-runtime"],
)
def test_create_training_job_refuses_what_aws_refuses(stack, spot, stopping):
    name = job_name(stack, f"refused-{len(stopping)}-{int(spot)}")
    with pytest.raises(ClientError) as refused:
        create(stack, name, spot=spot, **stopping)
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "MaxWaitTimeInSeconds" in refused.value.response["Error"]["Message"]
    listed = stack.client("sagemaker").list_training_jobs(NameContains=name)["TrainingJobSummaries"]
    assert listed == []
