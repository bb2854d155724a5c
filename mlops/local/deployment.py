"""A blue/green endpoint update as SageMaker runs it: the traffic shifting steps of its DeploymentConfig, and
the split of InvokeEndpoint requests between the old (blue) and the new (green) fleet while it runs.

Time is compressed locally (`TIME_SCALE` AWS seconds pass in one local second): a 300 s baking period lasts
2.5 s, and the rollback alarms' periods shrink by the same factor (mlops.local.alarm_evaluation), so an alarm
sees as many of its periods during a bake as it would on AWS.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

TIME_SCALE = 120.0  # AWS seconds per local second while an update runs

_WAIT_RANGE = (0, 3600)  # WaitIntervalInSeconds and TerminationWaitInSeconds
_TIMEOUT_RANGE = (600, 28800)  # MaximumExecutionTimeoutInSeconds


class DeploymentConfigError(ValueError):
    """A DeploymentConfig SageMaker refuses (ValidationException)."""


@dataclass(frozen=True)
class Step:
    new_percent: float  # share of the requests the new fleet takes from this step on
    bake_seconds: int  # AWS seconds the alarms watch before the next step


@dataclass(frozen=True)
class Plan:
    kind: str  # ALL_AT_ONCE, CANARY or LINEAR
    steps: tuple[Step, ...]
    termination_wait_seconds: int = 0  # the old fleet stays ready this long after the last step

    @property
    def waiting_seconds(self) -> int:
        return sum(step.bake_seconds for step in self.steps) + self.termination_wait_seconds

    def bakes(self) -> list[Step]:
        """Each share the new fleet takes and how long the alarms watch it: the steps, then the final bake (the
        termination wait), after which the old fleet goes."""
        return [*self.steps, Step(100.0, self.termination_wait_seconds)]

    def describe(self) -> list[dict[str, float]]:
        return [{"new_percent": s.new_percent, "bake_seconds": s.bake_seconds} for s in self.steps]


def plan_of(deployment_config: Mapping[str, Any] | None, new_instances: int = 1) -> Plan:
    """The steps of an UpdateEndpoint's DeploymentConfig; without one SageMaker shifts all at once and does not
    wait. Raises DeploymentConfigError for what SageMaker refuses."""
    policy = (deployment_config or {}).get("BlueGreenUpdatePolicy")
    if not policy:
        return Plan("ALL_AT_ONCE", (Step(100.0, 0),))
    routing = policy.get("TrafficRoutingConfiguration") or {}
    kind = routing.get("Type")
    wait = _seconds(routing, "WaitIntervalInSeconds", _WAIT_RANGE, "TrafficRoutingConfiguration")
    termination = _seconds(policy, "TerminationWaitInSeconds", _WAIT_RANGE, "BlueGreenUpdatePolicy", 0)
    sizes = {key for key in ("CanarySize", "LinearStepSize") if key in routing}
    if kind == "ALL_AT_ONCE":
        if sizes:
            raise DeploymentConfigError(
                f"{sorted(sizes)[0]} is not applicable to ALL_AT_ONCE traffic routing"
            )
        steps: tuple[Step, ...] = (Step(100.0, wait),)
    elif kind == "CANARY":
        canary = _percent(routing, "CanarySize", new_instances, sizes - {"CanarySize"}, kind)
        if canary > 50:
            raise DeploymentConfigError("CanarySize must be at most 50% of the new fleet's capacity")
        steps = (Step(canary, wait), Step(100.0, 0))
    elif kind == "LINEAR":
        step = _percent(routing, "LinearStepSize", new_instances, sizes - {"LinearStepSize"}, kind)
        if not 10 <= step <= 50:
            raise DeploymentConfigError(
                "LinearStepSize must be between 10% and 50% of the new fleet's capacity"
            )
        count = math.ceil(100 / step)
        steps = tuple(Step(min(100.0, step * (n + 1)), wait) for n in range(count))
    else:
        raise DeploymentConfigError(
            f"Value '{kind}' at 'TrafficRoutingConfiguration.Type' failed to satisfy constraint: Member must "
            "satisfy enum value set: [ALL_AT_ONCE, CANARY, LINEAR]"
        )
    plan = Plan(kind, steps, termination)
    if "MaximumExecutionTimeoutInSeconds" in policy:
        timeout = _seconds(
            policy, "MaximumExecutionTimeoutInSeconds", _TIMEOUT_RANGE, "BlueGreenUpdatePolicy"
        )
        if timeout <= plan.waiting_seconds:
            raise DeploymentConfigError(
                f"MaximumExecutionTimeoutInSeconds ({timeout}) must be larger than the deployment's total "
                f"waiting time ({plan.waiting_seconds} s of wait intervals and termination wait)"
            )
    return plan


def _seconds(
    where: Mapping[str, Any], key: str, bounds: tuple[int, int], parent: str, default: int | None = None
) -> int:
    value = where.get(key, default)
    if value is None:
        raise DeploymentConfigError(f"{parent}.{key} is required")
    low, high = bounds
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise DeploymentConfigError(
            f"Value '{value}' at '{parent}.{key}' failed to satisfy constraint: Member must have value "
            f"between {low} and {high}"
        )
    return value


def _percent(routing: Mapping[str, Any], key: str, new_instances: int, others: set[str], kind: str) -> float:
    if others:
        raise DeploymentConfigError(f"{sorted(others)[0]} is not applicable to {kind} traffic routing")
    size = routing.get(key)
    if not isinstance(size, Mapping):
        raise DeploymentConfigError(f"{key} is required for {kind} traffic routing")
    value = size.get("Value")
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise DeploymentConfigError(f"{key}.Value must be a positive integer")
    if size.get("Type") == "CAPACITY_PERCENT":
        if value > 100:
            raise DeploymentConfigError(f"{key}.Value must be at most 100 for CAPACITY_PERCENT")
        return float(value)
    if size.get("Type") == "INSTANCE_COUNT":
        if value > new_instances:
            raise DeploymentConfigError(
                f"{key} of {value} instances is more than the new fleet's {new_instances}"
            )
        return 100.0 * value / new_instances
    raise DeploymentConfigError(f"{key}.Type must be INSTANCE_COUNT or CAPACITY_PERCENT")


@dataclass
class FleetCount:
    answered: int = 0  # 2xx from the model
    failed: int = 0  # anything else: the model's errors, or no answer

    def as_dict(self) -> dict[str, int]:
        return {"answered": self.answered, "failed": self.failed}


@dataclass
class Split:
    """Which fleet answers each request: the new fleet takes `new_percent` of them, spread evenly (request n
    goes to the new fleet when floor(n * share) grows), so a 10% canary answers every tenth request."""

    new_percent: float = 0.0
    counts: dict[str, FleetCount] = field(default_factory=lambda: {"old": FleetCount(), "new": FleetCount()})
    _requests: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def shift(self, new_percent: float) -> None:
        with self._lock:
            self.new_percent = new_percent
            self._requests = 0

    def pick(self) -> str:
        with self._lock:
            self._requests += 1
            share = self.new_percent / 100
            taken = math.floor(self._requests * share + 1e-9) > math.floor(
                (self._requests - 1) * share + 1e-9
            )
            return "new" if taken else "old"

    def count(self, fleet: str, ok: bool) -> None:
        with self._lock:
            if ok:
                self.counts[fleet].answered += 1
            else:
                self.counts[fleet].failed += 1

    def as_dict(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {fleet: count.as_dict() for fleet, count in self.counts.items()}


@dataclass
class Update:
    """One endpoint's update under way: both fleets, the split between them, and the requests each is answering
    (a fleet is stopped only once it has answered them)."""

    old: Any
    new: Any
    alarms: list[str]
    split: Split = field(default_factory=Split)
    _in_flight: dict[str, int] = field(default_factory=lambda: {"old": 0, "new": 0})
    _idle: threading.Condition = field(default_factory=threading.Condition)

    def begin(self) -> tuple[str, Any]:
        fleet = self.split.pick()
        with self._idle:
            self._in_flight[fleet] += 1
        return fleet, self.new if fleet == "new" else self.old

    def end(self, fleet: str, ok: bool) -> None:
        self.split.count(fleet, ok)
        with self._idle:
            self._in_flight[fleet] -= 1
            self._idle.notify_all()

    def drain(self, fleet: str, timeout: float = 30.0) -> None:
        """Waits for the requests `fleet` is answering; new ones no longer reach it."""
        with self._idle:
            self._idle.wait_for(lambda: self._in_flight[fleet] == 0, timeout)
