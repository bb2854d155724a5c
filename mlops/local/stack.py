"""The whole product on one machine: moto as the local AWS, the template's resources, functions and API."""

from __future__ import annotations

import logging
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.credentials import ReadOnlyCredentials
from moto.moto_api._internal.models import moto_api_backend
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from ..aws_cli import github_stack_parameters
from . import authorizer, cloudformation, engine, lean_moto, oidc, outbox, principals, sagemaker
from .functions import FunctionSpec, LocalFunctions, install_invoke, invoke_any, uninstall_invoke
from .gateway import Gateway
from .release_workflow import repository_name
from .runners import ProcessRunner
from .template import ACCOUNT_ID, REPO_ROOT, Template, TemplateError

REGION = "us-east-1"
ACCESS_TEMPLATE_PATH = REPO_ROOT / "infra" / "github-oidc.yaml"
APPROVER = "approver@example.com"
SENDER = "releases@example.com"
# Stack settings that keep a local run short; the template's defaults apply on AWS.
LOCAL_PARAMETERS = {
    "ApproverEmail": APPROVER,
    "SenderEmail": SENDER,
    "EndpointPollSeconds": "1",
    "ApprovalTimeoutSeconds": "600",
}
# The keys the rehearsal itself signs with: the account holder's, who deploys the stacks (not checked by IAM).
DEPLOYER_KEYS = ReadOnlyCredentials("testing", "testing", None)
# Where each local stack's APIs are served: stack name -> the local gateway's origin.
_GATEWAYS: dict[str, str] = {}


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
    for name in ("werkzeug", "moto", "botocore", "urllib3", "boto3", "samtranslator"):
        logging.getLogger(name).setLevel(logging.ERROR)


