"""Watching the live model, end to end: traffic through the API, SageMaker-format captures, the scheduled
drift check, its mail and report; `mlops drift` on demand against a served rehearsal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def _user_env() -> dict[str, str]:
    """This environment without its AWS settings: the local AWS must be the only one the test reaches."""
    return {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}


def drift_mails(outbox) -> list:
    return [mail for mail in sorted(outbox.glob("*.eml")) if "drift" in mail.name]


def test_shifted_petal_width_is_the_one_feature_that_drifted(served_rehearsal, tmp_path):
    process, stderr_path = served_rehearsal("--traffic", "500", "--shift", "petal_width=+1.5")
    summary = next((json.loads(line) for line in process.stdout if line.startswith("{")), None)
    assert summary is not None, stderr_path.read_text()[-3000:]
    assert summary["status"] == "SUCCEEDED" and summary["iam"]["denied"] == []
    assert summary["traffic"]["answered"] == 500
    drift = summary["drift"]
    assert drift["drifted"] == ["petal_width"]
    assert (
        drift["scores"]["petal_width"]
        > drift["threshold"]
        >= max(score for name, score in drift["scores"].items() if name != "petal_width")
    )
    assert drift["rows"] >= 500
    assert drift["report_uris"]["html"].endswith("/report.html")
    assert "<svg" in (tmp_path / "work" / "drift" / "report.html").read_text()
    mails = drift_mails(tmp_path / "work" / "outbox")
    assert len(mails) == 1 and "petal" in mails[0].name

    # The captures as a tool that reads SageMaker's would: documented fields, one JSON object per line.
    assert summary["capture"]["objects"] >= 1
    s3 = boto3.client(
        "s3",
        endpoint_url=summary["aws_endpoint_url"],
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    lines = []
    for uri in summary["capture"]["uris"]:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        assert key.startswith("capture/mlops-iris-staging/AllTraffic/")
        lines += s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode().splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) >= 501  # the traffic and the summary's curl
    for record in records:
        assert record["eventVersion"] == "0" and record["eventMetadata"]["eventId"]
        assert record["captureData"]["endpointInput"]["encoding"] == "CSV"
        assert record["captureData"]["endpointInput"]["mode"] == "INPUT"
        output = record["captureData"]["endpointOutput"]
        assert output["mode"] == "OUTPUT"
        # the answer's own content type decides its encoding, as CaptureContentTypeHeader lists them
        expected = {"text/csv": "CSV", "application/json": "JSON"}[
            output["observedContentType"].split(";")[0]
        ]
        assert output["encoding"] == expected

    # On demand: mlops drift invokes the same function through the local AWS's Lambda API.
    env = {
        **_user_env(),
        "AWS_ENDPOINT_URL": summary["aws_endpoint_url"],
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    done = subprocess.run(
        [sys.executable, "-m", "mlops", "drift", "--stage", "staging", "--hours", "1"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr  # 1: something drifted
    on_demand = json.loads(done.stdout.strip().splitlines()[-1])
    assert on_demand["drifted"] == ["petal_width"]
    assert on_demand["report_uris"] != drift["report_uris"]


def test_unshifted_traffic_drifts_nothing_and_mails_nobody(rehearse, tmp_path):
    code, summary, stderr = rehearse("--traffic", "500")
    assert code == 0, stderr[-3000:]
    assert summary["drift"]["drifted"] == [] and not summary["drift"]["prediction_drifted"]
    assert summary["drift"]["mailed"] is False
    assert drift_mails(tmp_path / "work" / "outbox") == []
    assert "Drift: " in stderr and "drifted: nothing" in stderr


def test_shift_without_traffic_is_refused_naming_the_option(mlops_cli):
    done = mlops_cli("rehearse", "--shift", "petal_width=+1")
    assert done.returncode == 2 and "--shift" in done.stderr and "--traffic" in done.stderr


def test_shift_of_an_unknown_feature_names_the_features(mlops_cli):
    done = mlops_cli("rehearse", "--traffic", "5", "--shift", "petal_size=+1")
    assert done.returncode == 2 and "petal_size" in done.stderr and "petal_width" in done.stderr
