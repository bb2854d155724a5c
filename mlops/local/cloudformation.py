"""Deploys a SAM template to the local AWS as ``sam package`` + ``sam deploy`` would: the function folders and
the state machine definition are zipped and uploaded to a local bucket, aws-sam-translator turns the template
into plain CloudFormation, and moto's CloudFormation creates the stack.

moto's CloudFormation lacks some types the templates use (see ``cfn_resources``): ``install`` hands those to
the adapter's own classes at one seam, ``moto.cloudformation.parsing.resource_class_from_type``; a type that
neither creates fails the stack, naming the resource, instead of being skipped.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import io
import json
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# isort: off
from .lean_moto import import_cloudformation_without_unused_models

import_cloudformation_without_unused_models()  # before moto.cloudformation: it would load moto's EC2 model
# isort: on
from botocore.exceptions import ClientError  # noqa: E402
from moto.cloudformation import parsing  # noqa: E402
from moto.cloudformation.exceptions import ValidationError  # noqa: E402
from moto.iam.access_control import PermissionResult  # noqa: E402
from moto.s3.models import FakeBucket  # noqa: E402

from . import cfn_resources  # noqa: E402
from .template import TemplateError  # noqa: E402

PACKAGE_BUCKET_PREFIX = "mlops-local-packages"  # as the SAM CLI's managed bucket for `sam package`
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed, so a folder's zip (and its key) changes only with its files


def zip_folder(folder: Path) -> bytes:
    """A Lambda deployment package of ``folder`` (what ``sam package`` uploads for a CodeUri)."""
    if not folder.is_dir():
        raise TemplateError(f"CodeUri {folder} is not a folder")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                info = zipfile.ZipInfo(str(path.relative_to(folder)), _ZIP_DATE)
                info.external_attr = 0o644 << 16
                archive.writestr(info, path.read_bytes(), zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def code_sha256(package: bytes) -> str:
    """Lambda's CodeSha256 of a deployment package."""
    return base64.b64encode(hashlib.sha256(package).digest()).decode()


@dataclass
class Package:
    """The template with its local paths replaced by S3 URIs, and which folder each uploaded zip holds."""

    template: dict[str, Any]
    code_dirs: dict[str, Path] = field(default_factory=dict)  # CodeSha256 -> the folder zipped


def package(
    doc: dict[str, Any],
    template_dir: Path,
    put_object: Callable[[str, bytes], str],
    definition: Path | None = None,
) -> Package:
    """``sam package``: every CodeUri folder and DefinitionUri file uploaded with ``put_object(key, body)``
    (which returns the S3 URI); ``definition`` stands in for the state machine's DefinitionUri file."""
    doc = copy.deepcopy(doc)
    result = Package(doc)
    for logical_id, resource in doc.get("Resources", {}).items():
        props = resource.get("Properties") or {}
        if resource.get("Type") == "AWS::Serverless::Function" and isinstance(props.get("CodeUri"), str):
            folder = (template_dir / props["CodeUri"]).resolve()
            body = zip_folder(folder)
            digest = code_sha256(body)
            result.code_dirs[digest] = folder
            props["CodeUri"] = put_object(f"{folder.name}-{hashlib.sha256(body).hexdigest()[:16]}.zip", body)
        if resource.get("Type") == "AWS::Serverless::StateMachine" and isinstance(
            props.get("DefinitionUri"), str
        ):
            path = definition or (template_dir / props["DefinitionUri"]).resolve()
            try:
                body = path.read_bytes()
            except OSError as error:
                raise TemplateError(
                    f"{logical_id}: cannot read DefinitionUri {path}: {error.strerror}"
                ) from None
            props["DefinitionUri"] = put_object(
                f"{path.stem}-{hashlib.sha256(body).hexdigest()[:16]}.json", body
            )
    return result


class _NoManagedPolicies:
    """The SAM transform asks for AWS managed policy ARNs only when a function's Policies names one."""

    @staticmethod
    def load() -> dict[str, str]:
        return {}


