"""The whole product on one machine: moto as the local AWS, the template's resources, functions and API."""

from __future__ import annotations

import json
import logging
import os
import secrets
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from moto.moto_api._internal.models import moto_api_backend
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from . import engine, outbox, sagemaker
from .functions import LocalFunctions, invoke_any
from .gateway import Gateway
from .runners import ProcessRunner
from .template import ACCOUNT_ID, Resolver, Template, substitute

REGION = "us-east-1"
APPROVER = "approver@example.com"
SENDER = "releases@example.com"
# Stack settings that keep a local run short; the template's defaults apply on AWS.
LOCAL_PARAMETERS = {
    "ApproverEmail": APPROVER,
    "SenderEmail": SENDER,
    "EndpointPollSeconds": "1",
    "ApprovalTimeoutSeconds": "600",
}


class MotoServer(ThreadedMotoServer):
    """moto's threaded server, polling for shutdown every 0.1 s instead of 0.5 s (``stop()`` waits for it)."""

    def _server_entry(self) -> None:
        app = DomainDispatcherApplication(create_backend_app)
        self._server = make_server(
            self._ip_address, self._port, app, True, request_handler=MotoRequestHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever(poll_interval=0.1)


def quiet_logs() -> None:
    for name in ("werkzeug", "moto", "botocore", "urllib3", "boto3"):
        logging.getLogger(name).setLevel(logging.ERROR)


class LocalAwsLog:
    """moto's and werkzeug's own error lines (a failed execution logs its whole state, kilobytes on one line)
    go to a file in the work dir, as AWS's service logs never reach a caller's terminal."""

    LOGGERS = ("moto", "werkzeug")

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.handler = logging.FileHandler(path, delay=True)
        self.handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        for name in self.LOGGERS:
            logging.getLogger(name).addHandler(self.handler)

    def close(self) -> None:
        for name in self.LOGGERS:
            logging.getLogger(name).removeHandler(self.handler)
        self.handler.close()


@dataclass
class LocalStack:
    """Starts with ``start()``; everything it creates lives in ``work_dir``."""

    work_dir: Path
    runner: ProcessRunner = field(default_factory=ProcessRunner)
    parameters: dict[str, str] = field(default_factory=dict)
    definition_path: Path | None = None
    template: Template = field(default_factory=Template)
    # Another stage's stack whose local AWS, mail and SageMaker this one uses; and stages started beside it.
    shared: LocalStack | None = None
    companions: list[LocalStack] = field(default_factory=list)
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)

    def start(self) -> LocalStack:
        """Everything runs when this returns; if any part fails, what was started is stopped again."""
        quiet_logs()
        self.work_dir.mkdir(parents=True, exist_ok=True)
        if not self.shared:
            self.aws_log = LocalAwsLog(self.work_dir / "logs" / "local-aws.log")
        self.runner.warm_up()
        try:
            return self._start_beside(self.shared) if self.shared else self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> LocalStack:
        self.server = MotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        port = self.server.get_host_and_port()[1]
        self.endpoint_url = f"http://127.0.0.1:{port}"
        self._saved_env = dict(os.environ)
        os.environ.update(
            {
                "MOTO_PORT": str(port),  # moto's interpreter calls services on localhost:$MOTO_PORT
                "AWS_ENDPOINT_URL": self.endpoint_url,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
                "POWERTOOLS_TRACE_DISABLED": "true",
                "POWERTOOLS_DEV": "false",
            }
        )
        os.environ.pop("AWS_PROFILE", None)
        self.params = {**self.template.parameter_defaults(), **LOCAL_PARAMETERS, **self.parameters}
        self.project, self.stage = self.params["ProjectName"], self.params["Stage"]
        self.outbox = outbox.Outbox(self.work_dir / "outbox")
        outbox.install(self.outbox)
        self.sagemaker = sagemaker.LocalSageMaker(
            self.runner, self.work_dir / "sagemaker", self.endpoint_url, REGION
        )
        sagemaker.install(self.sagemaker)
        self._create_resources()
        self._start_functions_and_api()
        self._create_state_machine()
        return self

    def _start_beside(self, other: LocalStack) -> LocalStack:
        self.server, self.endpoint_url = other.server, other.endpoint_url
        self.params = {**self.template.parameter_defaults(), **LOCAL_PARAMETERS, **self.parameters}
        self.project, self.stage = self.params["ProjectName"], self.params["Stage"]
        if (self.project, self.stage) == (other.project, other.stage):
            raise ValueError(f"stage {self.stage} is already deployed on this local AWS")
        self.outbox, self.sagemaker = other.outbox, other.sagemaker
        self._create_resources(project_resources_of=other)
        self._start_functions_and_api()
        self._create_state_machine()
        return self

    def client(self, service: str):
        """One client per service (clients are thread-safe; creating one costs tens of milliseconds)."""
        if service not in self._clients:
            self._clients[service] = boto3.client(service, endpoint_url=self.endpoint_url, region_name=REGION)
        return self._clients[service]

    def _create_resources(self, project_resources_of: LocalStack | None = None) -> None:
        prefix = f"{self.project}-{self.stage}"
        self.bucket = f"{prefix}-artifacts-{ACCOUNT_ID}"
        self.client("s3").create_bucket(Bucket=self.bucket)
        sns = self.client("sns")
        self.topic_arn = sns.create_topic(Name=f"{prefix}-notifications")["TopicArn"]
        sns.subscribe(TopicArn=self.topic_arn, Protocol="email", Endpoint=self.params["ApproverEmail"])
        self.table = f"{prefix}-approvals"
        self.client("dynamodb").create_table(
            TableName=self.table,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "approval_id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "approval_id", "KeyType": "HASH"}],
        )
        # A fresh signing key per local run, as the stack generates one in AWS.
        self.secret_arn = self.client("secretsmanager").create_secret(
            Name=f"{prefix}-link-signing", SecretString=secrets.token_urlsafe(48)
        )["ARN"]
        self.client("ses").verify_email_identity(EmailAddress=self.params["SenderEmail"])
        self.role_arn = self.client("iam").create_role(
            RoleName=f"{prefix}-sagemaker",
            AssumeRolePolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "sagemaker.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
        )["Role"]["Arn"]
        if project_resources_of:  # the registry group and image repository belong to the project
            self.model_package_group = project_resources_of.model_package_group
            self.ecr_repository = project_resources_of.ecr_repository
            return
        self.model_package_group = self.project
        self.client("sagemaker").create_model_package_group(
            ModelPackageGroupName=self.model_package_group,
            ModelPackageGroupDescription=f"Releases of {self.project}",
        )
        self.ecr_repository = self.project
        self.client("ecr").create_repository(
            repositoryName=self.ecr_repository, imageTagMutability="IMMUTABLE"
        )

    def _physical(self) -> tuple[dict[str, str], dict[str, str]]:
        physical = {
            "ArtifactBucket": self.bucket,
            "ModelPackageGroup": self.model_package_group,
            "NotificationTopic": self.topic_arn,
            "ApprovalTable": self.table,
            "LinkSigningSecret": self.secret_arn,
            "ServerlessRestApi": "local",
            "InferenceApiKey": "local-inference-key",
        }
        # Every API of the template is the one local gateway.
        physical.update(
            {
                logical: "local"
                for logical, res in self.template.resources.items()
                if res["Type"] == "AWS::Serverless::Api"
            }
        )
        arns = {
            "SageMakerExecutionRole": self.role_arn,
            "NotificationTopic": self.topic_arn,
            "ArtifactBucket": f"arn:aws:s3:::{self.bucket}",
        }
        return physical, arns

    def _start_functions_and_api(self) -> None:
        physical, arns = self._physical()
        resolver = Resolver(self.params, physical, arns, REGION, self.template.conditions())
        specs = self.template.functions()
        env = {
            logical: {k: str(resolver.resolve(v)) for k, v in spec.environment.items()}
            for logical, spec in specs.items()
        }
        self.functions = LocalFunctions(
            specs,
            env,
            REGION,
            log_path=self.work_dir / "logs" / "functions.log",
            name_prefix=f"{self.project}-{self.stage}-",
        )
        engine.install(invoke_any)
        security = self.template.api_security(resolver)
        self.api_key_file = None
        if any("api_key" in schemes for schemes in security.values()):
            self.api_key_file = self.work_dir / "api-key"
            self.api_key_file.write_text(secrets.token_urlsafe(30))
            self.api_key_file.chmod(0o600)
        self.gateway = Gateway(
            self.functions, security, self.api_key_file.read_text() if self.api_key_file else None
        )
        self.api_url = self.gateway.start()
        physical["ServerlessRestApi"] = "local"
        self.resolver = Resolver(
            self.params, physical, {**arns, **self.functions.arns}, REGION, self.template.conditions()
        )

    def substitutions(self) -> dict[str, str]:
        _, raw = self.template.state_machine()
        values = {k: str(self.resolver.resolve(v)) for k, v in raw.items()}
        values["ApiUrl"] = self.api_url
        return values

    def _create_state_machine(self) -> None:
        default_path, _ = self.template.state_machine()
        path = self.definition_path or default_path
        definition = substitute(path.read_text(), self.substitutions())
        self.state_machine_arn = self.client("stepfunctions").create_state_machine(
            name=f"{self.project}-{self.stage}-release",
            definition=definition,
            roleArn=f"arn:aws:iam::{ACCOUNT_ID}:role/{self.project}-states",
        )["stateMachineArn"]

    @property
    def endpoint_name(self) -> str:
        return self.substitutions()["EndpointName"]

    def live_endpoints(self) -> list[str]:
        return [e["EndpointName"] for e in self.client("sagemaker").list_endpoints()["Endpoints"]]

    def stop(self) -> None:
        """Stops what ``start`` started (all of it, or the part a failed start got to)."""
        for companion in self.companions:
            companion.stop()
        gateway, server, local_sagemaker, functions = (
            getattr(self, n, None) for n in ("gateway", "server", "sagemaker", "functions")
        )
        if functions:
            functions.close()
        if self.shared:
            if gateway:
                gateway.stop()
            return
        # Each waits for its own server loop or model servers to wind down; together they take the longest one.
        stoppers = [
            stop
            for stop in (
                gateway and gateway.stop,
                server and server.stop,
                local_sagemaker and local_sagemaker.shutdown,
            )
            if stop
        ]
        with ThreadPoolExecutor(max_workers=3) as pool:
            for stopping in [pool.submit(stop) for stop in stoppers]:
                stopping.result()
        sagemaker.uninstall()
        outbox.uninstall()
        engine.uninstall()
        if server:
            moto_api_backend.reset()  # the local AWS's state goes with it, as if it had been its own process
        if hasattr(self, "_saved_env"):
            os.environ.clear()
            os.environ.update(self._saved_env)
        if hasattr(self, "aws_log"):
            self.aws_log.close()


def new_work_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="mlops-rehearsal-"))
