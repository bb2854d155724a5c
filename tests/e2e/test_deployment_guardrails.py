"""A healthy release moves traffic to its new fleet step by step, as the template's DeploymentStrategy says,
while users keep calling: no request fails and both fleets answer some."""

import pytest

pytestmark = pytest.mark.slow


def test_a_linear_update_moves_traffic_in_steps_and_every_request_is_answered(rehearse):
    code, summary, stderr = rehearse(
        "--releases",
        "2",
        "--parameter",
        "DeploymentStrategy=LINEAR",
        "--parameter",
        "DeploymentTrafficPercent=50",
        "--update-traffic",
        "10",
    )
    assert code == 0, stderr[-2000:]
    first, second = summary["releases"]
    assert first["deployment"] is None  # the first release creates the endpoint: nothing to shift
    deployment = second["deployment"]
    assert (deployment["strategy"], deployment["outcome"], second["alarm"]) == ("LINEAR", "completed", None)
    assert deployment["steps"] == [
        {"new_percent": 50.0, "bake_seconds": 300},
        {"new_percent": 100.0, "bake_seconds": 300},
    ]
    assert len(deployment["alarms"]) == 3
    requests, traffic = deployment["requests"], deployment["traffic"]
    assert traffic["failed"] == 0 and traffic["sent"] == traffic["answered"] > 20
    assert requests["old"]["answered"] > 0 and requests["new"]["answered"] > 0
    assert requests["old"]["failed"] == requests["new"]["failed"] == 0
    assert summary["prediction"] == {"result": "setosa"}
    assert summary["iam"]["denied"] == []
