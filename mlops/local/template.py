"""Reads a CloudFormation/SAM template: its parameters (checked as CloudFormation checks them) and its text."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO_ROOT / "infra" / "template.yaml"
ACCOUNT_ID = "123456789012"


class TemplateError(ValueError):
    """A template cannot be read, packaged, transformed or created; the message says which part and why."""


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short-form tags (!Ref, !GetAtt, !Sub ...) turned into long form."""


def _tag(name: str):
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if name == "Fn::GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {name: value}

    return construct


for _short in (
    "Ref",
    "GetAtt",
    "Sub",
    "If",
    "Equals",
    "Not",
    "And",
    "Or",
    "Join",
    "Select",
    "Split",
    "FindInMap",
    "ImportValue",
    "GetAZs",
    "Base64",
    "Condition",
):
    _CfnLoader.add_constructor(f"!{_short}", _tag("Ref" if _short == "Ref" else f"Fn::{_short}"))


class Template:
    """A parsed template; ``mlops.local.cloudformation`` deploys it, this checks parameter values first."""

    def __init__(self, path: Path = TEMPLATE_PATH):
        self.path = path
        try:
            self.doc = yaml.load(path.read_text(), Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
        except OSError as error:
            raise TemplateError(f"cannot read {path}: {error.strerror}") from None
        except yaml.YAMLError as error:
            raise TemplateError(f"{path} is not YAML: {error}") from None
        if not isinstance(self.doc, dict) or not isinstance(self.doc.get("Resources"), dict):
            raise TemplateError(f"{path} is not a CloudFormation template: it has no Resources")

    def parameter_defaults(self) -> dict[str, str]:
        return {k: str(v["Default"]) for k, v in self.doc.get("Parameters", {}).items() if "Default" in v}

    def check_parameters(self, values: dict[str, str]) -> None:
        """Raises ValueError naming the first value CloudFormation would refuse for this template."""
        declared = self.doc.get("Parameters", {})
        for name, value in values.items():
            if name not in declared:
                raise ValueError(
                    f"{name} is not a parameter of {self.path.name}; it has {', '.join(declared)}"
                )
            problem = _parameter_problem(declared[name], value)
            if problem:
                raise ValueError(f"{name}={value!r}: {problem}")


def substitute(definition: str, values: dict[str, str]) -> str:
    """Fills ``${Name}`` the way DefinitionSubstitutions does; an unknown name is an error, not a blank."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise KeyError(f"the definition uses ${{{name}}} but the template declares no such substitution")
        return str(values[name])

    return re.sub(r"\$\{([A-Za-z0-9_]+)\}", fill, definition)


def _parameter_problem(spec: dict[str, Any], value: str) -> str | None:
    """What CloudFormation's parameter constraints say of `value`, or None if it is allowed."""
    if spec.get("Type") == "Number":
        try:
            number = float(value)
        except ValueError:
            return "must be a number"
        if "MinValue" in spec and number < float(spec["MinValue"]):
            return f"must be at least {spec['MinValue']}"
        if "MaxValue" in spec and number > float(spec["MaxValue"]):
            return f"must be at most {spec['MaxValue']}"
    allowed = spec.get("AllowedValues")
    if allowed is not None and value not in [str(a) for a in allowed]:
        return f"must be one of {', '.join(str(a) for a in allowed)}"
    pattern = spec.get("AllowedPattern")
    if pattern is not None and not re.fullmatch(pattern, value):
        return f"must match {pattern}"
    if "MinLength" in spec and len(value) < int(spec["MinLength"]):
        return f"must be at least {spec['MinLength']} characters"
    if "MaxLength" in spec and len(value) > int(spec["MaxLength"]):
        return f"must be at most {spec['MaxLength']} characters"
    return None
