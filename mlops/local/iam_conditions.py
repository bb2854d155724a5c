"""IAM policy conditions, wildcards and policy variables, as AWS evaluates them.

Every function answers True, False, or None when it cannot decide (an operator not supported here, a key
nobody put in the request context, a policy variable with no value); the caller decides what None means.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@functools.lru_cache(maxsize=4096)
def _wildcard(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(regex, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def context_lookup(context: Mapping[str, Any], key: str) -> tuple[bool, Any]:
    """(present, value): condition keys are case-insensitive."""
    if key in context:
        return True, context[key]
    lowered = key.lower()
    for k, v in context.items():
        if k.lower() == lowered:
            return True, v
    return False, None


_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_ESCAPES = {"*": "*", "?": "?", "$": "$"}


def with_variables(pattern: str, context: Mapping[str, Any], wildcard: bool) -> str | None:
    """A pattern with ${aws:username}-style variables filled from the context; None if one is missing.

    Filled values are literal (their * and ? do not match anything else); ${*}, ${?}, ${$} are the
    escapes AWS defines. With wildcard=False the result is a plain string.
    """
    missing = False

    def fill(match: re.Match[str]) -> str:
        nonlocal missing
        name, _, default = match.group(1).partition(",")
        name = name.strip()
        if name in _ESCAPES:
            return "\0" + _ESCAPES[name]
        present, value = context_lookup(context, name)
        if not present or value is None or isinstance(value, list):
            if default.strip():
                value = default.strip().strip("'")
            else:
                missing = True
                return ""
        return "".join("\0" + c for c in str(value))

    filled = _VARIABLE.sub(fill, pattern)
    if missing:
        return None
    if not wildcard:
        return filled.replace("\0", "")
    return filled


def matches(pattern: str, value: str, ignore_case: bool) -> bool:
    """Wildcard match where characters marked with \\0 (from variables and escapes) are literal."""
    if "\0" not in pattern:
        return bool(_wildcard(pattern, ignore_case).fullmatch(value))
    regex, literal = [], False
    for c in pattern:
        if c == "\0":
            literal = True
            continue
        regex.append(re.escape(c) if literal or c not in "*?" else ".*" if c == "*" else ".")
        literal = False
    flags = re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL
    return bool(re.fullmatch("".join(regex), value, flags))


# --- conditions -------------------------------------------------------------------------------------------


def _arn_like(value: str, pattern: str) -> bool:
    """ArnLike/ArnEquals: each of the six colon-separated parts matched on its own."""
    pattern_parts, value_parts = pattern.split(":", 5), value.split(":", 5)
    if len(pattern_parts) != 6 or len(value_parts) != 6:
        return matches(pattern, value, False)
    return all(matches(p, v, False) for p, v in zip(pattern_parts, value_parts, strict=True))


def _number(text: str) -> float:
    return float(text)


def _bool_text(value: Any) -> str:
    return str(value).lower()


# operator -> test of one request value against one policy value
_OPERATORS: dict[str, Any] = {
    "StringEquals": lambda v, p: v == p,
    "StringEqualsIgnoreCase": lambda v, p: v.casefold() == p.casefold(),
    "StringLike": lambda v, p: matches(p, v, False),
    "ArnEquals": _arn_like,  # AWS treats ArnEquals like ArnLike
    "ArnLike": _arn_like,
    "Bool": lambda v, p: _bool_text(v) == _bool_text(p),
    "NumericEquals": lambda v, p: _number(v) == _number(p),
    "NumericLessThan": lambda v, p: _number(v) < _number(p),
    "NumericLessThanEquals": lambda v, p: _number(v) <= _number(p),
    "NumericGreaterThan": lambda v, p: _number(v) > _number(p),
    "NumericGreaterThanEquals": lambda v, p: _number(v) >= _number(p),
}
_WILDCARD_TESTS = {_OPERATORS["StringLike"], _arn_like}
_NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
    "NumericNotEquals": "NumericEquals",
}


def condition_block(
    condition: Mapping[str, Any], context: Mapping[str, Any]
) -> tuple[bool | None, list[str]]:
    """True/False, or None with the reasons it cannot be decided. All operators and keys must hold."""
    unknown: list[str] = []
    for operator, keys in condition.items():
        for key, policy_values in keys.items():
            result, reason = _condition(operator, key, as_list(policy_values), context)
            if result is False:
                return False, []
            if result is None:
                unknown.append(reason)
    return (None, unknown) if unknown else (True, [])


def _condition(
    operator: str, key: str, policy_values: list[Any], context: Mapping[str, Any]
) -> tuple[bool | None, str]:
    described = f"{operator} {key}"
    set_operator, _, base = operator.rpartition(":")
    if_exists = base.endswith("IfExists")
    base = base.removesuffix("IfExists")
    if set_operator not in {"", "ForAnyValue", "ForAllValues"} or (
        base not in _OPERATORS and base not in _NEGATED and base != "Null"
    ):
        return None, f"{described}: operator not supported"
    present, value = context_lookup(context, key)
    if not present:
        if if_exists and base != "Null":
            return True, ""
        return None, f"{described}: {key} is not in the request context"
    values = (
        [] if value is None else [_bool_text(v) if isinstance(v, bool) else str(v) for v in as_list(value)]
    )

    if not values and if_exists:
        return True, ""
    if base == "Null":  # "true": the key is absent
        return (not values) == (_bool_text(policy_values[0]) == "true"), ""
    negated = base in _NEGATED
    test = _OPERATORS[_NEGATED.get(base, base)]
    filled: list[str] = []
    for p in policy_values:
        text = with_variables(
            _bool_text(p) if isinstance(p, bool) else str(p), context, test in _WILDCARD_TESTS
        )
        if text is None:
            return None, f"{described}: a policy variable in {p!r} is not in the request context"
        filled.append(text)

    def holds(one: str) -> bool:
        try:
            hit = any(test(one, p) for p in filled)
        except ValueError:  # a value that is not a number under a Numeric operator matches nothing
            hit = False
        return not hit if negated else hit

    if set_operator == "ForAllValues":
        return all(holds(v) for v in values), ""
    if set_operator == "ForAnyValue":
        return any(holds(v) for v in values), ""
    if not values:  # the request has no such key: AWS says no match, except for the negated operators
        return negated, ""
    if len(values) > 1:
        return None, f"{described}: {key} has several values; the policy needs ForAnyValue/ForAllValues"
    return holds(values[0]), ""
