"""An UpdateEndpoint's DeploymentConfig as the local SageMaker runs it: the traffic steps, what SageMaker
refuses, and how requests are split between the fleets while the update runs."""

import threading

import pytest

from mlops.local.deployment import DeploymentConfigError, Split, Update, plan_of


def routing(kind: str, wait: int | None, **sizes: tuple[str, int]) -> dict:
    """A TrafficRoutingConfiguration, e.g. routing("CANARY", 300, CanarySize=("CAPACITY_PERCENT", 10))."""
    fields = {name: {"Type": unit, "Value": value} for name, (unit, value) in sizes.items()}
    return {"Type": kind, **fields, **({} if wait is None else {"WaitIntervalInSeconds": wait})}


def config(traffic: dict, **policy) -> dict:
    return {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": traffic, **policy}}


def test_without_a_deployment_config_all_traffic_moves_at_once_without_baking():
    plan = plan_of(None)
    assert plan.kind == "ALL_AT_ONCE"
    assert plan.describe() == [{"new_percent": 100.0, "bake_seconds": 0}]


def test_a_canary_bakes_its_share_then_moves_the_rest():
    plan = plan_of(
        config(
            routing("CANARY", 300, CanarySize=("CAPACITY_PERCENT", 10)),
            TerminationWaitInSeconds=120,
            MaximumExecutionTimeoutInSeconds=3600,
        )
    )
    assert plan.describe() == [
        {"new_percent": 10.0, "bake_seconds": 300},
        {"new_percent": 100.0, "bake_seconds": 0},
    ]
    assert plan.termination_wait_seconds == 120 and plan.waiting_seconds == 420


def test_linear_steps_each_bake_and_the_last_reaches_all_traffic():
    plan = plan_of(config(routing("LINEAR", 60, LinearStepSize=("CAPACITY_PERCENT", 30))))
    assert [s["new_percent"] for s in plan.describe()] == [30.0, 60.0, 90.0, 100.0]
    assert {s["bake_seconds"] for s in plan.describe()} == {60}


def test_an_instance_count_size_is_a_share_of_the_new_fleet():
    plan = plan_of(
        config(routing("CANARY", 0, CanarySize=("INSTANCE_COUNT", 1))),
        new_instances=4,
    )
    assert plan.steps[0].new_percent == 25.0


@pytest.mark.parametrize(
    "traffic, policy, says",
    [
        (
            routing("CANARY", 60, CanarySize=("CAPACITY_PERCENT", 60)),
            {},
            "at most 50%",
        ),
        (routing("CANARY", 60), {}, "CanarySize is required"),
        (
            routing("ALL_AT_ONCE", 60, CanarySize=("CAPACITY_PERCENT", 10)),
            {},
            "not applicable",
        ),
        (
            routing("LINEAR", 60, CanarySize=("CAPACITY_PERCENT", 10)),
            {},
            "not applicable",
        ),
        (routing("SOMETIMES", 60), {}, "enum value set"),
        (
            routing("LINEAR", 60, LinearStepSize=("CAPACITY_PERCENT", 5)),
            {},
            "between 10% and 50%",
        ),
        (routing("ALL_AT_ONCE", 3601), {}, "between 0 and 3600"),
        (routing("ALL_AT_ONCE", None), {}, "WaitIntervalInSeconds is required"),
        (
            routing("ALL_AT_ONCE", 60),
            {"MaximumExecutionTimeoutInSeconds": 300},
            "between 600 and 28800",
        ),
        (
            routing("ALL_AT_ONCE", 600),
            {"MaximumExecutionTimeoutInSeconds": 600},
            "larger than",
        ),
        (
            routing("CANARY", 0, CanarySize=("INSTANCE_COUNT", 2)),
            {},
            "more than the new fleet",
        ),
    ],
)
def test_what_sagemaker_refuses_is_refused_with_its_reason(traffic, policy, says):
    with pytest.raises(DeploymentConfigError, match=says):
        plan_of(config(traffic, **policy))


def test_a_ten_percent_share_sends_every_tenth_request_to_the_new_fleet():
    split = Split()
    split.shift(10)
    picks = [split.pick() for _ in range(30)]
    assert [n for n, fleet in enumerate(picks, 1) if fleet == "new"] == [10, 20, 30]
    split.shift(100)
    assert {split.pick() for _ in range(5)} == {"new"}
    split.shift(0)
    assert {split.pick() for _ in range(5)} == {"old"}


def test_a_fleet_is_drained_only_once_the_requests_it_took_are_answered():
    update = Update(old="old-server", new="new-server", alarms=[])
    update.split.shift(100)
    fleet, server = update.begin()
    assert (fleet, server) == ("new", "new-server")
    drained = threading.Event()
    waiter = threading.Thread(target=lambda: (update.drain("new", timeout=5), drained.set()))
    waiter.start()
    assert not drained.wait(0.2)  # a request is still being answered
    update.end(fleet, ok=False)
    assert drained.wait(2)
    waiter.join()
    assert update.split.as_dict() == {
        "old": {"answered": 0, "failed": 0},
        "new": {"answered": 0, "failed": 1},
    }


def test_the_alarms_watch_every_step_and_then_the_termination_wait_at_full_traffic():
    plan = plan_of(
        config(
            routing("CANARY", 300, CanarySize=("CAPACITY_PERCENT", 10)),
            TerminationWaitInSeconds=120,
        )
    )
    assert [(b.new_percent, b.bake_seconds) for b in plan.bakes()] == [(10.0, 300), (100.0, 0), (100.0, 120)]
