"""A mermaid flowchart generated from an ASL definition, so the README's picture is the file itself."""

from __future__ import annotations

import re


def _id(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def _edges(name: str, state: dict) -> list[tuple[str, str, str]]:
    edges = []
    if "Next" in state:
        edges.append((name, state["Next"], ""))
    for choice in state.get("Choices", []):
        edges.append((name, choice["Next"], "yes"))
    if "Default" in state:
        edges.append((name, state["Default"], "otherwise"))
    for catch in state.get("Catch", []):
        edges.append((name, catch["Next"], " / ".join(catch["ErrorEquals"])))
    return edges


def mermaid(definition: dict) -> str:
    lines = ["flowchart TD", f"    start([start]) --> {_id(definition['StartAt'])}"]
    for name, state in definition["States"].items():
        kind = state["Type"]
        label = name if kind != "Task" else f"{name}<br/><small>{state['Resource'].split(':::')[-1]}</small>"
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
    return "\n".join(lines)
