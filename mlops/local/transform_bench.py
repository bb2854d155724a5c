"""The local batch transform's data path on its own: S3 objects in, `.out` objects out, through a model server
that is already up. It is what CreateTransformJob runs once its server answers /ping, so a benchmark can time
the data path without the server's start-up and a tool can score data against a server it started itself.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from . import transform
from .runners import ModelServer
from .sagemaker import LocalSageMaker


def transform_job(
    input_uri: str,
    output_uri: str,
    *,
    strategy: str = "MultiRecord",
    max_payload_mb: int = 6,
    max_concurrent: int | None = None,
    content_type: str = "text/csv",
    accept: str = "text/csv",
    data_processing: dict[str, str] | None = None,
) -> SimpleNamespace:
    """A transform job as moto records one: the fields the local SageMaker reads, named as moto names them."""
    return SimpleNamespace(
        transform_input={
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": input_uri}},
            "ContentType": content_type,
            "SplitType": "Line",
        },
        transform_output={"S3OutputPath": output_uri, "Accept": accept, "AssembleWith": "Line"},
        data_processing=data_processing or {},
        batch_strategy=strategy,
        max_payload_in_mb=max_payload_mb,
        max_concurrent_transforms=max_concurrent,
    )


def run_transform(local: LocalSageMaker, server: ModelServer, job: SimpleNamespace) -> None:
    """Scores every object under the job's input prefix with `server`; raises TransformInputError as a job
    would fail."""
    transform.run_transform(job, server, local.s3())


def local_sagemaker(endpoint_url: str, work_dir: Path, region: str = "us-east-1") -> LocalSageMaker:
    """A local SageMaker that only talks to S3 at `endpoint_url` (no moto patches installed)."""
    from .runners import ProcessRunner

    return LocalSageMaker(ProcessRunner(), work_dir, endpoint_url, region)
