"""The template's resource types that moto's CloudFormation lacks or creates only in part, made from each
resource's own Properties (after moto resolved their intrinsics) through the local AWS's API.

moto 5.2.5 skips SecretsManager Secret, S3 BucketPolicy, CloudWatch Alarm, SageMaker ModelPackageGroup, IAM
OIDCProvider and API Gateway Account / Stage / ApiKey / UsagePlan / UsagePlanKey; it creates a RestApi without
the methods of its OpenAPI ``Body`` (so the Deployment fails), a StateMachine without ``DefinitionS3Location``
and ``DefinitionSubstitutions``, and IAM roles and policies whose documents are no JSON. ``ADAPTED`` lists the
classes ``mlops.local.cloudformation`` hands these types to; the README lists them with the reasons.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Callable
from typing import Any, ClassVar

import boto3
from botocore.exceptions import ClientError
from moto.apigateway.models import apigateway_backends
from moto.cloudformation.exceptions import ValidationError

from .template import substitute

LocalApiOrigin = Callable[[str], "str | None"]
"""stack name -> where the local gateway serves that stack's APIs (``http://127.0.0.1:PORT``), if anywhere."""


def _client(service: str, region: str):
    """A client of the local AWS's own endpoint: the resources are created as any caller would create them."""
    return _cached_client(service, region, os.environ.get("AWS_ENDPOINT_URL"))


@functools.cache  # clients are thread-safe, and costly to make
def _cached_client(service: str, region: str, endpoint_url: str | None):
    return boto3.client(service, region_name=region, endpoint_url=endpoint_url)


def _lower_first(value: Any) -> Any:
    """CloudFormation's PascalCase properties as API Gateway's and Step Functions' camelCase parameters."""
    if isinstance(value, dict):
        return {k[:1].lower() + k[1:]: _lower_first(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_lower_first(v) for v in value]
    return value


def _as_shape(value: Any, shape) -> Any:
    """Template values (parameters arrive as strings) typed as the API's input shape wants them."""
    if value is None:
        return None
    if shape.type_name == "structure":
        return {k: _as_shape(v, shape.members[k]) if k in shape.members else v for k, v in value.items()}
    if shape.type_name == "list":
        return [_as_shape(v, shape.member) for v in value]
    if shape.type_name in ("integer", "long"):
        return int(value)
    if shape.type_name in ("double", "float"):
        return float(value)
    if shape.type_name == "boolean" and isinstance(value, str):
        return value.lower() == "true"
    return value


def _call(client, operation: str, **params: Any) -> dict:
    """Calls ``operation`` with the Properties as its parameters; botocore refuses a property the API lacks."""
    model = client.meta.service_model.operation_model(
        client.meta.method_to_api_mapping.get(operation, operation)
    )
    params = {k: v for k, v in params.items() if v is not None}
    return getattr(client, operation)(**_as_shape(params, model.input_shape))


def _failed(resource_type: str, context: dict, error: Exception) -> ValidationError:
    detail = error.response["Error"]["Message"] if isinstance(error, ClientError) else str(error)
    return ValidationError(
        message=f"{context.get('LogicalId')} ({resource_type}) failed to create: {type(error).__name__}: {detail}"
    )


def _id(value: Any) -> Any:
    """moto's Deployment has no physical id, so a Ref to one resolves to the object; API Gateway's id is its Ref."""
    return getattr(value, "id", value)


class AdaptedResource:
    """What moto's CloudFormation needs of a created resource: its physical id, attributes and state."""

    TYPE = ""
    ATTRIBUTES: ClassVar[dict[str, str]] = {}  # Fn::GetAtt name -> attribute of this object

    def __init__(self, physical_resource_id: str, **attributes: Any) -> None:
        self.physical_resource_id = physical_resource_id
        self.__dict__.update(attributes)

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in cls.ATTRIBUTES

    def get_cfn_attribute(self, attr: str) -> Any:
        if attr not in self.ATTRIBUTES:
            raise NotImplementedError(f'"Fn::GetAtt" : [ "{{0}}" , "{attr}" ]"')
        return getattr(self, self.ATTRIBUTES[attr])

    def is_created(self) -> bool:
        return True

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: dict, account_id: str, region_name: str, **kwargs: Any
    ) -> AdaptedResource:
        try:
            return cls.create(resource_name, cloudformation_json.get("Properties") or {}, region_name, kwargs)
        except Exception as error:  # the stack fails naming the resource, as CloudFormation reports it
            raise _failed(cls.TYPE, kwargs, error) from error

    @classmethod
    def create(cls, name: str, props: dict, region: str, context: dict) -> AdaptedResource:
        raise NotImplementedError

    @classmethod
    def delete_from_cloudformation_json(cls, *args: Any, **kwargs: Any) -> None:
        """Deleting a stack leaves these (the local AWS goes as a whole when the rehearsal stops)."""


