"""Training hyperparameters: SageMaker passes every value as a string; each is parsed and checked here.

An invalid or unknown one is a user error whose message names the parameter and the value, for example
`hyperparameter max_depth='-3' is invalid: must be a positive integer or None`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from mlmodel.contract import UserError

CRITERIA = ("gini", "entropy", "log_loss")
# Added by SageMaker itself (tuning jobs, framework containers): not ours to validate.
RESERVED_PREFIXES = ("sagemaker_", "_")


class HyperparameterError(UserError):
    def __init__(self, name: str, value: object, reason: str):
        super().__init__(f"hyperparameter {name}={value!r} is invalid: {reason}")
        self.name = name


def _is_none(text: str) -> bool:
    return text.lower() in ("none", "null")


def _integer(text: str, minimum: int, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(what) from None
    if value < minimum:
        raise ValueError(what)
    return value


def _max_depth(text: str) -> int | None:
    return None if _is_none(text) else _integer(text, 1, "must be a positive integer or None")


def _max_leaf_nodes(text: str) -> int | None:
    return None if _is_none(text) else _integer(text, 2, "must be an integer of at least 2 or None")


def _count_or_fraction(text: str, minimum: int, closed_at_one: bool, what: str) -> int | float:
    """An integer count, or a float fraction of the training rows (sklearn's two forms)."""
    if "." not in text and "e" not in text.lower():
        return _integer(text, minimum, what)
    try:
        value = float(text)
    except ValueError:
        raise ValueError(what) from None
    if not (0.0 < value < 1.0 or (closed_at_one and value == 1.0)):
        raise ValueError(what)
    return value


def _min_samples_split(text: str) -> int | float:
    return _count_or_fraction(text, 2, True, "must be an integer of at least 2 or a fraction in (0, 1]")


def _min_samples_leaf(text: str) -> int | float:
    return _count_or_fraction(text, 1, False, "must be a positive integer or a fraction in (0, 1)")


def _criterion(text: str) -> str:
    if text not in CRITERIA:
        raise ValueError("must be one of " + ", ".join(CRITERIA))
    return text


def _random_state(text: str) -> int | None:
    if _is_none(text):
        return None
    value = _integer(text, 0, "must be an integer from 0 to 4294967295 or None")
    if value > 2**32 - 1:
        raise ValueError("must be an integer from 0 to 4294967295 or None")
    return value


PARSERS: dict[str, Callable[[str], Any]] = {
    "max_depth": _max_depth,
    "max_leaf_nodes": _max_leaf_nodes,
    "min_samples_split": _min_samples_split,
    "min_samples_leaf": _min_samples_leaf,
    "criterion": _criterion,
    "random_state": _random_state,
}
# random_state is fixed by default so the same data and settings give the same tree.
DEFAULTS: dict[str, Any] = {
    "max_depth": None,
    "max_leaf_nodes": None,
    "min_samples_split": 2,
    "min_samples_leaf": 1,
    "criterion": "gini",
    "random_state": 0,
}


def _as_text(value: object) -> str:
    if isinstance(value, str):
        text = value.strip()
        # Some clients JSON-encode string values once more: '"gini"'.
        if len(text) >= 2 and text[0] == text[-1] == '"':
            try:
                decoded = json.loads(text)
            except ValueError:
                return text
            return decoded.strip() if isinstance(decoded, str) else text
        return text
    if value is None:
        return "None"
    return json.dumps(value)


def parse_hyperparameters(raw: Mapping[str, object]) -> dict[str, Any]:
    """Defaults overridden by `raw` (SageMaker's {name: string}), every value checked."""
    params = dict(DEFAULTS)
    for name, value in raw.items():
        if name.startswith(RESERVED_PREFIXES):
            continue
        parser = PARSERS.get(name)
        if parser is None:
            raise UserError(f"unknown hyperparameter {name!r}: the supported ones are {', '.join(PARSERS)}")
        text = _as_text(value)
        try:
            params[name] = parser(text)
        except ValueError as reason:
            raise HyperparameterError(name, text, str(reason)) from None
    return params
