"""Train and call the model with the sagemaker SDK (v3), as from a notebook, on the pipeline's image and data.

In a notebook (the kernel runs .venv-sdk/bin/python, see scripts/sdk_venv):

    import sys; sys.path.insert(0, "scripts")
    import sdk_quickstart as quick
    quick.use_local_aws("http://127.0.0.1:PORT")          # only against the local rehearsal
    job = quick.pipeline_training_job()                     # image, data, role of the pipeline's last job
    result = quick.train(job.image_uri, job.train_uri, job.output_uri, job.role_arn, {"max_depth": 3})
    quick.predict("mlops-iris-staging", ["4.5,1.3,0.3,0.3", "5.9,3,5.1,1.8"])   # ['setosa', 'virginica']

From a shell: ``python scripts/sdk_quickstart.py [--endpoint-url URL] train|predict ...`` (``--help``).
Both print progress on stderr and one JSON line on stdout; exit 1 when AWS refuses or the job fails,
exit 2 on usage errors (the SDK missing included).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

INSTALL_HINT = "pip install -e '.[sdk]'  (or scripts/sdk_venv, which makes .venv-sdk)"
TRAINING_CHANNEL = "training"  # the channel the container's train program reads (mlmodel.contract)
PIPELINE_JOB_SUFFIX = "-train"
DEFAULT_INSTANCE_TYPE = "ml.m5.large"
TERMINAL_JOB_STATES = {"Completed", "Failed", "Stopped"}


class QuickstartError(Exception):
    """A failure the CLI reports as one line, with what to do next (exit code ``code``)."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


def _sdk():
    """The SDK's modules, imported on first use so that ``--help`` and the error below work without it."""
    try:
        from sagemaker.core import deserializers, resources, serializers
        from sagemaker.core.training import configs
        from sagemaker.train import ModelTrainer
    except ImportError as error:
        raise QuickstartError(
            f"the sagemaker SDK (v3) is not installed in {sys.executable} ({error.name} is missing): "
            f"{INSTALL_HINT}",
            code=2,
        ) from None
    return ModelTrainer, configs, resources, serializers, deserializers


# -- a local AWS (the rehearsal's) -----------------------------------------------------------------------
def _drop_empty_dicts(parsed: dict, **_: Any) -> None:
    """moto answers ``VpcConfig: {}`` / ``DataCaptureConfig: {}`` where AWS leaves the key out; the SDK's
    strict models reject an empty one."""
    for key in [k for k, v in parsed.items() if v == {}]:
        del parsed[key]


def use_local_aws(endpoint_url: str, region: str = "us-east-1") -> None:
    """Points every client of this process at a local AWS, e.g. ``aws_endpoint_url`` of ``mlops rehearse``.

    Call it before the first SDK call. Sets fake credentials and the region, turns off the role check
    (it needs IAM SimulatePrincipalPolicy) and the SDK's telemetry (it calls an AWS host after a job).
    """
    import botocore.handlers

    os.environ["AWS_ENDPOINT_URL"] = endpoint_url
    # Fake ones even when real credentials are configured: nothing of an account goes to a local server.
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        os.environ.pop(name, None)
    os.environ["AWS_ACCESS_KEY_ID"] = os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"  # noqa: S105
    os.environ["AWS_DEFAULT_REGION"] = os.environ["AWS_REGION"] = region
    os.environ["SAGEMAKER_VALIDATE_ROLE"] = "false"
    config = Path(tempfile.gettempdir()) / "sdk-quickstart-local-aws.yaml"
    config.write_text(
        "SchemaVersion: '1.0'\nSageMaker:\n  PythonSDK:\n    Modules:\n      TelemetryOptOut: true\n"
    )
    os.environ["SAGEMAKER_USER_CONFIG_OVERRIDE"] = str(config)
    # Every botocore session registers the built-in handlers when it is made, the SDK's own ones too.
    handler = ("after-call.sagemaker", _drop_empty_dicts)
    if handler not in botocore.handlers.BUILTIN_HANDLERS:
        botocore.handlers.BUILTIN_HANDLERS.append(handler)


# -- what the pipeline trains with ---------------------------------------------------------------------
@dataclass
class TrainingSetup:
    """Image, data, output location and role of a training job, to train again the same way."""

    job_name: str
    image_uri: str
    train_uri: str
    output_uri: str
    role_arn: str
    hyperparameters: dict[str, str]


