"""What the rehearsal's summary reports of the local stack: endpoints, the registry, the curl, what is left over."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess

from .data import SAMPLE_ROWS
from .local.stack import LocalStack

SAMPLE = '{"data":"4.5,1.3,0.3,0.3"}'


def model_of(stack: LocalStack) -> str:
    """The template's Model (the example the stack trains), as the stack was created with it."""
    created = getattr(stack, "created", None)
    return (created.parameters if created else stack.parameters).get("Model") or "iris"


def sample_body(stack: LocalStack) -> str:
    """The inference API body the summary's curl sends: a row of the stack's model's features."""
    row = SAMPLE_ROWS.get(model_of(stack))
    return json.dumps({"data": row}, separators=(",", ":")) if row else SAMPLE


def capacity_of(variant: dict) -> dict:
    """How an endpoint config's variant is provisioned: instances, or serverless memory and concurrency."""
    serverless = variant.get("ServerlessConfig")
    if serverless:
        return {
            "endpoint_type": "serverless",
            "memory_size_in_mb": serverless["MemorySizeInMB"],
            "max_concurrency": serverless["MaxConcurrency"],
        }
    return {
        "endpoint_type": "instance",
        "instance_type": variant.get("InstanceType"),
        "instance_count": variant.get("InitialInstanceCount"),
    }


def stage_record(stack: LocalStack) -> dict:
    """The stage's endpoint, how it is provisioned, and the model package it serves."""
    sm = stack.client("sagemaker")
    try:
        config = sm.describe_endpoint(EndpointName=stack.endpoint_name)["EndpointConfigName"]
    except sm.exceptions.ClientError:
        return {"endpoint_name": stack.endpoint_name, "model_package_arn": None, "api_url": stack.api_url}
    variant = sm.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"][0]
    container = sm.describe_model(ModelName=variant["ModelName"])["PrimaryContainer"]
    return {
        "endpoint_name": stack.endpoint_name,
        "endpoint_config": config,
        "model_package_arn": container.get("ModelPackageName"),
        "api_url": stack.api_url,
        **capacity_of(variant),
    }


def capacity_record(stack: LocalStack) -> dict | None:
    """How the stage's live endpoint is provisioned (see capacity_of), or None when it has no endpoint."""
    sm = stack.client("sagemaker")
    try:
        config = sm.describe_endpoint(EndpointName=stack.endpoint_name)["EndpointConfigName"]
    except sm.exceptions.ClientError:
        return None
    return capacity_of(sm.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"][0])


def curl_command(stack: LocalStack, body: str | None = None) -> str:
    """The exact command a person pastes; the API key is read from its file, never printed."""
    body = body or sample_body(stack)
    command = shlex.join(
        [
            "curl",
            "-sS",
            "-X",
            "POST",
            f"{stack.api_url}/v1/invokeSagemakerAPI",
            "-H",
            "Content-Type: application/json",
            "-d",
            body,
        ]
    )
    if stack.api_key_file:
        command += f' -H "x-api-key: $(cat {shlex.quote(str(stack.api_key_file))})"'
    return command


def curl_prediction(stack: LocalStack) -> tuple[str, object]:
    command = curl_command(stack)
    if shutil.which("curl") is None:
        return command, "curl is not installed"
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=30, check=False)
    answer = (done.stdout or done.stderr).strip()
    try:
        return command, json.loads(answer)
    except json.JSONDecodeError:
        return command, answer


def registry_record(stack: LocalStack, release: dict) -> dict:
    """The release's model package version and its approval status, as the registry holds them."""
    sm = stack.client("sagemaker")
    packages = sm.list_model_packages(ModelPackageGroupName=stack.model_package_group)[
        "ModelPackageSummaryList"
    ]
    for summary in packages:
        package = sm.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
        if f"({release['execution_name']})" in package.get("ModelPackageDescription", ""):
            return {
                "model_package_arn": package["ModelPackageArn"],
                "approval_status": package["ModelApprovalStatus"],
                "approval_description": package.get("ApprovalDescription"),
            }
    return {"model_package_arn": None, "approval_status": None}


TRAINING_LOGS = "/aws/sagemaker/TrainingJobs"
_RESUMED = re.compile(r"resumed from checkpoint: step (\d+) of (\d+)")


