"""The rollback alarms evaluated as CloudWatch does: statistics, percentiles, M of N datapoints, missing
data, and the metrics SageMaker records per InvokeEndpoint."""

import pytest

from mlops.local.alarm_evaluation import EndpointMetrics, evaluate, statistic


def alarm(**fields) -> dict:
    return {
        "Statistic": "Sum",
        "Threshold": 1.0,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "EvaluationPeriods": 1,
        "TreatMissingData": "notBreaching",
        **fields,
    }


def test_one_error_in_the_period_trips_a_sum_threshold_of_one():
    state, reason = evaluate(alarm(), [[0.0, 1.0, 0.0]])
    assert state == "ALARM"
    assert "greater than or equal to the threshold (1)" in reason


def test_no_errors_is_ok():
    assert evaluate(alarm(), [[0.0, 0.0]])[0] == "OK"


def test_the_99th_percentile_is_the_nearest_rank():
    latencies = [float(n) for n in range(1, 101)]
    assert statistic({"ExtendedStatistic": "p99"}, latencies) == 99.0
    assert statistic({"ExtendedStatistic": "p50"}, [3.0, 1.0, 2.0]) == 2.0
    slow = alarm(
        Statistic=None, ExtendedStatistic="p99", Threshold=50.0, ComparisonOperator="GreaterThanThreshold"
    )
    assert evaluate(slow, [[10.0] * 98 + [900.0, 900.0]])[0] == "ALARM"
    assert evaluate(slow, [[10.0] * 99 + [900.0]])[0] == "OK"  # one slow answer in a hundred is the 100th


@pytest.mark.parametrize(
    "name, expected", [("Average", 2.0), ("Maximum", 3.0), ("Minimum", 1.0), ("SampleCount", 3.0)]
)
def test_the_standard_statistics(name, expected):
    assert statistic({"Statistic": name}, [1.0, 2.0, 3.0]) == expected


def test_m_of_n_needs_m_breaching_periods():
    two_of_three = alarm(EvaluationPeriods=3, DatapointsToAlarm=2)
    assert evaluate(two_of_three, [[1.0], [0.0], [0.0]])[0] == "OK"
    assert evaluate(two_of_three, [[1.0], [0.0], [2.0]])[0] == "ALARM"


def test_missing_data_is_treated_as_the_alarm_says():
    assert evaluate(alarm(), [[]])[0] == "OK"  # notBreaching: an idle endpoint is healthy
    assert evaluate(alarm(TreatMissingData="breaching"), [[]])[0] == "ALARM"
    assert evaluate(alarm(TreatMissingData="missing"), [[]])[0] == "INSUFFICIENT_DATA"
    assert evaluate(alarm(TreatMissingData="ignore"), [[]]) is None  # keeps its state


def test_each_invocation_counts_in_sagemakers_metrics_by_its_status():
    metrics = EndpointMetrics()
    metrics.record_invocation("ep", "AllTraffic", 200, 1500.0)
    metrics.record_invocation("ep", "AllTraffic", 500, 2500.0)
    metrics.record_invocation("ep", "AllTraffic", 400, 900.0)
    metrics.record_invocation("ep", "AllTraffic", 0, None)  # no answer
    dims = frozenset({("EndpointName", "ep"), ("VariantName", "AllTraffic")})

    def total(name):
        return sum(metrics.values(name, dims, 0, float("inf")))

    assert total("Invocations") == 4
    assert total("Invocation5XXErrors") == 2
    assert total("Invocation4XXErrors") == 1
    assert total("InvocationModelErrors") == 3
    assert sorted(metrics.values("ModelLatency", dims, 0, float("inf"))) == [900.0, 1500.0, 2500.0]
    other = frozenset({("EndpointName", "other"), ("VariantName", "AllTraffic")})
    assert metrics.values("Invocations", other, 0, float("inf")) == []
