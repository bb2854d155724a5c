"""The fault matrix: whatever goes wrong, the release says which stage failed and why, mails it, and keeps
earlier artifacts and the serving model. Each case runs the real pipeline through ``mlops rehearse``."""

import json
import urllib.request
from pathlib import Path

import pytest

from mlops.mailbox import read_message

pytestmark = [pytest.mark.faults, pytest.mark.slow]


def _mails(tmp_path: Path) -> list[tuple[str, str]]:
    result = []
    for path in sorted((tmp_path / "work" / "outbox").glob("*.eml")):
        message = read_message(path)
        body = message.get_body(preferencelist=("plain",))
        result.append((str(message["Subject"]), body.get_content() if body else ""))
    return result


def _failure_mail(tmp_path: Path) -> tuple[str, str]:
    failed = [m for m in _mails(tmp_path) if "failed" in m[0].lower()]
    assert failed, _mails(tmp_path)
    return failed[-1]


def test_invalid_hyperparameter_fails_at_training_naming_it(rehearse, tmp_path):
    code, summary, stderr = rehearse("--hyperparameters", "max_depth=-3")
    assert code == 1
    assert (summary["failed_state"], summary["error"]) == ("Train", "SageMaker.JobFailed")
    assert "max_depth" in summary["cause"] and "-3" in summary["cause"]
    # The reason first, in one line; SageMaker's whole job description goes to the record, not the terminal.
    reason = "AlgorithmError: Training failed: hyperparameter max_depth='-3' is invalid"
    assert summary["reason"].startswith(reason) and f"  reason:   {reason}" in stderr
    assert "TrainingJobArn" in Path(summary["failure_record"]).read_text()
    assert max(map(len, stderr.splitlines())) <= 500
    subject, body = _failure_mail(tmp_path)
    assert "training" in subject.lower() and "max_depth" in body


def test_training_crash_says_the_process_died(rehearse, tmp_path):
    code, summary, _ = rehearse("--fault", "train-crash")
    assert code == 1 and summary["failed_state"] == "Train"
    assert "code 137" in summary["cause"]
    assert "training" in _failure_mail(tmp_path)[0].lower()


def test_missing_training_data_fails_at_training(rehearse, tmp_path):
    code, summary, _ = rehearse("--fault", "no-training-data")
    assert code == 1 and summary["failed_state"] == "Train"
    assert "training" in summary["cause"].lower()
    assert "data/test/test.csv" in summary["artifacts"]  # nothing the user uploaded is lost


def test_malformed_held_out_row_names_object_and_line_and_keeps_the_model(rehearse, tmp_path):
    code, summary, _ = rehearse("--fault", "malformed-test-data")
    assert code == 1 and summary["failed_state"] == "BatchTransform"
    assert "test.csv" in summary["cause"] and "7" in summary["cause"]
    assert any(k.endswith("output/model.tar.gz") for k in summary["artifacts"])
    assert "batch" in _failure_mail(tmp_path)[0].lower() or "transform" in _failure_mail(tmp_path)[0].lower()


def test_quality_gate_stops_before_anyone_is_asked(rehearse, tmp_path):
    code, summary, stderr = rehearse("--parameter", "MinAccuracy=1.01")
    assert code == 1 and summary["failed_state"] == "QualityGate"
    assert summary["error"] == "QualityGateFailed"
    assert "0.9" in summary["cause"] and "1.01" in summary["cause"]
    assert not any("approve" in subject.lower() for subject, _ in _mails(tmp_path))
    assert "RequestApproval" not in summary["states"]
    assert any(k.endswith(".out") for k in summary["artifacts"])
    # The person sees progress lines and the summary; the local AWS's own error lines go to its log file.
    assert max(map(len, stderr.splitlines())) <= 500
    assert "FailureEventException" not in stderr
    assert "FailureEventException" in (tmp_path / "work" / "logs" / "local-aws.log").read_text()
    # The path it took, drawn: the gate and its failure highlighted, the approval not.
    drawn = Path(summary["diagram"]).read_text()
    taken = next(line for line in drawn.splitlines() if line.startswith("    class ")).split()[1].split(",")
    assert {"QualityGate", "QualityGateFailed", "ReleaseFailed"} <= set(taken)
    assert "RequestApproval" not in taken


def test_nobody_deciding_in_time_ends_with_approval_timed_out(rehearse, tmp_path):
    code, summary, _ = rehearse("--approve", "manual", "--parameter", "ApprovalTimeoutSeconds=3")
    assert code == 1 and summary["failed_state"] == "RequestApproval"
    assert summary["error"] == "ApprovalTimedOut"
    assert "no decision within 3 seconds" in summary["cause"]
    assert summary["live_endpoints"] == []
    assert "approval" in _failure_mail(tmp_path)[0].lower()


def test_endpoint_that_cannot_start_fails_the_first_release_clearly(rehearse, tmp_path):
    code, summary, _ = rehearse("--fault", "serve-crash")
    assert code == 1 and summary["failed_state"] == "EndpointStatus"
    assert summary["error"] == "EndpointFailed"
    assert "injected fault: serve-crash" in summary["cause"]
    assert any(k.endswith(".out") for k in summary["artifacts"])


