"""The drift function: PSI scores, the HTML page, and the whole check against moto (S3, SageMaker, SNS,
CloudWatch)."""

from __future__ import annotations

import io
import json
import tarfile
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from fnharness import load_function

BUCKET = "artifacts"
ENDPOINT = "mlops-iris-staging"
BASELINE = {
    "rows": 100,
    "bins": 4,
    "features": [
        {"name": "feature_1", "mean": 1.5, "edges": [1.0, 2.0, 3.0], "counts": [25, 25, 25, 25]},
        {"name": "feature_2", "mean": 0.5, "edges": [0.5], "counts": [50, 50]},
    ],
    "label": {"kind": "classes", "count": 100, "counts": {"a": 50, "b": 50}},
}


@pytest.fixture
def scores():
    return load_function("drift/drift_scores.py")


def capture_line(row: str, answer: str, when: datetime | None = None, encoding: str = "CSV") -> str:
    when = when or datetime.now(UTC)
    return json.dumps(
        {
            "captureData": {
                "endpointInput": {
                    "observedContentType": "text/csv",
                    "mode": "INPUT",
                    "data": row,
                    "encoding": encoding,
                },
                "endpointOutput": {
                    "observedContentType": "text/csv",
                    "mode": "OUTPUT",
                    "data": answer,
                    "encoding": "CSV",
                },
            },
            "eventMetadata": {"eventId": "e", "inferenceTime": when.strftime("%Y-%m-%dT%H:%M:%S.000Z")},
            "eventVersion": "0",
        }
    )


def test_psi_is_zero_for_the_same_shares_and_grows_with_the_shift(scores):
    assert scores.psi([25, 25, 25, 25], [50, 50, 50, 50]) == pytest.approx(0.0)
    small = scores.psi([25, 25, 25, 25], [30, 25, 25, 20])
    large = scores.psi([25, 25, 25, 25], [0, 0, 10, 90])
    assert 0 < small < 0.1 < 0.25 < large


def test_psi_matches_its_formula(scores):
    expected = (0.6 - 0.5) * __import__("math").log(0.6 / 0.5) + (0.4 - 0.5) * __import__("math").log(
        0.4 / 0.5
    )
    assert scores.psi([50, 50], [60, 40]) == pytest.approx(expected)


def test_values_are_binned_as_the_baseline_binned_them(scores):
    assert scores.bin_counts([1.0, 2.0], [0.5, 1.0, 1.5, 2.0, 9.0]) == [1, 2, 2]


def test_captures_that_are_not_csv_rows_of_the_right_width_are_skipped(scores):
    live = scores.read_captures(
        [capture_line("1,2", "a"), capture_line("1,2,3", "b"), "not json", capture_line("4,5", "b"), ""], 2
    )
    assert live.rows == [[1.0, 2.0], [4.0, 5.0]]
    assert live.predictions == ["a", "b"]
    assert (live.records, live.skipped) == (3, 2)


def test_a_shifted_feature_is_the_one_that_drifted(scores):
    rows = [f"{v},{w}" for v, w in [(0.5, 0.1), (1.5, 0.9), (2.5, 0.2), (3.5, 0.8)] * 25]
    shifted = [f"{float(r.split(',')[0]) + 3},{r.split(',')[1]}" for r in rows]
    steady = scores.score(BASELINE, scores.read_captures([capture_line(r, "a") for r in rows], 2), 0.25)
    moved = scores.score(BASELINE, scores.read_captures([capture_line(r, "a") for r in shifted], 2), 0.25)
    assert steady["drifted"] == [] and steady["features"][0]["psi"] == pytest.approx(0.0)
    assert moved["drifted"] == ["feature_1"]
    assert moved["prediction"]["drifted"]  # every answer is "a" where training had half "b"


def test_names_given_must_match_the_baselines_features(scores):
    with pytest.raises(scores.DriftError, match="3 feature names were given for the baseline's 2 features"):
        scores.score(BASELINE, scores.LiveData(), 0.25, ["a", "b", "c"])


def test_a_model_without_a_baseline_cannot_be_scored(scores):
    with pytest.raises(scores.DriftError, match="needs train's baseline"):
        scores.score({"rows": 3}, scores.LiveData(), 0.25)


