"""Reads the SAM template, the one source of function handlers and state machine substitutions."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO_ROOT / "infra" / "template.yaml"
ACCOUNT_ID = "123456789012"


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


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    code_dir: Path
    module: str
    attribute: str
    environment: dict[str, Any]
    api_events: tuple[tuple[str, str], ...]  # (METHOD, path)


class Template:
    """A parsed SAM template with just enough CloudFormation resolution for the local runtime."""

    def __init__(self, path: Path = TEMPLATE_PATH):
        self.path = path
        self.doc = yaml.load(path.read_text(), Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
        self.resources: dict[str, dict[str, Any]] = self.doc["Resources"]

    def conditions(self) -> dict[str, Any]:
        return self.doc.get("Conditions", {})

    def api_security(self, resolver: Resolver) -> dict[tuple[str, str], set[str]]:
        """(METHOD, path) -> security schemes the template's APIs require (e.g. {"api_key"})."""
        routes: dict[tuple[str, str], set[str]] = {}
        for res in self.resources.values():
            if res["Type"] != "AWS::Serverless::Api":
                continue
            paths = resolver.resolve(res["Properties"].get("DefinitionBody", {})).get("paths", {})
            for path, methods in paths.items():
                for method, operation in methods.items():
                    schemes = {
                        name for requirement in operation.get("security") or [] for name in requirement
                    }
                    routes[(method.upper(), path)] = schemes
        return routes

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

    def functions(self) -> dict[str, FunctionSpec]:
        globals_env = (
            self.doc.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
        )
        specs = {}
        for logical_id, res in self.resources.items():
            if res["Type"] != "AWS::Serverless::Function":
                continue
            props = res["Properties"]
            module, attribute = props["Handler"].rsplit(".", 1)
            env = {**globals_env, **props.get("Environment", {}).get("Variables", {})}
            events = tuple(
                (ev["Properties"]["Method"].upper(), ev["Properties"]["Path"])
                for ev in props.get("Events", {}).values()
                if ev["Type"] == "Api"
            )
            specs[logical_id] = FunctionSpec(
                logical_id=logical_id,
                code_dir=(self.path.parent / props["CodeUri"]).resolve(),
                module=module,
                attribute=attribute,
                environment=env,
                api_events=events,
            )
        return specs

    def state_machine(self) -> tuple[Path, dict[str, Any]]:
        for res in self.resources.values():
            if res["Type"] == "AWS::Serverless::StateMachine":
                props = res["Properties"]
                return (self.path.parent / props["DefinitionUri"]).resolve(), props.get(
                    "DefinitionSubstitutions", {}
                )
        raise LookupError(f"{self.path} declares no AWS::Serverless::StateMachine")


_NO_VALUE = object()  # Ref AWS::NoValue: the property is left out


class Resolver:
    """Resolves Ref/GetAtt/Sub/If against parameter values and the physical ids the local runtime chose."""

    def __init__(
        self,
        parameters: dict[str, str],
        physical: dict[str, str],
        arns: dict[str, str],
        region: str,
        conditions: dict[str, Any] | None = None,
    ):
        self.parameters = parameters
        self.conditions = conditions or {}
        self.physical = physical
        self.arns = arns
        self.pseudo = {
            "AWS::Region": region,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Partition": "aws",
            "AWS::StackName": "local",
            "AWS::URLSuffix": "amazonaws.com",
        }

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return _NO_VALUE
        for table in (self.pseudo, self.parameters, self.physical):
            if name in table:
                return table[name]
        raise KeyError(f"the local runtime has no value for Ref {name}")

    def resolve(self, value: Any) -> Any:
        if isinstance(value, dict) and len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                logical, attr = arg
                if attr != "Arn" or logical not in self.arns:
                    raise KeyError(f"the local runtime cannot resolve GetAtt {logical}.{attr}")
                return self.arns[logical]
            if key == "Fn::Sub":
                return re.sub(r"\$\{([^}!]+)\}", lambda m: self._sub_var(m.group(1)), arg)
            if key == "Fn::If":
                name, if_true, if_false = arg
                return self.resolve(if_true if self.condition(name) else if_false)
        if isinstance(value, dict):
            resolved = {k: self.resolve(v) for k, v in value.items()}
            return {k: v for k, v in resolved.items() if v is not _NO_VALUE}
        if isinstance(value, list):
            return [v for v in (self.resolve(v) for v in value) if v is not _NO_VALUE]
        return value

    def condition(self, name: str) -> bool:
        if name not in self.conditions:
            raise KeyError(f"the template declares no condition {name}")
        return self._truth(self.conditions[name])

    def _truth(self, expression: Any) -> bool:
        ((key, arg),) = expression.items()
        if key == "Fn::Equals":
            left, right = (self.resolve(a) for a in arg)
            return str(left) == str(right)
        if key == "Fn::Not":
            return not self._truth(arg[0])
        if key == "Fn::And":
            return all(self._truth(a) for a in arg)
        if key == "Fn::Or":
            return any(self._truth(a) for a in arg)
        if key == "Condition":
            return self.condition(arg)
        raise KeyError(f"the local runtime cannot evaluate condition {key}")

    def _sub_var(self, name: str) -> str:
        if "." in name:
            logical, attr = name.split(".", 1)
            return self.resolve({"Fn::GetAtt": [logical, attr]})
        return self.ref(name)


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
