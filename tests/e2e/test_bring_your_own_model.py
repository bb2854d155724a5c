"""The second example through the whole pipeline: a regression released, gated on RMSE, served as a number."""

import pytest

from mlops.mailbox import read_message

pytestmark = pytest.mark.slow


def test_the_diabetes_regression_is_released_and_answers_a_number(rehearse, tmp_path):
    code, summary, stderr = rehearse("--model", "diabetes")
    assert code == 0, stderr[-3000:]
    assert summary["status"] == "SUCCEEDED"
    result = summary["prediction"]["result"]
    assert isinstance(result, float) and 25 <= result <= 346
    assert '"data":"59,2,32.1,101,157,93.2,38,4,4.8598,87"' in summary["curl"]
    assert summary["iam"]["denied"] == []
    [approval] = [p for p in sorted((tmp_path / "work" / "outbox").glob("*.eml")) if "approve" in p.name]
    mail = read_message(approval)
    assert "Held-out RMSE" in str(mail["Subject"])
    text = mail.get_body(preferencelist=("plain",)).get_content()
    assert "R²" in text and "meets the gate 70 (lower is better" in text and "accuracy" not in text.lower()


def test_a_regression_above_the_rmse_gate_fails_at_the_quality_gate_naming_rmse(rehearse, tmp_path):
    code, summary, _ = rehearse("--model", "diabetes", "--parameter", "GateThreshold=1")
    assert code == 1
    assert (summary["failed_state"], summary["error"]) == ("QualityGate", "QualityGateFailed")
    assert "held-out RMSE" in summary["cause"] and "is above the gate 1 (lower is better" in summary["cause"]
    assert not any("approve" in p.name for p in (tmp_path / "work" / "outbox").glob("*.eml"))


def test_a_gate_metric_the_model_does_not_have_fails_evaluation_naming_the_parameter(rehearse):
    code, summary, _ = rehearse("--model", "diabetes", "--parameter", "GateMetric=accuracy")
    assert code == 1 and summary["failed_state"] == "Evaluate"
    assert "GateMetric 'accuracy' is not a metric of a regression model" in summary["cause"]


def test_the_served_regression_answers_ten_features_with_a_number_and_four_with_a_400(started_rehearsal):
    import json
    import signal
    import urllib.error
    import urllib.request
    from pathlib import Path

    process, stderr_path = started_rehearsal("--model", "diabetes", "--serve")
    summary = next(json.loads(line) for line in process.stdout if line.startswith("{"))
    assert summary["status"] == "SUCCEEDED", stderr_path.read_text()[-3000:]
    key = (Path(summary["work_dir"]) / "api-key").read_text()

    def ask(data: str) -> tuple[int, dict]:
        request = urllib.request.Request(
            f"{summary['api_url']}/v1/invokeSagemakerAPI",
            data=json.dumps({"data": data}).encode(),
            headers={"Content-Type": "application/json", "x-api-key": key},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    status, answer = ask("59,2,32.1,101,157,93.2,38,4,4.8598,87")
    assert status == 200 and isinstance(answer["result"], float)
    status, answer = ask("4.5,1.3,0.3,0.3")
    assert status == 400 and "10" in answer["message"] and "got 4" in answer["message"], answer
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0