class Secret(AdaptedResource):
    TYPE = "AWS::SecretsManager::Secret"
    ATTRIBUTES: ClassVar[dict[str, str]] = {"Id": "physical_resource_id"}

    @classmethod
    def create(cls, name, props, region, context):
        sm = _client("secretsmanager", region)
        value = props.get("SecretString")
        if value is None:  # GenerateSecretString holds GetRandomPassword's parameters
            generate = dict(props.get("GenerateSecretString") or {})
            template, key = (
                generate.pop("SecretStringTemplate", None),
                generate.pop("GenerateStringKey", None),
            )
            value = _call(sm, "get_random_password", **generate)["RandomPassword"]
            if template is not None:
                value = json.dumps({**json.loads(template), key: value})
        arn = _call(
            sm,
            "create_secret",
            Name=props.get("Name", name),
            Description=props.get("Description"),
            KmsKeyId=props.get("KmsKeyId"),
            SecretString=value,
            Tags=props.get("Tags"),
        )["ARN"]
        return cls(arn)  # Ref gives the secret's ARN


class BucketPolicy(AdaptedResource):
    TYPE = "AWS::S3::BucketPolicy"

    @classmethod
    def create(cls, name, props, region, context):
        _client("s3", region).put_bucket_policy(
            Bucket=props["Bucket"], Policy=json.dumps(props["PolicyDocument"])
        )
        return cls(props["Bucket"])


class Alarm(AdaptedResource):
    TYPE = "AWS::CloudWatch::Alarm"
    ATTRIBUTES: ClassVar[dict[str, str]] = {"Arn": "arn"}

    @classmethod
    def create(cls, name, props, region, context):
        params = {"AlarmName": name, **props}
        cloudwatch = _client("cloudwatch", region)
        _call(cloudwatch, "put_metric_alarm", **params)
        arn = cloudwatch.describe_alarms(AlarmNames=[params["AlarmName"]])["MetricAlarms"][0]["AlarmArn"]
        return cls(params["AlarmName"], arn=arn)


class ModelPackageGroup(AdaptedResource):
    TYPE = "AWS::SageMaker::ModelPackageGroup"
    ATTRIBUTES: ClassVar[dict[str, str]] = {
        "ModelPackageGroupArn": "physical_resource_id",
        "ModelPackageGroupName": "name",
    }

    @classmethod
    def create(cls, name, props, region, context):
        params = {"ModelPackageGroupName": name, **props}
        arn = _call(_client("sagemaker", region), "create_model_package_group", **params)[
            "ModelPackageGroupArn"
        ]
        return cls(arn, name=params["ModelPackageGroupName"])  # Ref gives the group's ARN


class IamRole(AdaptedResource):
    """moto's own type stores inline policies as Python objects (GetRolePolicy then returns no JSON) and drops
    ManagedPolicyArns."""

    TYPE = "AWS::IAM::Role"
    ATTRIBUTES: ClassVar[dict[str, str]] = {"Arn": "arn", "RoleId": "role_id"}

    @classmethod
    def create(cls, name, props, region, context):
        iam = _client("iam", region)
        role_name = props.get("RoleName", name[:64])
        role = _call(
            iam,
            "create_role",
            RoleName=role_name,
            AssumeRolePolicyDocument=json.dumps(props["AssumeRolePolicyDocument"]),
            Description=props.get("Description"),
            MaxSessionDuration=props.get("MaxSessionDuration"),
            Path=props.get("Path"),
            PermissionsBoundary=props.get("PermissionsBoundary"),
            Tags=props.get("Tags"),
        )["Role"]
        for policy in props.get("Policies") or []:
            iam.put_role_policy(
                RoleName=role_name,
                PolicyName=policy["PolicyName"],
                PolicyDocument=json.dumps(policy["PolicyDocument"]),
            )
        unattached = []
        for arn in props.get("ManagedPolicyArns") or []:
            try:
                iam.attach_role_policy(RoleName=role_name, PolicyArn=arn)
            except iam.exceptions.NoSuchEntityException:
                if ":iam::aws:policy/" not in arn:
                    raise
                unattached.append(arn)  # moto loads no AWS managed policies unless told to
        return cls(role_name, arn=role["Arn"], role_id=role["RoleId"], unattached_aws_policies=unattached)


