"""CloudWatch's side of an endpoint's rollback alarms, locally.

SageMaker sends each endpoint's invocation metrics to CloudWatch (namespace AWS/SageMaker, dimensions
EndpointName and VariantName): `EndpointMetrics` records them per request as the local SageMaker answers, and
publishes them to the local CloudWatch. CloudWatch evaluates the alarms that watch them: `AlarmEvaluator` does
so from the recorded points, with each alarm's Period shrunk by the deployment's time scale
(mlops.local.deployment), and sets the alarm's state as CloudWatch would; SageMaker then reads it with
DescribeAlarms as the endpoint's execution role. Only single-metric alarms are evaluated; a metric-math alarm
keeps whatever state it has (reported once in the log).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from . import principals

log = logging.getLogger("mlops.local.alarms")

NAMESPACE = "AWS/SageMaker"
_UNITS = {"ModelLatency": "Microseconds"}
# Local seconds of points kept for evaluation: at the deployment's time scale, hours of AWS time, more than any
# alarm's EvaluationPeriods x Period the template allows.
_RETENTION_SECONDS = 120.0

Dimensions = frozenset[tuple[str, str]]


class EndpointMetrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._points: dict[tuple[str, Dimensions], deque[tuple[float, float]]] = defaultdict(deque)
        self._pending: dict[
            tuple[str, Dimensions], list[float]
        ] = {}  # count, sum, min, max since the last publish

    def record_invocation(self, endpoint: str, variant: str, status: int, latency_us: float | None) -> None:
        """One InvokeEndpoint the model answered with `status` (0: no answer) after `latency_us`."""
        values = {
            "Invocations": 1.0,
            "Invocation4XXErrors": float(400 <= status < 500),
            "Invocation5XXErrors": float(status >= 500 or status == 0),
            "InvocationModelErrors": float(not 200 <= status < 300),
        }
        if latency_us is not None:
            values["ModelLatency"] = latency_us
        dimensions = frozenset({("EndpointName", endpoint), ("VariantName", variant)})
        now = time.monotonic()
        with self._lock:
            for name, value in values.items():
                points = self._points[(name, dimensions)]
                points.append((now, value))
                while points[0][0] < now - _RETENTION_SECONDS:
                    points.popleft()
                pending = self._pending.setdefault((name, dimensions), [0.0, 0.0, value, value])
                pending[0] += 1
                pending[1] += value
                pending[2] = min(pending[2], value)
                pending[3] = max(pending[3], value)

    def values(self, name: str, dimensions: Dimensions, start: float, end: float) -> list[float]:
        with self._lock:
            return [value for t, value in self._points.get((name, dimensions), ()) if start <= t < end]

    def publish(self, cloudwatch) -> None:
        """What was recorded since the last call, to CloudWatch as SageMaker sends it (one statistic set per
        metric). A failure loses nothing the alarms read: they evaluate the recorded points."""
        with self._lock:
            pending, self._pending = self._pending, {}
        data = [
            {
                "MetricName": name,
                "Dimensions": [{"Name": k, "Value": v} for k, v in sorted(dimensions)],
                "StatisticValues": {"SampleCount": count, "Sum": total, "Minimum": low, "Maximum": high},
                "Unit": _UNITS.get(name, "None"),
            }
            for (name, dimensions), (count, total, low, high) in pending.items()
        ]
        for start in range(0, len(data), 1000):  # PutMetricData takes at most 1,000 metrics per call
            try:
                with principals.acting_as(None):  # SageMaker's own delivery, not a role's call
                    cloudwatch.put_metric_data(Namespace=NAMESPACE, MetricData=data[start : start + 1000])
            except (ClientError, BotoCoreError) as error:
                log.warning("endpoint metrics not published: %s", error)


_COMPARISONS: dict[str, tuple[Callable[[float, float], bool], str]] = {
    "GreaterThanOrEqualToThreshold": (lambda v, t: v >= t, "greater than or equal to"),
    "GreaterThanThreshold": (lambda v, t: v > t, "greater than"),
    "LessThanThreshold": (lambda v, t: v < t, "less than"),
    "LessThanOrEqualToThreshold": (lambda v, t: v <= t, "less than or equal to"),
}


def statistic(alarm: Mapping[str, Any], values: Sequence[float]) -> float:
    """The alarm's Statistic or ExtendedStatistic (pNN) of one period's values (not empty)."""
    extended = alarm.get("ExtendedStatistic")
    if extended:
        ordered = sorted(values)
        rank = math.ceil(float(extended.lstrip("p")) / 100 * len(ordered))  # nearest rank
        return ordered[max(rank, 1) - 1]
    return {
        "SampleCount": float(len(values)),
        "Sum": float(sum(values)),
        "Average": sum(values) / len(values),
        "Minimum": min(values),
        "Maximum": max(values),
    }[alarm.get("Statistic", "Average")]


def evaluate(alarm: Mapping[str, Any], periods: Sequence[Sequence[float]]) -> tuple[str, str] | None:
    """(state, reason) of a single-metric alarm from its last EvaluationPeriods periods' values, newest first,
    as CloudWatch decides it; None when the alarm keeps its state (missing data it is told to ignore)."""
    threshold = float(alarm["Threshold"])
    compare, phrase = _COMPARISONS[alarm["ComparisonOperator"]]
    needed = int(alarm.get("DatapointsToAlarm") or alarm["EvaluationPeriods"])
    missing = alarm.get("TreatMissingData", "missing")
    breaching, points = 0, []
    for values in periods:
        if values:
            value = statistic(alarm, values)
            points.append(f"{value:g}")
            breaching += compare(value, threshold)
        elif missing == "breaching":
            breaching += 1
    if not points and missing in ("missing", "ignore"):
        return None if missing == "ignore" else ("INSUFFICIENT_DATA", "Insufficient Data: no datapoints")
    seen = ", ".join(points) or "no datapoints"
    if breaching >= needed:
        return (
            "ALARM",
            f"Threshold Crossed: {breaching} out of the last {len(periods)} datapoints [{seen}] were {phrase} "
            f"the threshold ({threshold:g}) (minimum {needed} datapoints for OK -> ALARM transition).",
        )
    return "OK", f"Threshold not crossed: datapoints [{seen}] against the threshold ({threshold:g})."


class AlarmEvaluator:
    def __init__(self, metrics: EndpointMetrics, cloudwatch: Callable[[], Any], time_scale: float) -> None:
        """``cloudwatch()``: a client of the local CloudWatch; used as CloudWatch itself (no role)."""
        self._metrics = metrics
        self._cloudwatch = cloudwatch
        self._scale = time_scale
        self._not_evaluated: set[str] = set()

    def evaluate(self, names: Iterable[str]) -> None:
        names = list(names)
        if not names:
            return
        client = self._cloudwatch()
        try:
            with principals.acting_as(None):
                alarms = client.describe_alarms(AlarmNames=names)["MetricAlarms"]
        except (ClientError, BotoCoreError) as error:
            log.warning("alarms not evaluated: %s", error)
            return
        now = time.monotonic()
        for alarm in alarms:
            if alarm.get("Metrics") or alarm.get("Namespace") != NAMESPACE:
                if alarm["AlarmName"] not in self._not_evaluated:
                    self._not_evaluated.add(alarm["AlarmName"])
                    log.info(
                        "alarm %s is not evaluated locally (metric math or another namespace)",
                        alarm["AlarmName"],
                    )
                continue
            outcome = evaluate(alarm, self._periods(alarm, now))
            if outcome and outcome[0] != alarm["StateValue"]:
                try:
                    with principals.acting_as(None):
                        client.set_alarm_state(
                            AlarmName=alarm["AlarmName"], StateValue=outcome[0], StateReason=outcome[1][:1023]
                        )
                except (ClientError, BotoCoreError) as error:  # it keeps its state until the next evaluation
                    log.warning("alarm %s not set to %s: %s", alarm["AlarmName"], outcome[0], error)

    def _periods(self, alarm: Mapping[str, Any], now: float) -> list[list[float]]:
        period = float(alarm["Period"]) / self._scale
        dimensions = frozenset((d["Name"], d["Value"]) for d in alarm.get("Dimensions", []))
        return [
            self._metrics.values(alarm["MetricName"], dimensions, now - (n + 1) * period, now - n * period)
            for n in range(int(alarm["EvaluationPeriods"]))
        ]
