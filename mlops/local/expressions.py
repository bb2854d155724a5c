"""GitHub Actions ``${{ }}`` expressions, the part the project's workflows use.

Literals (strings in single quotes, numbers, true/false/null), context lookups (``a.b``, ``a['b']``), ``!``,
``==``/``!=``/``<``/``<=``/``>``/``>=`` (strings compared ignoring case, other types compared as numbers, as
GitHub does), ``&&``/``||`` (which return an operand, not a boolean), parentheses, and the status functions
``success()``, ``failure()``, ``always()``, ``cancelled()``. Anything else is an ExpressionError: the local
runner never turns what it cannot evaluate into an empty string.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

STATUS_FUNCTIONS = ("success", "failure", "always", "cancelled")
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^']|'')*')
      | (?P<number>-?(?:0x[0-9a-fA-F]+|\d+(?:\.\d+)?(?:[eE][+-]?\d+)?))
      | (?P<op>==|!=|<=|>=|&&|\|\||[<>!().\[\],*])
      | (?P<name>[A-Za-z_][A-Za-z0-9_-]*)
    )""",
    re.VERBOSE,
)


class ExpressionError(ValueError):
    """An expression the local runner cannot evaluate; the message names it."""


class Strict(dict):
    """A context whose unknown keys are an error (GitHub would give null, hiding a typo or a gap here)."""

    def __init__(self, what: str, values: Mapping[str, Any]):
        super().__init__(values)
        self.what = what


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            raise ExpressionError(f"cannot read {text[position:]!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


class _Parser:
    """Recursive descent over the tokens; evaluates as it parses (short-circuits by evaluating and
    discarding, which has no effect here: nothing in an expression has side effects)."""

    def __init__(self, text: str, contexts: Mapping[str, Any], functions: Mapping[str, Callable[[], bool]]):
        self.tokens = _tokens(text)
        self.position = 0
        self.contexts, self.functions = contexts, functions

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (value is not None and token[1] != value):
            found = token[1] if token else "the end"
            raise ExpressionError(f"expected {value or 'more'} but found {found}")
        self.position += 1
        return token

    def parse(self) -> Any:
        value = self.or_()
        if self.peek() is not None:
            raise ExpressionError(f"unexpected {self.peek()[1]!r}")
        return value

    def or_(self) -> Any:
        value = self.and_()
        while self.peek() == ("op", "||"):
            self.take()
            right = self.and_()
            value = value if truthy(value) else right
        return value

    def and_(self) -> Any:
        value = self.comparison()
        while self.peek() == ("op", "&&"):
            self.take()
            right = self.comparison()
            value = right if truthy(value) else value
        return value

    def comparison(self) -> Any:
        value = self.unary()
        while self.peek() and self.peek()[1] in ("==", "!=", "<", "<=", ">", ">="):
            operator = self.take()[1]
            value = compare(value, operator, self.unary())
        return value

    def unary(self) -> Any:
        if self.peek() == ("op", "!"):
            self.take()
            return not truthy(self.unary())
        return self.primary()

    def primary(self) -> Any:
        kind, text = self.take()
        if kind == "op" and text == "(":
            value = self.or_()
            self.take(")")
            return value
        if kind == "string":
            return text[1:-1].replace("''", "'")
        if kind == "number":
            return float(int(text, 16)) if text.lower().lstrip("-").startswith("0x") else float(text)
        if kind != "name":
            raise ExpressionError(f"unexpected {text!r}")
        if text in ("true", "false"):
            return text == "true"
        if text == "null":
            return None
        if self.peek() == ("op", "("):
            return self.call(text)
        if text not in self.contexts:
            raise ExpressionError(
                f"no context named {text!r} here (known: {', '.join(sorted(self.contexts))})"
            )
        return self.properties(self.contexts[text], text)

    def call(self, name: str) -> Any:
        self.take("(")
        if name not in self.functions:
            raise ExpressionError(
                f"the local runner does not evaluate {name}(): it knows {', '.join(f'{f}()' for f in self.functions)}"
            )
        self.take(")")
        return self.functions[name]()

    def properties(self, value: Any, path: str) -> Any:
        while self.peek() in (("op", "."), ("op", "[")):
            if self.take()[1] == ".":
                kind, key = self.take()
                if kind != "name":
                    raise ExpressionError(f"{path}.{key}: a property name must follow the dot")
            else:
                kind, key = self.take()
                if kind != "string":
                    raise ExpressionError(f"{path}[{key}]: the local runner indexes with a quoted name only")
                key = key[1:-1].replace("''", "'")
                self.take("]")
            value = lookup(value, key, path)
            path = f"{path}.{key}"
        return value


def lookup(value: Any, key: str, path: str) -> Any:
    if isinstance(value, Strict):
        if key not in value:
            raise ExpressionError(
                f"{path}.{key}: {value.what} has no {key!r} (it has: {', '.join(sorted(value)) or 'nothing'})"
            )
        return value[key]
    if isinstance(value, Mapping):
        # GitHub's own rule, kept on purpose: a missing property is null (e.g. a skipped step's outputs).
        for name, item in value.items():
            if name.lower() == key.lower():
                return item
        return None
    if value is None:
        return None
    raise ExpressionError(f"{path} is {to_string(value)!r}, which has no property {key!r}")


def truthy(value: Any) -> bool:
    if isinstance(value, float):
        return value != 0 and not math.isnan(value)
    return value not in (None, False, "") and not (isinstance(value, int) and value == 0)


def _number(value: Any) -> float:
    if value is None:
        return 0.0
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return 0.0
        try:
            return float(int(text, 16)) if text.lower().startswith("0x") else float(text)
        except ValueError:
            return math.nan
    return math.nan  # objects and arrays


def compare(left: Any, operator: str, right: Any) -> bool:
    if isinstance(left, str) and isinstance(right, str):
        a, b = left.casefold(), right.casefold()
    elif isinstance(left, Mapping | list) or isinstance(right, Mapping | list):
        if operator not in ("==", "!="):
            return False
        return (left is right) == (operator == "==")
    else:
        a, b = _number(left), _number(right)
        if math.isnan(a) or math.isnan(b):
            return operator == "!="
    return {
        "==": a == b,
        "!=": a != b,
        "<": a < b,
        "<=": a <= b,
        ">": a > b,
        ">=": a >= b,
    }[operator]


def to_string(value: Any) -> str:
    """How GitHub writes a value into a string: null as empty, booleans as true/false, whole numbers
    without a decimal point, objects as JSON."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, Mapping | list):
        return json.dumps(value, indent=2)
    return str(value)


def evaluate(
    text: str, contexts: Mapping[str, Any], functions: Mapping[str, Callable[[], bool]] | None = None
) -> Any:
    """The value of one expression (the text inside ``${{ }}``)."""
    return _Parser(text, contexts, functions or {}).parse()


_TEMPLATE = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)


def interpolate(
    value: Any, contexts: Mapping[str, Any], functions: Mapping[str, Callable[[], bool]] | None = None
) -> str:
    """A workflow value with each ``${{ }}`` replaced by its value as a string (env:, with:)."""
    if not isinstance(value, str):
        return to_string(value)

    def replace(match: re.Match) -> str:
        try:
            return to_string(evaluate(match.group(1), contexts, functions))
        except ExpressionError as error:
            raise ExpressionError(f"${{{{{match.group(1)}}}}}: {error}") from None

    return _TEMPLATE.sub(replace, value)


def condition(text: Any, contexts: Mapping[str, Any], functions: Mapping[str, Callable[[], bool]]) -> bool:
    """An ``if:``: with or without ``${{ }}``, and ``success() && (...)`` unless it calls a status function."""
    if isinstance(text, bool):
        text = "true" if text else "false"
    expression = str(text).strip()
    whole = _TEMPLATE.fullmatch(expression)
    if whole:
        expression = whole.group(1)
    elif "${{" in expression:
        raise ExpressionError(f"if: {text!r} mixes text and ${{{{ }}}}: write the whole condition as one")
    if not any(re.search(rf"\b{name}\s*\(", expression) for name in STATUS_FUNCTIONS):
        expression = f"success() && ({expression})"
    try:
        return truthy(evaluate(expression, contexts, functions))
    except ExpressionError as error:
        raise ExpressionError(f"if: {text}: {error}") from None