class IamPolicy(AdaptedResource):
    """moto's own type stores the document as a Python object, as for a role's inline policies."""

    TYPE = "AWS::IAM::Policy"

    @classmethod
    def create(cls, name, props, region, context):
        iam = _client("iam", region)
        document = json.dumps(props["PolicyDocument"])
        for role in props.get("Roles") or []:
            iam.put_role_policy(RoleName=role, PolicyName=props["PolicyName"], PolicyDocument=document)
        for user in props.get("Users") or []:
            iam.put_user_policy(UserName=user, PolicyName=props["PolicyName"], PolicyDocument=document)
        for group in props.get("Groups") or []:
            iam.put_group_policy(GroupName=group, PolicyName=props["PolicyName"], PolicyDocument=document)
        return cls(name)


class OidcProvider(AdaptedResource):
    TYPE = "AWS::IAM::OIDCProvider"
    ATTRIBUTES: ClassVar[dict[str, str]] = {"Arn": "physical_resource_id"}

    @classmethod
    def create(cls, name, props, region, context):
        arn = _call(
            _client("iam", region),
            "create_open_id_connect_provider",
            Url=props["Url"],
            ClientIDList=props.get("ClientIdList"),
            ThumbprintList=props.get("ThumbprintList"),
            Tags=props.get("Tags"),
        )["OpenIDConnectProviderArn"]
        return cls(arn)  # Ref gives the provider's ARN


class ApiGatewayAccount(AdaptedResource):
    TYPE = "AWS::ApiGateway::Account"

    @classmethod
    def create(cls, name, props, region, context):
        role = props.get("CloudWatchRoleArn")
        operations = [{"op": "replace", "path": "/cloudwatchRoleArn", "value": role}] if role else []
        _client("apigateway", region).update_account(patchOperations=operations)
        return cls(name)


class ApiStage(AdaptedResource):
    TYPE = "AWS::ApiGateway::Stage"

    @classmethod
    def create(cls, name, props, region, context):
        # MethodSettings (throttling, metrics) and AccessLogSetting are not emulated by the local gateway.
        stage = _call(
            _client("apigateway", region),
            "create_stage",
            restApiId=props["RestApiId"],
            stageName=props["StageName"],
            deploymentId=_id(props["DeploymentId"]),
            description=props.get("Description"),
            variables=props.get("Variables"),
            tracingEnabled=props.get("TracingEnabled"),
        )
        return cls(stage["stageName"])


class ApiKey(AdaptedResource):
    TYPE = "AWS::ApiGateway::ApiKey"
    ATTRIBUTES: ClassVar[dict[str, str]] = {"APIKeyId": "physical_resource_id"}

    @classmethod
    def create(cls, name, props, region, context):
        params = _lower_first({"Name": name, **props})
        key = _call(_client("apigateway", region), "create_api_key", **params)
        return cls(key["id"])


class UsagePlan(AdaptedResource):
    TYPE = "AWS::ApiGateway::UsagePlan"
    ATTRIBUTES: ClassVar[dict[str, str]] = {"Id": "physical_resource_id"}

    @classmethod
    def create(cls, name, props, region, context):
        params = _lower_first({"UsagePlanName": name, **props})
        params["name"] = params.pop("usagePlanName")
        plan = _call(_client("apigateway", region), "create_usage_plan", **params)
        return cls(plan["id"])


class UsagePlanKey(AdaptedResource):
    TYPE = "AWS::ApiGateway::UsagePlanKey"
    ATTRIBUTES: ClassVar[dict[str, str]] = {"Id": "physical_resource_id"}

    @classmethod
    def create(cls, name, props, region, context):
        _call(_client("apigateway", region), "create_usage_plan_key", **_lower_first(props))
        return cls(f"{props['UsagePlanId']}:{props['KeyId']}")


def method_security(body: dict) -> dict[tuple[str, str], dict[str, Any]]:
    """(METHOD, path) -> what API Gateway's OpenAPI import sets on the method for its ``security``: an
    ``x-api-key`` header scheme requires an API key, an ``awsSigv4`` auth type means IAM authorization."""
    schemes = (body.get("components") or {}).get("securitySchemes") or body.get("securityDefinitions") or {}
    found = {}
    for path, operations in (body.get("paths") or {}).items():
        for method, operation in operations.items():
            requirements = operation.get("security", body.get("security")) or []
            names = {name for requirement in requirements for name in requirement}
            settings: dict[str, Any] = {"api_key_required": False, "authorization_type": "NONE"}
            for scheme in (schemes.get(name, {}) for name in names):
                if scheme.get("x-amazon-apigateway-authtype") == "awsSigv4":
                    settings["authorization_type"] = "AWS_IAM"
                elif scheme.get("type") == "apiKey" and scheme.get("name", "").lower() == "x-api-key":
                    settings["api_key_required"] = True
            found[(method.upper(), path)] = settings
    return found


