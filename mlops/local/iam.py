"""AWS's evaluation logic for identity policies and role trust policies, for the local AWS.

`evaluate` decides one call: an explicit Deny wins, otherwise an Allow is needed for every resource the
call acts on. Action/NotAction match case-insensitively, Resource/NotResource case-sensitively, both with
`*` and `?`. What this module cannot evaluate (an operator it does not know, a condition key the request
context lacks, a policy variable it cannot fill) is never read as a match for an Allow and always read as
one for a Deny, and is reported in `Decision.unevaluated`.

Not covered: resource-based policies other than trust policies, permissions boundaries, SCPs, session
policies, and the Date/IP/Binary condition operators (reported as unevaluated).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mlops.local.iam_actions import (
    ImpliedAction,
    UnknownActionError,
    access_denied_code,
    access_denied_status,
    action_for,
    implied_actions,
    request_context,
)
from mlops.local.iam_arns import Lookup, ResourceArns, resource_arns
from mlops.local.iam_conditions import as_list, condition_block, matches, with_variables

__all__ = [
    "EXPLICIT_DENY",
    "IMPLICIT_DENY",
    "TRUST_EXPLICIT_DENY",
    "TRUST_IMPLICIT_DENY",
    "CallDecision",
    "Decision",
    "ImpliedAction",
    "ResourceArns",
    "UnknownActionError",
    "access_denied_code",
    "access_denied_message",
    "access_denied_status",
    "action_for",
    "authorize_call",
    "evaluate",
    "implied_actions",
    "oidc_context",
    "request_context",
    "resource_arns",
    "trust_allows",
]

EXPLICIT_DENY = "explicit deny in an identity-based policy"
IMPLICIT_DENY = "no identity-based policy allows"
TRUST_EXPLICIT_DENY = "explicit deny in a resource-based policy"
TRUST_IMPLICIT_DENY = "no resource-based policy allows"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    matched: tuple[str, ...]  # the statements that decided: the Allows, or the Denies ("policy:Sid" / "#i")
    denied_by: str | None = None  # EXPLICIT_DENY / IMPLICIT_DENY (or the TRUST_ variants); None if allowed
    denied_resource: str | None = None  # the first resource refused
    unevaluated: tuple[str, ...] = ()


Statement = tuple[str, Mapping[str, Any]]  # (label, statement)


def _statements(policies: Any) -> list[Statement]:
    """Labelled statements of one document, a list of documents, or {policy name: document}."""
    if isinstance(policies, str | bytes):
        policies = json.loads(policies)
    if isinstance(policies, Mapping) and "Statement" in policies:
        named: Iterable[tuple[str, Any]] = [("", policies)]
    elif isinstance(policies, Mapping):
        named = policies.items()
    else:
        named = (("", p) for p in policies)
    found: list[Statement] = []
    for name, document in named:
        if isinstance(document, str | bytes):
            document = json.loads(document)
        statements = document.get("Statement", [])
        for index, statement in enumerate([statements] if isinstance(statements, Mapping) else statements):
            label = statement.get("Sid") or f"#{index}"
            found.append((f"{name}:{label}" if name else label, statement))
    return found


# --- statements -------------------------------------------------------------------------------------------


def _action_matches(statement: Mapping[str, Any], action: str) -> bool:
    if "Action" in statement:
        return any(matches(p, action, True) for p in as_list(statement["Action"]))
    if "NotAction" in statement:
        return not any(matches(p, action, True) for p in as_list(statement["NotAction"]))
    return False


def _resource_matches(
    statement: Mapping[str, Any], resource: str, context: Mapping[str, Any]
) -> tuple[bool | None, list[str]]:
    element = "Resource" if "Resource" in statement else "NotResource" if "NotResource" in statement else None
    if element is None:
        return False, []
    hit, unknown = False, []
    for pattern in as_list(statement[element]):
        filled = with_variables(pattern, context, True)
        if filled is None:
            unknown.append(f"{element} {pattern}: a policy variable is not in the request context")
        elif matches(filled, resource, False):
            hit = True
    if hit:
        return element == "Resource", []
    if unknown:
        return None, unknown
    return element == "NotResource", []


def _applies(
    statement: Mapping[str, Any], action: str, resource: str | None, context: Mapping[str, Any]
) -> tuple[bool | None, list[str]]:
    """Whether a statement applies to (action, resource): True, False, or None with the reasons."""
    if not _action_matches(statement, action):
        return False, []
    unknown: list[str] = []
    if resource is not None:
        matched, reasons = _resource_matches(statement, resource, context)
        if matched is False:
            return False, []
        unknown += reasons
    if "Condition" in statement:
        held, reasons = condition_block(statement["Condition"], context)
        if held is False:
            return False, []
        unknown += reasons
    return (None, unknown) if unknown else (True, [])


def _decide(
    statements: list[Statement],
    action: str,
    resources: list[str | None],
    context: Mapping[str, Any],
    explicit: str,
    implicit: str,
) -> Decision:
    allows: list[str] = []
    unevaluated: list[str] = []
    refused: list[str | None] = []
    for resource in resources:
        allowed_here = False
        for label, statement in statements:
            applies, reasons = _applies(statement, action, resource, context)
            unevaluated += [f"{label}: {r}" for r in reasons]
            effect = statement.get("Effect")
            if effect == "Deny" and applies is not False:
                denies = [
                    lbl
                    for lbl, s in statements
                    if s.get("Effect") == "Deny" and _applies(s, action, resource, context)[0] is not False
                ]
                return Decision(False, tuple(denies), explicit, resource, tuple(dict.fromkeys(unevaluated)))
            if effect == "Allow" and applies is True:
                allowed_here = True
                allows.append(label)
        if not allowed_here:
            refused.append(resource)
    unevaluated = list(dict.fromkeys(unevaluated))
    if refused or not resources:
        return Decision(False, (), implicit, refused[0] if refused else None, tuple(unevaluated))
    return Decision(True, tuple(dict.fromkeys(allows)), None, None, tuple(unevaluated))


def evaluate(
    policies: Any, action: str, resources: str | Iterable[str], context: Mapping[str, Any] | None = None
) -> Decision:
    """Whether identity `policies` allow `action` on every one of `resources`.

    `policies`: a policy document, a list of them, or {policy name: document} (documents may be JSON
    text). `context`: condition keys of the request; a key mapped to None is one the request does not
    carry (AWS's rules for absent keys apply), a key left out is one nobody computed (unevaluated).
    """
    targets = [resources] if isinstance(resources, str) else list(resources)
    return _decide(_statements(policies), action, list(targets), context or {}, EXPLICIT_DENY, IMPLICIT_DENY)


def _principal_matches(element: Any, kind: str, value: str) -> bool:
    if element == "*":
        return True
    if not isinstance(element, Mapping):
        return False
    for named_kind, names in element.items():
        if named_kind.lower() != kind.lower():
            continue
        for name in as_list(names):
            if name in ("*", value) or (kind.upper() == "AWS" and _same_aws_principal(name, value)):
                return True
    return False


def _same_aws_principal(named: str, caller: str) -> bool:
    """An account id or its :root names every principal of the account; a role names its sessions."""
    caller_account = caller.split(":")[4] if caller.count(":") >= 5 else caller
    if named.isdigit() or named.endswith(":root"):
        return (named if named.isdigit() else named.split(":")[4]) == caller_account
    session = re.fullmatch(r"arn:([^:]+):sts::(\d+):assumed-role/([^/]+)/.+", caller)
    return bool(session) and named == f"arn:{session[1]}:iam::{session[2]}:role/{session[3]}"


def trust_allows(
    trust_policy: Any,
    principal_kind: str,
    principal_value: str,
    action: str = "sts:AssumeRole",
    context: Mapping[str, Any] | None = None,
) -> Decision:
    """Whether a role's trust policy lets a principal take `action` (sts:AssumeRole, ...WithWebIdentity).

    principal_kind is the Principal element's key: "Service" (sagemaker.amazonaws.com), "Federated" (the
    OIDC provider's ARN), or "AWS" (a user, role session or account ARN). For web identity, pass the
    token's claims through oidc_context().
    """
    statements = []
    for label, statement in _statements(trust_policy):
        if "Principal" in statement:
            if not _principal_matches(statement["Principal"], principal_kind, principal_value):
                continue
        elif "NotPrincipal" in statement:
            if _principal_matches(statement["NotPrincipal"], principal_kind, principal_value):
                continue
        else:
            continue
        statements.append((label, statement))
    return _decide(statements, action, [None], context or {}, TRUST_EXPLICIT_DENY, TRUST_IMPLICIT_DENY)


# The OIDC claims AWS turns into condition keys (IAM User Guide, "Available keys for AWS OIDC federation");
# GitHub's documentation adds that AWS supports none of its custom claims (repository, ref, environment...).
_OIDC_CLAIM_KEYS = ("aud", "sub", "amr")


def oidc_context(provider: str, claims: Mapping[str, Any]) -> dict[str, Any]:
    """Condition keys of an AssumeRoleWithWebIdentity request: "token.actions.githubusercontent.com:sub", ...

    Only the claims AWS exposes become keys (a claim the token lacks is None: known absent); a trust policy
    naming another claim sees it missing and is reported as unevaluated.
    """
    host = provider.removeprefix("https://").rstrip("/")
    context: dict[str, Any] = {f"{host}:{claim}": claims.get(claim) for claim in _OIDC_CLAIM_KEYS}
    audience = context[f"{host}:aud"]
    if isinstance(audience, list) and len(audience) == 1:
        context[f"{host}:aud"] = audience[0]
    return context


def access_denied_message(
    principal_arn: str | None, action: str, resource: str | None, decision: Decision
) -> str:
    """The text AWS puts in the AccessDenied error for a refused call."""
    if action.lower() == "sts:assumerolewithwebidentity":
        return "Not authorized to perform sts:AssumeRoleWithWebIdentity"
    reason = decision.denied_by or IMPLICIT_DENY
    text = f"User: {principal_arn} is not authorized to perform: {action}"
    if resource:
        text += f" on resource: {resource}"
    if reason.startswith("explicit deny"):
        return f"{text} with an {reason}"
    return f"{text} because {reason} the {action} action"


@dataclass(frozen=True)
class CallDecision:
    """Every authorisation one call needs (its own action, then the implied ones), and the first refusal."""

    allowed: bool
    checks: tuple[tuple[str, tuple[str, ...], Decision], ...]  # (action, resources, decision)
    unevaluated: tuple[str, ...]
    message: str | None  # AWS's AccessDenied text for the first refused check
    code: str | None  # AccessDenied / AccessDeniedException / AuthorizationError
    contexts: tuple[Mapping[str, Any], ...] = ()  # each check's request context, in the order of checks


def authorize_call(
    policies: Any,
    principal_arn: str,
    service: str,
    operation: str,
    params: Mapping[str, Any],
    region: str,
    account: str,
    context: Mapping[str, Any] | None = None,
    lookup: Lookup | None = None,
) -> CallDecision:
    """action_for + resource_arns + request_context + implied_actions + evaluate, for one botocore call.

    A resource ARN that cannot be built is evaluated as "*" (only a statement that allows every resource
    allows it) and reported in `unevaluated`.
    """
    action = action_for(service, operation, params)
    arns = resource_arns(action, params, region, account, lookup)
    own = [str(a) for a in arns] + (["*"] if arns.unresolved else [])
    base = {**request_context(action, params, region, account), **(context or {})}
    wanted = [(action, own, base)]
    for implied in implied_actions(service, operation, params, account):
        resources = own if implied.resources is None else list(implied.resources)
        wanted.append((implied.action, resources, {**base, **implied.context}))
    checks, contexts, unevaluated = [], [], [f"{action}: resource {u}" for u in arns.unresolved]
    for wanted_action, resources, call_context in wanted:
        decision = evaluate(policies, wanted_action, resources, call_context)
        checks.append((wanted_action, tuple(resources), decision))
        contexts.append(call_context)
        unevaluated += decision.unevaluated
        if not decision.allowed:
            message = access_denied_message(principal_arn, wanted_action, decision.denied_resource, decision)
            code = access_denied_code(service)
            return CallDecision(
                False, tuple(checks), tuple(dict.fromkeys(unevaluated)), message, code, tuple(contexts)
            )
    return CallDecision(True, tuple(checks), tuple(dict.fromkeys(unevaluated)), None, None, tuple(contexts))
