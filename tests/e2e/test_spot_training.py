"""A release on managed spot training: its training instance is reclaimed midway, the job restarts from the
checkpoint that reached S3, and the release still serves; without spot nothing of it shows."""

import pytest

pytestmark = [pytest.mark.faults, pytest.mark.slow]


def test_a_spot_release_whose_instance_is_reclaimed_resumes_and_serves(rehearse):
    code, summary, stderr = rehearse("--parameter", "UseSpotTraining=true", "--fault", "spot-interrupt")
    assert (code, summary["status"]) == (0, "SUCCEEDED"), summary.get("reason") or stderr[-3000:]
    assert summary["prediction"] == {"result": "setosa"}
    assert summary["iam"]["denied"] == []
    assert "SpotTrainingLimits" in summary["states"] and "OnDemandTrainingLimits" not in summary["states"]
    training = summary["training"]
    assert training["spot"] is True and training["status"] == "Completed"
    assert training["interruptions"] == 1
    assert training["resumed_from"]["step"] == 1 and training["resumed_from"]["of"] == 2
    assert training["billable_seconds"] < training["training_seconds"]
    assert training["secondary_statuses"].count("Training") == 2
    job = training["job"]
    assert {f"checkpoints/{job}/step-0001.ckpt", f"checkpoints/{job}/step-0002.ckpt"} <= set(
        summary["artifacts"]
    )


def test_an_on_demand_release_reports_no_spot_training(rehearse):
    code, summary, _ = rehearse("--fault", "spot-interrupt")  # only spot capacity is ever reclaimed
    assert (code, summary["status"]) == (0, "SUCCEEDED")
    assert "training" not in summary
    assert "OnDemandTrainingLimits" in summary["states"]
    assert summary["iam"]["denied"] == []
