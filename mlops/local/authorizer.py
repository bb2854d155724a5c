"""The local AWS checks every call as AWS does: who signed it, and whether that principal's policies allow it.

moto hands each request to ``ActionAuthenticatorMixin._authenticate_and_authorize_action`` before it acts;
this module takes that seam over. The caller is found from the access key the request was signed with (an
assumed role's session; the deployer's keys are the account holder's and are not checked, as an
administrator's `sam deploy` is not what a rehearsal tests). The role's identity policies, read from the local
IAM at call time (so a template's change shows at once), decide through `mlops.local.iam`. A refused call gets
AWS's error in the service's own protocol, so boto3 raises what it raises on AWS.

Web identity (the workflows' OIDC role assumption) is checked against the role's trust policy and the
account's OIDC providers (`mlops.local.oidc`).

Every checked call is kept (`calls`), so the least-privilege report can ask which calls a statement serves.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from moto.core.authorization import ActionAuthenticatorMixin
from moto.core.exceptions import JsonRESTError  # moto names its XML one privately
from moto.core.exceptions import _RESTError as XmlRESTError
from moto.core.parse import PROTOCOL_PARSERS
from moto.core.request import determine_request_protocol
from moto.core.utils import get_service_model
from moto.iam.exceptions import NotFoundException
from moto.iam.models import iam_backends
from moto.sts.models import sts_backends

from . import oidc
from .iam import Decision, access_denied_message, authorize_call, evaluate, request_context, trust_allows
from .iam_actions import access_denied_code
from .template import ACCOUNT_ID

# Refusals go beside moto's own lines, to the work dir's logs/local-aws.log (moto's loggers are kept at ERROR).
log = logging.getLogger("moto.local_iam")
log.setLevel(logging.WARNING)
_KEY = re.compile(r"Credential=([^/,\s]+)/")
_UNSIGNED_OPERATIONS = {"AssumeRoleWithWebIdentity"}
# Calls AWS answers for any valid signature: no policy can allow or deny them.
_NO_PERMISSION_NEEDED = {("sts", "GetCallerIdentity")}
_PARTITION = "aws"


@dataclass(frozen=True)
class Call:
    """One checked call: enough to check it again against other policies (the least-privilege report)."""

    principal: str  # the role's ARN
    service: str  # boto3's service name
    operation: str  # botocore's operation name (for S3: the IAM action's name, as moto gives it)
    params: Mapping[str, Any]
    region: str
    resource: str | None = None  # S3 only: the ARN moto computed
    context: Mapping[str, Any] = field(default_factory=dict)
    caller: str | None = None  # the role session's ARN, as AWS names the caller in its errors
    # An action checked as it is, with `resource` (or "*"): S3's as moto names them, and permission-only
    # actions that no API operation has (logs:CreateLogDelivery)
    action: str | None = None

    @property
    def named(self) -> str:
        return self.caller or self.principal


Check = tuple[str, tuple[str, ...], Mapping[str, Any]]  # (action, resources, request context)


@dataclass(frozen=True)
class Outcome:
    allowed: bool
    checks: tuple[Check, ...]  # what was evaluated, in order (the call's own action, then the implied ones)
    message: str | None
    code: str | None
    unevaluated: tuple[str, ...] = ()
    trust: tuple[str, str] | None = None  # for a role assumption: the trust policy's (principal kind, value)


def role_policies(role_name: str, account: str = ACCOUNT_ID) -> dict[str, str]:
    """The role's identity policies as they are now: {"Role/PolicyName": document}."""
    role = iam_backends[account][_PARTITION].get_role(role_name)
    policies = {f"{role_name}/{name}": document for name, document in role.policies.items()}
    for arn, managed in role.managed_policies.items():
        default = next(v for v in managed.versions if v.is_default)
        policies[f"{role_name}/{arn.rsplit('/', 1)[-1]}"] = default.document
    return policies