def test_the_page_has_one_chart_per_feature_and_one_for_the_predictions(scores):
    page = load_function("drift/drift_page.py")
    rows = [capture_line("0.5,0.1", "a"), capture_line("3.5,<b>", "b")]
    result = scores.score(
        {**BASELINE, "features": [*BASELINE["features"][:1], {**BASELINE["features"][1], "name": "<x>"}]},
        scores.read_captures(rows, 2),
        0.25,
    )
    html = page.render(
        {
            "endpoint": ENDPOINT,
            "window": {"start": "2026-12-01T00:00:00Z", "end": "2026-12-01T01:00:00Z"},
            "capture": {"objects": 1},
            "scores": result,
        }
    )
    assert html.count("<svg") == 3
    assert "&lt;x&gt;" in html and "<x>" not in html
    assert "http" not in html.replace("http://www.w3.org/2000/svg", "")  # nothing loaded from elsewhere


# -- the whole check against moto ---------------------------------------------------------------------------
@pytest.fixture
def deployed(aws, monkeypatch):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        data = json.dumps({"baseline": BASELINE}).encode()
        info = tarfile.TarInfo("metadata.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    s3.put_object(Bucket=BUCKET, Key="training/job/output/model.tar.gz", Body=archive.getvalue())
    sm = boto3.client("sagemaker")
    sm.create_model(
        ModelName="mlops-iris-m1",
        ExecutionRoleArn="arn:aws:iam::123456789012:role/sm",
        PrimaryContainer={"Image": "img", "ModelDataUrl": f"s3://{BUCKET}/training/job/output/model.tar.gz"},
    )
    sm.create_endpoint_config(
        EndpointConfigName="mlops-iris-c1",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "mlops-iris-m1",
                "InstanceType": "ml.t2.medium",
                "InitialInstanceCount": 1,
            }
        ],
    )
    sm.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="mlops-iris-c1")
    sns = boto3.client("sns")
    topic = sns.create_topic(Name="notify")["TopicArn"]
    sqs = boto3.client("sqs")
    queue = sqs.create_queue(QueueName="mail")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    for name, value in {
        "ARTIFACT_BUCKET": BUCKET,
        "ENDPOINT_NAME": ENDPOINT,
        "CAPTURE_PREFIX": "capture",
        "NOTIFY_TOPIC_ARN": topic,
        "METRIC_NAMESPACE": "mlops-iris/Drift",
        "DRIFT_THRESHOLD": "0.25",
        "DRIFT_FEATURE_NAMES": "width,height",
    }.items():
        monkeypatch.setenv(name, value)
    return {"s3": s3, "sqs": sqs, "queue": queue}


def put_captures(s3, lines: list[str], when: datetime) -> None:
    key = f"capture/{ENDPOINT}/AllTraffic/{when:%Y/%m/%d/%H}/{when:%M-%S}-000-x.jsonl"
    s3.put_object(Bucket=BUCKET, Key=key, Body="\n".join(lines).encode())


def test_the_check_reports_mails_and_publishes_a_drifted_feature(deployed, lambda_context):
    now = datetime.now(UTC)
    rows = [capture_line(f"{v + 5},{w}", a) for v, w, a in [(0.5, 0.1, "a"), (2.5, 0.9, "b")] * 50]
    put_captures(deployed["s3"], rows, now)
    put_captures(
        deployed["s3"], [capture_line("0.5,0.1", "a", now - timedelta(hours=5))], now - timedelta(hours=5)
    )
    app = load_function("drift/app.py")
    report = app.handler({"hours": 2}, lambda_context)
    assert report["scores"]["drifted"] == ["width"]  # DRIFT_FEATURE_NAMES name the columns
    assert report["scores"]["rows"] == 100  # the capture five hours ago is outside the window
    assert report["capture"]["objects"] == 1 and report["mailed"] is True
    for uri in (report["json_uri"], report["html_uri"]):
        key = uri.removeprefix(f"s3://{BUCKET}/")
        assert key.startswith(f"drift/{ENDPOINT}/")
        deployed["s3"].head_object(Bucket=BUCKET, Key=key)
    stored = json.loads(
        deployed["s3"].get_object(Bucket=BUCKET, Key=report["json_uri"].split("/", 3)[3])["Body"].read()
    )
    assert stored["scores"]["drifted"] == ["width"]
    metrics = boto3.client("cloudwatch").list_metrics(Namespace="mlops-iris/Drift")["Metrics"]
    features = {
        d["Value"]
        for m in metrics
        if m["MetricName"] == "FeatureDrift"
        for d in m["Dimensions"]
        if d["Name"] == "Feature"
    }
    assert features == {"width", "height"}
    message = json.loads(deployed["sqs"].receive_message(QueueUrl=deployed["queue"])["Messages"][0]["Body"])
    assert "width" in message["Subject"] and report["html_uri"] in message["Message"]


