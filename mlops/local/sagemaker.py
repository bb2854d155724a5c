"""A local SageMaker behind moto's SageMaker API: jobs really run the container, endpoints really serve.

moto keeps the records (Describe, List, Delete work as in AWS); this module does the work moto does not:
CreateTrainingJob runs ``train``, CreateTransformJob feeds ``serve``, CreateEndpoint / UpdateEndpoint start
``serve`` and InvokeEndpoint reaches it. Status moves as in AWS (InProgress → Completed/Failed,
Creating/Updating → InService/Failed, a failed update rolls back to the previous config).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import re
import sys
import tarfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from mlmodel import contract
from moto.core.exceptions import JsonRESTError
from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.sagemaker.models import SageMakerModelBackend
from moto.sagemaker.responses import SageMakerResponse
from moto.sagemaker.utils import ValidationError
from moto.sagemakerruntime.responses import SageMakerRuntimeResponse

from . import archive, batch, principals, serverless, training_status, transform
from .alarm_evaluation import AlarmEvaluator, EndpointMetrics
from .capture import CaptureSettings, CaptureWriter
from .checkpoint_sync import CheckpointSync
from .cloudwatch import CloudWatch, metric_values, rollback_alarms
from .deployment import TIME_SCALE, DeploymentConfigError, Plan, Update, plan_of
from .runners import ModelServer, ProcessRunner, remove_tree
from .s3objects import download_prefix, s3_parts

log = logging.getLogger("mlops.local.sagemaker")
_ACTIVE: LocalSageMaker | None = None


# DescribeEndpoint on an endpoint that is Creating/Updating answers once that ends, if it ends within this
# long. A local model server starts in a fraction of a second, so a poller (the state machine, the SDK's
# waiters) sees the outcome at once instead of sleeping its poll interval; slower starts (in the image) still poll.
SETTLE_SECONDS = 1.0


# The local S3 runs in this process and is reached over loopback: CRC32 checksums on every object guard
# against nothing there, and cost ~20 ms per 10 MB moved (a third of a large transform's S3 time).
LOOPBACK_S3 = Config(
    request_checksum_calculation="when_required", response_checksum_validation="when_required"
)


_ALARM_TICK_SECONDS = 0.1  # how often a bake looks at its alarms (local time)
_INSTANCE = "i-0local"  # the one instance a local job or variant runs on, as its log streams name it
# An image in a private ECR repository: SageMaker pulls it with the execution role.
_ECR_IMAGE = re.compile(
    r"^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com/(?P<repository>[^:@]+)[:@](?P<ref>.+)$"
)


class LocalSageMaker:
    def __init__(
        self,
        runner: ProcessRunner,
        work_dir: Path,
        endpoint_url: str,
        region: str,
        roles: principals.Principals | None = None,
    ):
        """``roles``: when given, each job and endpoint acts as its execution role (S3, ECR, CloudWatch) as on
        AWS."""
        self.roles = roles
        self.cloudwatch = CloudWatch(self.client)
        self.runner = runner
        self.work_dir = work_dir
        self.endpoint_url = endpoint_url
        self.region = region
        self.servers: dict[str, ModelServer] = {}
        self.serve_env: dict[str, str] = {}
        # Faults injected on purpose (see FAULTS); the fault matrix tests drive them through the CLI.
        self.faults: set[str] = set()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._shutting_down = threading.Event()  # running jobs stop their programs when it is set
        self._transform_servers: list[ModelServer] = []
        self._settled: dict[str, threading.Event] = {}  # per endpoint: set when Creating/Updating ends
        self._clients: dict[str, Any] = {}
        self.capture = CaptureWriter(self.s3, self._acting_as)  # DataCaptureConfig of the endpoints
        self.metrics = EndpointMetrics()  # what SageMaker sends CloudWatch per InvokeEndpoint
        self.alarms = AlarmEvaluator(self.metrics, lambda: self.client("cloudwatch"), TIME_SCALE)
        self.updates: dict[str, Update] = {}  # endpoint name -> its blue/green update under way
        self.deployments: dict[str, dict[str, Any]] = {}  # endpoint config name -> how its update went
        self.updating = threading.Condition()  # notified when an update starts or ends
        self._publisher: threading.Thread | None = None

    # -- plumbing ------------------------------------------------------------------------------------------
    def client(self, service: str):
        """One client per service for every job (clients are thread-safe; creating one costs tens of
        milliseconds; each call signs as the calling thread's principal, see mlops.local.principals)."""
        with self._lock:
            if service not in self._clients:
                self._clients[service] = boto3.client(
                    service,
                    endpoint_url=self.endpoint_url,
                    region_name=self.region,
                    config=LOOPBACK_S3 if service == "s3" else None,
                )
            return self._clients[service]

    def s3(self):
        return self.client("s3")

    def _background(self, name: str, target, *args, role_arn: str | None = None, refused=None) -> None:
        """Runs `target` in a thread acting as `role_arn`; if SageMaker may not assume it, `refused(reason)`."""

        def as_role() -> None:
            try:
                acting = self._acting_as(role_arn)
            except principals.TrustRefused:
                refused(
                    f"ClientError: Could not assume role {role_arn}. Please ensure that the role exists and "
                    "allows principal 'sagemaker.amazonaws.com' to assume the role."
                )
                return
            with acting:
                target(*args)

        thread = threading.Thread(target=as_role, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _acting_as(self, role_arn: str | None):
        if self.roles is None or not role_arn:
            return contextlib.nullcontext()
        return principals.acting_as(self.roles.for_service(role_arn, "sagemaker.amazonaws.com"))

    def _ship_logs(self, group: str, stream: str, log_path: Path) -> None:
        if not self._shutting_down.is_set():  # the local AWS is going away: nobody will read them
            self.cloudwatch.ship_logs(group, stream, log_path)

    def _pull(self, image: str) -> None:
        """What SageMaker asks of ECR before it runs an image, as the acting execution role."""
        match = _ECR_IMAGE.match(image)
        if match is None or self.roles is None:
            return
        ecr = self.client("ecr")
        ecr.get_authorization_token()
        ref = match["ref"]
        image_id = {"imageDigest": ref} if ref.startswith("sha256:") else {"imageTag": ref}
        found = ecr.batch_get_image(repositoryName=match["repository"], imageIds=[image_id])
        if not found.get("images"):
            raise RuntimeError(f"Requested image {image} not found")

    def _model_dir_for(self, model_data_url: str, into: Path) -> Path:
        bucket, key = s3_parts(model_data_url)
        body = io.BytesIO(self.s3().get_object(Bucket=bucket, Key=key)["Body"].read())
        paths = contract.Paths(into)
        paths.model_dir.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=body) as tar:
            archive.extract_all(tar, paths.model_dir)
        return paths.model_dir

    def _scratch(self, kind: str, name: str) -> Path:
        path = self.work_dir / kind / name
        if path.exists():
            remove_tree(path)  # a model folder a server read is read-only
        path.mkdir(parents=True)
        return path

    # -- training ----------------------------------------------------------------------------------------
    def start_training(self, job) -> None:
        job.training_job_status = "InProgress"
        training_status.start_transitions(job)
        self._background(
            f"train-{job.training_job_name}",
            self._train,
            job,
            role_arn=job.role_arn,
            refused=lambda reason: self._fail_training(job, reason),
        )

    def _train(self, job) -> None:
        """Runs the job to its end. A managed spot job whose instance is reclaimed (the `spot-interrupt`
        fault) starts again on a fresh instance, from the checkpoints that reached S3."""
        started = time.monotonic()
        limits = job.stopping_condition or {}
        trained = 0.0  # seconds `train` ran, over all attempts (what MaxRuntimeInSeconds bounds)
        attempt = stream_stamp = 0
        try:
            while True:
                attempt += 1
                base = self._scratch("training", _attempt_folder(job.training_job_name, attempt))
                paths = contract.Paths(base)
                sync = self._prepare_training(job, paths, reclaim=attempt == 1 and self._reclaims(job))
                if attempt == 1:
                    job.training_start_time = utcnow()
                stream_stamp = max(int(time.time()), stream_stamp + 1)  # each instance logs to its own stream
                runtime_left = limits.get("MaxRuntimeInSeconds", math.inf) - trained
                wait_left = limits.get("MaxWaitTimeInSeconds", math.inf) - (time.monotonic() - started)
                began, reclaimed = time.monotonic(), False
                try:
                    code = self._run_train(job, base, min(runtime_left, wait_left), sync)
                    # SageMaker uploads what is left in LocalPath when train ends; the reclaim may come first.
                    reclaimed = sync is not None and not self._shutting_down.is_set() and sync.upload_new()
                    if reclaimed:
                        note(
                            base / "train.log",
                            f"[local SageMaker] the spot instance was reclaimed once {sync.uploaded[0]} was in "
                            "S3 (injected fault: spot-interrupt); nothing this instance did after that is kept",
                        )
                finally:
                    trained += time.monotonic() - began
                    self._ship_logs(
                        "/aws/sagemaker/TrainingJobs",
                        f"{job.training_job_name}/algo-1-{stream_stamp}",
                        base / "train.log",
                    )
                if reclaimed:
                    training_status.transition(job, "Interrupted")
                    training_status.transition(job, "Restarting")
                    continue
                break
            training_status.record_times(job, time.monotonic() - started)
            if code is None:
                job.training_end_time = utcnow()
                if self._shutting_down.is_set():
                    ended = "Stopped"
                else:
                    ended = "MaxWaitTimeExceeded" if wait_left < runtime_left else "MaxRuntimeExceeded"
                training_status.transition(job, ended)
                job.training_job_status = "Stopped"
                return
            if code != 0:
                reason = (
                    paths.failure_file.read_text().strip()
                    if paths.failure_file.exists()
                    else f"train exited with code {code} and wrote no output/failure"
                )
                self._fail_training(job, f"AlgorithmError: {reason}")
                return
            self._upload_model(job, base, paths)
        except Exception as exc:  # a local-runtime fault must end the job, not hang the pipeline
            log.debug("training failed", exc_info=True)
            self._fail_training(job, f"ClientError: {exc}")

    def _reclaims(self, job) -> bool:
        """Whether the `spot-interrupt` fault reclaims this job's first instance (only spot can be reclaimed)."""
        return "spot-interrupt" in self.faults and bool(job.enable_managed_spot_training)

    def _prepare_training(self, job, paths: contract.Paths, reclaim: bool) -> CheckpointSync | None:
        """/opt/ml as SageMaker lays it out before `train` starts: hyperparameters, the channels' data and,
        with a CheckpointConfig, the checkpoints already in S3."""
        paths.hyperparameters_file.parent.mkdir(parents=True, exist_ok=True)
        paths.hyperparameters_file.write_text(json.dumps(job.hyper_parameters or {}))
        channels = {}
        training_status.transition(job, "Downloading")
        for channel in job.input_data_config:
            source = channel["DataSource"]["S3DataSource"]
            dest = paths.channel_dir(channel["ChannelName"])
            dest.mkdir(parents=True, exist_ok=True)
            download_prefix(self.s3(), *s3_parts(source["S3Uri"]), dest)
            channels[channel["ChannelName"]] = {
                "ContentType": channel.get("ContentType", ""),
                "TrainingInputMode": "File",
            }
        paths.input_data_config_file.write_text(json.dumps(channels))
        if not job.checkpoint_config:
            return None
        # The container sees LocalPath as /opt/ml/checkpoints (the contract's path) whatever it is set to.
        sync = CheckpointSync(
            self.s3(),
            job.checkpoint_config["S3Uri"],
            paths.checkpoint_dir,
            reclaim_after_first_upload=reclaim,
        )
        sync.download()
        return sync

    def _run_train(self, job, base: Path, max_runtime: float, sync: CheckpointSync | None) -> int | None:
        training_status.transition(job, "Training")
        self._pull(job.algorithm_specification["TrainingImage"])
        if "train-crash" in self.faults:
            return crash(base / "train.log", "train was killed (injected fault: train-crash)")
        return self.runner.train(
            job.algorithm_specification["TrainingImage"],
            base,
            base / "train.log",
            env=getattr(job, "environment", None),
            max_runtime=None if max_runtime == math.inf else max_runtime,
            stop=self._shutting_down,
            interrupt=sync.upload_new if sync is not None else None,
        )

    def _upload_model(self, job, base: Path, paths: contract.Paths) -> None:
        training_status.transition(job, "Uploading")
        archive = base / "model.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            for item in sorted(paths.model_dir.iterdir()):
                tar.add(item, arcname=item.name)
        bucket, key = s3_parts(job.model_artifacts["S3ModelArtifacts"])
        with archive.open("rb") as body:
            self.s3().put_object(Bucket=bucket, Key=key, Body=body)
        values = metric_values(
            job.algorithm_specification.get("MetricDefinitions"),
            (base / "train.log").read_text(errors="replace"),
        )
        job.final_metric_data_list = [
            {"MetricName": name, "Value": value, "Timestamp": utcnow()} for name, value in values.items()
        ]
        self.cloudwatch.publish_training_metrics(job.training_job_name, values)
        job.training_end_time = utcnow()
        training_status.transition(job, "Completed")
        job.training_job_status = "Completed"

    def _fail_training(self, job, reason: str) -> None:
        training_status.transition(job, "Failed", reason)
        self._fail_job(job, "training_job_status", reason)

    def _fail_job(self, job, status_attr: str, reason: str) -> None:
        job.failure_reason = reason[:1024]
        if hasattr(job, "secondary_status"):
            job.secondary_status = "Failed"
        job.last_modified_time = utcnow()
        setattr(job, status_attr, "Failed")

    # -- batch transform ---------------------------------------------------------------------------------
    def start_transform(self, job, backend: SageMakerModelBackend) -> None:
        job.transform_job_status = "InProgress"
        self._background(
            f"transform-{job.transform_job_name}",
            self._transform,
            job,
            container_of(backend, job.model_name),
            role_arn=backend._models[job.model_name].execution_role_arn,
            refused=lambda reason: self._fail_job(job, "transform_job_status", reason),
        )

    def _transform(self, job, container: dict[str, Any]) -> None:
        base = self._scratch("transform", job.transform_job_name)
        server = None
        try:
            self._model_dir_for(container["ModelDataUrl"], base)
            self._pull(container["Image"])
            server = self.runner.serve(
                container["Image"],
                base,
                base / "serve.log",
                {**self.serve_env, **(container.get("Environment") or {})},
            )
            self._transform_servers.append(server)
            server.wait_ready()
            transform.run_transform(job, server, self.s3())
            job.transform_end_time = job.last_modified_time = utcnow()
            job.transform_job_status = "Completed"
        except batch.TransformInputError as exc:
            self._fail_job(job, "transform_job_status", f"ClientError: {exc}")
        except Exception as exc:
            log.debug("transform failed: %s", traceback.format_exc())
            self._fail_job(job, "transform_job_status", f"ClientError: {exc}")
        finally:
            if server:
                self._transform_servers.remove(server)
                server.stop()
            self._ship_logs(
                "/aws/sagemaker/TransformJobs", f"{job.transform_job_name}/{_INSTANCE}", base / "serve.log"
            )

    # -- endpoints ---------------------------------------------------------------------------------------
    def _start_server_for(
        self, backend: SageMakerModelBackend, endpoint_name: str, config_name: str
    ) -> ModelServer:
        label = f"{endpoint_name}-{config_name}"
        config = backend.endpoint_configs[config_name]
        variant = config.production_variants[0]
        container = container_of(backend, variant["ModelName"])
        base = self._scratch("endpoints", label)
        self._model_dir_for(container["ModelDataUrl"], base)
        self._pull(container["Image"])
        runner = CrashingRunner() if "serve-crash" in self.faults else self.runner
        server = runner.serve(
            container["Image"],
            base,
            base / "serve.log",
            {**self.serve_env, **(container.get("Environment") or {})},
        )
        server.wait_ready()
        if "canary-errors" in self.faults:
            server = FailingModel(server)
        # The capture settings travel with the fleet: an update swaps both at once.
        server.capture = CaptureSettings.from_config(
            config.data_capture_config,
            backend._models[variant["ModelName"]].execution_role_arn,
            variant["VariantName"],
        )
        server.concurrency = serverless.limit_for(variant)  # MaxConcurrency of a serverless variant
        self._ship_logs(
            f"/aws/sagemaker/Endpoints/{endpoint_name}", f"AllTraffic/{_INSTANCE}", base / "serve.log"
        )
        return server

    def start_endpoint(self, endpoint, backend: SageMakerModelBackend) -> None:
        endpoint.endpoint_status = "Creating"
        self._transition(f"endpoint-{endpoint.endpoint_name}", self._create_endpoint, endpoint, backend)

    def _transition(self, name: str, target, endpoint, backend, *args) -> None:
        settled = self._settled[endpoint.endpoint_name] = threading.Event()
        config_name = args[0] if args else endpoint.endpoint_config_name
        variant = backend.endpoint_configs[config_name].production_variants[0]
        role_arn = backend._models[variant["ModelName"]].execution_role_arn

        def run() -> None:
            try:
                target(endpoint, backend, *args)
            finally:
                settled.set()

        def refused(reason: str) -> None:
            endpoint.failure_reason = reason
            endpoint.endpoint_status = "Failed" if endpoint.endpoint_status == "Creating" else "InService"
            settled.set()

        self._background(name, run, role_arn=role_arn, refused=refused)

    def settle(self, endpoint_name: str) -> None:
        """Waits (a little) for a Creating/Updating endpoint to end that state; see SETTLE_SECONDS."""
        settled = self._settled.get(endpoint_name)
        if settled is not None:
            settled.wait(SETTLE_SECONDS)

    def _create_endpoint(self, endpoint, backend) -> None:
        try:
            server = self._start_server_for(backend, endpoint.endpoint_name, endpoint.endpoint_config_name)
        except Exception as exc:
            endpoint.failure_reason = (
                f"The primary container for production variant AllTraffic did not pass "
                f"the ping health check: {exc}"[:1024]
            )
            endpoint.endpoint_status = "Failed"
            return
        with self._lock:
            self.servers[endpoint.endpoint_name] = server
        endpoint.last_modified_time = utcnow()
        endpoint.endpoint_status = "InService"

    def update_endpoint(self, endpoint, backend, config_name: str, deployment_config=None) -> None:
        if endpoint.endpoint_status != "InService":
            raise ValidationError(message=f'Cannot update in-progress endpoint "{endpoint.arn}".')
        if config_name not in backend.endpoint_configs:
            raise ValidationError(message=f'Could not find endpoint configuration "{config_name}".')
        serverless.check_update(
            serverless.serves_serverless(endpoint.production_variants),
            backend.endpoint_configs[config_name].production_variants,
            deployment_config,
        )
        variant = backend.endpoint_configs[config_name].production_variants[0]
        try:
            plan = plan_of(deployment_config, int(variant.get("InitialInstanceCount") or 1))
        except DeploymentConfigError as error:
            raise ValidationError(message=str(error)) from None
        endpoint.endpoint_status = "Updating"
        endpoint.failure_reason = None
        self._transition(
            f"endpoint-update-{endpoint.endpoint_name}",
            self._update_endpoint,
            endpoint,
            backend,
            config_name,
            rollback_alarms(deployment_config),
            plan,
        )

    def _update_endpoint(self, endpoint, backend, config_name: str, alarms: list[str], plan: Plan) -> None:
        """Blue/green: the new fleet takes traffic only once healthy, step by step as the plan says, while the
        rollback alarms are watched; an alarm in ALARM sends all traffic back to the old fleet."""
        name = endpoint.endpoint_name
        record = self.deployments[config_name] = {
            "endpoint": name,
            "strategy": plan.kind,
            "steps": plan.describe(),
            "termination_wait_seconds": plan.termination_wait_seconds,
            "alarms": alarms,
            "outcome": "rolled back",
            "alarm": None,
            "requests": None,
        }
        try:
            server = self._start_server_for(backend, name, config_name)
        except Exception as exc:
            self._keep_old_fleet(
                endpoint,
                f"Update rolled back: the new fleet for {config_name} did not pass the ping health check: {exc}",
            )
            return
        with self._lock:
            update = Update(old=self.servers.get(name), new=server, alarms=alarms)
        with self.updating:
            self.updates[name] = update
            self.updating.notify_all()
        try:
            for step in plan.bakes():
                update.split.shift(step.new_percent)
                fired = self._bake(update, step.bake_seconds)
                if fired:
                    record["alarm"] = fired
                    self._roll_back(
                        update, endpoint, f"Update rolled back: alarm {fired} fired during baking"
                    )
                    return
            new_config = backend.endpoint_configs[config_name]
            variants = endpoint._process_production_variants(new_config.production_variants)
            # Swapped while the update still routes: a request either counts on a fleet or meets the new one.
            with self._lock:
                self.servers[name] = server
        except Exception as exc:  # a local-runtime fault must end the update, not leave it Updating
            log.debug("endpoint update failed", exc_info=True)
            self._roll_back(update, endpoint, f"Update rolled back: {exc}")
            return
        finally:
            with self.updating:
                self.updates.pop(name, None)
                self.updating.notify_all()
            record["requests"] = update.split.as_dict()
        endpoint.endpoint_config_name = config_name
        endpoint.production_variants = variants
        endpoint.data_capture_config = capture_summary(new_config.data_capture_config)
        record["outcome"] = "completed"
        endpoint.last_modified_time = utcnow()
        endpoint.endpoint_status = "InService"
        if update.old:
            update.drain("old")
            update.old.stop()

    def _bake(self, update: Update, seconds: int) -> str | None:
        """Watches the rollback alarms for `seconds` (AWS time); the first one in ALARM, if any."""
        deadline = time.monotonic() + seconds / TIME_SCALE
        while True:
            # CloudWatch evaluates the recorded points (their publishing runs on its own clock), then SageMaker
            # reads the alarms' states as the execution role.
            self.alarms.evaluate(update.alarms)
            firing = self.cloudwatch.alarms_firing(update.alarms)
            if firing:
                return firing[0]
            left = deadline - time.monotonic()
            if left <= 0 or self._shutting_down.wait(min(left, _ALARM_TICK_SECONDS)):
                return None

    def _roll_back(self, update: Update, endpoint, reason: str) -> None:
        """All traffic back to the old fleet; the new one stops once it has answered what it took."""
        update.split.shift(0)
        update.drain("new")
        update.new.stop()
        self._keep_old_fleet(endpoint, reason)

    def _keep_old_fleet(self, endpoint, reason: str) -> None:
        endpoint.failure_reason = reason[:1024]
        endpoint.last_modified_time = utcnow()
        endpoint.endpoint_status = "InService"

    def _publish_every_minute(self) -> None:
        """SageMaker sends endpoint metrics to CloudWatch once a minute: here, a minute of the deployment clock."""
        if self._publisher is not None:  # every invocation asks: the usual answer needs no lock
            return
        with self._lock:
            if self._publisher is not None:
                return
            self._publisher = threading.Thread(target=self._publishing, name="endpoint-metrics", daemon=True)
        self._publisher.start()

    def _publishing(self) -> None:
        while not self._shutting_down.wait(60 / TIME_SCALE):
            self.publish_metrics()

    def publish_metrics(self) -> None:
        """The endpoints' invocation metrics recorded so far, to the local CloudWatch."""
        self.metrics.publish(self.client("cloudwatch"))

    def stop_endpoint(self, name: str) -> None:
        with self._lock:
            server = self.servers.pop(name, None)
        if server:
            server.stop()

    def invoke(self, name: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        """SageMaker Runtime's answer. moto takes a response's status from its "status" header, not from the
        tuple, so errors carry it there too (without it boto3 saw every error as a 200)."""
        update = self.updates.get(name)
        fleet, server = update.begin() if update else ("old", self.servers.get(name))
        if server is None:
            return (
                400,
                {"x-amzn-ErrorType": "ValidationError", "status": "400"},
                json.dumps({"message": f"Endpoint {name} of account 123456789012 not found."}).encode(),
            )
        started = time.perf_counter()
        try:
            status, resp_headers, payload = server.request("POST", "/invocations", body, headers)
        except OSError:  # the model did not answer
            self._invoked(name, update, fleet, 0, None)
            raise
        self._invoked(name, update, fleet, status, (time.perf_counter() - started) * 1e6)
        if status == 200:
            if settings := getattr(server, "capture", None):
                self.capture.offer(
                    name,
                    settings,
                    (headers.get("Content-Type", "text/csv"), body),
                    (_header(resp_headers, "Content-Type", "text/csv"), payload),
                )
            return (
                200,
                {
                    # the container's own Content-Type, as SageMaker passes it on (header names in any case)
                    "Content-Type": {k.lower(): v for k, v in resp_headers.items()}.get(
                        "content-type", "text/csv"
                    ),
                    "x-Amzn-Invoked-Production-Variant": "AllTraffic",
                },
                payload,
            )
        message = payload.decode(errors="replace")
        side = "server" if status >= 500 else "client"
        return (
            424,
            {"x-amzn-ErrorType": "ModelError", "status": "424"},
            json.dumps(
                {
                    "message": f'Received {side} error ({status}) from primary with message "{message}".',
                    "OriginalStatusCode": status,
                    "OriginalMessage": message,
                }
            ).encode(),
        )

    def _invoked(self, name: str, update: Update | None, fleet: str, status: int, latency_us: float | None):
        self.metrics.record_invocation(name, "AllTraffic", status, latency_us)
        self._publish_every_minute()
        if update:
            update.end(fleet, status == 200)

    def shutdown(self) -> None:
        self._shutting_down.set()
        self.capture.stop()
        for name in list(self.servers):
            self.stop_endpoint(name)
        for server in list(self._transform_servers):
            server.stop()
        for thread in self._threads:
            thread.join(timeout=5)


def _header(headers: dict[str, str], name: str, default: str) -> str:
    """A header's value whatever the case its sender wrote it in (HTTP names are case-insensitive)."""
    return next((value for key, value in headers.items() if key.lower() == name.lower()), default)


FAULTS = {
    "train-crash": "the training process dies without writing output/failure",
    "serve-crash": "the model server of the new release exits on start (endpoint create fails, update rolls back)",
    "throttle": "the first CreateModel call is throttled (ThrottlingException), so the state's Retry is used",
    "canary-errors": "the new release's model answers every other request with HTTP 500 (a canary's alarm fires)",
    "spot-interrupt": "a spot training job's instance is reclaimed once its first checkpoint is in S3; the job "
    "restarts and resumes from it",
}


def _attempt_folder(job_name: str, attempt: int) -> str:
    """A restarted job runs on a fresh instance: a fresh /opt/ml (the first attempt's stays to be read)."""
    return job_name if attempt == 1 else f"{job_name}-attempt-{attempt}"


def note(log_path: Path, message: str) -> None:
    """A line of the platform's own in a program's log."""
    with log_path.open("a") as log:
        log.write(message + "\n")


def crash(log_path: Path, message: str) -> int:
    note(log_path, message)
    return 137


class FailingModel:
    """A model server that answers every other invocation with a 500, as a model with a bug on some inputs."""

    def __init__(self, server: ModelServer) -> None:
        self._server = server
        self._invocations = 0
        self._lock = threading.Lock()

    def __getattr__(self, name: str):
        return getattr(self._server, name)

    def request(self, method: str, path: str, body=None, headers=None, timeout: float = 60.0):
        if path == "/invocations":
            with self._lock:
                self._invocations += 1
                fails = self._invocations % 2 == 1
            if fails:
                error = {"error": "model failed on this input (injected fault: canary-errors)"}
                return 500, {"Content-Type": "application/json"}, json.dumps(error).encode()
        return self._server.request(method, path, body, headers, timeout)


class CrashingRunner(ProcessRunner):
    """A model server that dies on start, as a broken image would."""

    def _command(self, program: str) -> list[str]:
        return [
            sys.executable,
            "-c",
            "import sys; print('model server crashed on start (injected fault: serve-crash)'); sys.exit(1)",
        ]


def container_of(backend: SageMakerModelBackend, model_name: str) -> dict[str, Any]:
    """Image, model data and environment of a model, also when it was created from a registry package."""
    container = dict(backend._models[model_name].primary_container or {})
    package_name = container.get("ModelPackageName")
    if package_name:
        package = backend.describe_model_package(package_name)
        spec = package.inference_specification["Containers"][0]
        container = {**spec, **{k: v for k, v in container.items() if k != "ModelPackageName"}}
    return container


# -- moto seams --------------------------------------------------------------------------------------------
_originals: dict[str, Any] = {}
_INHERITED = object()  # the patched name was not the class's own: uninstall deletes it again
_REQUEST = threading.local()  # what a response handler read that moto's backend method does not take


def _active() -> LocalSageMaker:
    if _ACTIVE is None:
        raise RuntimeError("the local SageMaker is not running")
    return _ACTIVE


def _create_training_job(self, *args, **kwargs):
    training_status.check_stopping_condition(
        kwargs.get("stopping_condition"), bool(kwargs.get("enable_managed_spot_training"))
    )
    # moto replaces the job's MetricDefinitions and FinalMetricDataList with placeholders of its own
    asked = list((kwargs.get("algorithm_specification") or {}).get("MetricDefinitions") or [])
    job = _originals["SageMakerModelBackend.create_training_job"](self, *args, **kwargs)
    job.algorithm_specification["MetricDefinitions"] = asked
    job.environment = dict(getattr(_REQUEST, "environment", None) or {})  # moto drops it: train runs with it
    job.final_metric_data_list = []
    _active().start_training(job)
    return job


def _response_create_training_job(self) -> ActionResult:
    """moto's handler without the parameter it ignores: the job's Environment (the model slot to train)."""
    _REQUEST.environment = self._get_param("Environment") or {}
    try:
        return _originals["SageMakerResponse.create_training_job"](self)
    finally:
        _REQUEST.environment = None


def _create_transform_job(self, *args, **kwargs):
    job = _originals["SageMakerModelBackend.create_transform_job"](self, *args, **kwargs)
    _active().start_transform(job, self)
    return job


def capture_summary(config: dict[str, Any] | None) -> dict[str, Any] | None:
    """DescribeEndpoint's DataCaptureConfig (a DataCaptureConfigSummary) for an endpoint config's; moto copies the
    config's own, which lacks CaptureStatus and CurrentSamplingPercentage (the SDK's models require them)."""
    if not config:
        return None
    summary = {
        "EnableCapture": bool(config.get("EnableCapture", True)),
        "CaptureStatus": "Started" if config.get("EnableCapture", True) else "Stopped",
        "CurrentSamplingPercentage": config.get("InitialSamplingPercentage", 0),
        "DestinationS3Uri": config.get("DestinationS3Uri", ""),
    }
    if config.get("KmsKeyId"):
        summary["KmsKeyId"] = config["KmsKeyId"]
    return summary


def _create_endpoint_config(self, *args, **kwargs):
    serverless.check_endpoint_config(
        kwargs.get("production_variants") or [], kwargs.get("data_capture_config")
    )
    return _originals["SageMakerModelBackend.create_endpoint_config"](self, *args, **kwargs)


def _create_endpoint(self, *args, **kwargs):
    endpoint = _originals["SageMakerModelBackend.create_endpoint"](self, *args, **kwargs)
    endpoint.data_capture_config = capture_summary(endpoint.data_capture_config)
    _active().start_endpoint(endpoint, self)
    return endpoint


def _describe_endpoint(self, endpoint_name: str):
    _active().settle(endpoint_name)
    return _originals["SageMakerModelBackend.describe_endpoint"](self, endpoint_name)


def _delete_endpoint(self, endpoint_name: str) -> None:
    _originals["SageMakerModelBackend.delete_endpoint"](self, endpoint_name)
    _active().stop_endpoint(endpoint_name)


def _backend_update_endpoint(self, endpoint_name: str, endpoint_config_name: str, deployment_config=None):
    endpoint = self.endpoints.get(endpoint_name)
    if endpoint is None:
        raise ValidationError(message=f'Could not find endpoint "{endpoint_name}".')
    _active().update_endpoint(endpoint, self, endpoint_config_name, deployment_config)
    return endpoint


def _response_update_endpoint(self) -> ActionResult:
    endpoint = self.sagemaker_backend.update_endpoint(
        endpoint_name=self._get_param("EndpointName"),
        endpoint_config_name=self._get_param("EndpointConfigName"),
        deployment_config=self._get_param("DeploymentConfig"),
    )
    return ActionResult({"EndpointArn": endpoint.arn})


def _runtime_invoke_endpoint(self):
    name = self._get_params().get("EndpointName") or self.path.split("/")[2]
    headers = {
        "Content-Type": self.headers.get("Content-Type", "text/csv"),
        "Accept": self.headers.get("Accept", "text/csv"),
    }
    local = _active()
    limit = getattr(local.servers.get(name), "concurrency", None)
    if limit is None:
        return local.invoke(name, self.raw_body or b"", headers)
    with limit.slot() as admitted:
        if not admitted:
            return serverless.throttled(name, limit.limit)
        return local.invoke(name, self.raw_body or b"", headers)


def _create_model_maybe_throttled(self):
    local = _active()
    if "throttle" in local.faults:
        local.faults.discard("throttle")
        raise JsonRESTError("ThrottlingException", "Rate exceeded (injected fault: throttle)")
    return _originals["SageMakerResponse.create_model"](self)


_PATCHES = (
    (SageMakerModelBackend, "create_training_job", _create_training_job),
    (SageMakerResponse, "create_training_job", _response_create_training_job),
    (SageMakerModelBackend, "create_transform_job", _create_transform_job),
    (SageMakerModelBackend, "create_endpoint_config", _create_endpoint_config),
    (SageMakerModelBackend, "create_endpoint", _create_endpoint),
    (SageMakerModelBackend, "describe_endpoint", _describe_endpoint),
    (SageMakerModelBackend, "delete_endpoint", _delete_endpoint),
    (SageMakerModelBackend, "update_endpoint", _backend_update_endpoint),  # moto has no UpdateEndpoint
    (SageMakerResponse, "update_endpoint", _response_update_endpoint),
    (SageMakerResponse, "create_model", _create_model_maybe_throttled),
    (SageMakerRuntimeResponse, "invoke_endpoint", _runtime_invoke_endpoint),
    # InvokeEndpoint bodies are bytes: moto would decode them as UTF-8 (a 500 for anything else).
    (SageMakerRuntimeResponse, "use_raw_body", True),
)


def install(local: LocalSageMaker) -> None:
    global _ACTIVE
    _ACTIVE = local
    if _originals:
        return
    for owner, name, patched in _PATCHES:
        _originals[f"{owner.__name__}.{name}"] = owner.__dict__.get(name, _INHERITED)
        setattr(owner, name, patched)


def uninstall() -> None:
    """moto behaves as plain moto again (other tests in the same process may use it). Idempotent: a stack
    stopped twice must not take moto's own methods away."""
    global _ACTIVE
    _ACTIVE = None
    for owner, name, _ in _PATCHES:
        key = f"{owner.__name__}.{name}"
        if key not in _originals:
            continue
        original = _originals.pop(key)
        if original is _INHERITED:
            delattr(owner, name)
        else:
            setattr(owner, name, original)