def decide(call: Call, policies: Mapping[str, Any], lookup=None) -> Outcome:
    """Whether `policies` allow `call` (the same check the local AWS made when the call came)."""
    if call.action or call.resource is not None:  # the action as given, on the resource given
        action = call.action or f"s3:{call.operation}"
        resource = call.resource or "*"
        context = {**request_context(action, call.params, call.region, ACCOUNT_ID), **call.context}
        decision: Decision = evaluate(policies, action, resource, context)
        message = None if decision.allowed else access_denied_message(call.named, action, resource, decision)
        return Outcome(
            decision.allowed,
            ((action, (resource,), context),),
            message,
            None if decision.allowed else "AccessDenied",
            decision.unevaluated,
        )
    checked = authorize_call(
        policies,
        call.named,
        call.service,
        call.operation,
        call.params,
        call.region,
        ACCOUNT_ID,
        call.context,
        lookup,
    )
    return Outcome(
        checked.allowed,
        tuple((a, r, c) for (a, r, _), c in zip(checked.checks, checked.contexts, strict=True)),
        checked.message,
        checked.code,
        checked.unevaluated,
    )


def _lookup(prefix: str, resource_type: str, value: str) -> str | None:
    """ARNs only the service knows: a secret's (by name) and the state machine that issued a task token."""
    if prefix == "secretsmanager":
        from moto.secretsmanager.models import secretsmanager_backends

        for backend in secretsmanager_backends[ACCOUNT_ID].values():
            secret = backend.secrets.get(value) if hasattr(backend, "secrets") else None
            if secret is not None:
                return secret.arn
        return None
    if prefix == "states":
        from moto.stepfunctions.parser.models import stepfunctions_parser_backends

        for backend in stepfunctions_parser_backends[ACCOUNT_ID].values():
            for execution in backend._get_executions():
                worker = getattr(execution, "exec_worker", None)
                env = getattr(worker, "env", None)
                if env is not None and env.callback_pool_manager.get(value) is not None:
                    return execution.state_machine_arn
    return None