def pipeline_training_job(job_name: str | None = None) -> TrainingSetup:
    """The setup of a training job: ``job_name``, or the pipeline's most recent completed one."""
    _, _, resources, _, _ = _sdk()
    if job_name is None:
        completed = resources.TrainingJob.get_all(
            name_contains=PIPELINE_JOB_SUFFIX,
            status_equals="Completed",
            sort_by="CreationTime",
            sort_order="Descending",
        )
        # The pipeline's jobs end in -train (mlops.names); this module's own jobs do not.
        latest = next((j for j in completed if j.training_job_name.endswith(PIPELINE_JOB_SUFFIX)), None)
        if latest is None:
            raise QuickstartError(
                "the pipeline has no completed training job yet: release once, "
                "or pass --image-uri, --train-uri, --output-uri and --role-arn"
            )
        job_name = latest.training_job_name
    job = resources.TrainingJob.get(job_name)
    channel = next(c for c in job.input_data_config if c.channel_name == TRAINING_CHANNEL)
    return TrainingSetup(
        job_name=job_name,
        image_uri=job.algorithm_specification.training_image,
        train_uri=channel.data_source.s3_data_source.s3_uri,
        output_uri=job.output_data_config.s3_output_path,
        role_arn=job.role_arn,
        hyperparameters=dict(job.hyper_parameters or {}),
    )


# -- train and predict -----------------------------------------------------------------------------------
def train(
    image_uri: str,
    train_uri: str,
    output_uri: str,
    role_arn: str,
    hyperparameters: dict[str, Any] | None = None,
    wait: bool = True,
    instance_type: str = DEFAULT_INSTANCE_TYPE,
    base_job_name: str = "mlops-iris-sdk",
) -> dict[str, Any]:
    """Runs the image's ``train`` on the CSV files under ``train_uri`` with ``ModelTrainer``.

    Returns the job's name, status and model artifact (``model_data``, set once Completed).
    """
    model_trainer_class, configs, _, _, _ = _sdk()
    trainer = model_trainer_class(
        training_image=image_uri,
        role=role_arn,
        base_job_name=base_job_name,
        compute=configs.Compute(instance_type=instance_type, instance_count=1, volume_size_in_gb=10),
        output_data_config=configs.OutputDataConfig(s3_output_path=output_uri),
        hyperparameters={k: str(v) for k, v in (hyperparameters or {}).items()},
    )
    data = configs.InputData(channel_name=TRAINING_CHANNEL, data_source=train_uri, content_type="text/csv")
    trainer.train(input_data_config=[data], wait=False, logs=False)
    job = trainer._latest_training_job
    if wait:
        job = _wait_for(job)
    return _job_summary(job)


def _wait_for(job, poll_seconds: float = 2.0, timeout_seconds: float = 3600):
    """Waits for a training job to end, one line per status change. (``TrainingJob.wait`` draws a live
    panel and raises on Failed; a CLI and a JSON result want the status and the reason instead.)"""
    started, last = time.monotonic(), None
    while True:
        job.refresh()
        status = f"{job.training_job_status}/{job.secondary_status}"
        if status != last:
            print(f"  {job.training_job_name}: {status}", file=sys.stderr, flush=True)
            last = status
        if job.training_job_status in TERMINAL_JOB_STATES:
            return job
        if time.monotonic() - started > timeout_seconds:
            raise QuickstartError(f"{job.training_job_name} still {status} after {timeout_seconds:.0f} s")
        time.sleep(poll_seconds)


def _job_summary(job) -> dict[str, Any]:
    completed = job.training_job_status == "Completed"
    failure = job.failure_reason
    return {
        "job_name": job.training_job_name,
        "status": job.training_job_status,
        "model_data": job.model_artifacts.s3_model_artifacts if completed else None,
        "failure_reason": failure if isinstance(failure, str) else None,
    }


def predict(endpoint_name: str, rows: list[str]) -> list[str]:
    """Classifies CSV rows of four measurements (``"4.5,1.3,0.3,0.3"``) with the deployed endpoint."""
    _, _, resources, serializers, deserializers = _sdk()
    body = serializers.CSVSerializer().serialize([[float(x) for x in row.split(",")] for row in rows])
    answer = resources.Endpoint.get(endpoint_name).invoke(
        body=body, content_type="text/csv", accept="text/csv"
    )
    parsed = deserializers.CSVDeserializer().deserialize(answer.body, answer.content_type or "text/csv")
    return [cells[0] for cells in parsed if cells]