class RestApi(AdaptedResource):
    """moto's own type makes the API but not the methods of its OpenAPI Body; its backend's import does."""

    TYPE = "AWS::ApiGateway::RestApi"
    ATTRIBUTES: ClassVar[dict[str, str]] = {
        "RootResourceId": "root_resource_id",
        "RestApiId": "physical_resource_id",
    }

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name, cloudformation_json, account_id, region_name, **kw
    ):
        try:
            return cls._create(
                resource_name, cloudformation_json.get("Properties") or {}, account_id, region_name
            )
        except Exception as error:
            raise _failed(cls.TYPE, kw, error) from error

    @classmethod
    def _create(cls, resource_name: str, props: dict, account_id: str, region_name: str) -> RestApi:
        if "BodyS3Location" in props:
            raise ValueError("the local AWS imports a RestApi's inline Body, not BodyS3Location")
        backend = apigateway_backends[account_id][region_name]
        body = props.get("Body")
        api = backend.create_rest_api(
            name=props.get("Name") or (body or {}).get("info", {}).get("title") or resource_name,
            description=props.get("Description", ""),
            endpoint_configuration=_lower_first(props.get("EndpointConfiguration")),
        )
        if body:
            backend.put_rest_api(api.id, body, fail_on_warnings=False, mode="overwrite")
            security = method_security(body)
            for resource in backend.get_resources(api.id):
                for method_type, method in resource.resource_methods.items():
                    settings = security.get((method_type, resource.get_path()), {})
                    method.api_key_required = settings.get("api_key_required", False)
                    method.authorization_type = settings.get("authorization_type", "NONE")
        root = next(r.id for r in backend.get_resources(api.id) if r.get_path() == "/")
        return cls(api.id, root_resource_id=root)


_EXECUTE_API_URL = re.compile(r"https://([a-z0-9]+)\.execute-api\.[a-z0-9-]+\.amazonaws\.com")


class StateMachine(AdaptedResource):
    """moto's own type takes only DefinitionString; CloudFormation also reads DefinitionS3Location and fills
    DefinitionSubstitutions. Execute-api URLs of this stack's APIs become the local gateway's."""

    TYPE = "AWS::StepFunctions::StateMachine"
    ATTRIBUTES: ClassVar[dict[str, str]] = {"Arn": "physical_resource_id", "Name": "name"}
    local_api_origin: LocalApiOrigin = staticmethod(lambda stack_name: None)

    @classmethod
    def create(cls, name, props, region, context):
        definition = props.get("DefinitionString")
        if definition is None and "Definition" in props:
            definition = json.dumps(props["Definition"])
        if definition is None:
            location = props["DefinitionS3Location"]
            extra = {"VersionId": location["Version"]} if location.get("Version") else {}
            definition = (
                _client("s3", region)
                .get_object(Bucket=location["Bucket"], Key=location["Key"], **extra)["Body"]
                .read()
                .decode()
            )
        stack_name = context["StackId"].split(":stack/", 1)[-1].split("/", 1)[0]
        origin = cls.local_api_origin(stack_name)
        values = {
            k: _EXECUTE_API_URL.sub(origin, str(v)) if origin else str(v)
            for k, v in (props.get("DefinitionSubstitutions") or {}).items()
        }
        params = {
            "name": props.get("StateMachineName", name),
            "definition": substitute(definition, values),
            "roleArn": props["RoleArn"],
            "type": props.get("StateMachineType"),
            "loggingConfiguration": _lower_first(props.get("LoggingConfiguration")),
            "tracingConfiguration": _lower_first(props.get("TracingConfiguration")),
            "tags": _lower_first(props.get("Tags")),
        }
        arn = _call(_client("stepfunctions", region), "create_state_machine", **params)["stateMachineArn"]
        return cls(arn, name=params["name"])


ADAPTED: dict[str, type[AdaptedResource]] = {
    cls.TYPE: cls
    for cls in (
        Secret,
        BucketPolicy,
        Alarm,
        ModelPackageGroup,
        IamRole,
        IamPolicy,
        OidcProvider,
        ApiGatewayAccount,
        ApiStage,
        ApiKey,
        UsagePlan,
        UsagePlanKey,
        RestApi,
        StateMachine,
    )
}