def test_steady_traffic_is_reported_without_mail(deployed, lambda_context):
    rows = [
        capture_line(f"{v},{w}", a)
        for v, w, a in [(0.5, 0.1, "a"), (1.5, 0.9, "b"), (2.5, 0.2, "a"), (3.5, 0.8, "b")] * 25
    ]
    put_captures(deployed["s3"], rows, datetime.now(UTC))
    report = load_function("drift/app.py").handler({}, lambda_context)
    assert report["scores"]["drifted"] == [] and report["mailed"] is False
    assert "Messages" not in deployed["sqs"].receive_message(QueueUrl=deployed["queue"])


@pytest.mark.parametrize("hours", [0, -1, "x", 1.5, True, 10_000])
def test_a_bad_window_names_hours(deployed, lambda_context, hours):
    app = load_function("drift/app.py")
    with pytest.raises(ValueError, match="hours must be a whole number of hours"):
        app.handler({"hours": hours}, lambda_context)


def test_json_answers_are_read_as_predictions(scores):
    line = json.loads(capture_line("1,2\n3,4", ""))
    line["captureData"]["endpointOutput"] = {
        "observedContentType": "application/json",
        "mode": "OUTPUT",
        "data": '["setosa", "virginica"]',
        "encoding": "JSON",
    }
    live = scores.read_captures([json.dumps(line)], 2)
    assert live.predictions == ["setosa", "virginica"]


def test_a_regressions_answers_are_scored_against_the_targets_bins(scores):
    baseline = {
        **BASELINE,
        "label": {
            "kind": "numeric",
            "mean": 150.0,
            "edges": [100.0, 150.0, 200.0],
            "counts": [25, 25, 25, 25],
        },
    }
    rows = [f"{v},{w}" for v, w in [(0.5, 0.1), (1.5, 0.9), (2.5, 0.2), (3.5, 0.8)] * 25]
    spread = [str(a) for a in (80.0, 120.0, 170.0, 230.0)] * 25
    steady = scores.score(
        baseline,
        scores.read_captures([capture_line(r, a) for r, a in zip(rows, spread, strict=True)], 2),
        0.25,
    )
    high = scores.score(baseline, scores.read_captures([capture_line(r, "260.5") for r in rows], 2), 0.25)
    assert steady["prediction"]["psi"] == pytest.approx(0.0) and not steady["prediction"]["drifted"]
    assert high["prediction"]["drifted"] and high["prediction"]["live_counts"] == [0, 0, 0, 100]
    assert high["prediction"]["live_mean"] == 260.5


def test_the_page_draws_a_regressions_answers_in_the_targets_bins(scores):
    page = load_function("drift/drift_page.py")
    baseline = {**BASELINE, "label": {"kind": "numeric", "mean": 150.0, "edges": [150.0], "counts": [50, 50]}}
    live = scores.read_captures([capture_line("0.5,0.1", "260.5")] * 10, 2)
    html = page.render(
        {
            "endpoint": ENDPOINT,
            "window": {"start": "2026-12-01T00:00:00Z", "end": "2026-12-01T01:00:00Z"},
            "capture": {"objects": 1},
            "scores": scores.score(baseline, live, 0.25),
        }
    )
    assert html.count("<svg") == 3 and "training target vs live answers" in html