def training_record(stack: LocalStack, release: dict) -> dict | None:
    """A spot release's training job as DescribeTrainingJob and its logs tell it: the interruptions, the
    checkpoint its restart resumed from, and the seconds trained and billed. None for on-demand training."""
    name = (release.get("names") or {}).get("training_job")
    sm = stack.client("sagemaker")
    try:
        job = sm.describe_training_job(TrainingJobName=name) if name else None
    except sm.exceptions.ClientError:  # a release that failed before it created the job
        job = None
    if not job or not job.get("EnableManagedSpotTraining"):
        return None
    transitions = [t["Status"] for t in job.get("SecondaryStatusTransitions", [])]
    return {
        "job": name,
        "spot": True,
        "status": job["TrainingJobStatus"],
        "interruptions": transitions.count("Interrupted"),
        "resumed_from": resumed_from(stack, name),
        "training_seconds": job.get("TrainingTimeInSeconds"),
        "billable_seconds": job.get("BillableTimeInSeconds"),
        "secondary_statuses": transitions,
        "checkpoints": (job.get("CheckpointConfig") or {}).get("S3Uri"),
    }


def resumed_from(stack: LocalStack, job_name: str) -> dict | None:
    """The checkpoint step a restarted instance of the job resumed from, as `train` logged it."""
    logs = stack.client("logs")
    try:
        streams = logs.describe_log_streams(logGroupName=TRAINING_LOGS, logStreamNamePrefix=f"{job_name}/")
    except logs.exceptions.ResourceNotFoundException:
        return None
    for stream in sorted(s["logStreamName"] for s in streams["logStreams"]):
        events = logs.get_log_events(logGroupName=TRAINING_LOGS, logStreamName=stream)["events"]
        for event in events:
            if match := _RESUMED.search(event["message"]):
                return {"step": int(match[1]), "of": int(match[2]), "log_stream": stream}
    return None


def autoscaling_record(stack: LocalStack) -> dict | None:
    """The endpoint variant's scalable target and its target tracking policy, as Application Auto Scaling has them;
    None when it has none (a serverless endpoint scales by itself, so the release registers none)."""
    aas = stack.client("application-autoscaling")
    resource = f"endpoint/{stack.endpoint_name}/variant/AllTraffic"
    targets = aas.describe_scalable_targets(ServiceNamespace="sagemaker", ResourceIds=[resource])[
        "ScalableTargets"
    ]
    if not targets:
        return None
    policies = aas.describe_scaling_policies(ServiceNamespace="sagemaker", ResourceId=resource)[
        "ScalingPolicies"
    ]
    tracking = [p for p in policies if p["PolicyType"] == "TargetTrackingScaling"]
    config = tracking[0]["TargetTrackingScalingPolicyConfiguration"] if tracking else {}
    return {
        "resource_id": resource,
        "min_capacity": targets[0]["MinCapacity"],
        "max_capacity": targets[0]["MaxCapacity"],
        "policy": tracking[0]["PolicyName"] if tracking else None,
        "metric": (config.get("PredefinedMetricSpecification") or {}).get("PredefinedMetricType"),
        "target_value": config.get("TargetValue"),
    }


def left_over(stack: LocalStack, rollback_config: str | None) -> list[str]:
    """SageMaker resources besides the live endpoint's config, the rollback config and their models."""
    sm = stack.client("sagemaker")
    keep = {rollback_config} if rollback_config else set()
    keep.update(
        sm.describe_endpoint(EndpointName=e["EndpointName"])["EndpointConfigName"]
        for e in sm.list_endpoints()["Endpoints"]
    )
    configs = [c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]]
    keep_models = {
        v["ModelName"]
        for c in configs
        if c in keep
        for v in sm.describe_endpoint_config(EndpointConfigName=c)["ProductionVariants"]
    }
    models = [m["ModelName"] for m in sm.list_models()["Models"]]
    return [f"endpoint-config/{c}" for c in sorted(configs) if c not in keep] + [
        f"model/{m}" for m in sorted(models) if m not in keep_models
    ]


def region_of(arn: str) -> str:
    """The region field of an ARN (``arn:aws:states:us-east-1:…``)."""
    return arn.split(":")[3]


def export_lines(summary: dict) -> list[str]:
    """Shell lines that set what the README's "Try it by hand" commands use: the work dir, the API, the local
    AWS, the execution, and the fake credentials, region and endpoint the local AWS takes (never anyone's real
    keys)."""
    arn = summary.get("execution_arn")
    if not arn:
        return []
    names = {
        "WORK": summary["work_dir"],
        "API": summary["api_url"],
        "AWS_ENDPOINT": summary["aws_endpoint_url"],
        "ARN": arn,
    }
    for stage, record in (summary.get("stages") or {}).items():
        if record.get("api_url") and record["api_url"] != summary["api_url"]:
            names[f"{stage.upper()}_API"] = record["api_url"]
    credentials = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": region_of(arn),
        # every AWS tool that reads it (the AWS CLI, boto3) then talks to the local AWS: the mails' commands
        # work as they are written for AWS
        "AWS_ENDPOINT_URL": summary["aws_endpoint_url"],
    }
    return [
        "export " + " ".join(f"{name}={shlex.quote(value)}" for name, value in group.items())
        for group in (names, credentials)
    ]