def sam_transform(doc: dict[str, Any], parameters: dict[str, str], region: str) -> dict[str, Any]:
    """Plain CloudFormation from a packaged SAM template (aws-sam-translator, what `sam` and cfn-lint use)."""
    if "Transform" not in doc:
        return doc
    from samtranslator.model.exceptions import InvalidDocumentException
    from samtranslator.translator.transform import transform

    saved = os.environ.get("AWS_DEFAULT_REGION")
    os.environ["AWS_DEFAULT_REGION"] = region  # the translator reads the region from the environment
    try:
        return transform(copy.deepcopy(doc), dict(parameters), _NoManagedPolicies())
    except InvalidDocumentException as error:
        causes = "; ".join(getattr(cause, "message", str(cause)) for cause in error.causes) or str(error)
        raise TemplateError(f"the SAM transform refused the template: {causes}") from None
    finally:
        if saved is None:
            os.environ.pop("AWS_DEFAULT_REGION", None)
        else:
            os.environ["AWS_DEFAULT_REGION"] = saved


def _resource_class_from_type(original: Callable) -> Callable:
    def resource_class_from_type(resource_type: str):
        adapted = cfn_resources.ADAPTED.get(resource_type)
        if adapted is not None:
            return adapted
        found = original(resource_type)
        if found is None and resource_type not in parsing.NULL_MODELS:
            # moto would skip it with a warning: on AWS it exists, so the local stack must not go on without it
            raise ValidationError(message=f"the local AWS cannot create resources of type {resource_type}")
        return found

    return resource_class_from_type


def _bucket_policy_not_enforced(self, action: str, resource: str) -> PermissionResult:
    """moto's S3 checks object requests against the bucket policy but skips every condition operator except
    StringEquals, so the template's ``Deny s3:* if aws:SecureTransport is false`` denies every request (on AWS,
    over HTTPS, it denies none). The policy is created as written; the local S3 does not enforce it."""
    return PermissionResult.NEUTRAL


_saved: dict[str, tuple[Any, str, Any]] = {}


def _patch(owner: Any, name: str, value: Any) -> None:
    _saved.setdefault(f"{owner.__name__}.{name}", (owner, name, owner.__dict__[name]))
    setattr(owner, name, value)


def install(local_api_origin: cfn_resources.LocalApiOrigin) -> None:
    """moto's CloudFormation creates the adapted types through ``cfn_resources`` (idempotent)."""
    original = _saved.get("moto.cloudformation.parsing.resource_class_from_type", (None, None, None))[2]
    _patch(
        parsing,
        "resource_class_from_type",
        _resource_class_from_type(original or parsing.resource_class_from_type),
    )
    _patch(FakeBucket, "get_permission", _bucket_policy_not_enforced)
    cfn_resources.StateMachine.local_api_origin = staticmethod(local_api_origin)


def uninstall() -> None:
    for owner, name, value in _saved.values():
        setattr(owner, name, value)
    _saved.clear()
    for cached in (parsing.get_model_list, parsing.get_model_map, parsing.get_name_type_map):
        cached.cache_clear()  # models imported later (moto's EC2, say) are listed again


@dataclass
class CreatedStack:
    """A created stack as its API describes it: resources by logical id, outputs and parameters."""

    name: str
    physical: dict[str, str]  # logical id -> physical id
    types: dict[str, str]  # logical id -> resource type
    outputs: dict[str, str]
    parameters: dict[str, str]

    def of_type(self, resource_type: str) -> dict[str, str]:
        return {lo: self.physical[lo] for lo, t in self.types.items() if t == resource_type}


def create_stack(cfn, name: str, template: dict[str, Any], parameters: dict[str, str]) -> CreatedStack:
    """Creates the stack (moto creates it before the call returns) and describes what it created."""
    try:
        cfn.create_stack(
            StackName=name,
            TemplateBody=json.dumps(template),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
        )
    except ClientError as error:
        raise TemplateError(f"creating stack {name} failed: {error.response['Error']['Message']}") from None
    # moto lists a resource whose Condition is false as an entry without ids: it was not created
    resources = [
        r for r in cfn.describe_stack_resources(StackName=name)["StackResources"] if "LogicalResourceId" in r
    ]
    stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    return CreatedStack(
        name=name,
        physical={r["LogicalResourceId"]: r.get("PhysicalResourceId", "") for r in resources},
        types={r["LogicalResourceId"]: r["ResourceType"] for r in resources},
        outputs={o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])},
        parameters={p["ParameterKey"]: p["ParameterValue"] for p in stack.get("Parameters", [])},
    )