# -- CLI -------------------------------------------------------------------------------------------------
def _parse_hyperparameter(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE")
    return name, value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sdk_quickstart.py",
        description=f"Train and call the model with the sagemaker SDK (v3). Needs the SDK: {INSTALL_HINT}.",
    )
    parser.add_argument(
        "--endpoint-url",
        help="a local AWS, e.g. aws_endpoint_url of `mlops rehearse --serve` (fake credentials are used)",
    )
    parser.add_argument(
        "--region", default=None, help="AWS region (default: as configured; us-east-1 locally)"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    train_cmd = commands.add_parser(
        "train",
        help="run a training job with the pipeline's image and data",
        description="Run a training job with ModelTrainer. Options left out are taken from the pipeline's "
        "most recent completed training job (or --like JOB).",
    )
    train_cmd.add_argument("--like", metavar="JOB", help="training job to copy the setup from")
    train_cmd.add_argument("--image-uri", help="training image (default: the pipeline job's)")
    train_cmd.add_argument("--train-uri", help="s3:// prefix of the training CSV files")
    train_cmd.add_argument("--output-uri", help="s3:// prefix for the model artifact")
    train_cmd.add_argument("--role-arn", help="SageMaker execution role")
    train_cmd.add_argument(
        "--hyperparameter",
        "-p",
        action="append",
        type=_parse_hyperparameter,
        default=[],
        metavar="NAME=VALUE",
        help="e.g. -p max_depth=3 -p criterion=entropy (default: the pipeline job's)",
    )
    train_cmd.add_argument("--instance-type", default=DEFAULT_INSTANCE_TYPE)
    train_cmd.add_argument("--no-wait", action="store_true", help="print the job name and return")

    predict_cmd = commands.add_parser(
        "predict",
        help="classify CSV rows with the deployed endpoint",
        description="Send CSV rows to the endpoint through the SDK; prints the labels as a JSON list.",
    )
    predict_cmd.add_argument("--endpoint-name", default="mlops-iris-staging")
    predict_cmd.add_argument("rows", nargs="+", metavar="ROW", help='four numbers, e.g. "4.5,1.3,0.3,0.3"')
    return parser


def _run(args: argparse.Namespace) -> tuple[dict[str, Any], int]:
    if args.command == "predict":
        for row in args.rows:
            cells = row.split(",")
            if len(cells) != 4 or not all(_is_number(c) for c in cells):
                raise QuickstartError(f"{row!r} is not 4 comma-separated numbers", code=2)
        return {"endpoint_name": args.endpoint_name, "predictions": predict(args.endpoint_name, args.rows)}, 0
    explicit = (args.image_uri, args.train_uri, args.output_uri, args.role_arn)
    setup = pipeline_training_job(args.like) if args.like or not all(explicit) else None
    print(f"  training like {setup.job_name}" if setup else "  training", file=sys.stderr, flush=True)
    result = train(
        args.image_uri or setup.image_uri,
        args.train_uri or setup.train_uri,
        args.output_uri or setup.output_uri,
        args.role_arn or setup.role_arn,
        dict(args.hyperparameter) if args.hyperparameter else (setup.hyperparameters if setup else {}),
        wait=not args.no_wait,
        instance_type=args.instance_type,
    )
    return result, 0 if result["status"] in {"Completed", "InProgress"} else 1


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.endpoint_url:
        use_local_aws(args.endpoint_url, args.region or "us-east-1")
    elif args.region:
        os.environ["AWS_DEFAULT_REGION"] = os.environ["AWS_REGION"] = args.region
    try:
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError
    except ImportError:
        print(f"error: boto3 is not installed: {INSTALL_HINT}", file=sys.stderr)
        return 2
    try:
        result, code = _run(args)
    except QuickstartError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.code
    except NoRegionError:
        print("error: no AWS region: pass --region, or set AWS_DEFAULT_REGION", file=sys.stderr)
        return 2
    except NoCredentialsError:
        print(
            "error: no AWS credentials: `aws configure` / `aws sso login`, or --endpoint-url", file=sys.stderr
        )
        return 2
    except (ClientError, BotoCoreError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return code


if __name__ == "__main__":
    sys.exit(main())