class Authorizer:
    def __init__(self, deployer_key: str, issuer: oidc.LocalIssuer | None = None) -> None:
        self.deployer_key = deployer_key
        self.issuer = issuer
        self.calls: list[tuple[Call, Outcome]] = []
        self.refused: list[dict[str, str]] = []  # calls refused before any policy: bad keys, tokens, trust
        self._lock = threading.Lock()

    # -- the seam ----------------------------------------------------------------------------------------------
    def check(self, response, iam_request_cls, resource: str) -> None:
        service = response.boto3_service_name
        operation = response._get_action()
        protocol = _protocol(response)
        key = _access_key(response)
        if key == self.deployer_key:
            return
        if key is None:
            if operation in _UNSIGNED_OPERATIONS:
                return self._web_identity(response, service, operation, protocol)
            raise _error(
                protocol, "MissingAuthenticationToken", "Request is missing Authentication Token", 403
            )
        principal = _assumed_role(key, response)
        if principal is None:
            self._refuse(key, service, operation, "InvalidClientTokenId")
            raise _error(
                protocol,
                "InvalidClientTokenId",
                "The security token included in the request is invalid.",
                403,
            )
        if response.headers.get("Authorization"):
            iam_request_cls(
                account_id=ACCOUNT_ID,
                method=response.method,
                path=response.raw_path
                + (f"?{urlparse(response.uri).query}" if urlparse(response.uri).query else ""),
                data=response.data,
                body=response.raw_body,
                headers=response.headers,
                action=operation,
            ).check_signature()
        role_arn, session_arn = principal
        if (service, operation) in _NO_PERMISSION_NEEDED:
            return
        if service == "s3":
            call = Call(
                role_arn,
                service,
                operation,
                _s3_params(response),
                response.region,
                resource,
                caller=session_arn,
            )
        else:
            call = Call(
                role_arn,
                service,
                operation,
                _params(response, operation),
                response.region,
                caller=session_arn,
            )
        outcome = self.authorize(call)
        if not outcome.allowed:
            raise _error(
                protocol,
                outcome.code or access_denied_code(service),
                outcome.message or "Access denied",
                400 if protocol == "json" else 403,
            )

    def authorize(self, call: Call) -> Outcome:
        """Checks `call` against its principal's policies as they are now, and keeps it."""
        outcome = decide(call, role_policies(call.principal.rsplit("/", 1)[-1]), _lookup)
        with self._lock:
            self.calls.append((_kept(call), outcome))
        if not outcome.allowed:
            log.warning("refused %s:%s: %s", call.service, call.operation, outcome.message)
        return outcome

    def _web_identity(self, response, service: str, operation: str, protocol: str) -> None:
        params = _params(response, operation)
        role_arn = params.get("RoleArn", "")
        token = params.get("WebIdentityToken", "")
        claims = self.issuer.verify(token) if self.issuer else None
        if claims is None:
            self._refuse(role_arn, service, operation, "InvalidIdentityToken")
            raise _error(protocol, "InvalidIdentityToken", "Couldn't verify the identity token", 400)
        provider = oidc.provider_arn_for(claims.get("iss", ""), claims.get("aud"))
        if provider is None:
            self._refuse(role_arn, service, operation, "InvalidIdentityToken")
            raise _error(
                protocol,
                "InvalidIdentityToken",
                f"No OpenIDConnect provider found in your account for {claims.get('iss')}",
                400,
            )
        try:
            role = iam_backends[ACCOUNT_ID][_PARTITION].get_role(role_arn.rsplit("/", 1)[-1])
        except Exception:
            role = None
        decision = (
            trust_allows(
                role.assume_role_policy_document,
                "Federated",
                provider,
                "sts:AssumeRoleWithWebIdentity",
                oidc.condition_context(claims),
            )
            if role is not None
            else None
        )
        if decision is None or not decision.allowed:
            self._refuse(role_arn, service, operation, f"AccessDenied for {claims.get('sub')}")
            raise _error(
                protocol, "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity", 403
            )
        self.record_trust(
            Call(
                role_arn, service, operation, {"RoleArn": role_arn}, response.region, caller=claims.get("sub")
            ),
            ("Federated", provider),
            "sts:AssumeRoleWithWebIdentity",
            oidc.condition_context(claims),
        )

    def record_trust(self, call: Call, principal: tuple[str, str], action: str, context) -> None:
        """Keeps a role assumption that the role's trust policy allowed (by `principal`: kind, value)."""
        check = (action, (call.principal,), dict(context))
        outcome = Outcome(True, (check,), None, None, (), principal)
        with self._lock:
            self.calls.append((call, outcome))

    def service_may_invoke(self, function_arn: str, service: str, source_arn: str) -> str | None:
        """Whether the function's resource policy lets `service` (apigateway.amazonaws.com) invoke it for
        `source_arn`: None if so, else why not (the refusal is kept beside the denied calls)."""
        from moto.awslambda.models import lambda_backends

        region = function_arn.split(":")[3]
        statements = lambda_backends[ACCOUNT_ID][region].get_function(function_arn).policy.statements
        policy = {"Statement": statements} if statements else None
        context = {"aws:SourceArn": source_arn, "aws:SourceAccount": ACCOUNT_ID}
        decision = (
            trust_allows(policy, "Service", service, "lambda:InvokeFunction", context) if policy else None
        )
        if decision is not None and decision.allowed:
            return None
        why = f"no resource-based policy of {function_arn} allows {service} to invoke it from {source_arn}"
        self._refuse(service, "lambda", "Invoke", why)
        return why

    def _refuse(self, who: str, service: str, operation: str, why: str) -> None:
        with self._lock:
            self.refused.append({"caller": who, "call": f"{service}:{operation}", "error": why})

    # -- the summary ---------------------------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        with self._lock:
            calls = list(self.calls)
            refused = list(self.refused)
        principals = Counter(call.principal for call, _ in calls)
        denied = [
            {"principal": call.principal, "action": outcome.checks[-1][0], "message": outcome.message}
            for call, outcome in calls
            if not outcome.allowed
        ]
        unevaluated = sorted({u for _, outcome in calls for u in outcome.unevaluated})
        return {
            "calls": len(calls),
            "principals": dict(sorted(principals.items())),
            "denied": denied
            + [{"principal": r["caller"], "action": r["call"], "message": r["error"]} for r in refused],
            "unevaluated": unevaluated,
        }

    def export(self, path, role_names: Mapping[str, str]) -> None:
        """Writes every kept call with what was evaluated, and each role's policies and trust policy, as they
        are now (`role_names`: role ARN -> the name the report shows, e.g. "template.yaml EvaluateFunctionRole").
        `mlops iam-report` reads it."""
        with self._lock:
            calls = list(self.calls)
        backend = iam_backends[ACCOUNT_ID][_PARTITION]
        roles = {}
        for arn in sorted({call.principal for call, _ in calls}):
            try:
                role = backend.get_role(arn.rsplit("/", 1)[-1])
            except NotFoundException:  # a role of a stack that is gone: nothing to report
                continue
            trust = role.assume_role_policy_document
            roles[arn] = {
                "name": role_names.get(arn, arn.rsplit("/", 1)[-1]),
                "policies": {k.split("/", 1)[1]: json.loads(v) for k, v in role_policies(role.name).items()},
                "trust": json.loads(trust) if isinstance(trust, str) else trust,
            }
        record = {
            "roles": roles,
            "calls": [
                {
                    "principal": call.principal,
                    "call": f"{call.service}:{call.operation}",
                    "allowed": outcome.allowed,
                    "trust": list(outcome.trust) if outcome.trust else None,
                    "checks": [
                        {"action": action, "resources": list(resources), "context": dict(context)}
                        for action, resources, context in outcome.checks
                    ],
                }
                for call, outcome in calls
            ],
        }
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(record, indent=1, default=str))