def test_release_whose_model_cannot_serve_rolls_back_and_the_previous_keeps_serving(rehearse, tmp_path):
    code, summary, _ = rehearse("--releases", "2", "--fault", "serve-crash@2")
    first, second = summary["releases"]
    assert code == 1
    assert first["status"] == "SUCCEEDED" and second["status"] == "FAILED"
    assert second["error"] == "DeploymentRolledBack"
    assert first["names"]["endpoint_config"] in second["cause"]
    assert summary["live_endpoints"] == ["mlops-iris-staging"]
    request = urllib.request.Request(
        summary["api_url"] + "/v1/invokeSagemakerAPI",
        method="POST",
        data=b'{"data":"4.5,1.3,0.3,0.3"}',
        headers={"Content-Type": "application/json"},
    )
    with pytest.raises(OSError):  # the rehearsal has stopped; the record is in the summary instead
        urllib.request.urlopen(request, timeout=5)
    assert summary["left_over"] == []
    assert "rolled back" in _failure_mail(tmp_path)[1].lower()


def test_throttled_sagemaker_call_is_retried_and_the_release_succeeds(rehearse):
    code, summary, _ = rehearse("--fault", "throttle")
    assert code == 0 and summary["status"] == "SUCCEEDED"
    assert {"state": "CreateModel", "error": "SageMaker.ThrottlingException"} in summary["task_errors"]


def test_same_execution_name_twice_is_refused_with_advice(mlops_cli, tmp_path):
    done = mlops_cli(
        "rehearse", "--releases", "2", "--fault", "duplicate-execution@2", "--work-dir", str(tmp_path / "dup")
    )
    assert done.returncode == 2
    assert "already exists" in done.stderr and "--attempt" in done.stderr
    assert "Traceback" not in done.stderr
    # The workflow's own `mlops release` refused it: its step failed and no second release started.
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert (summary["status"], summary["failed_step"]) == ("NOT_STARTED", "Start the release")
    assert [r["status"] for r in summary["releases"]] == ["SUCCEEDED", "NOT_STARTED"]


def test_two_releases_update_one_endpoint_and_leave_nothing_over(rehearse):
    code, summary, _ = rehearse("--releases", "2")
    assert code == 0
    first, second = summary["releases"]
    assert (first["endpoint_action"], second["endpoint_action"]) == ("create", "update")
    assert summary["live_endpoints"] == ["mlops-iris-staging"]
    assert second["rollback_config"] == first["names"]["endpoint_config"]
    assert second["evaluation"]["champion"]["endpoint_config"] == first["names"]["endpoint_config"]
    assert summary["left_over"] == []
    assert summary["prediction"] == {"result": "setosa"}
    # Release 2 is a re-run of release.yml (attempt 2): ECR has the commit's image, so nothing is rebuilt.
    steps = {step["name"]: step["outcome"] for step in summary["workflow"]["steps"]}
    assert [o for name, o in steps.items() if name.startswith("Run docker/")] == ["skipped", "skipped"]
    assert steps["Start the release"] == "success"
    assert summary["workflow"]["credentials"]["role_session_name"] == "release-1-2"
    json.dumps(summary)


def test_a_canary_that_fails_requests_is_rolled_back_by_its_alarm_and_no_old_fleet_request_fails(
    rehearse, tmp_path
):
    code, summary, stderr = rehearse("--releases", "2", "--fault", "canary-errors@2")
    first, second = summary["releases"]
    assert code == 1
    assert first["status"] == "SUCCEEDED" and second["status"] == "FAILED"
    alarm = "mlops-iris-staging-endpoint-5xx-errors"
    assert (second["error"], second["alarm"]) == ("DeploymentRolledBack", alarm)
    assert first["model_package_arn"] and second["model_package_arn"] != first["model_package_arn"]
    deployment = second["deployment"]
    assert (deployment["strategy"], deployment["outcome"]) == ("CANARY", "rolled back")
    assert deployment["steps"][0] == {"new_percent": 10.0, "bake_seconds": 300}
    requests, traffic = deployment["requests"], deployment["traffic"]
    # Every request the old fleet took was answered; the only failures are the canary's, each one counted.
    assert requests["old"]["failed"] == 0
    assert traffic["failed"] == requests["new"]["failed"] >= 1
    # the generator may send a request or two as the update ends, after the fleets stopped counting
    assert traffic["answered"] >= requests["old"]["answered"] + requests["new"]["answered"]
    assert traffic["sent"] == traffic["answered"] + traffic["failed"] >= 10  # the canary takes the tenth
    assert set(traffic["failed_statuses"]) == {"502"}  # the API's answer to a model error
    # Release 1 kept serving: the endpoint never left its config, and the API still answers.
    assert first["names"]["endpoint_config"] in summary["cause"] and alarm in summary["cause"]
    assert summary["live_endpoints"] == ["mlops-iris-staging"]
    assert summary["prediction"] == {"result": "setosa"}
    subject, body = _failure_mail(tmp_path)
    assert "deploy" in subject.lower() and alarm in body.replace("=\n", "")
    assert f"update (CANARY, 10% → 100%): rolled back by alarm {alarm} (old fleet answered" in stderr
