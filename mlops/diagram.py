"""A mermaid flowchart generated from an ASL definition, so the README's picture is the file itself."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping


def _id(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


# Choice rule operators as a person writes them; the *Path forms compare with another field.
_OPERATORS = {
    "Equals": "=",
    "GreaterThan": ">",
    "GreaterThanEquals": "≥",
    "LessThan": "<",
    "LessThanEquals": "≤",
    "Matches": "matches",
}


def _field(path: str) -> str:
    """`$.evaluation.accuracy` → `accuracy`: the last name says what the value is."""
    return path.rsplit(".", 1)[-1]


def condition(rule: dict) -> str:
    """A Choice rule in a few words: `accuracy ≥ min_accuracy`, `EndpointStatus = InService`."""
    if "And" in rule or "Or" in rule:
        joiner = " and " if "And" in rule else " or "
        return joiner.join(condition(part) for part in rule.get("And") or rule["Or"])
    if "Not" in rule:
        inner = rule["Not"]
        if inner.get("IsNull") is True:
            return f"{_field(inner['Variable'])} is set"
        return f"not ({condition(inner)})"
    variable = _field(rule.get("Variable", "?"))
    for key, value in rule.items():
        if key in ("Variable", "Next"):
            continue
        if key.startswith("Is"):  # IsNull, IsPresent, IsString...
            return f"{variable} {'is' if value else 'is not'} {key[2:].lower()}"
        compared = _field(value) if key.endswith("Path") else json.dumps(value).strip('"')
        operator = key.removesuffix("Path")
        for kind in ("String", "Numeric", "Boolean", "Timestamp"):
            operator = operator.removeprefix(kind)
        return f"{variable} {_OPERATORS.get(operator, operator)} {compared}"
    return "?"


def _edges(name: str, state: dict) -> list[tuple[str, str, str]]:
    edges = []
    if "Next" in state:
        edges.append((name, state["Next"], ""))
    for choice in state.get("Choices", []):
        edges.append((name, choice["Next"], condition(choice)))
    if "Default" in state:
        edges.append((name, state["Default"], "otherwise"))
    for catch in state.get("Catch", []):
        edges.append((name, catch["Next"], " / ".join(catch["ErrorEquals"])))
    return edges


def mermaid(definition: dict, taken: Mapping[str, float] | None = None) -> str:
    """The definition as a flowchart; with `taken` ({state: seconds} of one execution) the states it went
    through are highlighted and show how long they took."""
    lines = ["flowchart TD", f"    start([start]) --> {_id(definition['StartAt'])}"]
    for name, state in definition["States"].items():
        kind = state["Type"]
        label = name if kind != "Task" else f"{name}<br/><small>{state['Resource'].split(':::')[-1]}</small>"
        if taken is not None and name in taken:
            label += f"<br/><b>{taken[name]:.2f} s</b>"
        shape = {
            "Choice": ("{", "}"),
            "Succeed": ("([", "])"),
            "Fail": ("([", "])"),
            "Wait": ("[/", "/]"),
        }.get(kind, ("[", "]"))
        lines.append(f'    {_id(name)}{shape[0]}"{label}"{shape[1]}')
    for source, target, label in (e for n, s in definition["States"].items() for e in _edges(n, s)):
        arrow = f" -->|{label}| " if label else " --> "
        lines.append(f"    {_id(source)}{arrow}{_id(target)}")
    if taken:
        lines.append("    classDef taken fill:#d8f0dc,stroke:#2e7d32,stroke-width:2px")
        lines.append(
            f"    class {','.join(_id(name) for name in taken if name in definition['States'])} taken"
        )
    return "\n".join(lines)