# -- reading the request -----------------------------------------------------------------------------------------
def _access_key(response) -> str | None:
    authorization = response.headers.get("Authorization", "")
    match = _KEY.search(authorization)
    if match:
        return match[1]
    query = parse_qs(urlparse(response.uri).query)
    credential = (query.get("X-Amz-Credential") or [""])[0]  # a presigned URL
    if credential:
        return credential.split("/", 1)[0]
    return (query.get("AWSAccessKeyId") or [None])[0]


def _assumed_role(key: str, response) -> tuple[str, str] | None:
    """(role ARN, session ARN) of the session these keys belong to, if the session token matches too."""
    query = parse_qs(urlparse(response.uri).query)
    token = response.headers.get("X-Amz-Security-Token") or (query.get("X-Amz-Security-Token") or [None])[0]
    for role in sts_backends[ACCOUNT_ID][_PARTITION].assumed_roles:
        if role.access_key_id == key:
            if token != role.session_token:
                return None
            return role.role_arn, role.arn
    return None


def _protocol(response) -> str:
    """The protocol this request speaks (a service may take several; the error must use the same one)."""
    service_model = get_service_model(response.boto3_service_name)
    return determine_request_protocol(service_model, response.headers.get("Content-Type"))


def _params(response, operation: str) -> dict[str, Any]:
    """The call's parameters in botocore's shape, parsed from the request by moto's own protocol parsers."""
    if getattr(response, "params", None):
        return dict(response.params)
    request = response.normalized_request
    operation_model = get_service_model(response.boto3_service_name).operation_model(operation)
    parser = PROTOCOL_PARSERS[_protocol(response)](operation_model)
    return dict(
        parser.parse(
            {
                "method": request.method,
                "values": request.values,
                "headers": request.headers,
                "body": request.data,
                "url_path": request.path,
                "url_params": response.uri_match,
            }
        )
    )


def _s3_params(response) -> dict[str, Any]:
    prefix = (response.querystring.get("prefix") or [None])[0]
    return {"Prefix": prefix} if prefix is not None else {}


def _kept(call: Call) -> Call:
    """What is kept of a call: large byte values (bodies) go, the names and ARNs stay."""
    params = {k: v for k, v in call.params.items() if not (isinstance(v, bytes | bytearray) and len(v) > 256)}
    return dataclasses.replace(call, params=params)


class _RestXmlError(XmlRESTError):
    """S3's errors: one <Error> element at the root (the query protocols wrap theirs in <ErrorResponse>)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)
        from xmltodict import unparse

        self.description = unparse({"Error": {"Code": code, "Message": message}}, full_document=True)


def _error(protocol: str, code: str, message: str, status: int):
    if protocol in {"json", "rest-json"}:
        error = JsonRESTError(code, message)
    elif protocol == "rest-xml":
        error = _RestXmlError(code, message)
    else:
        error = XmlRESTError(code, message)
    error.code = status
    return error


# -- installing ---------------------------------------------------------------------------------------------------
_installed: dict[str, Any] = {}


def install(authorizer: Authorizer) -> None:
    def _authenticate_and_authorize_action(self, iam_request_cls, resource: str = "*") -> None:
        authorizer.check(self, iam_request_cls, resource)

    _installed.setdefault("original", ActionAuthenticatorMixin.__dict__["_authenticate_and_authorize_action"])
    ActionAuthenticatorMixin._authenticate_and_authorize_action = _authenticate_and_authorize_action


def uninstall() -> None:
    if "original" in _installed:
        ActionAuthenticatorMixin._authenticate_and_authorize_action = _installed.pop("original")