class LocalAwsLog:
    """moto's, werkzeug's and the local services' own lines (a failed execution logs its whole state, kilobytes
    on one line) go to a file in the work dir, as AWS's service logs never reach a caller's terminal."""

    LOGGERS = ("moto", "werkzeug", "mlops.local")

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
    access_template: Template = field(default_factory=lambda: Template(ACCESS_TEMPLATE_PATH))
    # infra/github-oidc.yaml's parameters beyond the repository's (e.g. the GitHub environment prod's role trusts).
    access_parameters: dict[str, str] = field(default_factory=dict)
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
                "AWS_ACCESS_KEY_ID": DEPLOYER_KEYS.access_key,
                "AWS_SECRET_ACCESS_KEY": DEPLOYER_KEYS.secret_key,
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
                "POWERTOOLS_TRACE_DISABLED": "true",
                "POWERTOOLS_DEV": "false",
            }
        )
        os.environ.pop("AWS_PROFILE", None)
        for name in ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):  # the deployer's keys are long-term keys
            os.environ.pop(name, None)
        lean_moto.load_botocore_models_once()
        principals.install(DEPLOYER_KEYS)
        self.issuer = oidc.LocalIssuer()
        self.authorizer = authorizer.Authorizer(DEPLOYER_KEYS.access_key, self.issuer)
        authorizer.install(self.authorizer)
        self.principals = principals.Principals(self.client("iam"), self.client("sts"), self.authorizer)
        cloudformation.install(_GATEWAYS.get)
        # before any state machine: the interpreter's backend holds them
        engine.install(invoke_any, self.principals, self.authorizer)
        install_invoke()  # Lambda's Invoke API runs the template's handlers too
        self.outbox = outbox.Outbox(self.work_dir / "outbox")
        outbox.install(self.outbox)
        self.sagemaker = sagemaker.LocalSageMaker(
            self.runner, self.work_dir / "sagemaker", self.endpoint_url, REGION, self.principals
        )
        sagemaker.install(self.sagemaker)
        self._deploy()
        return self

    def _start_beside(self, other: LocalStack) -> LocalStack:
        self.server, self.endpoint_url = other.server, other.endpoint_url
        self.outbox, self.sagemaker = other.outbox, other.sagemaker
        self.issuer, self.authorizer, self.principals = other.issuer, other.authorizer, other.principals
        name = self._stack_name()
        if name == other.stack_name:
            raise ValueError(f"stage {self.parameters.get('Stage')} is already deployed on this local AWS")
        self._deploy()
        return self

    region_name = REGION  # with ``client``, what aws_cli's functions need of a boto3 session

    def client(self, service: str):
        """One client per service (clients are thread-safe; creating one costs tens of milliseconds)."""
        if service not in self._clients:
            self._clients[service] = boto3.client(service, endpoint_url=self.endpoint_url, region_name=REGION)
        return self._clients[service]

    def _stack_name(self) -> str:
        """As infra/samconfig.toml names the app stack: ``<ProjectName>-<Stage>``."""
        values = {**self.template.parameter_defaults(), **self.parameters}
        return f"{values.get('ProjectName', 'mlops')}-{values.get('Stage', 'local')}"

    def _deploy(self) -> None:
        """The access stack (infra/github-oidc.yaml), then the app stack from the template, as scripts/bootstrap
        deploys them; every name the rehearsal uses is read back from what they created."""
        self.stack_name = self._stack_name()
        # The local gateway listens before the stack exists: the state machine's ApiUrl names it.
        self.gateway = Gateway(None)
        self.gateway.start()
        _GATEWAYS[self.stack_name] = self.gateway.origin
        parameters = self._stack_parameters()
        stage_values = {**self.template.parameter_defaults(), **parameters}
        project, stage = stage_values["ProjectName"], stage_values["Stage"]
        try:
            access = self._deploy_access_stack(f"{self.stack_name}-github", project, stage)
        except TemplateError as error:
            raise TemplateError(f"{self.access_template.path}: {error}") from None
        try:
            packaged = cloudformation.package(
                self.template.doc, self.template.path.parent, self._uploader(), self.definition_path
            )
            transformed = cloudformation.sam_transform(packaged.template, parameters, REGION)
            self.created = cloudformation.create_stack(
                self.client("cloudformation"), self.stack_name, transformed, parameters
            )
        except TemplateError as error:
            raise TemplateError(f"{self.template.path}: {error}") from None
        self.project, self.stage = self.created.parameters["ProjectName"], self.created.parameters["Stage"]
        self.bucket = self._output(self.created, "ArtifactBucketName")
        self.state_machine_arn = self._output(self.created, "StateMachineArn")
        self.endpoint_name = self._output(self.created, "EndpointName")
        self.model_package_group = self._output(self.created, "ModelPackageGroupName")
        self.access = access
        self.ecr_repository = self._output(access, "ImageRepositoryName")
        self.release_role_arn = self._output(access, "ReleaseRoleArn")
        self.role_arn = self.client("iam").get_role(RoleName=self.created.physical["SageMakerExecutionRole"])[
            "Role"
        ]["Arn"]
        self._check_state_machine_logging()
        # What scripts/bootstrap asks of the account holder: SES sends only from a verified sender.
        if self.created.parameters.get("SenderEmail"):
            self.client("ses").verify_email_identity(EmailAddress=self.created.parameters["SenderEmail"])
        self._start_functions_and_api(packaged.code_dirs)

    # What Step Functions asks of a state machine's role when its logging goes to CloudWatch Logs ("IAM
    # policies for logging to CloudWatch Logs" in its developer guide); without them it refuses the state machine.
    LOG_DELIVERY_ACTIONS = (
        "CreateLogDelivery",
        "DescribeResourcePolicies",
        "PutResourcePolicy",
        "DescribeLogGroups",
    )

    def _check_state_machine_logging(self) -> None:
        sfn = self.client("stepfunctions")
        for logical, arn in self.created.of_type("AWS::StepFunctions::StateMachine").items():
            machine = sfn.describe_state_machine(stateMachineArn=arn)
            logging_config = machine.get("loggingConfiguration") or {}
            if logging_config.get("level", "OFF") == "OFF" or not logging_config.get("destinations"):
                continue
            try:
                role = self.principals.for_service(machine["roleArn"], "states.amazonaws.com")
            except principals.TrustRefused as error:
                raise TemplateError(f"{logical}: {error}") from None
            for operation in self.LOG_DELIVERY_ACTIONS:
                call = authorizer.Call(
                    role.role_arn,
                    "logs",
                    operation,
                    {},
                    REGION,
                    caller=role.session_arn,
                    action=f"logs:{operation}",
                )
                outcome = self.authorizer.authorize(call)
                if not outcome.allowed:
                    raise TemplateError(
                        f"{logical}: InvalidLoggingConfiguration: The state machine IAM Role is not authorized to "
                        f"access the Log Destination ({outcome.message})"
                    )

    def _stack_parameters(self) -> dict[str, str]:
        """The stack's parameter values: the local settings the template declares, then ``parameters``."""
        declared = self.template.doc.get("Parameters") or {}
        missing = sorted({"ProjectName", "Stage"} - declared.keys())
        if missing:
            raise TemplateError(
                f"{self.template.path} declares no {' or '.join(missing)} parameter: the local stacks are named "
                "by them, as infra/samconfig.toml names the app stack"
            )
        return {**{k: v for k, v in LOCAL_PARAMETERS.items() if k in declared}, **self.parameters}

    def _output(self, stack: cloudformation.CreatedStack, name: str) -> str:
        if name not in stack.outputs:
            raise TemplateError(f"stack {stack.name} has no {name} output, which the rehearsal reads")
        return stack.outputs[name]

    def _deploy_access_stack(self, name: str, project: str, stage: str) -> cloudformation.CreatedStack:
        access = self.access_template
        # The account-wide choices as scripts/bootstrap makes them: a second stage shares the first's.
        owner, _, repo = repository_name().partition("/")
        parameters = {
            "GitHubOwner": owner,
            "GitHubRepo": repo,
            **self.access_parameters,
            "ProjectName": project,
            "Stage": stage,
            **github_stack_parameters(self, name, project),
        }
        return cloudformation.create_stack(
            self.client("cloudformation"), name, access.doc, {k: v for k, v in parameters.items() if v}
        )

    def _uploader(self):
        s3 = self.client("s3")
        bucket = f"{cloudformation.PACKAGE_BUCKET_PREFIX}-{ACCOUNT_ID}"
        if bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
            s3.create_bucket(Bucket=bucket)

        def put_object(key: str, body: bytes) -> str:
            s3.put_object(Bucket=bucket, Key=f"{self.stack_name}/{key}", Body=body)
            return f"s3://{bucket}/{self.stack_name}/{key}"

        return put_object

    def _start_functions_and_api(self, code_dirs: dict[str, Path]) -> None:
        lambda_client = self.client("lambda")
        configs = {
            logical: lambda_client.get_function_configuration(FunctionName=name)
            for logical, name in self.created.of_type("AWS::Lambda::Function").items()
        }
        arns = {logical: config["FunctionArn"] for logical, config in configs.items()}
        try:  # each function signs with its role's keys, as Lambda gives them to it
            keys = {
                logical: self.principals.for_service(config["Role"], "lambda.amazonaws.com")
                for logical, config in configs.items()
            }
        except principals.TrustRefused as error:
            raise TemplateError(
                f"The role defined for the function cannot be assumed by Lambda: {error}"
            ) from None
        routes, security, apis = self._routes(arns)
        specs = {}
        for logical, config in configs.items():
            module, attribute = config["Handler"].rsplit(".", 1)
            if config["CodeSha256"] not in code_dirs:
                raise TemplateError(
                    f"{logical}: its code is not a packaged CodeUri folder (the local AWS runs only those)"
                )
            specs[logical] = FunctionSpec(
                logical_id=logical,
                code_dir=code_dirs[config["CodeSha256"]],
                module=module,
                attribute=attribute,
                # Lambda's variables are strings; moto keeps a Number parameter's Ref as it parsed it
                environment={
                    k: str(v) for k, v in config.get("Environment", {}).get("Variables", {}).items()
                },
                api_events=tuple(route for route, target in routes.items() if target == logical),
            )
        self.functions = LocalFunctions(
            specs,
            {logical: spec.environment for logical, spec in specs.items()},
            REGION,
            log_path=self.work_dir / "logs" / "functions.log",
            arns=arns,
            keys=keys,
        )
        self.api_key_file = None
        if any("api_key" in schemes for schemes in security.values()):
            self.api_key_file = self.work_dir / "api-key"
            # Private from its first byte: mkstemp creates the file 0600, the rename puts it in place whole
            # (and replaces whatever was there, a link included, rather than writing through it).
            fd, written = tempfile.mkstemp(dir=self.work_dir, prefix=".api-key-")
            with os.fdopen(fd, "w") as key_file:
                key_file.write(self._api_key())
            os.replace(written, self.api_key_file)
        apigateway = self.client("apigateway")
        stages = {
            stage["stageName"]
            for api_id in self.created.of_type("AWS::ApiGateway::RestApi").values()
            for stage in apigateway.get_stages(restApiId=api_id)["item"]
        }

        def may_invoke(logical: str, method: str, path: str, stage: str) -> str | None:
            source = (
                f"arn:aws:execute-api:{REGION}:{ACCOUNT_ID}:{apis[(method, path)]}/{stage}/{method}{path}"
            )
            return self.authorizer.service_may_invoke(arns[logical], "apigateway.amazonaws.com", source)

        self.gateway.route(
            self.functions,
            security,
            self.api_key_file.read_text() if self.api_key_file else None,
            stages,
            may_invoke,
        )
        self.api_url = self.gateway.local_url(self._output(self.created, "ApiUrl"))

    def _routes(
        self, arns: dict[str, str]
    ) -> tuple[dict[tuple[str, str], str], dict[tuple[str, str], set[str]], dict[tuple[str, str], str]]:
        """(METHOD, path) -> the function its Lambda proxy integration invokes, the schemes it requires and the
        REST API it belongs to, from the REST APIs the stack created."""
        logical_of = {arn: logical for logical, arn in arns.items()}
        apigateway = self.client("apigateway")
        routes, security, apis = {}, {}, {}
        for api_id in self.created.of_type("AWS::ApiGateway::RestApi").values():
            for resource in apigateway.get_resources(restApiId=api_id, limit=500)["items"]:
                for method, spec in (resource.get("resourceMethods") or {}).items():
                    uri = (spec.get("methodIntegration") or {}).get("uri", "")
                    function_arn = uri.split("/functions/", 1)[-1].removesuffix("/invocations")
                    if function_arn in logical_of:
                        routes[(method, resource["path"])] = logical_of[function_arn]
                        apis[(method, resource["path"])] = api_id
                        security[(method, resource["path"])] = {
                            name
                            for name, required in (
                                ("api_key", spec.get("apiKeyRequired")),
                                ("sigv4", spec.get("authorizationType") == "AWS_IAM"),
                            )
                            if required
                        }
        return routes, security, apis

    def _api_key(self) -> str:
        """The value of the API key the stack's usage plan admits to its API (as `aws apigateway get-api-key
        --include-value` reads it on AWS)."""
        apigateway = self.client("apigateway")
        apis = set(self.created.of_type("AWS::ApiGateway::RestApi").values())
        for plan in apigateway.get_usage_plans()["items"]:
            if any(stage["apiId"] in apis for stage in plan.get("apiStages", [])):
                for key in apigateway.get_usage_plan_keys(usagePlanId=plan["id"])["items"]:
                    return apigateway.get_api_key(apiKey=key["id"], includeValue=True)["value"]
        raise LookupError(f"stack {self.stack_name} requires an API key but no usage plan of its API has one")

    def role_names(self) -> dict[str, str]:
        """Role ARN -> "<template file> <logical id>", for this stack and the stages started beside it."""
        names = {}
        for stack in (self, *self.companions):
            for created, template in ((stack.created, stack.template), (stack.access, stack.access_template)):
                for logical, name in created.of_type("AWS::IAM::Role").items():
                    names[f"arn:aws:iam::{ACCOUNT_ID}:role/{name}"] = f"{template.path.name} {logical}"
        return names

    def export_iam(self) -> Path:
        """Every checked call of this local AWS so far, for `mlops iam-report`: logs/iam-calls.json."""
        path = self.work_dir / "logs" / "iam-calls.json"
        self.authorizer.export(path, self.role_names())
        return path

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
        _GATEWAYS.pop(getattr(self, "stack_name", None), None)
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
        uninstall_invoke()
        authorizer.uninstall()
        principals.uninstall()
        cloudformation.uninstall()
        if server:
            moto_api_backend.reset()  # the local AWS's state goes with it, as if it had been its own process
        if hasattr(self, "_saved_env"):
            os.environ.clear()
            os.environ.update(self._saved_env)
        if hasattr(self, "aws_log"):
            self.aws_log.close()


def new_work_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="mlops-rehearsal-"))
